//! The real screen of an X11 session ([`X11Screen`]), drawn by `lanterne-overlay`.

use std::sync::Arc;

use lanterne_wire::{HelpAsk, HelpState, InputEvent, Shown};

use crate::screen::{HelpEvent, Screen, StudentEvent, DISMISSALS, STUDENT_EVENTS};

/// Id of the station's own note about the raised hand (teachers' messages count up from 1,
/// the hours notice is 0); its dismissal is not a read receipt.
const HAND_NOTICE_ID: u64 = u64::MAX;
const HAND_UP_TEXT: &str = "Main levée : l'enseignant voit votre demande d'aide sur sa tablette. \
                            Ctrl+Alt+H pour la baisser.";
const HAND_DOWN_TEXT: &str = "Main baissée. Ctrl+Alt+H pour la lever à nouveau.";
const HAND_SEEN_TEXT: &str = "L'enseignant a vu votre main levée.";

/// The real screen of an X11 session: `lanterne-overlay` draws the lock on every monitor,
/// grabs keyboard and pointer, and shows the watched badge.
pub struct X11Screen {
    overlay: lanterne_overlay::Overlay,
    dismissed: tokio::sync::broadcast::Sender<u64>,
    help: tokio::sync::broadcast::Sender<HelpEvent>,
    /// The student's hand is up (Ctrl+Alt+H), and where that is announced.
    hand: Arc<std::sync::atomic::AtomicBool>,
    student: tokio::sync::broadcast::Sender<StudentEvent>,
    display: Option<String>,
    /// The last attempt to put the watched badge up failed: until one succeeds, this screen
    /// reports that it cannot show the indicator (and so gets asked for no video).
    badge_failed: std::sync::atomic::AtomicBool,
}

impl X11Screen {
    /// Connects to `display` (None: `$DISPLAY`). Refuses Wayland sessions, where an X11 lock
    /// would not block native applications.
    pub fn connect(display: Option<&str>) -> Result<Self, String> {
        let overlay = lanterne_overlay::Overlay::connect(display).map_err(|e| e.to_string())?;
        let mut events = overlay.events();
        let (dismissed, _) = tokio::sync::broadcast::channel(DISMISSALS);
        let (help, _) = tokio::sync::broadcast::channel(DISMISSALS);
        let tx = dismissed.clone();
        let help_tx = help.clone();
        let (student, _) = tokio::sync::broadcast::channel(STUDENT_EVENTS);
        let hand = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (student_tx, hand_up, notices) = (student.clone(), hand.clone(), overlay.clone());
        std::thread::Builder::new()
            .name("overlay-events".into())
            .spawn(move || {
                while let Some(ev) = events.blocking_recv() {
                    match ev {
                        // The station's own note about the hand is not a teacher's message.
                        lanterne_overlay::OverlayEvent::MessageDismissed { id: HAND_NOTICE_ID } => {
                        }
                        lanterne_overlay::OverlayEvent::MessageDismissed { id } => {
                            let _ = tx.send(id);
                        }
                        lanterne_overlay::OverlayEvent::HandKey => {
                            let up = !hand_up.fetch_xor(true, std::sync::atomic::Ordering::SeqCst);
                            let _ = student_tx.send(StudentEvent::Hand(up));
                            // The student sees that the request went (or was withdrawn).
                            let text = if up { HAND_UP_TEXT } else { HAND_DOWN_TEXT };
                            if let Err(e) = notices.show_message(HAND_NOTICE_ID, "Lanterne", text) {
                                tracing::warn!("cannot show the raised-hand note: {e}");
                            }
                        }
                        // Losing the display ends the session's screen; the agent keeps
                        // running and says so.
                        lanterne_overlay::OverlayEvent::DisplayLost { reason } => {
                            tracing::warn!("the X11 display went away: {reason}");
                        }
                        lanterne_overlay::OverlayEvent::Help { id, step } => {
                            use lanterne_overlay::HelpStep;
                            let state = match step {
                                HelpStep::Accepted => HelpState::Accepted,
                                HelpStep::Refused => HelpState::Refused,
                                HelpStep::TimedOut => HelpState::TimedOut,
                                HelpStep::Stopped => HelpState::EndedByStudent,
                            };
                            let _ = help_tx.send((id, state));
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(X11Screen {
            overlay,
            dismissed,
            help,
            hand,
            student,
            display: display.map(str::to_string),
            badge_failed: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Screen for X11Screen {
    fn student_events(&self) -> Option<tokio::sync::broadcast::Receiver<StudentEvent>> {
        Some(self.student.subscribe())
    }

    fn clear_hand(&self) -> Result<(), String> {
        if self.hand.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.overlay
                .show_message(HAND_NOTICE_ID, "Lanterne", HAND_SEEN_TEXT)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn lock(&self, message: &str) -> Result<(), String> {
        self.overlay.lock(message).map_err(|e| e.to_string())
    }

    fn unlock(&self) -> Result<(), String> {
        self.overlay.unlock().map_err(|e| e.to_string())
    }

    fn set_watched(&self, on: bool) -> Result<(), String> {
        let r = self
            .overlay
            .set_watched(on, lanterne_overlay::DEFAULT_WATCHED_LABEL)
            .map_err(|e| e.to_string());
        if on {
            self.badge_failed
                .store(r.is_err(), std::sync::atomic::Ordering::SeqCst);
        }
        r
    }

    fn show_message(&self, id: u64, from: &str, text: &str) -> Result<(), String> {
        self.overlay
            .show_message(id, from, text)
            .map_err(|e| e.to_string())
    }

    fn dismissals(&self) -> tokio::sync::broadcast::Receiver<u64> {
        self.dismissed.subscribe()
    }

    fn shown(&self) -> Shown {
        let s = self.overlay.state();
        Shown {
            locked: s.locked,
            watched_indicator: s.watched,
            indicator_available: s.display_lost.is_none()
                && !self.badge_failed.load(std::sync::atomic::Ordering::SeqCst),
        }
    }

    fn demo_output(&self, fullscreen: bool) -> crate::platform::PlayerOutput {
        let (w, h) = self.overlay.state().screen_size;
        crate::platform::PlayerOutput::X11Window {
            display: self.display.clone(),
            size: (fullscreen && w > 0 && h > 0).then_some((u32::from(w), u32::from(h))),
        }
    }

    fn block_input(&self, on: bool) -> Result<(), String> {
        self.overlay.block_input(on).map_err(|e| e.to_string())
    }

    fn ask_help(&self, ask: &HelpAsk) -> Result<(), String> {
        self.overlay
            .ask_help(
                ask.id,
                &ask.from,
                std::time::Duration::from_secs(u64::from(ask.timeout_s)),
            )
            .map_err(|e| e.to_string())
    }

    fn end_help(&self, id: u64) -> Result<(), String> {
        self.overlay.end_help(id).map_err(|e| e.to_string())
    }

    fn inject(&self, id: u64, events: Vec<InputEvent>) -> Result<(), String> {
        self.overlay.inject(id, events).map_err(|e| e.to_string())
    }

    fn help_events(&self) -> tokio::sync::broadcast::Receiver<HelpEvent> {
        self.help.subscribe()
    }

    fn set_shown_to_class(&self, on: bool) -> Result<(), String> {
        self.overlay
            .set_shown_to_class(on)
            .map_err(|e| e.to_string())
    }
}
