//! What a station does to its own computer on the teacher's order: shut down, restart, log
//! the user out, open a session ([`SystemActions`], in the system service), and open a web
//! page ([`UrlOpener`], in the student's session). On Linux, `LinuxSystem` and `XdgOpener`
//! (`platform::linux::system`) run the standard systemd/freedesktop tools; on Windows,
//! `WindowsSystem` and `ShellOpener` (`platform::windows::system`) run Windows' own;
//! [`SimulatedSystem`] records the orders of display-less simulated stations.

use std::sync::Mutex;
use std::time::Duration;

use lanterne_wire::PowerAction;

pub use crate::session::UrlOpener;

#[cfg(unix)]
pub use crate::platform::linux::system::{LinuxSystem, XdgOpener};
#[cfg(windows)]
pub use crate::platform::windows::system::{ShellOpener, WindowsSystem};

pub trait SystemActions: Send + Sync {
    /// Carries out `action`; `session_uid` is the account of the connected student session,
    /// whose session "log out" ends when no user is configured.
    fn power(&self, action: PowerAction, session_uid: Option<u32>) -> Result<(), String>;
}

pub(crate) const NO_AUTOLOGIN: &str =
    "this station is not set up to open sessions: configure automatic \
     login in its display manager and start the agent with --autologin-user";

/// Runs `program` with `args` (no shell) from a thread outside the runtime, within 30 s; Err
/// with its standard error when it fails.
pub(crate) fn run_blocking(program: &str, args: &[String]) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let o = rt.block_on(crate::commands::run(program, args, Duration::from_secs(30)));
    match (o.exit_code, o.error) {
        (Some(0), _) => Ok(()),
        (_, Some(e)) => Err(e),
        (code, None) => Err(format!(
            "{program} exited with {code:?}: {}",
            o.stderr.trim()
        )),
    }
}

/// Records orders instead of carrying them out (simulated stations, tests). Like a real
/// station, it opens sessions only when set up for it ([`SimulatedSystem::with_autologin`]).
#[derive(Default)]
pub struct SimulatedSystem {
    done: Mutex<Vec<String>>,
    autologin: bool,
}

impl SimulatedSystem {
    /// A station whose display manager logs a session in automatically.
    pub fn with_autologin() -> Self {
        SimulatedSystem {
            autologin: true,
            ..SimulatedSystem::default()
        }
    }

    /// What was ordered so far: "shutdown", "restart", "logout", "open-url <url>".
    pub fn done(&self) -> Vec<String> {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl SystemActions for SimulatedSystem {
    fn power(&self, action: PowerAction, _session_uid: Option<u32>) -> Result<(), String> {
        if action == PowerAction::OpenSession && !self.autologin {
            return Err(NO_AUTOLOGIN.into());
        }
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(action.name().to_string());
        Ok(())
    }
}

impl UrlOpener for SimulatedSystem {
    fn open_url(&self, url: &str) -> Result<(), String> {
        lanterne_wire::validate_url(url).map_err(|e| format!("the URL {e}"))?;
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("open-url {url}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_urls_are_checked_before_anything_is_recorded() {
        let sim = SimulatedSystem::default();
        assert!(sim.open_url("javascript:x").is_err());
        assert!(sim.done().is_empty());
    }

    #[test]
    fn a_simulated_station_opens_sessions_only_when_set_up_like_a_real_one() {
        let plain = SimulatedSystem::default();
        let err = plain.power(PowerAction::OpenSession, None).unwrap_err();
        assert!(err.contains("not set up to open sessions"), "{err}");
        assert!(plain.done().is_empty());
        let auto = SimulatedSystem::with_autologin();
        auto.power(PowerAction::OpenSession, None).unwrap();
        assert_eq!(auto.done(), ["open-session"]);
    }
}
