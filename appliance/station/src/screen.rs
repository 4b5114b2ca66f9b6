//! What the station shows its user besides video: the lock overlay, messages and the
//! "watched" indicator. A screen that cannot show that indicator says so in its
//! [`Shown::indicator_available`], and the station then sends no video at all. The link drives a [`Screen`]; the state it reports to the box is
//! what the screen says it shows, not what was asked.
//!
//! Implementations: the real X11 overlay (`X11Screen` in `platform::linux`, `lanterne-overlay`), [`NoScreen`]
//! where no overlay can be shown (it refuses, so nobody believes a screen is locked when it
//! is not), and [`SimulatedScreen`]
//! for the simulated classroom's stations, which have no display of their own: it keeps the
//! state a real screen would show so the box, the tablet and the benchmarks see the same
//! protocol traffic as with real stations.

use std::sync::Mutex;

use lanterne_wire::{HelpAsk, HelpState, InputEvent, Shown};

#[cfg(unix)]
pub use crate::platform::linux::screen::X11Screen;

/// Remote help moving on, as the student decided: (help id, new state).
pub type HelpEvent = (u64, HelpState);

pub trait Screen: Send + Sync {
    /// Puts the lock overlay up and captures input; returns once that is done.
    fn lock(&self, message: &str) -> Result<(), String>;
    fn unlock(&self) -> Result<(), String>;
    /// Shows (or removes) the persistent "your screen is being watched" indicator. The link
    /// turns it on whenever video leaves the station.
    fn set_watched(&self, on: bool) -> Result<(), String>;
    /// Shows a teacher's message until the student dismisses it.
    fn show_message(&self, id: u64, from: &str, text: &str) -> Result<(), String>;
    /// Ids of messages as the student dismisses them.
    fn dismissals(&self) -> tokio::sync::broadcast::Receiver<u64>;
    fn shown(&self) -> Shown;
    /// Where the demo player shows a demo (`fullscreen`: over the whole screen). Display-less
    /// screens only decode it (and report its health), which is what the default does.
    fn demo_output(&self, _fullscreen: bool) -> crate::platform::PlayerOutput {
        crate::platform::PlayerOutput::Probe
    }
    /// Takes the student's keyboard and pointer away without covering the screen (`on`), or
    /// gives them back: a full-screen demo is watched, not used. Returns once done.
    fn block_input(&self, on: bool) -> Result<(), String>;
    /// Remote help: puts the consent prompt for `ask` in front of the student. Their answer
    /// (and later their ending it) comes on [`Screen::help_events`]. A screen that cannot ask
    /// a person refuses: nobody may accept in the student's place.
    fn ask_help(&self, _ask: &HelpAsk) -> Result<(), String> {
        Err("this station has no screen to ask the student for consent".into())
    }
    /// Takes help `id` down (prompt or banner) from the agent's side.
    fn end_help(&self, _id: u64) -> Result<(), String> {
        Ok(())
    }
    /// Plays the helper's input, only while the student's consent to `id` holds.
    fn inject(&self, id: u64, _events: Vec<InputEvent>) -> Result<(), String> {
        Err(format!(
            "input for remote help {id} refused: this screen takes no remote input"
        ))
    }
    /// The student's decisions on remote help, as they happen.
    fn help_events(&self) -> tokio::sync::broadcast::Receiver<HelpEvent> {
        // Nothing is ever asked of a screen without a prompt: a closed channel.
        tokio::sync::broadcast::channel(1).1
    }
    /// Shows (or takes down) "your screen is shown to the class".
    fn set_shown_to_class(&self, _on: bool) -> Result<(), String> {
        Ok(())
    }
    /// What the student does through this screen besides dismissing messages: raise or
    /// withdraw a hand (and, on a simulated screen, log in and out). None: this screen offers
    /// no such control.
    fn student_events(&self) -> Option<tokio::sync::broadcast::Receiver<StudentEvent>> {
        None
    }
    /// The teacher cleared the student's raised hand: the screen shows it down. A screen
    /// without a hand control has nothing to take down.
    fn clear_hand(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Something the student did at the station that the box hears about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StudentEvent {
    /// The hand went up (true) or the student withdrew it (false).
    Hand(bool),
    /// Someone logged in (their display name) or out (None). Only simulated screens send it:
    /// on a PC the service takes it from the session's account.
    User(Option<String>),
}
/// Student events are rare (a person taps a button); a small buffer is plenty.
pub(crate) const STUDENT_EVENTS: usize = 16;

/// Dismissals are rare (a person clicks OK); a small buffer is plenty.
pub(crate) const DISMISSALS: usize = 16;

/// A display-less station's screen state (simulated classrooms, benchmarks).
pub struct SimulatedScreen {
    state: Mutex<(Shown, String)>,
    changes: tokio::sync::watch::Sender<Shown>,
    messages: Mutex<Vec<(u64, String, String)>>,
    dismissed: tokio::sync::broadcast::Sender<u64>,
    input_blocked: std::sync::atomic::AtomicBool,
    shown_to_class: std::sync::atomic::AtomicBool,
    /// The simulated student: logged-in display name and raised hand.
    student: Mutex<(Option<String>, bool)>,
    student_events: tokio::sync::broadcast::Sender<StudentEvent>,
}

impl Default for SimulatedScreen {
    fn default() -> Self {
        // A simulated screen stands for a working overlay: it can show the badge.
        let shown = Shown {
            indicator_available: true,
            ..Shown::default()
        };
        SimulatedScreen {
            state: Mutex::new((shown.clone(), String::new())),
            changes: tokio::sync::watch::channel(shown).0,
            messages: Mutex::default(),
            dismissed: tokio::sync::broadcast::channel(DISMISSALS).0,
            input_blocked: std::sync::atomic::AtomicBool::new(false),
            shown_to_class: std::sync::atomic::AtomicBool::new(false),
            student: Mutex::new((None, false)),
            student_events: tokio::sync::broadcast::channel(STUDENT_EVENTS).0,
        }
    }
}

impl SimulatedScreen {
    /// The "shown to the class" banner is up.
    pub fn shown_to_class(&self) -> bool {
        self.shown_to_class
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A student logs in (`Some(display name)`) or out (None); logging out lowers the hand.
    pub fn set_user(&self, name: Option<String>) {
        let mut s = self.student.lock().unwrap_or_else(|p| p.into_inner());
        if name.is_none() && s.1 {
            s.1 = false;
            let _ = self.student_events.send(StudentEvent::Hand(false));
        }
        s.0 = name.clone();
        let _ = self.student_events.send(StudentEvent::User(name));
    }

    /// The student raises (true) or withdraws (false) their hand.
    pub fn raise_hand(&self, up: bool) {
        let mut s = self.student.lock().unwrap_or_else(|p| p.into_inner());
        s.1 = up;
        let _ = self.student_events.send(StudentEvent::Hand(up));
    }

    /// Who is logged in and whether their hand is up.
    pub fn student(&self) -> (Option<String>, bool) {
        self.student
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The student's keyboard and pointer are taken away (a full-screen demo).
    pub fn input_blocked(&self) -> bool {
        self.input_blocked.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Messages on screen: (id, from, text), oldest first.
    pub fn open_messages(&self) -> Vec<(u64, String, String)> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What a student does by clicking OK: closes message `id` and reports it read.
    pub fn dismiss(&self, id: u64) -> bool {
        let mut m = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        let before = m.len();
        m.retain(|(i, _, _)| *i != id);
        let closed = m.len() != before;
        if closed {
            let _ = self.dismissed.send(id);
        }
        closed
    }

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
    fn student_events(&self) -> Option<tokio::sync::broadcast::Receiver<StudentEvent>> {
        Some(self.student_events.subscribe())
    }

    fn clear_hand(&self) -> Result<(), String> {
        self.student.lock().unwrap_or_else(|p| p.into_inner()).1 = false;
        Ok(())
    }

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

    fn show_message(&self, id: u64, from: &str, text: &str) -> Result<(), String> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, from.to_string(), text.to_string()));
        Ok(())
    }

    fn dismissals(&self) -> tokio::sync::broadcast::Receiver<u64> {
        self.dismissed.subscribe()
    }

    fn block_input(&self, on: bool) -> Result<(), String> {
        self.input_blocked
            .store(on, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    // A simulated station has no student: it cannot ask for consent (the trait's default
    // refuses), so remote help is never possible on it.

    fn set_shown_to_class(&self, on: bool) -> Result<(), String> {
        self.shown_to_class
            .store(on, std::sync::atomic::Ordering::SeqCst);
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
    /// Never sends: nothing can be dismissed where nothing is shown.
    pub dismissed: tokio::sync::broadcast::Sender<u64>,
}

impl NoScreen {
    pub fn new(reason: String) -> Self {
        NoScreen {
            reason,
            dismissed: tokio::sync::broadcast::channel(1).0,
        }
    }
}

impl Screen for NoScreen {
    fn lock(&self, _message: &str) -> Result<(), String> {
        Err(format!("cannot lock this screen: {}", self.reason))
    }

    fn unlock(&self) -> Result<(), String> {
        Ok(())
    }

    fn set_watched(&self, on: bool) -> Result<(), String> {
        // Nothing to draw on: the student could not know they are watched, so no video may
        // leave (the link checks `indicator_available` before starting any).
        if on {
            return Err(format!(
                "cannot show the watched indicator on this screen: {}",
                self.reason
            ));
        }
        Ok(())
    }

    fn show_message(&self, _id: u64, _from: &str, _text: &str) -> Result<(), String> {
        Err(format!(
            "cannot show a message on this screen: {}",
            self.reason
        ))
    }

    fn dismissals(&self) -> tokio::sync::broadcast::Receiver<u64> {
        self.dismissed.subscribe()
    }

    fn shown(&self) -> Shown {
        Shown {
            locked: false,
            watched_indicator: false,
            indicator_available: false,
        }
    }

    fn block_input(&self, on: bool) -> Result<(), String> {
        if on {
            return Err(format!(
                "cannot block input on this screen: {}",
                self.reason
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_screen_reports_what_it_shows() {
        let s = SimulatedScreen::default();
        assert!(!s.shown().locked);
        let mut dismissed = s.dismissals();
        s.show_message(4, "prof", "Bonjour").unwrap();
        assert_eq!(s.open_messages().len(), 1);
        assert!(s.dismiss(4));
        assert!(!s.dismiss(4), "already closed");
        assert_eq!(dismissed.try_recv().unwrap(), 4);
        s.lock("Regardez le tableau").unwrap();
        assert!(s.shown().locked);
        assert_eq!(s.lock_message().as_deref(), Some("Regardez le tableau"));
        s.unlock().unwrap();
        assert!(!s.shown().locked);
        assert_eq!(s.lock_message(), None);
    }

    #[test]
    fn a_station_without_overlay_says_so() {
        let s = NoScreen::new("no X11 display".into());
        let err = s.lock("x").unwrap_err();
        assert!(err.contains("no X11 display"));
        assert!(!s.shown().locked);
        // No badge can be drawn: the box is told, and asked video is refused.
        assert!(!s.shown().indicator_available);
        let err = s.set_watched(true).unwrap_err();
        assert!(err.contains("watched indicator"), "{err}");
        assert!(s.set_watched(false).is_ok());
        assert!(SimulatedScreen::default().shown().indicator_available);
    }
}
