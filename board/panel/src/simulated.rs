//! An in-process panel: for tests, the dev web page and the CLI. It behaves like the real
//! one where it matters to the daemon: it starts connected, drops button presses while
//! "unplugged" (as the firmware does while the box is silent), and shows the fault pattern
//! instead of the requested status while unplugged.

use tokio::sync::{mpsc, watch};

use crate::{emit, event_channel, LedState, PanelEvent, PanelHandle, StatusLed};

/// The firmware version the simulated panel reports in [`PanelEvent::Connected`].
pub const SIMULATED_FIRMWARE: &str = "simulated";

#[derive(Debug)]
enum Input {
    Press,
    LongPress,
    Unplug,
    Plug,
}

/// The "physical" side of a simulated panel: press its button, look at its LEDs.
#[derive(Clone, Debug)]
pub struct SimulatedPanel {
    input: mpsc::UnboundedSender<Input>,
    shown: watch::Receiver<LedState>,
}

impl SimulatedPanel {
    /// A short press of the lock button.
    pub fn press(&self) {
        self.send(Input::Press);
    }

    /// A long press of the lock button.
    pub fn long_press(&self) {
        self.send(Input::LongPress);
    }

    /// Pulls the USB cable: the daemon gets [`PanelEvent::Disconnected`].
    pub fn unplug(&self) {
        self.send(Input::Unplug);
    }

    /// Plugs it back in: the daemon gets [`PanelEvent::Connected`].
    pub fn plug(&self) {
        self.send(Input::Plug);
    }

    /// What the LEDs show right now.
    pub fn leds(&self) -> LedState {
        *self.shown.borrow()
    }

    /// Waits until the LEDs show `want` (wrap in `tokio::time::timeout`). Returns `false` if
    /// the panel task ended first.
    pub async fn wait_for_leds(&self, want: LedState) -> bool {
        let mut shown = self.shown.clone();
        let reached = shown.wait_for(|s| *s == want).await.is_ok();
        reached
    }

    fn send(&self, input: Input) {
        // Unbounded is fine here: a person (or a test) is the only producer.
        if self.input.send(input).is_err() {
            tracing::debug!("simulated panel input after the panel task ended");
        }
    }
}

/// Starts a simulated panel. Must be called within a tokio runtime.
pub fn spawn_simulated() -> (PanelHandle, mpsc::Receiver<PanelEvent>, SimulatedPanel) {
    let (handle, requested) = PanelHandle::new();
    let (events_tx, events_rx) = event_channel();
    let (input_tx, input_rx) = mpsc::unbounded_channel();
    let (shown_tx, shown_rx) = watch::channel(LedState::STARTUP);
    tokio::spawn(run(requested, input_rx, events_tx, shown_tx));
    let sim = SimulatedPanel {
        input: input_tx,
        shown: shown_rx,
    };
    (handle, events_rx, sim)
}

async fn run(
    mut requested: watch::Receiver<LedState>,
    mut input: mpsc::UnboundedReceiver<Input>,
    events: mpsc::Sender<PanelEvent>,
    shown: watch::Sender<LedState>,
) {
    let mut plugged = true;
    let firmware = || PanelEvent::Connected {
        firmware: SIMULATED_FIRMWARE.to_owned(),
    };
    emit(&events, firmware());
    let display = |plugged: bool, want: LedState| {
        if plugged {
            want
        } else {
            LedState {
                lock: want.lock,
                status: StatusLed::Fault,
            }
        }
    };
    loop {
        shown.send_replace(display(plugged, *requested.borrow_and_update()));
        tokio::select! {
            changed = requested.changed() => {
                if changed.is_err() {
                    tracing::debug!("all panel handles dropped; simulated panel stops");
                    return;
                }
            }
            Some(i) = input.recv() => match i {
                Input::Press if plugged => emit(&events, PanelEvent::LockButtonPressed),
                Input::LongPress if plugged => emit(&events, PanelEvent::LockButtonLongPressed),
                Input::Press | Input::LongPress => {
                    tracing::debug!("simulated press while unplugged: dropped");
                }
                Input::Unplug if plugged => {
                    plugged = false;
                    emit(&events, PanelEvent::Disconnected);
                }
                Input::Plug if !plugged => {
                    plugged = true;
                    emit(&events, firmware());
                }
                Input::Unplug | Input::Plug => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn next(rx: &mut mpsc::Receiver<PanelEvent>) -> PanelEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event in time")
            .expect("channel open")
    }

    async fn shows(sim: &SimulatedPanel, want: LedState) {
        let ok = tokio::time::timeout(Duration::from_secs(5), sim.wait_for_leds(want))
            .await
            .expect("LEDs in time");
        assert!(ok);
    }

    #[tokio::test]
    async fn presses_become_events_and_leds_follow_requests() {
        let (panel, mut events, sim) = spawn_simulated();
        assert_eq!(
            next(&mut events).await,
            PanelEvent::Connected {
                firmware: SIMULATED_FIRMWARE.into()
            }
        );
        shows(&sim, LedState::STARTUP).await;
        sim.press();
        assert_eq!(next(&mut events).await, PanelEvent::LockButtonPressed);
        sim.long_press();
        assert_eq!(next(&mut events).await, PanelEvent::LockButtonLongPressed);
        let want = LedState {
            lock: true,
            status: StatusLed::RemoteControl,
        };
        panel.set_leds(want);
        shows(&sim, want).await;
        assert_eq!(sim.leds(), want);
    }

    #[tokio::test]
    async fn unplugged_panel_shows_fault_drops_presses_and_reconnects() {
        let (panel, mut events, sim) = spawn_simulated();
        next(&mut events).await;
        let want = LedState {
            lock: true,
            status: StatusLed::Off,
        };
        panel.set_leds(want);
        shows(&sim, want).await;
        sim.unplug();
        assert_eq!(next(&mut events).await, PanelEvent::Disconnected);
        shows(
            &sim,
            LedState {
                lock: true,
                status: StatusLed::Fault,
            },
        )
        .await;
        sim.press();
        sim.plug();
        // The press made while unplugged never arrives; the reconnection does.
        assert!(matches!(
            next(&mut events).await,
            PanelEvent::Connected { .. }
        ));
        shows(&sim, want).await;
        sim.press();
        assert_eq!(next(&mut events).await, PanelEvent::LockButtonPressed);
    }

    #[tokio::test]
    async fn dropping_every_handle_stops_the_task() {
        let (panel, mut events, _sim) = spawn_simulated();
        next(&mut events).await;
        drop(panel);
        let end = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("task ended in time");
        assert_eq!(end, None);
    }
}
