//! Runs a command the box ordered (the box only orders commands its admin approved) and
//! collects its result: exit code, and the first [`MAX_OUTPUT_BYTES`] of each output stream.
//!
//! The program is started directly, never through a shell, with no standard input, and is
//! killed when it outlives its timeout.

use std::process::Stdio;
use std::time::Duration;

use lanterne_wire::MAX_OUTPUT_BYTES;
use tokio::io::{AsyncRead, AsyncReadExt};

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

/// Runs `program args…` for at most `timeout`.
pub async fn run(program: &str, args: &[String], timeout: Duration) -> Outcome {
    if !program.starts_with('/') {
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

#[cfg(test)]
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
