//! The local socket between the station's system service and the session helper.
//!
//! ```text
//!  lanterne-station run (root)                          lanterne-station session (the student)
//!  listens on /run/lanterne-station/session.sock (0666)
//!        ◀───────────────────────────────────────────── connect; peer_cred(): is the peer
//!  peer_cred(): not root, an allowed account,                root (or the configured
//!  no other helper connected                                  service account)?
//!        ◀──────────────────────────────────────────── Hello { capabilities }
//!  Welcome { station_id, name } or Refused { reason } ─▶ (refused: the helper exits with it)
//!  orders, demo access units ────────────────────────▶
//!        ◀──────────────────────────────────────────── reports, thumbnail and full video
//! ```
//!
//! Both ends check who is at the other end with the kernel's peer credentials
//! (`SO_PEERCRED`, through tokio's `UnixStream::peer_cred`), not with anything the peer says.
//! The service accepts a helper only from an account that is not root (what the student sees
//! must never run as root), optionally only from the accounts or groups in `[session]` of the
//! station's configuration. The helper talks only to a service running as root (or the
//! account it is told), so another user's program on the PC cannot pose as the service.
//!
//! The handshake, the one-helper-at-a-time rule and the frames are the same on every
//! platform: [`crate::session_link`].

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lanterne_wire::{Capabilities, FrameCodec};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tracing::{info, warn};

use crate::session::SessionConn;
use crate::session_link::{self, HelloError, HelperPeer, HelperPlace};
pub use crate::session_link::{bridge_to_service, Greeting, HANDSHAKE_TIMEOUT};

/// Where the service listens unless its configuration says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/lanterne-station/session.sock";

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("cannot reach the station service at {path}: {source}")]
    Unavailable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is served by uid {uid}, not by the station service's account (uid {expected}); not talking to it")]
    WrongService {
        path: PathBuf,
        uid: u32,
        expected: u32,
    },
    #[error("the station service refused this helper: {0}")]
    Refused(String),
    #[error("the station service did not answer: {0}")]
    Handshake(String),
}

impl From<HelloError> for SocketError {
    fn from(e: HelloError) -> Self {
        match e {
            HelloError::Refused(r) => SocketError::Refused(r),
            HelloError::Handshake(r) => SocketError::Handshake(r),
        }
    }
}

/// Who may be this station's session helper.
#[derive(Debug, Clone, Default)]
pub struct HelperPolicy {
    /// Account names admitted; with `groups`, empty means any account but root.
    pub users: Vec<String>,
    /// Groups (primary or supplementary) whose members are admitted.
    pub groups: Vec<String>,
    /// Only unit tests, which run as root and connect to themselves, set it.
    allow_root: bool,
}

impl HelperPolicy {
    pub fn new(users: Vec<String>, groups: Vec<String>) -> Self {
        HelperPolicy {
            users,
            groups,
            ..HelperPolicy::default()
        }
    }

    /// Whether an account may be the session helper; Err says why not. Looks accounts up
    /// through NSS (may block on a directory server: call off the async threads).
    pub fn admit(&self, uid: u32) -> Result<(), String> {
        if uid == 0 && !self.allow_root {
            return Err(
                "root may not run the session helper: what the student sees and uses must not \
                 run as root; start it in the student's session"
                    .into(),
            );
        }
        if self.users.is_empty() && self.groups.is_empty() {
            return Ok(());
        }
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .map_err(|e| format!("cannot look up uid {uid}: {e}"))?
            .ok_or_else(|| format!("uid {uid} has no account on this PC"))?;
        if self.users.contains(&user.name) {
            return Ok(());
        }
        if !self.groups.is_empty() {
            let name = std::ffi::CString::new(user.name.clone())
                .map_err(|_| format!("the account name of uid {uid} contains NUL"))?;
            let member_of = nix::unistd::getgrouplist(&name, user.gid)
                .map_err(|e| format!("cannot list the groups of {}: {e}", user.name))?;
            for g in &self.groups {
                if let Ok(Some(group)) = nix::unistd::Group::from_name(g) {
                    if member_of.contains(&group.gid) {
                        return Ok(());
                    }
                }
            }
        }
        Err(format!(
            "uid {uid} ({}) is not among this station's session.users {:?} nor in its \
             session.groups {:?}",
            user.name, self.users, self.groups
        ))
    }
}

/// Listens at `path` (replacing a stale socket) and hands each admitted helper to the link
/// as a [`SessionConn`] on the returned channel.
pub fn listen(
    path: &Path,
    policy: HelperPolicy,
    greeting: Greeting,
) -> Result<mpsc::Receiver<SessionConn>, SocketError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|source| SocketError::Listen {
                path: path.to_path_buf(),
                source,
            })?
        }
        Ok(_) => return Err(SocketError::NotASocket(path.to_path_buf())),
        Err(_) => {}
    }
    let listen_err = |source| SocketError::Listen {
        path: path.to_path_buf(),
        source,
    };
    // systemd makes /run/lanterne-station (RuntimeDirectory=); a service started by hand
    // makes it the same way: writable by its own account only.
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        std::fs::create_dir_all(dir).map_err(listen_err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(listen_err)?;
    }
    let listener = UnixListener::bind(path).map_err(listen_err)?;
    // Any local account may connect; the peer credentials decide who is served.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).map_err(listen_err)?;
    info!(path = %path.display(), "waiting for the session helper");
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(accept_loop(listener, Arc::new(policy), greeting, tx));
    Ok(rx)
}

async fn accept_loop(
    listener: UnixListener,
    policy: Arc<HelperPolicy>,
    greeting: Greeting,
    sessions: mpsc::Sender<SessionConn>,
) {
    let mut place = HelperPlace::default();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors and the like: wait a moment rather than spin.
                warn!("session socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if sessions.is_closed() {
            return;
        }
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                warn!("cannot read a session peer's credentials: {e}; closing it");
                continue;
            }
        };
        let uid = cred.uid();
        let peer = match cred.pid() {
            Some(pid) => format!("uid {uid}, pid {pid}"),
            None => format!("uid {uid}"),
        };
        // NSS may block on a directory server: off the async threads.
        let admitted = {
            let policy = policy.clone();
            tokio::task::spawn_blocking(move || policy.admit(uid).map(|()| display_name(uid)))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        };
        let permit = admitted.and_then(|user| place.take(&peer).map(|p| (p, user)));
        match permit {
            Err(reason) => {
                warn!(%peer, "session helper refused: {reason}");
                tokio::spawn(session_link::refuse(stream, reason));
            }
            Ok((permit, user)) => {
                let peer = HelperPeer {
                    describe: peer,
                    session_key: uid,
                    user,
                };
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

/// The display name of account `uid`: the first field of its GECOS ("Élise Martin,,,"), or
/// its login name when that is empty; None when the account is unknown or neither is a
/// name the box would show ([`lanterne_wire::validate_display_name`]).
pub fn display_name(uid: u32) -> Option<String> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    let gecos = user.gecos.to_string_lossy();
    let full = gecos.split(',').next().unwrap_or("").trim().to_string();
    [full, user.name]
        .into_iter()
        .find(|n| lanterne_wire::validate_display_name(n).is_ok())
}

/// The helper's side: connects to the service at `path`, checks that it runs as
/// `service_uid`, and says hello. Returns the connection and the service's greeting.
pub async fn connect(
    path: &Path,
    service_uid: u32,
    capabilities: Capabilities,
) -> Result<(Framed<UnixStream, FrameCodec>, Greeting), SocketError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| SocketError::Unavailable {
            path: path.to_path_buf(),
            source,
        })?;
    let uid = stream
        .peer_cred()
        .map_err(|source| SocketError::Unavailable {
            path: path.to_path_buf(),
            source,
        })?
        .uid();
    if uid != service_uid {
        return Err(SocketError::WrongService {
            path: path.to_path_buf(),
            uid,
            expected: service_uid,
        });
    }
    let who = format!("session helper (uid {})", nix::unistd::getuid());
    Ok(session_link::say_hello(stream, who, capabilities).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session;
    use lanterne_wire::Control;

    #[test]
    fn the_display_name_comes_from_the_account_database() {
        // root exists everywhere, with "root" as its GECOS name or none (then its login).
        assert_eq!(display_name(0).as_deref(), Some("root"));
        assert_eq!(display_name(u32::MAX - 7), None, "no such account");
    }

    #[test]
    fn root_is_never_a_session_helper() {
        let err = HelperPolicy::default().admit(0).unwrap_err();
        assert!(err.contains("root may not run the session helper"), "{err}");
        let listed = HelperPolicy::new(vec!["root".into()], vec!["root".into()]);
        assert!(listed.admit(0).is_err(), "not even when listed");
    }

    #[test]
    fn any_other_account_is_admitted_unless_a_list_says_otherwise() {
        assert_eq!(HelperPolicy::default().admit(4242), Ok(()));
        // uid 65534 is "nobody" on Debian; an unknown uid has no name to match.
        let only = HelperPolicy::new(vec!["eleve-absent-ici".into()], vec![]);
        let err = only.admit(4242).unwrap_err();
        assert!(err.contains("uid 4242"), "{err}");
        if let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") {
            let uid = nobody.uid.as_raw();
            let err = only.admit(uid).unwrap_err();
            assert!(err.contains("session.users"), "{err}");
            assert_eq!(
                HelperPolicy::new(vec!["nobody".into()], vec![]).admit(uid),
                Ok(())
            );
            if let Ok(Some(group)) = nix::unistd::Group::from_gid(nobody.gid) {
                assert_eq!(
                    HelperPolicy::new(vec![], vec![group.name]).admit(uid),
                    Ok(()),
                    "members of a listed group are admitted"
                );
            }
        }
    }

    fn test_policy() -> HelperPolicy {
        HelperPolicy {
            allow_root: true,
            ..HelperPolicy::default()
        }
    }

    fn caps() -> Capabilities {
        Capabilities {
            capture: "test".into(),
            encoder: "none".into(),
            screen: None,
        }
    }

    #[tokio::test]
    async fn one_helper_at_a_time_and_frames_cross_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.sock");
        let greeting = Greeting {
            station_id: 7,
            name: "poste-07".into(),
        };
        let mut sessions = listen(&path, test_policy(), greeting).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        let (framed, hello) = connect(&path, me, caps()).await.unwrap();
        assert_eq!((hello.station_id, hello.name.as_str()), (7, "poste-07"));
        let mut service_end = sessions.recv().await.unwrap();
        assert_eq!(service_end.capabilities.capture, "test");
        assert_eq!(service_end.uid, Some(me));

        // A second helper is refused while the first is connected.
        let err = connect(&path, me, caps()).await.unwrap_err().to_string();
        assert!(err.contains("another session helper"), "{err}");

        // Orders reach the helper; reports and video reach the service.
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
        let (_framed, _) = connect(&path, me, caps()).await.unwrap();
        assert!(sessions.recv().await.is_some());
    }

    #[tokio::test]
    async fn a_helper_checks_the_service_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("session.sock");
        let _sessions = listen(
            &path,
            test_policy(),
            Greeting {
                station_id: 1,
                name: "poste-01".into(),
            },
        )
        .unwrap();
        let someone_else = nix::unistd::geteuid().as_raw() + 1;
        let err = connect(&path, someone_else, caps()).await.unwrap_err();
        assert!(matches!(err, SocketError::WrongService { .. }), "{err}");
    }

    #[tokio::test]
    async fn listening_replaces_a_stale_socket_only_and_makes_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, "x").unwrap();
        let g = Greeting {
            station_id: 1,
            name: "p".into(),
        };
        assert!(matches!(
            listen(&file, test_policy(), g.clone()),
            Err(SocketError::NotASocket(_))
        ));
        let path = dir.path().join("session.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let _rx = listen(&path, test_policy(), g.clone()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o666);
        // A missing directory is made, readable by all and writable by the service only.
        let path = dir.path().join("run/lanterne-station/session.sock");
        let _rx = listen(&path, test_policy(), g).unwrap();
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
}
