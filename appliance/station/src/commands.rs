//! Runs a command the box ordered and collects its result: exit code, and the first
//! [`MAX_OUTPUT_BYTES`] of each output stream.
//!
//! Two lists must agree before anything runs: the box orders only commands its admin
//! approved, and the station runs only those that its own [`AllowList`] (the PC's
//! configuration file, see [`crate::config`]) also lists. The box is not trusted with what
//! runs as root on the PC. A refused order is answered with the reason, like a failed run.
//!
//! The program is started directly, never through a shell, with no standard input, and is
//! killed when it outlives its timeout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lanterne_wire::MAX_OUTPUT_BYTES;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use crate::config::AllowedCommand;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub error: Option<String>,
}

impl Outcome {
    fn failed(error: String) -> Self {
        Outcome {
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            error: Some(error),
        }
    }
}

/// The commands this station accepts from the box, and the file they come from (named in
/// refusals so the teacher's tablet says where to change it).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// None for a station given no list at all (simulated stations without one).
    source: Option<PathBuf>,
    commands: Vec<AllowedCommand>,
}

impl AllowList {
    /// `commands`, as read from the file `source`.
    pub fn new(source: &Path, commands: Vec<AllowedCommand>) -> Self {
        AllowList {
            source: Some(source.to_path_buf()),
            commands,
        }
    }

    /// No command allowed (no configuration file at `source`).
    pub fn empty(source: &Path) -> Self {
        AllowList::new(source, Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Ok when an entry allows exactly this program with these arguments (see
    /// [`AllowedCommand`] for the rule); otherwise the reason, for the box.
    pub fn check(&self, program: &str, args: &[String]) -> Result<(), String> {
        let allowed = |c: &AllowedCommand| {
            c.program == program
                && args.len() >= c.args.len()
                && args[..c.args.len()] == c.args[..]
                && args[c.args.len()..]
                    .iter()
                    .all(|a| c.allowed_args.contains(a))
        };
        if self.commands.iter().any(allowed) {
            return Ok(());
        }
        let shown: String = program.chars().take(256).collect();
        let place = match &self.source {
            Some(p) => p.display().to_string(),
            None => "none was given to this station".to_string(),
        };
        if self.commands.iter().any(|c| c.program == program) {
            let quoted: Vec<String> = args
                .iter()
                .take(8)
                .map(|a| format!("'{}'", a.chars().take(64).collect::<String>()))
                .collect();
            Err(format!(
                "'{shown}' with the arguments {} is not in this station's allow-list ({place})",
                quoted.join(" ")
            ))
        } else {
            Err(format!(
                "'{shown}' is not in this station's allow-list ({place})"
            ))
        }
    }
}

/// Runs an order from the box if `allowed` lists it; otherwise answers with the refusal
/// without starting anything.
pub async fn run_ordered(
    allowed: &AllowList,
    program: &str,
    args: &[String],
    timeout: Duration,
) -> Outcome {
    match allowed.check(program, args) {
        Ok(()) => run(program, args, timeout).await,
        Err(reason) => Outcome::failed(reason),
    }
}

/// Runs `program args…` for at most `timeout`.
pub async fn run(program: &str, args: &[String], timeout: Duration) -> Outcome {
    if !std::path::Path::new(program).is_absolute() {
        return Outcome::failed(format!("'{program}' is not an absolute path"));
    }
    if args.len() > 64 || args.iter().any(|a| a.len() > 4096) {
        return Outcome::failed("too many or too long arguments".into());
    }
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::failed(format!("cannot start {program}: {e}")),
    };
    let out = capture(child.stdout.take());
    let err = capture(child.stderr.take());
    let waited = tokio::time::timeout(timeout, async {
        let (out, err, status) = tokio::join!(out, err, child.wait());
        (out, err, status)
    })
    .await;
    match waited {
        Ok((stdout, stderr, Ok(status))) => Outcome {
            exit_code: status.code(),
            stdout,
            stderr,
            error: status
                .code()
                .is_none()
                .then(|| "killed by a signal".to_string()),
        },
        Ok((stdout, stderr, Err(e))) => Outcome {
            exit_code: None,
            stdout,
            stderr,
            error: Some(format!("waiting for {program} failed: {e}")),
        },
        Err(_) => {
            let _ = child.kill().await;
            Outcome::failed(format!("timed out after {} s; stopped", timeout.as_secs()))
        }
    }
}

/// Reads a stream to its end, keeping the first [`MAX_OUTPUT_BYTES`] (the rest is drained
/// so the program never blocks on a full pipe).
async fn capture(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    let mut cut = false;
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
    let mut s = String::from_utf8_lossy(&kept).into_owned();
    if cut {
        s.push_str("\n[…]");
    }
    s
}

/// These run Unix programs (`/bin/sh`, `/bin/echo`); `windows_tests` covers Windows.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exit_code_and_output_are_reported() {
        let o = run(
            "/bin/sh",
            &["-c".into(), "echo bonjour; echo oups >&2; exit 3".into()],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.exit_code, Some(3));
        assert_eq!(o.stdout, "bonjour\n");
        assert_eq!(o.stderr, "oups\n");
        assert_eq!(o.error, None);
    }

    #[tokio::test]
    async fn long_output_is_cut_and_the_program_not_blocked() {
        let o = run(
            "/bin/sh",
            &[
                "-c".into(),
                "head -c 200000 /dev/zero | tr '\\\\0' a".into(),
            ],
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.exit_code, Some(0));
        assert!(o.stdout.len() <= MAX_OUTPUT_BYTES + 8);
        assert!(o.stdout.ends_with("[…]"));
    }

    fn list() -> AllowList {
        let cfg = crate::config::StationConfig::parse(
            "[[commands]]\nprogram = \"/bin/echo\"\nargs = [\"bonjour\"]\n\
             allowed_args = [\"la classe\", \"tout le monde\"]\n\
             [[commands]]\nprogram = \"/usr/bin/df\"\nargs = [\"-h\", \"/home\"]\n",
            Path::new("/etc/lanterne/station.toml"),
        )
        .unwrap();
        AllowList::new(Path::new("/etc/lanterne/station.toml"), cfg.commands)
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_allow_list_accepts_listed_programs_with_their_arguments_only() {
        let l = list();
        assert_eq!(l.check("/bin/echo", &strings(&["bonjour"])), Ok(()));
        assert_eq!(
            l.check("/bin/echo", &strings(&["bonjour", "tout le monde"])),
            Ok(())
        );
        assert_eq!(
            l.check(
                "/bin/echo",
                &strings(&["bonjour", "la classe", "tout le monde"])
            ),
            Ok(()),
            "each further argument from allowed_args"
        );
        assert_eq!(l.check("/usr/bin/df", &strings(&["-h", "/home"])), Ok(()));
        // Fixed arguments are exact and in order; nothing else may be added.
        for args in [
            &["-h"][..],
            &["/home", "-h"],
            &["-h", "/home", "/"],
            &["-h", "/"],
        ] {
            let err = l.check("/usr/bin/df", &strings(args)).unwrap_err();
            assert!(
                err.contains("'/usr/bin/df' with the arguments")
                    && err
                        .contains("not in this station's allow-list (/etc/lanterne/station.toml)"),
                "{err}"
            );
        }
        assert!(l.check("/bin/echo", &strings(&["au revoir"])).is_err());
        assert!(l
            .check("/bin/echo", &strings(&["bonjour", "; rm -rf /"]))
            .is_err());
    }

    #[test]
    fn programs_not_listed_are_refused_with_the_file_named() {
        let l = list();
        assert_eq!(
            l.check("/usr/bin/x", &[]),
            Err(
                "'/usr/bin/x' is not in this station's allow-list (/etc/lanterne/station.toml)"
                    .to_string()
            )
        );
        // Same file name through another path is another program.
        assert!(l.check("/usr/bin/echo", &strings(&["bonjour"])).is_err());
        assert!(l.check("echo", &strings(&["bonjour"])).is_err());
        let none = AllowList::empty(Path::new("/etc/lanterne/station.toml"));
        assert!(none.is_empty());
        assert!(none.check("/bin/true", &[]).is_err(), "fail closed");
    }

    #[tokio::test]
    async fn a_refused_order_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("touch {}", marker.display());
        let o = run_ordered(
            &list(),
            "/bin/sh",
            &strings(&["-c", &script]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(o.exit_code, None);
        assert!(o
            .error
            .unwrap()
            .contains("'/bin/sh' is not in this station's allow-list"));
        assert!(!marker.exists(), "the program never ran");
        let o = run_ordered(
            &list(),
            "/bin/echo",
            &strings(&["bonjour", "la classe"]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(o.exit_code, Some(0));
        assert_eq!(o.stdout, "bonjour la classe\n");
    }

    #[tokio::test]
    async fn timeouts_and_missing_programs_are_errors() {
        let o = run("/bin/sleep", &["30".into()], Duration::from_millis(300)).await;
        assert!(o.error.unwrap().contains("timed out"));
        let o = run("/nonexistent/prog", &[], Duration::from_secs(1)).await;
        assert!(o.error.unwrap().contains("cannot start"));
        let o = run("sh", &[], Duration::from_secs(1)).await;
        assert!(o.error.unwrap().contains("absolute"));
    }
}

#[cfg(all(test, windows))]
mod windows_tests {
    use super::*;

    const CONFIG: &str = r"C:\ProgramData\Lanterne\station.toml";

    fn cmd() -> String {
        let root = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\windows".into());
        format!(r"{root}\System32\cmd.exe")
    }

    fn list() -> AllowList {
        let text = format!(
            "[[commands]]\nprogram = '{}'\nargs = ['/c', 'echo', 'bonjour']\n",
            cmd()
        );
        let cfg = crate::config::StationConfig::parse(&text, Path::new(CONFIG)).unwrap();
        AllowList::new(Path::new(CONFIG), cfg.commands)
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn only_listed_commands_run_and_others_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let o = run_ordered(
            &list(),
            &cmd(),
            &strings(&["/c", "echo", "x", ">", &marker.display().to_string()]),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(o.exit_code, None);
        let err = o.error.unwrap();
        assert!(
            err.contains("not in this station's allow-list") && err.contains(CONFIG),
            "{err}"
        );
        assert!(!marker.exists(), "the program never ran");
        let o = run_ordered(
            &list(),
            r"C:\windows\notepad.exe",
            &[],
            Duration::from_secs(5),
        )
        .await;
        assert!(o
            .error
            .unwrap()
            .contains("is not in this station's allow-list"));
        let o = run_ordered(
            &list(),
            &cmd(),
            &strings(&["/c", "echo", "bonjour"]),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(o.exit_code, Some(0), "{o:?}");
        assert_eq!(o.stdout.trim_end(), "bonjour");
    }
}
