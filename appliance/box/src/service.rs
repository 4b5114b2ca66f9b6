//! Readiness and watchdog for systemd (`Type=notify`, `WatchdogSec=` in
//! images/systemd/lanterne-box.service).
//!
//! systemd hands a notify-type service the path of a datagram socket in `NOTIFY_SOCKET`; the
//! service sends `READY=1` once it serves, and, when `WATCHDOG_USEC` is set, `WATCHDOG=1` more
//! often than that period, or systemd kills and restarts it. The protocol is one datagram of
//! `KEY=VALUE` lines, so the box speaks it itself over std's Unix sockets rather than through
//! a crate: the socket and the watchdog period are then plain arguments, and the tests drive
//! them against a socket of their own without touching the process environment.
//!
//! The watchdog is fed from a task on the same runtime that serves the box: if that runtime
//! stops making progress, the feeding stops with it and systemd restarts the box.
//! Started by anything else than systemd (a shell, the tests, `scripts/demo.sh`), there is no
//! `NOTIFY_SOCKET` and every call here does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

/// The longest watchdog period honoured; a larger `WATCHDOG_USEC` is a misconfiguration and is
/// clamped rather than trusted (the feeding interval then stays reasonable).
const MAX_WATCHDOG: Duration = Duration::from_secs(3600);
/// The shortest: below it the feeding would be most of the box's work.
const MIN_WATCHDOG: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("NOTIFY_SOCKET '{0}' is not an absolute path or an abstract socket name")]
    BadSocket(String),
    #[error("NOTIFY_SOCKET is {len} bytes long; a Unix socket name holds at most 107")]
    SocketTooLong { len: usize },
    #[error("WATCHDOG_USEC '{0}' is not a number of microseconds")]
    BadWatchdog(String),
    #[error("sending to the service manager: {0}")]
    Send(#[source] std::io::Error),
}

/// Where the service manager listens: a path, or a Linux abstract name (`@name`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

/// The box's link to systemd. `None` inside when the box was not started by a notify-aware
/// service manager.
#[derive(Debug, Clone)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets: `NOTIFY_SOCKET`, and `WATCHDOG_USEC` with
    /// `WATCHDOG_PID` (the watchdog is ours only when the PID is this process's).
    pub fn from_env() -> Result<Self, ServiceError> {
        let var = |k: &str| std::env::var(k).ok();
        Self::from_values(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    fn from_values(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        own_pid: u32,
    ) -> Result<Self, ServiceError> {
        let target = match socket.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => {
                // sockaddr_un.sun_path is 108 bytes, the last one a NUL for paths.
                if s.len() > 107 {
                    return Err(ServiceError::SocketTooLong { len: s.len() });
                }
                Some(if let Some(name) = s.strip_prefix('@') {
                    Target::Abstract(name.as_bytes().to_vec())
                } else if s.starts_with('/') {
                    Target::Path(PathBuf::from(s))
                } else {
                    return Err(ServiceError::BadSocket(s.to_string()));
                })
            }
        };
        let for_us = match watchdog_pid {
            None => true,
            Some(p) => p.trim().parse::<u32>().ok() == Some(own_pid),
        };
        let watchdog = match watchdog_usec.filter(|_| for_us && target.is_some()) {
            None => None,
            Some(u) => {
                let usec: u64 = u
                    .trim()
                    .parse()
                    .map_err(|_| ServiceError::BadWatchdog(u.to_string()))?;
                (usec > 0).then(|| Duration::from_micros(usec).clamp(MIN_WATCHDOG, MAX_WATCHDOG))
            }
        };
        Ok(Notifier { target, watchdog })
    }

    /// A notifier that talks to the socket at `path`, for tests.
    pub fn with_socket(path: PathBuf, watchdog: Option<Duration>) -> Self {
        Notifier {
            target: Some(Target::Path(path)),
            watchdog,
        }
    }

    /// Whether a service manager listens at all.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog period systemd expects, when it set one for this process.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one notification (lines of `KEY=VALUE`). Does nothing without a service manager.
    pub fn notify(&self, state: &str) -> Result<(), ServiceError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let sock = UnixDatagram::unbound().map_err(ServiceError::Send)?;
        match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p).map(drop),
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = SocketAddr::from_abstract_name(name).map_err(ServiceError::Send)?;
                sock.send_to_addr(state.as_bytes(), &addr).map(drop)
            }
        }
        .map_err(ServiceError::Send)
    }

    /// Tells systemd the box serves: its listeners are bound.
    pub fn ready(&self, status: &str) -> Result<(), ServiceError> {
        // A status line is one line: a newline in it would start another KEY=VALUE.
        let status: String = status.chars().filter(|c| *c != '\n').take(200).collect();
        self.notify(&format!("READY=1\nSTATUS={status}\n"))
    }

    /// Tells systemd the box is stopping on purpose (so a stop is not taken for a crash).
    pub fn stopping(&self) -> Result<(), ServiceError> {
        self.notify("STOPPING=1\n")
    }

    /// Feeds the watchdog at half its period, forever. Returns at once when systemd set no
    /// watchdog. A failed send is logged once and retried at the next tick: the socket is
    /// systemd's, and it comes back when systemd does (`daemon-reexec`).
    pub async fn feed_watchdog(self) {
        let Some(period) = self.watchdog else {
            return;
        };
        let mut tick = tokio::time::interval(period / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match self.notify("WATCHDOG=1\n") {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    tracing::warn!("watchdog: {e}");
                    failing = true;
                }
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_socket_means_no_service_manager_and_silent_calls() {
        let n = Notifier::from_values(None, Some("30000000"), None, 7).unwrap();
        assert!(!n.is_active());
        assert_eq!(
            n.watchdog(),
            None,
            "a watchdog without a socket cannot be fed"
        );
        n.ready("ok").unwrap();
    }

    #[test]
    fn watchdog_belongs_to_the_pid_systemd_named() {
        let mine = Notifier::from_values(Some("/run/x"), Some("30000000"), Some("42"), 42).unwrap();
        assert_eq!(mine.watchdog(), Some(Duration::from_secs(30)));
        let other =
            Notifier::from_values(Some("/run/x"), Some("30000000"), Some("41"), 42).unwrap();
        assert_eq!(other.watchdog(), None);
        let unnamed = Notifier::from_values(Some("/run/x"), Some("30000000"), None, 42).unwrap();
        assert_eq!(unnamed.watchdog(), Some(Duration::from_secs(30)));
        let zero = Notifier::from_values(Some("/run/x"), Some("0"), None, 42).unwrap();
        assert_eq!(zero.watchdog(), None);
    }

    #[test]
    fn bad_values_are_refused_or_clamped() {
        assert!(matches!(
            Notifier::from_values(Some("run/x"), None, None, 1),
            Err(ServiceError::BadSocket(_))
        ));
        let long = format!("/{}", "a".repeat(200));
        assert!(matches!(
            Notifier::from_values(Some(&long), None, None, 1),
            Err(ServiceError::SocketTooLong { len: 201 })
        ));
        assert!(matches!(
            Notifier::from_values(Some("/run/x"), Some("soon"), None, 1),
            Err(ServiceError::BadWatchdog(_))
        ));
        let huge = Notifier::from_values(Some("/run/x"), Some("999999999999999"), None, 1).unwrap();
        assert_eq!(huge.watchdog(), Some(MAX_WATCHDOG));
        let tiny = Notifier::from_values(Some("@x"), Some("1"), None, 1).unwrap();
        assert_eq!(tiny.watchdog(), Some(MIN_WATCHDOG));
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock
            .recv(&mut buf)
            .expect("a notification before the timeout");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn ready_then_watchdog_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let n = Notifier::with_socket(path, Some(Duration::from_millis(200)));
        n.ready("serving on\nhttps://x").unwrap();
        assert_eq!(recv(&sock), "READY=1\nSTATUS=serving onhttps://x\n");
        let feeder = tokio::spawn(n.clone().feed_watchdog());
        // Blocking receives on a test socket: run them off the runtime that feeds.
        let sock = tokio::task::spawn_blocking(move || {
            for _ in 0..3 {
                assert_eq!(recv(&sock), "WATCHDOG=1\n");
            }
            sock
        })
        .await
        .unwrap();
        feeder.abort();
        n.stopping().unwrap();
        // Wait for the abort to land, then the stop notice is the next datagram.
        let _ = feeder.await;
        let mut seen = recv(&sock);
        while seen == "WATCHDOG=1\n" {
            seen = recv(&sock);
        }
        assert_eq!(seen, "STOPPING=1\n");
    }

    #[test]
    fn abstract_socket_names_are_reached() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("lanterne-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let n = Notifier::from_values(Some(&format!("@{name}")), None, None, 1).unwrap();
        n.ready("ok").unwrap();
        assert_eq!(recv(&sock), "READY=1\nSTATUS=ok\n");
    }
}
