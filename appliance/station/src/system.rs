//! What a station does to its own computer on the teacher's order: shut down, restart, log
//! the user out, open a web page. [`LinuxSystem`] runs the standard systemd/freedesktop tools;
//! [`SimulatedSystem`] records the orders of display-less simulated stations.
//!
//! On a real station the agent runs as a system service (root), which `systemctl poweroff`,
//! `reboot` and `loginctl terminate-user` need; opening a URL runs `xdg-open` in the session
//! (the agent's `DISPLAY`).

use std::sync::Mutex;
use std::time::Duration;

use lanterne_wire::PowerAction;

pub trait SystemActions: Send + Sync {
    fn power(&self, action: PowerAction) -> Result<(), String>;
    fn open_url(&self, url: &str) -> Result<(), String>;
}

/// The tools of a systemd Linux desktop.
pub struct LinuxSystem {
    /// The user whose session "log out" ends (the student logged in at the screen).
    pub session_user: Option<String>,
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
    fn power(&self, action: PowerAction) -> Result<(), String> {
        match action {
            PowerAction::Shutdown => run_blocking("/usr/bin/systemctl", &["poweroff".into()]),
            PowerAction::Restart => run_blocking("/usr/bin/systemctl", &["reboot".into()]),
            PowerAction::Logout => match &self.session_user {
                Some(user) => run_blocking(
                    "/usr/bin/loginctl",
                    &["terminate-user".into(), user.clone()],
                ),
                None => Err("no user session is known on this station".into()),
            },
        }
    }

    fn open_url(&self, url: &str) -> Result<(), String> {
        lanterne_wire::validate_url(url).map_err(|e| format!("the URL {e}"))?;
        run_blocking("/usr/bin/xdg-open", &[url.to_string()])
    }
}

/// Records orders instead of carrying them out (simulated stations, tests).
#[derive(Default)]
pub struct SimulatedSystem {
    done: Mutex<Vec<String>>,
}

impl SimulatedSystem {
    /// What was ordered so far: "shutdown", "restart", "logout", "open-url <url>".
    pub fn done(&self) -> Vec<String> {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl SystemActions for SimulatedSystem {
    fn power(&self, action: PowerAction) -> Result<(), String> {
        let what = match action {
            PowerAction::Shutdown => "shutdown",
            PowerAction::Restart => "restart",
            PowerAction::Logout => "logout",
        };
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what.to_string());
        Ok(())
    }

    fn open_url(&self, url: &str) -> Result<(), String> {
        lanterne_wire::validate_url(url).map_err(|e| format!("the URL {e}"))?;
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("open-url {url}"));
        Ok(())
    }
}
