//! What a station does to its own computer on the teacher's order: shut down, restart, log
//! the user out, open a session ([`SystemActions`], in the system service), and open a web
//! page ([`UrlOpener`], in the student's session). [`LinuxSystem`] and [`XdgOpener`] run the
//! standard systemd/freedesktop tools; [`SimulatedSystem`] records the orders of
//! display-less simulated stations.
//!
//! On a real station the service runs as root, which `systemctl poweroff`, `reboot` and
//! `loginctl terminate-user` need. Opening a URL runs `xdg-open` in the session helper, as
//! the student (its own `DISPLAY`): a web browser started by root would be the student's
//! way to root.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use lanterne_wire::PowerAction;

pub use crate::session::UrlOpener;

pub trait SystemActions: Send + Sync {
    /// Carries out `action`; `session_uid` is the account of the connected student session,
    /// whose session "log out" ends when no user is configured.
    fn power(&self, action: PowerAction, session_uid: Option<u32>) -> Result<(), String>;
}

const NO_AUTOLOGIN: &str = "this station is not set up to open sessions: configure automatic \
     login in its display manager and start the agent with --autologin-user";

/// The tools of a systemd Linux desktop.
pub struct LinuxSystem {
    /// The user whose session "log out" ends; None: the account of the connected session
    /// helper (the student logged in at the screen).
    pub session_user: Option<String>,
    /// Set when the display manager logs this account in automatically: "open a session"
    /// then restarts the display manager, which opens it (see docs/operations.md).
    pub autologin_user: Option<String>,
}

fn run_blocking(program: &str, args: &[String]) -> Result<(), String> {
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

impl SystemActions for LinuxSystem {
    fn power(&self, action: PowerAction, session_uid: Option<u32>) -> Result<(), String> {
        match action {
            PowerAction::Shutdown => run_blocking("/usr/bin/systemctl", &["poweroff".into()]),
            PowerAction::Restart => run_blocking("/usr/bin/systemctl", &["reboot".into()]),
            PowerAction::Logout => match (&self.session_user, session_uid) {
                (Some(user), _) => run_blocking(
                    "/usr/bin/loginctl",
                    &["terminate-user".into(), user.clone()],
                ),
                (None, Some(uid)) => run_blocking(
                    "/usr/bin/loginctl",
                    &["terminate-user".into(), uid.to_string()],
                ),
                (None, None) => Err("no user session is known on this station".into()),
            },
            PowerAction::OpenSession => match &self.autologin_user {
                Some(_) => run_blocking(
                    "/usr/bin/systemctl",
                    &["restart".into(), "display-manager.service".into()],
                ),
                None => Err(NO_AUTOLOGIN.into()),
            },
        }
    }
}

/// Opens web pages with the desktop's opener (`xdg-open`), as the account running it.
pub struct XdgOpener {
    /// The opener program; `/usr/bin/xdg-open` unless the helper is told otherwise.
    pub program: PathBuf,
}

impl Default for XdgOpener {
    fn default() -> Self {
        XdgOpener {
            program: PathBuf::from("/usr/bin/xdg-open"),
        }
    }
}

impl UrlOpener for XdgOpener {
    fn open_url(&self, url: &str) -> Result<(), String> {
        lanterne_wire::validate_url(url).map_err(|e| format!("the URL {e}"))?;
        run_blocking(&self.program.to_string_lossy(), &[url.to_string()])
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
    fn opening_a_session_is_refused_clearly_where_not_set_up() {
        let s = LinuxSystem {
            session_user: None,
            autologin_user: None,
        };
        let err = s.power(PowerAction::OpenSession, None).unwrap_err();
        assert!(err.contains("not set up to open sessions"), "{err}");
        let err = s.power(PowerAction::Logout, None).unwrap_err();
        assert!(err.contains("no user session"), "{err}");
    }

    #[test]
    fn urls_are_checked_before_anything_runs() {
        let s = XdgOpener::default();
        assert!(s
            .open_url("file:///etc/passwd")
            .unwrap_err()
            .contains("http"));
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
