//! The tools of a systemd Linux desktop for the station's [`SystemActions`] and opening URLs.
//!
//! On a real station the service runs as root, which `systemctl poweroff`, `reboot` and
//! `loginctl terminate-user` need. Opening a URL runs `xdg-open` in the session helper, as
//! the student (its own `DISPLAY`): a web browser started by root would be the student's
//! way to root.

use std::path::PathBuf;

use lanterne_wire::PowerAction;

use crate::system::{run_blocking, SystemActions, UrlOpener, NO_AUTOLOGIN};

/// The tools of a systemd Linux desktop.
pub struct LinuxSystem {
    /// The user whose session "log out" ends; None: the account of the connected session
    /// helper (the student logged in at the screen).
    pub session_user: Option<String>,
    /// Set when the display manager logs this account in automatically: "open a session"
    /// then restarts the display manager, which opens it (see docs/operations.md).
    pub autologin_user: Option<String>,
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
    }
}
