//! What the station shows its user besides video: the lock overlay (and later messages and
//! the "watched" indicator). The link drives a [`Screen`]; the state it reports to the box is
//! what the screen says it shows, not what was asked.
//!
//! Implementations: the real X11 overlay ([`X11Screen`], `lanterne-overlay`), [`NoScreen`]
//! where no overlay can be shown (it refuses, so nobody believes a screen is locked when it
//! is not), and [`SimulatedScreen`]
//! for the simulated classroom's stations, which have no display of their own: it keeps the
//! state a real screen would show so the box, the tablet and the benchmarks see the same
//! protocol traffic as with real stations.

use std::sync::Mutex;

use lanterne_wire::Shown;

pub trait Screen: Send + Sync {
    /// Puts the lock overlay up and captures input; returns once that is done.
    fn lock(&self, message: &str) -> Result<(), String>;
    fn unlock(&self) -> Result<(), String>;
    /// Shows (or removes) the persistent "your screen is being watched" indicator. The link
    /// turns it on whenever video leaves the station.
    fn set_watched(&self, on: bool) -> Result<(), String>;
    fn shown(&self) -> Shown;
}

/// The real screen of an X11 session: `lanterne-overlay` draws the lock on every monitor,
/// grabs keyboard and pointer, and shows the watched badge.
pub struct X11Screen {
    overlay: lanterne_overlay::Overlay,
}

impl X11Screen {
    /// Connects to `display` (None: `$DISPLAY`). Refuses Wayland sessions, where an X11 lock
    /// would not block native applications.
    pub fn connect(display: Option<&str>) -> Result<Self, String> {
        let overlay = lanterne_overlay::Overlay::connect(display).map_err(|e| e.to_string())?;
        let mut events = overlay.events();
        // Losing the display ends the session's screen; the agent keeps running and says so.
        std::thread::Builder::new()
            .name("overlay-events".into())
            .spawn(move || {
                while let Some(ev) = events.blocking_recv() {
                    if let lanterne_overlay::OverlayEvent::DisplayLost { reason } = ev {
                        tracing::warn!("the X11 display went away: {reason}");
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(X11Screen { overlay })
    }
}

impl Screen for X11Screen {
    fn lock(&self, message: &str) -> Result<(), String> {
        self.overlay.lock(message).map_err(|e| e.to_string())
    }

    fn unlock(&self) -> Result<(), String> {
        self.overlay.unlock().map_err(|e| e.to_string())
    }

    fn set_watched(&self, on: bool) -> Result<(), String> {
        self.overlay
            .set_watched(on, lanterne_overlay::DEFAULT_WATCHED_LABEL)
            .map_err(|e| e.to_string())
    }

    fn shown(&self) -> Shown {
        let s = self.overlay.state();
        Shown {
            locked: s.locked,
            watched_indicator: s.watched,
        }
    }
}

/// A display-less station's screen state (simulated classrooms, benchmarks).
pub struct SimulatedScreen {
    state: Mutex<(Shown, String)>,
    changes: tokio::sync::watch::Sender<Shown>,
}

impl Default for SimulatedScreen {
    fn default() -> Self {
        SimulatedScreen {
            state: Mutex::default(),
            changes: tokio::sync::watch::channel(Shown::default()).0,
        }
    }
}

impl SimulatedScreen {
    /// Follows what the screen shows (tests and benchmarks wait on it instead of polling).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Shown> {
        self.changes.subscribe()
    }

    /// The lock message currently "displayed".
    pub fn lock_message(&self) -> Option<String> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0.locked.then(|| s.1.clone())
    }
}

impl Screen for SimulatedScreen {
    fn lock(&self, message: &str) -> Result<(), String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0.locked = true;
        s.1 = message.to_string();
        self.changes.send_replace(s.0.clone());
        Ok(())
    }

    fn unlock(&self) -> Result<(), String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0.locked = false;
        s.1.clear();
        self.changes.send_replace(s.0.clone());
        Ok(())
    }

    fn set_watched(&self, on: bool) -> Result<(), String> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0.watched_indicator = on;
        self.changes.send_replace(s.0.clone());
        Ok(())
    }

    fn shown(&self) -> Shown {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

/// A station that cannot show overlays (no display found): every request fails with the
/// reason, which the box logs and shows, instead of pretending the screen is locked.
pub struct NoScreen {
    pub reason: String,
}

impl Screen for NoScreen {
    fn lock(&self, _message: &str) -> Result<(), String> {
        Err(format!("cannot lock this screen: {}", self.reason))
    }

    fn unlock(&self) -> Result<(), String> {
        Ok(())
    }

    fn set_watched(&self, _on: bool) -> Result<(), String> {
        // Nothing to draw on; the box still knows the station streams and lights its LED.
        Ok(())
    }

    fn shown(&self) -> Shown {
        Shown::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_screen_reports_what_it_shows() {
        let s = SimulatedScreen::default();
        assert!(!s.shown().locked);
        s.lock("Regardez le tableau").unwrap();
        assert!(s.shown().locked);
        assert_eq!(s.lock_message().as_deref(), Some("Regardez le tableau"));
        s.unlock().unwrap();
        assert!(!s.shown().locked);
        assert_eq!(s.lock_message(), None);
    }

    #[test]
    fn a_station_without_overlay_says_so() {
        let s = NoScreen {
            reason: "no X11 display".into(),
        };
        let err = s.lock("x").unwrap_err();
        assert!(err.contains("no X11 display"));
        assert!(!s.shown().locked);
    }
}
