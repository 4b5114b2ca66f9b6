//! What the station shows its user besides video: the lock overlay (and later messages and
//! the "watched" indicator). The link drives a [`Screen`]; the state it reports to the box is
//! what the screen says it shows, not what was asked.
//!
//! Two implementations: the real X11 overlay (`lanterne-overlay`), and [`SimulatedScreen`]
//! for the simulated classroom's stations, which have no display of their own: it keeps the
//! state a real screen would show so the box, the tablet and the benchmarks see the same
//! protocol traffic as with real stations.

use std::sync::Mutex;

use lanterne_wire::Shown;

pub trait Screen: Send + Sync {
    /// Puts the lock overlay up and captures input; returns once that is done.
    fn lock(&self, message: &str) -> Result<(), String>;
    fn unlock(&self) -> Result<(), String>;
    fn shown(&self) -> Shown;
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
