//! The box's front panel behind one narrow interface: button events in, LED states out.
//!
//! The box daemon holds a [`PanelHandle`] (cheap to clone, never blocks) to say what the LEDs
//! should show, and reads [`PanelEvent`]s from a bounded channel. Behind it, exactly one tokio
//! task owns the device:
//!
//! * [`spawn_serial`] — the RP2040 front panel over USB CDC-ACM, speaking
//!   [`lanterne_panel_protocol`]. It heartbeats the panel, re-sends the LED state every
//!   heartbeat, and reopens the port whenever the panel is unplugged, replugged, rebooted or
//!   stops answering. If the daemon dies, the panel itself switches to its fault pattern.
//! * `spawn_gpio` (feature `rpi-gpio`) — a button and two LEDs straight on the Pi's GPIO via
//!   rppal. No independent watchdog: see `board/README.md`.
//! * [`spawn_simulated`] — an in-process panel for tests, the dev web page and the CLI.
//!
//! LED *patterns* (blink, breathe, fault) are decided here once, in [`patterns`], so every
//! backend shows the same thing for the same [`LedState`].

#![forbid(unsafe_code)]

pub mod board;
#[cfg(feature = "fake-panel")]
pub mod fake;
#[cfg(feature = "rpi-gpio")]
mod gpio;
mod serial;
mod simulated;

use std::sync::Arc;

use lanterne_panel_protocol::LedPattern;
use tokio::sync::{mpsc, watch};

#[cfg(feature = "rpi-gpio")]
pub use gpio::spawn_gpio;
pub use serial::{spawn_serial, SerialConfig};
pub use simulated::{spawn_simulated, SimulatedPanel, SIMULATED_FIRMWARE};

/// Something happened on the panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PanelEvent {
    /// Short press: toggle "lock every screen".
    LockButtonPressed,
    /// Held past the long-press threshold (reported while still held).
    LockButtonLongPressed,
    /// The panel is there and answering; `firmware` is its version ("1.2.3").
    Connected { firmware: String },
    /// The panel went away (unplugged, rebooting, or silent). Only sent after `Connected`.
    Disconnected,
}

/// What the privacy status LED should tell the room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusLed {
    /// Nobody is watching any screen.
    Off,
    /// At least one screen is being watched: steady light.
    Watching,
    /// A remote-control session is running: blinking.
    RemoteControl,
    /// The box itself is in trouble: the panel's fault pattern (double flash over a glow).
    Fault,
}

/// Everything the panel displays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedState {
    /// The lock button's own LED: lit while screens are locked.
    pub lock: bool,
    pub status: StatusLed,
}

impl LedState {
    /// What every backend shows before the daemon first calls [`PanelHandle::set_leds`]: we do
    /// not know yet whether anyone is watching, so the status LED must not say "nobody".
    pub const STARTUP: LedState = LedState {
        lock: false,
        status: StatusLed::Fault,
    };
}

/// Maps an [`LedState`] to the (lock, status) LED patterns all backends display.
pub fn patterns(state: LedState) -> (LedPattern, LedPattern) {
    let lock = if state.lock {
        LedPattern::Steady
    } else {
        LedPattern::Off
    };
    let status = match state.status {
        StatusLed::Off => LedPattern::Off,
        StatusLed::Watching => LedPattern::Steady,
        StatusLed::RemoteControl => LedPattern::Blink {
            on_ms: 500,
            off_ms: 500,
        },
        StatusLed::Fault => LedPattern::Fault,
    };
    (lock, status)
}

/// Errors from starting a panel backend.
#[derive(Debug, thiserror::Error)]
pub enum PanelError {
    #[error("invalid panel configuration: {0}")]
    Config(String),
    #[cfg(feature = "rpi-gpio")]
    #[error("cannot open the GPIO controller: {0}")]
    GpioUnavailable(#[source] rppal::gpio::Error),
    #[cfg(feature = "rpi-gpio")]
    #[error("GPIO pin {pin} ({role}): {source}")]
    Gpio {
        pin: u8,
        role: &'static str,
        #[source]
        source: rppal::gpio::Error,
    },
}

/// The daemon's side of the panel. Clones share the same panel; when the last clone is
/// dropped the backend task shuts down (the serial backend closes the port, and the RP2040
/// falls back to its fault pattern).
#[derive(Clone, Debug)]
pub struct PanelHandle {
    leds: Arc<watch::Sender<LedState>>,
}

impl PanelHandle {
    fn new() -> (Self, watch::Receiver<LedState>) {
        let (tx, rx) = watch::channel(LedState::STARTUP);
        (Self { leds: Arc::new(tx) }, rx)
    }

    /// Requests a new LED state. Never blocks: the backend picks up the latest value.
    pub fn set_leds(&self, state: LedState) {
        self.leds.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// The state last requested with [`set_leds`](Self::set_leds) (not necessarily shown yet).
    pub fn leds(&self) -> LedState {
        *self.leds.borrow()
    }
}

/// Capacity of the event channel. Events are rare (a person pressing a button); if the daemon
/// stops reading, further events are dropped and logged rather than stalling the device task.
pub const EVENT_QUEUE: usize = 32;

fn event_channel() -> (mpsc::Sender<PanelEvent>, mpsc::Receiver<PanelEvent>) {
    mpsc::channel(EVENT_QUEUE)
}

/// Delivers an event without waiting; a full queue drops it with a warning.
fn emit(events: &mpsc::Sender<PanelEvent>, event: PanelEvent) {
    match events.try_send(event) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(event)) => {
            tracing::warn!(?event, "panel event queue full; event dropped");
        }
        // Nobody listens any more; the handles decide when the task ends.
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_distinct_pattern_and_only_off_is_dark() {
        use lanterne_panel_logic::pattern::level;
        let all = [
            StatusLed::Off,
            StatusLed::Watching,
            StatusLed::RemoteControl,
            StatusLed::Fault,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                let pa = patterns(LedState {
                    lock: false,
                    status: *a,
                })
                .1;
                let pb = patterns(LedState {
                    lock: false,
                    status: *b,
                })
                .1;
                assert_ne!(pa, pb, "{a:?} and {b:?} look the same");
            }
            let p = patterns(LedState {
                lock: false,
                status: *a,
            })
            .1;
            let lit = (0..2000).any(|t| level(p, t) > 0);
            assert_eq!(lit, *a != StatusLed::Off, "{a:?}");
        }
    }

    #[test]
    fn handle_remembers_the_last_request_across_clones() {
        let (h, rx) = PanelHandle::new();
        assert_eq!(h.leds(), LedState::STARTUP);
        let h2 = h.clone();
        let want = LedState {
            lock: true,
            status: StatusLed::Watching,
        };
        h2.set_leds(want);
        assert_eq!(h.leds(), want);
        assert!(rx.has_changed().unwrap());
    }
}
