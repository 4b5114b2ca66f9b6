//! The named pipe between the station's Windows service and the session helper.
//!
//! ```text
//!  lanterne-station service (LocalSystem)               lanterne-station session (the student)
//!  creates \\.\pipe\lanterne-station: first instance,
//!  remote clients rejected, DACL: SYSTEM and admins
//!  full, interactive users read/write only
//!        ◀───────────────────────────────────────────── open; GetNamedPipeServerProcessId →
//!  GetNamedPipeClientProcessId → its token: not            its token: the service's account
//!  SYSTEM/LocalService/NetworkService, allowed by           (SYSTEM unless told otherwise)?
//!  [session] users/groups; one helper at a time
//!        then the handshake and frames of `session_link`, as on Linux
//! ```
//!
//! Each end finds the account of the process at the other end from Windows (the pipe's
//! process id, that process's access token), never from what the peer says. The pipe's DACL
//! ([`lanterne_winsys::pipe::SERVICE_PIPE_SDDL`]) keeps students from creating instances of
//! it, and the service creates the first instance, so another program cannot take the name
//! before it; the helper's account check is the second lock. A standard user may not be
//! allowed to read a LocalSystem process's token: the helper then checks the owner of the
//! pipe object instead (SYSTEM, or the Administrators group that Windows makes the owner of
//! what LocalSystem creates), which no student's program can be. Which of the two a real PC
//! uses is not verified yet (Wine lets any process read any token).
//!
//! What "log out" ends is the helper's Windows session (its id goes to the link where Linux
//! puts the account's uid). Who is at the station is the account's name, without its domain.

use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::Duration;

use lanterne_winsys::account::{
    self, Account, LOCAL_SERVICE_SID, LOCAL_SYSTEM_SID, NETWORK_SERVICE_SID,
};
use lanterne_winsys::pipe;
use lanterne_wire::{Capabilities, FrameCodec};
use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient, NamedPipeServer};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{info, warn};

use crate::session::SessionConn;
use crate::session_link::{self, HelloError, HelperPeer, HelperPlace};
pub use crate::session_link::{bridge_to_service, Greeting, HANDSHAKE_TIMEOUT};

/// Where the service waits for the helper unless its configuration says otherwise.
pub const DEFAULT_PIPE: &str = r"\\.\pipe\lanterne-station";
/// Windows error: every instance of the pipe is busy.
const ERROR_PIPE_BUSY: i32 = 231;
/// Longest pipe name Windows accepts (256 characters, the `\\.\pipe\` prefix included).
const MAX_PIPE_NAME: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error("'{0}' is not a local named pipe (\\\\.\\pipe\\name, at most 256 characters)")]
    BadName(String),
    #[error("cannot create the pipe {name}: {source} (is another station service running?)")]
    Listen {
        name: String,
        source: std::io::Error,
    },
    #[error("cannot reach the station service at {name}: {source}")]
    Unavailable {
        name: String,
        source: std::io::Error,
    },
    #[error("{name} is served by {account}, not by the station service's account ({expected}); not talking to it")]
    WrongService {
        name: String,
        account: String,
        expected: String,
    },
    #[error("the station service refused this helper: {0}")]
    Refused(String),
    #[error("the station service did not answer: {0}")]
    Handshake(String),
}

impl From<HelloError> for PipeError {
    fn from(e: HelloError) -> Self {
        match e {
            HelloError::Refused(r) => PipeError::Refused(r),
            HelloError::Handshake(r) => PipeError::Handshake(r),
        }
    }
}

/// Checks that `name` is a local pipe name.
pub fn check_name(name: &OsStr) -> Result<String, PipeError> {
    let text = name.to_string_lossy().to_string();
    let rest = text
        .strip_prefix(r"\\.\pipe\")
        .filter(|rest| !rest.is_empty() && text.chars().count() <= MAX_PIPE_NAME);
    match rest {
        Some(_) if name.to_str().is_some() => Ok(text),
        _ => Err(PipeError::BadName(text)),
    }
}

/// Who may be this station's session helper.
#[derive(Debug, Clone, Default)]
pub struct HelperPolicy {
    /// Accounts admitted (`eleve` or `PC-12\eleve`, any case); with `groups`, empty means any
    /// account but the service accounts.
    pub users: Vec<String>,
    /// Groups (`Utilisateurs`, `LYCEE\eleves`) whose members are admitted.
    pub groups: Vec<String>,
}

impl HelperPolicy {
    pub fn new(users: Vec<String>, groups: Vec<String>) -> Self {
        HelperPolicy { users, groups }
    }

    /// Whether the account of a helper's process may be the session helper; Err says why not.
    pub fn admit(&self, account: &Account) -> Result<(), String> {
        let user = &account.user;
        let shown = user.name.as_deref().unwrap_or(&user.sid);
        if [LOCAL_SYSTEM_SID, LOCAL_SERVICE_SID, NETWORK_SERVICE_SID].contains(&user.sid.as_str()) {
            return Err(format!(
                "{shown} may not run the session helper: what the student sees and uses must \
                 not run as a service account; start it in the student's session"
            ));
        }
        if self.users.is_empty() && self.groups.is_empty() {
            return Ok(());
        }
        let named = |listed: &[String], name: Option<&str>| {
            name.is_some_and(|n| listed.iter().any(|l| same_account(l, n)))
        };
        if named(&self.users, user.name.as_deref())
            || account
                .groups
                .iter()
                .any(|g| named(&self.groups, g.name.as_deref()))
        {
            return Ok(());
        }
        Err(format!(
            "{shown} is not among this station's session.users {:?} nor in its session.groups \
             {:?}",
            self.users, self.groups
        ))
    }
}

/// Whether a configured account name (`eleve` or `PC\eleve`) names `DOMAIN\name`.
fn same_account(listed: &str, full: &str) -> bool {
    let short = full.rsplit('\\').next().unwrap_or(full);
    let target = if listed.contains('\\') { full } else { short };
    listed.to_lowercase() == target.to_lowercase()
}

/// The name the box shows for an account: its name without the domain, when valid.
fn display_name(account: &Account) -> Option<String> {
    let full = account.user.name.as_deref()?;
    let short = full.rsplit('\\').next().unwrap_or(full).to_string();
    lanterne_wire::validate_display_name(&short)
        .is_ok()
        .then_some(short)
}

/// The SID of the account the helper expects the service to run as: a SID as is
/// (`S-1-5-18`), else an account name Windows looks up (`SYSTEM`, `PC\admin`).
pub fn service_sid(account: &str) -> Result<String, String> {
    if account.starts_with("S-1-") {
        return Ok(account.to_string());
    }
    account::sid_of_name(account).map_err(|e| format!("no account named '{account}' here: {e}"))
}

/// The account serving a pipe, as the helper could find it.
#[derive(Debug)]
enum ServerAccount {
    /// From the serving process's access token.
    Token { sid: String, name: Option<String> },
    /// From the owner of the pipe object.
    PipeOwner { sid: String },
}

impl ServerAccount {
    /// Whether this is the account `expected`. An owner check accepts the Administrators
    /// group for LocalSystem, which Windows' default-owner policy puts as the owner of what
    /// LocalSystem creates; a student's program cannot make an object owned by either.
    fn is(&self, expected: &str) -> bool {
        match self {
            ServerAccount::Token { sid, .. } => sid == expected,
            ServerAccount::PipeOwner { sid } => {
                sid == expected
                    || (expected == LOCAL_SYSTEM_SID && sid == account::ADMINISTRATORS_SID)
            }
        }
    }
}

impl std::fmt::Display for ServerAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAccount::Token { sid, name } => {
                write!(f, "{} ({sid})", name.as_deref().unwrap_or("?"))
            }
            ServerAccount::PipeOwner { sid } => write!(f, "a pipe owned by {sid}"),
        }
    }
}

/// Creates the pipe `name` (failing if any instance exists) and hands each admitted helper
/// to the link as a [`SessionConn`] on the returned channel.
pub fn listen(
    name: &OsStr,
    policy: HelperPolicy,
    greeting: Greeting,
) -> Result<mpsc::Receiver<SessionConn>, PipeError> {
    let text = check_name(name)?;
    let first = pipe::create_service_pipe(name, true).map_err(|source| PipeError::Listen {
        name: text.clone(),
        source,
    })?;
    info!(pipe = %text, "waiting for the session helper");
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(accept_loop(
        first,
        name.to_os_string(),
        Arc::new(policy),
        greeting,
        tx,
    ));
    Ok(rx)
}

/// A new instance of the pipe, trying again until Windows gives one (the service already
/// holds the name, so only a lack of resources can stop it).
async fn next_instance(name: &OsStr) -> NamedPipeServer {
    loop {
        match pipe::create_service_pipe(name, false) {
            Ok(s) => return s,
            Err(e) => {
                warn!("cannot create another instance of the session pipe: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn accept_loop(
    first: NamedPipeServer,
    name: OsString,
    policy: Arc<HelperPolicy>,
    greeting: Greeting,
    sessions: mpsc::Sender<SessionConn>,
) {
    let mut place = HelperPlace::default();
    let mut server = first;
    loop {
        let connected = server.connect().await;
        // The next instance exists before this one is handed on: the name is never free.
        let stream = std::mem::replace(&mut server, next_instance(&name).await);
        if let Err(e) = connected {
            warn!("session pipe connection failed: {e}");
            continue;
        }
        if sessions.is_closed() {
            return;
        }
        let pid = match pipe::client_process_id(&stream) {
            Ok(pid) => pid,
            Err(e) => {
                warn!("cannot tell which process opened the session pipe: {e}; closing it");
                continue;
            }
        };
        // Token and account look-ups may ask a domain controller: off the async threads.
        let admitted = {
            let policy = policy.clone();
            tokio::task::spawn_blocking(move || -> Result<HelperPeer, String> {
                let account = account::of_process(pid)
                    .map_err(|e| format!("cannot read the account of process {pid}: {e}"))?;
                let session = account::session_of_process(pid)
                    .map_err(|e| format!("cannot read the session of process {pid}: {e}"))?;
                let describe = format!(
                    "{} ({}), pid {pid}, session {session}",
                    account.user.name.as_deref().unwrap_or("?"),
                    account.user.sid
                );
                policy
                    .admit(&account)
                    .map_err(|why| format!("{describe}: {why}"))?;
                Ok(HelperPeer {
                    describe,
                    session_key: session,
                    user: display_name(&account),
                })
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        };
        let permit = admitted.and_then(|peer| place.take(&peer.describe).map(|p| (p, peer)));
        match permit {
            Err(reason) => {
                warn!(pid, "session helper refused: {reason}");
                tokio::spawn(session_link::refuse(stream, reason));
            }
            Ok((permit, peer)) => {
                tokio::spawn(session_link::serve_helper(
                    stream,
                    peer,
                    greeting.clone(),
                    sessions.clone(),
                    permit,
                ));
            }
        }
    }
}

/// The helper's side: opens the pipe `name`, checks that the process serving it runs as the
/// account `service_sid`, and says hello. Returns the connection and the service's greeting.
pub async fn connect(
    name: &OsStr,
    service_sid: &str,
    capabilities: Capabilities,
) -> Result<(Framed<NamedPipeClient, FrameCodec>, Greeting), PipeError> {
    let text = check_name(name)?;
    let unavailable = |source| PipeError::Unavailable {
        name: text.clone(),
        source,
    };
    let client = match ClientOptions::new().open(name) {
        Ok(c) => c,
        Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY) => {
            return Err(unavailable(std::io::Error::other(
                "every instance of the pipe is busy",
            )))
        }
        Err(e) => return Err(unavailable(e)),
    };
    let pid = pipe::server_process_id(&client)
        .map_err(|e| unavailable(std::io::Error::other(e.to_string())))?;
    // The serving process's token, or, when this account may not read it (a standard user
    // and a LocalSystem service), the owner of the pipe object that process created.
    let account = tokio::task::spawn_blocking(move || account::of_process(pid))
        .await
        .map_err(|e| unavailable(std::io::Error::other(e.to_string())))?;
    let found = match account {
        Ok(a) => ServerAccount::Token {
            sid: a.user.sid,
            name: a.user.name,
        },
        Err(token_error) => ServerAccount::PipeOwner {
            sid: pipe::owner_sid(&client).map_err(|e| PipeError::WrongService {
                name: text.clone(),
                account: format!(
                    "process {pid}, whose account cannot be read ({token_error}; {e})"
                ),
                expected: service_sid.to_string(),
            })?,
        },
    };
    if !found.is(service_sid) {
        return Err(PipeError::WrongService {
            name: text,
            account: found.to_string(),
            expected: service_sid.to_string(),
        });
    }
    let who = format!("session helper (pid {})", std::process::id());
    Ok(session_link::say_hello(client, who, capabilities).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session;
    use lanterne_winsys::account::Principal;
    use lanterne_wire::Control;

    fn caps() -> Capabilities {
        Capabilities {
            capture: "test".into(),
            encoder: "none".into(),
            screen: None,
        }
    }

    fn test_pipe(what: &str) -> OsString {
        format!(r"\\.\pipe\lanterne-test-{what}-{}", std::process::id()).into()
    }

    fn greeting() -> Greeting {
        Greeting {
            station_id: 7,
            name: "poste-07".into(),
        }
    }

    fn principal(sid: &str, name: &str) -> Principal {
        Principal {
            sid: sid.into(),
            name: Some(name.into()),
        }
    }

    fn account(sid: &str, name: &str, groups: &[&str]) -> Account {
        Account {
            user: principal(sid, name),
            groups: groups
                .iter()
                .map(|g| principal("S-1-5-32-545", g))
                .collect(),
        }
    }

    #[test]
    fn service_accounts_are_never_session_helpers() {
        for (sid, name) in [
            (LOCAL_SYSTEM_SID, r"NT AUTHORITY\SYSTEM"),
            (LOCAL_SERVICE_SID, r"NT AUTHORITY\LOCAL SERVICE"),
            (NETWORK_SERVICE_SID, r"NT AUTHORITY\NETWORK SERVICE"),
        ] {
            let err = HelperPolicy::default()
                .admit(&account(sid, name, &[]))
                .unwrap_err();
            assert!(err.contains("must not run as a service account"), "{err}");
            let listed = HelperPolicy::new(vec![name.into()], vec![]);
            assert!(
                listed.admit(&account(sid, name, &[])).is_err(),
                "not even when listed"
            );
        }
    }

    #[test]
    fn other_accounts_are_admitted_unless_a_list_says_otherwise() {
        let eleve = account("S-1-5-21-1-2-3-1001", r"PC-12\eleve", &[r"LYCEE\Eleves"]);
        assert_eq!(HelperPolicy::default().admit(&eleve), Ok(()));
        for users in [&["eleve"][..], &[r"pc-12\ELEVE"][..]] {
            let users = users.iter().map(|u| u.to_string()).collect();
            assert_eq!(HelperPolicy::new(users, vec![]).admit(&eleve), Ok(()));
        }
        let groups = HelperPolicy::new(vec![], vec!["eleves".into()]);
        assert_eq!(groups.admit(&eleve), Ok(()), "members of a listed group");
        let other = HelperPolicy::new(vec![r"AUTRE\eleve".into(), "prof".into()], vec![]);
        let err = other.admit(&eleve).unwrap_err();
        assert!(err.contains(r"PC-12\eleve is not among"), "{err}");
    }

    #[test]
    fn only_local_pipe_names_are_accepted() {
        assert!(check_name(OsStr::new(DEFAULT_PIPE)).is_ok());
        for bad in [
            r"C:\pipe\x",
            r"\\serveur\pipe\x",
            r"\\.\pipe\",
            &"\\\\.\\pipe\\".repeat(40),
        ] {
            assert!(matches!(
                check_name(OsStr::new(bad)),
                Err(PipeError::BadName(_))
            ));
        }
    }

    #[tokio::test]
    async fn one_helper_at_a_time_and_frames_cross_both_ways() {
        let name = test_pipe("one");
        let mut sessions = listen(&name, HelperPolicy::default(), greeting()).unwrap();
        // The name is taken: a second service (or a squatter) cannot create it (on Windows:
        // Wine 8.0 does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE).
        if !lanterne_winsys::wine::detected() {
            let err = listen(&name, HelperPolicy::default(), greeting()).unwrap_err();
            assert!(matches!(err, PipeError::Listen { .. }), "{err}");
        }
        let me = account::of_current_process().unwrap();
        let (framed, hello) = connect(&name, &me.user.sid, caps()).await.unwrap();
        assert_eq!((hello.station_id, hello.name.as_str()), (7, "poste-07"));
        let mut service_end = sessions.recv().await.unwrap();
        assert_eq!(service_end.capabilities.capture, "test");
        let my_session = account::session_of_process(std::process::id()).unwrap();
        assert_eq!(service_end.uid, Some(my_session), "the helper's session");

        // A second helper is refused while the first is connected.
        let err = connect(&name, &me.user.sid, caps()).await.unwrap_err();
        assert!(
            matches!(&err, PipeError::Refused(r) if r.contains("another session helper")),
            "{err}"
        );

        // Orders reach the helper; reports reach the service.
        let (_vtx, vrx) = mpsc::channel(4);
        let (helper_conn, mut helper_end) = session::pair("service".into(), None, caps(), vrx);
        let bridge = tokio::spawn(bridge_to_service(framed, helper_conn));
        service_end.orders.try_send(Control::Unlock).unwrap();
        assert_eq!(helper_end.orders.recv().await, Some(Control::Unlock));
        helper_end
            .reports
            .send(Control::MessageRead { id: 3 })
            .await
            .unwrap();
        assert_eq!(
            service_end.reports.recv().await,
            Some(Control::MessageRead { id: 3 })
        );

        // When the helper goes, the service's end closes and the place is free again.
        drop(helper_end);
        let (why, _media) = bridge.await.unwrap();
        assert_eq!(why, "the session ended");
        assert_eq!(service_end.reports.recv().await, None);
        let (_framed, _) = connect(&name, &me.user.sid, caps()).await.unwrap();
        assert!(sessions.recv().await.is_some());
    }

    #[tokio::test]
    async fn a_helper_refused_by_the_policy_learns_why() {
        let name = test_pipe("policy");
        let only = HelperPolicy::new(vec!["personne-ici".into()], vec![]);
        let _sessions = listen(&name, only, greeting()).unwrap();
        let me = account::of_current_process().unwrap();
        let err = connect(&name, &me.user.sid, caps()).await.unwrap_err();
        assert!(
            matches!(&err, PipeError::Refused(r) if r.contains("session.users")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_helper_checks_the_service_account() {
        let name = test_pipe("service");
        let _sessions = listen(&name, HelperPolicy::default(), greeting()).unwrap();
        // This test's process is not LocalSystem: as the helper expects by default, it is
        // the wrong service.
        let err = connect(&name, LOCAL_SYSTEM_SID, caps()).await.unwrap_err();
        assert!(matches!(err, PipeError::WrongService { .. }), "{err}");
        assert_eq!(service_sid("SYSTEM").unwrap(), LOCAL_SYSTEM_SID);
        assert_eq!(service_sid("S-1-5-18").unwrap(), LOCAL_SYSTEM_SID);
        assert!(service_sid("personne-ici").is_err());
    }

    #[test]
    fn a_pipe_owned_by_the_administrators_passes_for_localsystem_only() {
        let owner = |sid: &str| ServerAccount::PipeOwner { sid: sid.into() };
        let admins = account::ADMINISTRATORS_SID;
        assert!(owner(admins).is(LOCAL_SYSTEM_SID));
        assert!(owner(LOCAL_SYSTEM_SID).is(LOCAL_SYSTEM_SID));
        assert!(
            !owner("S-1-5-21-1-2-3-1001").is(LOCAL_SYSTEM_SID),
            "a student's pipe"
        );
        assert!(
            !owner(admins).is("S-1-5-21-1-2-3-500"),
            "only for LocalSystem"
        );
        let token = ServerAccount::Token {
            sid: admins.into(),
            name: None,
        };
        assert!(
            !token.is(LOCAL_SYSTEM_SID),
            "a token must be the account itself"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable() {
        let err = connect(&test_pipe("absent"), LOCAL_SYSTEM_SID, caps())
            .await
            .unwrap_err();
        assert!(matches!(err, PipeError::Unavailable { .. }), "{err}");
    }
}
