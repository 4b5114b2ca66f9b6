//! The Raspberry Pi wiring for the direct-GPIO backend: the ONE place that names Pi pins.
//! Wiring diagrams and resistor values are in `board/README.md`.

/// BCM GPIO numbers (not header pin numbers) for the direct-GPIO panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpioPins {
    /// Momentary switch between this pin and GND; the internal pull-up is enabled, so a
    /// pressed button reads low.
    pub lock_button: u8,
    /// Lock LED: GPIO → 330 Ω → LED anode, cathode to GND (active high).
    pub lock_led: u8,
    /// Privacy status LED, wired like the lock LED.
    pub status_led: u8,
}

/// The Lanterne box wiring: header pins 29 (GPIO5, button), 31 (GPIO6, lock LED),
/// 33 (GPIO13, status LED), with GND on header pins 30, 34 and 39.
pub const LANTERNE_BOX: GpioPins = GpioPins {
    lock_button: 5,
    lock_led: 6,
    status_led: 13,
};

impl Default for GpioPins {
    fn default() -> Self {
        LANTERNE_BOX
    }
}

/// How often the GPIO backend samples the button and refreshes LED patterns. Four samples
/// per 20 ms debounce window.
pub const GPIO_POLL_MS: u64 = 5;

/// Software PWM frequency for LED brightness (breathing, the fault pattern's glow).
pub const LED_PWM_HZ: f64 = 200.0;
