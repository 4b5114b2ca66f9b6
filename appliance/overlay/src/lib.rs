//! On-screen overlays of the Lanterne station agent: the lock screen, teacher messages and the
//! "your screen is being watched" badge, drawn by a pure-Rust X11 client (x11rb).
//!
//! ```text
//!  agent (any thread) ──Overlay::lock/unlock/show_message/set_watched──▶ command channel
//!                                                                         │
//!  X server ──events──▶ reader thread ──────────────────────────────────▶ overlay thread
//!                                                                 (owns windows, grabs,
//!                                                                  state; replies once the
//!                                                                  server has applied it)
//!        ◀── OverlayEvent (MessageDismissed, DisplayLost, HandKey) ── events() ◀──┘
//! ```
//!
//! One thread owns every window and the grab state; the handle only sends it commands and
//! waits for the reply, so callers never share mutable X state. A second thread blocks in
//! `wait_for_event` and forwards events into the same queue, which lets the owner sleep on
//! one channel instead of polling the socket. The public methods block for at most a couple
//! of seconds (a lock waits up to ~1 s for the grabs): call them from `spawn_blocking` in
//! async code.
//!
//! The lock covers every RandR monitor with its own override-redirect window (so no window
//! manager can move, minimise or stack it) and grabs keyboard and pointer. Text is rasterised
//! from a TrueType font (DejaVu Sans) because core X fonts lack accents on many installs.
//! X11 only: see README.md for Wayland.

#![forbid(unsafe_code)]

mod inject;
mod pixels;
mod scene;
mod text;
pub mod theme;

/// The consent prompt's title and text, as the student reads them (the documents' claims test
/// checks the poster against it).
pub use scene::consent_text;
mod worker;

use std::sync::{mpsc, Arc};
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{mpsc as tmpsc, watch};

/// Shown when the box sends a lock with an empty message.
pub const DEFAULT_LOCK_MESSAGE: &str = "Écrans verrouillés — regardez le tableau";
/// Shown by the watched badge when the box sends an empty label.
pub const DEFAULT_WATCHED_LABEL: &str = "Écran observé";
/// Longest lock or teacher message we draw (characters); longer text ends with `…`.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Longest sender name or badge label (characters).
pub const MAX_LABEL_CHARS: usize = 64;
/// Teacher messages open at the same time; beyond this the oldest is closed (not reported
/// as read) so a flood from a misbehaving box cannot cover the screen with windows.
pub const MAX_OPEN_MESSAGES: usize = 8;

/// How long a caller waits for the overlay thread before giving up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum OverlayError {
    #[error("cannot connect to X display {display:?}: {source}")]
    Connect {
        display: String,
        #[source]
        source: x11rb::errors::ConnectError,
    },
    #[error("X11 connection error: {0}")]
    Connection(#[from] x11rb::errors::ConnectionError),
    #[error("X11 request failed: {0}")]
    Reply(#[from] x11rb::errors::ReplyError),
    #[error("X11 request failed: {0}")]
    ReplyOrId(#[from] x11rb::errors::ReplyOrIdError),
    #[error("could not grab the {device} within {waited_ms} ms (last status: {status}); the lock stays shown and the grab is retried")]
    GrabFailed {
        device: &'static str,
        status: String,
        waited_ms: u128,
    },
    #[error("no usable TrueType font; tried {tried} (install fonts-dejavu-core)")]
    FontNotFound { tried: String },
    #[error("unsupported X visual: {0}")]
    UnsupportedVisual(String),
    #[error("this is a Wayland session ({0}): the X11 overlay cannot cover native Wayland windows or capture their input, so it refuses rather than show a lock that does not lock")]
    Wayland(String),
    #[error("the X display is gone: {0}")]
    DisplayLost(String),
    #[error("the overlay thread did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the X server has no XTEST extension: remote-help input cannot be played")]
    NoXTest,
    /// A remote-help call that does not match what is on screen (input without the student's
    /// consent, a second request while one is open…).
    #[error("{0}")]
    Help(String),
}

/// What the overlay reports back to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayEvent {
    /// The student closed teacher message `id` (OK button or Enter): the box learns it was read.
    MessageDismissed { id: u64 },
    /// The X connection broke (session ended, server crashed); every later call fails.
    DisplayLost { reason: String },
    /// The student pressed Ctrl+Alt+H (grabbed from any application): raise their hand, or
    /// withdraw it when it is up.
    HandKey,
    /// Remote help `id` moved on: the student answered the prompt, it timed out, or the
    /// student ended the help ("Arrêter" or Ctrl+Alt+End).
    Help { id: u64, step: HelpStep },
}

/// What the student did with remote help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpStep {
    /// A pointer click on "Accepter": the banner is up and input is played from now on.
    Accepted,
    Refused,
    /// Nobody answered within the prompt's time.
    TimedOut,
    /// "Arrêter" or Ctrl+Alt+End while the help ran.
    Stopped,
}

/// Remote help as the overlay shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpShown {
    /// The consent prompt for `id` is on every monitor.
    Asking { id: u64 },
    /// The student accepted `id`: the banner is on every monitor and input is played.
    Active { id: u64 },
}

/// What is on screen right now, as the agent reports it to the box.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlayState {
    /// The lock overlay is shown.
    pub locked: bool,
    /// Keyboard and pointer are grabbed by the lock (false while a grab is being retried).
    pub input_captured: bool,
    /// The message the lock shows (after bounding), when locked.
    pub lock_message: Option<String>,
    /// Monitors the lock covers.
    pub lock_monitors: usize,
    /// Teacher messages still open, oldest first.
    pub open_messages: Vec<u64>,
    /// The watched badge is shown.
    pub watched: bool,
    /// Its label (after bounding), when shown.
    pub watched_label: Option<String>,
    /// Set once the display is gone, with the reason.
    pub display_lost: Option<String>,
    /// Keyboard and pointer are taken away from the student without a lock screen (a
    /// full-screen demo: the picture stays visible, see [`Overlay::block_input`]).
    pub input_blocked: bool,
    /// Size of the X screen (all monitors), in pixels.
    pub screen_size: (u16, u16),
    /// Remote help's prompt or banner, when one is up.
    pub help: Option<HelpShown>,
    /// The "shown to the class" banner is up.
    pub shown_to_class: bool,
}

/// A handle on the overlay thread of one X display. Cheap to clone; the windows go away when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Overlay {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<worker::Input>,
    state: watch::Receiver<OverlayState>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The overlay thread tears down its windows and closes the connection.
        let _ = self.commands.send(worker::Input::Shutdown);
    }
}

impl Overlay {
    /// Connects to `display` (`None`: `$DISPLAY`), loads the font and starts the overlay
    /// thread. Nothing is shown yet. Refuses a Wayland session ([`OverlayError::Wayland`]):
    /// with `None`, when `WAYLAND_DISPLAY` is set or `XDG_SESSION_TYPE=wayland`; always, when
    /// the server is Xwayland.
    pub fn connect(display: Option<&str>) -> Result<Overlay, OverlayError> {
        let (commands, state) = worker::start(display)?;
        Ok(Overlay {
            inner: Arc::new(Inner { commands, state }),
        })
    }

    /// Covers every monitor with the lock screen showing `message` (empty: the default
    /// message) and captures keyboard and pointer. Returns once the windows are mapped and
    /// painted and both grabs are held. When another client keeps a grab for more than ~1 s
    /// this returns [`OverlayError::GrabFailed`] but leaves the lock shown and keeps retrying
    /// (see [`OverlayState::input_captured`]); call [`Overlay::unlock`] to remove it.
    /// Locking again while locked only changes the message.
    pub fn lock(&self, message: &str) -> Result<(), OverlayError> {
        let message = text::bounded(message, MAX_MESSAGE_CHARS, true);
        self.request(|reply| worker::Command::Lock { message, reply })
    }

    /// Removes the lock screen and releases the grabs. Unlocking when not locked is a no-op.
    pub fn unlock(&self) -> Result<(), OverlayError> {
        self.request(|reply| worker::Command::Unlock { reply })
    }

    /// Shows teacher message `id` from `from` in a centred card with an OK button, above
    /// everything (the lock included). Clicking OK or pressing Enter closes it and sends
    /// [`OverlayEvent::MessageDismissed`]. Showing an id that is already open replaces it.
    pub fn show_message(&self, id: u64, from: &str, text: &str) -> Result<(), OverlayError> {
        let from = text::bounded(from, MAX_LABEL_CHARS, false);
        let body = text::bounded(text, MAX_MESSAGE_CHARS, true);
        self.request(|reply| worker::Command::ShowMessage {
            id,
            from,
            text: body,
            reply,
        })
    }

    /// Shows (`on`) or hides the "screen watched" badge: a small always-on-top badge in the
    /// top-right corner of every monitor that takes no focus and lets clicks through (when
    /// the server has the SHAPE extension). `label` empty: [`DEFAULT_WATCHED_LABEL`].
    pub fn set_watched(&self, on: bool, label: &str) -> Result<(), OverlayError> {
        let label = text::bounded(label, MAX_LABEL_CHARS, false);
        self.request(|reply| worker::Command::SetWatched { on, label, reply })
    }

    /// Takes (`on`) the student's keyboard and pointer without covering the screen, or gives
    /// them back: an invisible input-only window over the whole screen holds both grabs, so
    /// what is on screen (a full-screen demo) stays visible but nothing can be used. Returns
    /// once both grabs are held, or [`OverlayError::GrabFailed`] after ~1 s (and keeps
    /// retrying). Independent of the lock: unlocking keeps input blocked, and the reverse.
    pub fn block_input(&self, on: bool) -> Result<(), OverlayError> {
        self.request(|reply| worker::Command::BlockInput { on, reply })
    }

    /// Asks the student for remote help `id` from `from`: a prompt on every monitor, above
    /// everything, that only a pointer click on "Accepter" accepts (keys do nothing, and a
    /// click in the first moments after it appears is ignored, so a click meant for something
    /// else cannot accept). "Refuser", or `timeout` without an answer, refuses. The answer
    /// comes as [`OverlayEvent::Help`]. Fails while another request or help is open.
    pub fn ask_help(&self, id: u64, from: &str, timeout: Duration) -> Result<(), OverlayError> {
        let from = text::bounded(from, MAX_LABEL_CHARS, false);
        self.request(|reply| worker::Command::AskHelp {
            id,
            from,
            timeout,
            reply,
        })
    }

    /// Ends remote help `id` (its prompt or its banner) from the agent's side: the helper
    /// stopped, or the box withdrew the question. Keys and buttons the helper held are
    /// released. Ending an id that is not open is a no-op.
    pub fn end_help(&self, id: u64) -> Result<(), OverlayError> {
        self.request(|reply| worker::Command::EndHelp { id, reply })
    }

    /// Plays the helper's input for help `id`, only while the student's consent to `id`
    /// holds (its banner is up); otherwise [`OverlayError::Help`] and nothing is played.
    /// Returns once the X server has played it.
    pub fn inject(
        &self,
        id: u64,
        events: Vec<lanterne_wire::InputEvent>,
    ) -> Result<(), OverlayError> {
        self.request(|reply| worker::Command::Inject { id, events, reply })
    }

    /// Shows (or takes down) the banner telling the student their screen is shown to the
    /// class.
    pub fn set_shown_to_class(&self, on: bool) -> Result<(), OverlayError> {
        self.request(|reply| worker::Command::ShownToClass { on, reply })
    }

    /// A new receiver of overlay events. Each call subscribes a new receiver; events that
    /// happened before the call are not replayed, so subscribe before showing messages.
    pub fn events(&self) -> tmpsc::UnboundedReceiver<OverlayEvent> {
        let (tx, rx) = tmpsc::unbounded_channel();
        if self
            .inner
            .commands
            .send(worker::Input::Subscribe(tx))
            .is_err()
        {
            tracing::debug!("events() after the overlay thread stopped: receiver is closed");
        }
        rx
    }

    /// What is shown right now (updated by the overlay thread after each change).
    pub fn state(&self) -> OverlayState {
        self.inner.state.borrow().clone()
    }

    fn request(
        &self,
        make: impl FnOnce(worker::Reply) -> worker::Command,
    ) -> Result<(), OverlayError> {
        let (reply, answer) = mpsc::sync_channel(1);
        if self
            .inner
            .commands
            .send(worker::Input::Command(make(reply)))
            .is_err()
        {
            return Err(self.lost());
        }
        match answer.recv_timeout(REPLY_TIMEOUT) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(OverlayError::Timeout(REPLY_TIMEOUT)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.lost()),
        }
    }

    fn lost(&self) -> OverlayError {
        let reason = self
            .inner
            .state
            .borrow()
            .display_lost
            .clone()
            .unwrap_or_else(|| "overlay thread stopped".to_string());
        OverlayError::DisplayLost(reason)
    }
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("state", &self.state())
            .finish()
    }
}
