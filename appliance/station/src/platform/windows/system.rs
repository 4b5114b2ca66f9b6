//! Windows' own tools for the station's system actions, and opening a URL in the user's
//! browser. "Log out" ends the Windows session of the connected session helper
//! (`WTSLogoffSession`), or, for the whole station in one process (`desktop`), the session
//! it runs in. "Open a session" is refused: Windows opens a session only with the user's
//! password, which the agent does not hold.

use std::path::PathBuf;

use lanterne_wire::PowerAction;

use crate::system::{run_blocking, SystemActions, UrlOpener};

/// Why "open a session" is refused on Windows.
pub(crate) const NO_SESSION_OPENING: &str =
    "this station is not set up to open sessions: the Windows agent cannot log a user in \
     (Windows opens a session only with its user's password, which Lanterne does not hold)";

/// `%SystemRoot%\System32\<program>`.
fn system32(program: &str) -> PathBuf {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    PathBuf::from(root).join("System32").join(program)
}

/// Shut down and restart with `shutdown.exe`; log off with `WTSLogoffSession`.
#[derive(Debug, Default)]
pub struct WindowsSystem;

impl SystemActions for WindowsSystem {
    /// `session`: the Windows session of the connected helper (None in `desktop`, where
    /// the station runs in the session itself).
    fn power(&self, action: PowerAction, session: Option<u32>) -> Result<(), String> {
        let shutdown = system32("shutdown.exe");
        let shutdown = shutdown.to_string_lossy();
        match action {
            PowerAction::Shutdown => {
                run_blocking(&shutdown, &["/s".into(), "/t".into(), "0".into()])
            }
            PowerAction::Restart => {
                run_blocking(&shutdown, &["/r".into(), "/t".into(), "0".into()])
            }
            PowerAction::Logout => match session {
                Some(id) => lanterne_winsys::session::log_off(id)
                    .map_err(|e| format!("cannot log session {id} off: {e}")),
                None => run_blocking(&shutdown, &["/l".into()]),
            },
            PowerAction::OpenSession => Err(NO_SESSION_OPENING.into()),
        }
    }
}

/// In `desktop` the agent runs in the user's session: it opens pages itself.
impl UrlOpener for WindowsSystem {
    fn open_url(&self, url: &str) -> Result<(), String> {
        ShellOpener::default().open_url(url)
    }
}

/// Opens web pages in the user's default browser (`explorer.exe <url>`), as the account
/// running the agent.
#[derive(Debug)]
pub struct ShellOpener {
    pub program: PathBuf,
}

impl Default for ShellOpener {
    fn default() -> Self {
        let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
        ShellOpener {
            program: PathBuf::from(root).join("explorer.exe"),
        }
    }
}

impl UrlOpener for ShellOpener {
    fn open_url(&self, url: &str) -> Result<(), String> {
        lanterne_wire::validate_url(url).map_err(|e| format!("the URL {e}"))?;
        run_blocking(&self.program.to_string_lossy(), &[url.to_string()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_a_session_is_refused_and_urls_are_checked_before_anything_runs() {
        let err = WindowsSystem
            .power(PowerAction::OpenSession, None)
            .unwrap_err();
        assert!(err.contains("not set up to open sessions"), "{err}");
        let err = ShellOpener::default()
            .open_url("file:///C:/Windows/win.ini")
            .unwrap_err();
        assert!(err.contains("http"), "{err}");
    }

    #[test]
    fn system_tools_are_found_under_the_system_root() {
        let p = system32("shutdown.exe");
        assert!(p.ends_with(r"System32\shutdown.exe"), "{}", p.display());
    }
}
