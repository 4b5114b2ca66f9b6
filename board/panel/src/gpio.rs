//! A button and two LEDs wired straight to the Raspberry Pi's GPIO header (rppal).
//!
//! The task polls the button every [`GPIO_POLL_MS`] through the same debouncer and press
//! classifier as the firmware, and renders the same LED patterns with rppal's software PWM.
//!
//! Limitation: nothing independent of this process drives the LEDs. If the daemon is killed the
//! pins freeze in their last state; if it shuts down cleanly the status LED is left steadily
//! lit (never dark, since we cannot know that nobody is watching). Production boxes use the
//! RP2040 panel, whose firmware shows the fault pattern on its own.

use lanterne_panel_logic::pattern::{level, LEVEL_MAX};
use lanterne_panel_logic::{Button, ButtonConfig, ButtonEvent};
use rppal::gpio::{Gpio, InputPin, OutputPin};
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant, MissedTickBehavior};
use tracing::{info, warn};

use crate::board::{GpioPins, GPIO_POLL_MS, LED_PWM_HZ};
use crate::{emit, event_channel, patterns, LedState, PanelError, PanelEvent, PanelHandle};

/// What [`PanelEvent::Connected`] reports for the GPIO backend.
pub const GPIO_FIRMWARE: &str = "rpi-gpio";

/// Starts the direct-GPIO backend. Fails if the GPIO character device is unavailable or a pin
/// is already in use. Must be called within a tokio runtime.
pub fn spawn_gpio(pins: GpioPins) -> Result<(PanelHandle, mpsc::Receiver<PanelEvent>), PanelError> {
    let gpio = Gpio::new().map_err(PanelError::GpioUnavailable)?;
    let get = |pin: u8, role: &'static str| {
        gpio.get(pin)
            .map_err(|source| PanelError::Gpio { pin, role, source })
    };
    let button = get(pins.lock_button, "lock button")?.into_input_pullup();
    let lock = get(pins.lock_led, "lock LED")?.into_output_low();
    let status = get(pins.status_led, "status LED")?.into_output_low();

    let (handle, requested) = PanelHandle::new();
    let (events_tx, events_rx) = event_channel();
    info!(?pins, "GPIO panel started");
    tokio::spawn(run(
        button,
        Led::new(lock),
        Led::new(status),
        requested,
        events_tx,
    ));
    Ok((handle, events_rx))
}

/// An LED pin plus the level last written, so the PWM thread is only poked on changes.
struct Led {
    pin: OutputPin,
    level: Option<u16>,
}

impl Led {
    fn new(pin: OutputPin) -> Self {
        Self { pin, level: None }
    }

    fn show(&mut self, level: u16) {
        if self.level == Some(level) {
            return;
        }
        self.level = Some(level);
        // Full on and full off are plain levels: no PWM thread burning CPU for a steady LED.
        let result = if level == 0 {
            self.pin.clear_pwm().map(|()| self.pin.set_low())
        } else if level >= LEVEL_MAX {
            self.pin.clear_pwm().map(|()| self.pin.set_high())
        } else {
            self.pin
                .set_pwm_frequency(LED_PWM_HZ, f64::from(level) / f64::from(LEVEL_MAX))
        };
        if let Err(e) = result {
            warn!(pin = self.pin.pin(), error = %e, "cannot drive LED");
        }
    }

    /// Leaves the pin driven after the process exits.
    fn hold(&mut self, level: u16) {
        self.show(level);
        self.pin.set_reset_on_drop(false);
    }
}

async fn run(
    button_pin: InputPin,
    mut lock: Led,
    mut status: Led,
    mut requested: watch::Receiver<LedState>,
    events: mpsc::Sender<PanelEvent>,
) {
    emit(
        &events,
        PanelEvent::Connected {
            firmware: GPIO_FIRMWARE.to_owned(),
        },
    );
    let mut button = Button::new(ButtonConfig::default());
    let start = Instant::now();
    let mut poll = tokio::time::interval(Duration::from_millis(GPIO_POLL_MS));
    poll.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            changed = requested.changed() => {
                if changed.is_err() {
                    let last = *requested.borrow();
                    info!("panel handles dropped; GPIO panel leaves the status LED lit");
                    lock.hold(if last.lock { LEVEL_MAX } else { 0 });
                    status.hold(LEVEL_MAX);
                    return;
                }
            }
            _ = poll.tick() => {
                let now = start.elapsed().as_millis() as u64;
                match button.sample(now, button_pin.is_low()) {
                    Some(ButtonEvent::Pressed) => emit(&events, PanelEvent::LockButtonPressed),
                    Some(ButtonEvent::LongPressed) => emit(&events, PanelEvent::LockButtonLongPressed),
                    None => {}
                }
                let (lock_pattern, status_pattern) = patterns(*requested.borrow());
                lock.show(level(lock_pattern, now));
                status.show(level(status_pattern, now));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::board::LANTERNE_BOX;
    use crate::StatusLed;

    /// Run on a Pi with the panel wired as in board/README.md:
    /// `cargo test -p lanterne-panel --features rpi-gpio -- --ignored gpio_`
    #[tokio::test]
    #[ignore = "needs Raspberry Pi GPIO"]
    async fn gpio_panel_on_real_hardware() {
        let (panel, mut events) = spawn_gpio(LANTERNE_BOX).expect("GPIO available");
        assert_eq!(
            events.recv().await,
            Some(PanelEvent::Connected {
                firmware: GPIO_FIRMWARE.into()
            })
        );
        for status in [
            StatusLed::Watching,
            StatusLed::RemoteControl,
            StatusLed::Fault,
        ] {
            panel.set_leds(LedState { lock: true, status });
            eprintln!("LEDs: lock on, status {status:?} (look at the panel)");
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        eprintln!("press the lock button within 15 s");
        let event = tokio::time::timeout(Duration::from_secs(15), events.recv())
            .await
            .expect("a press within 15 s");
        assert_eq!(event, Some(PanelEvent::LockButtonPressed));
    }
}
