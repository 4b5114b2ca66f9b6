//! The board definition: every RP2040 pin and peripheral the panel uses is named here and
//! nowhere else. Rewiring the panel means editing this file only (and firmware/README.md).
//!
//! | signal     | pin  | notes                                                          |
//! |------------|------|----------------------------------------------------------------|
//! | lock button| GP14 | momentary switch to GND; internal pull-up, so pressed = low    |
//! | lock LED   | GP16 | PWM slice 0 channel A; GPIO → 330 Ω → LED → GND (≈ 4 mA)       |
//! | status LED | GP17 | PWM slice 0 channel B; GPIO → 330 Ω → LED → GND (≈ 4 mA)       |
//! | USB        | —    | native USB, CDC-ACM serial to the box                          |
//!
//! Both LEDs share one PWM slice, so one configuration sets both duty cycles at once.

use embassy_rp::peripherals::{PIN_14, PIN_16, PIN_17, PWM_SLICE0, USB, WATCHDOG};
use embassy_rp::{Peri, Peripherals};

/// Contact closed when the input reads low (switch to ground, pull-up enabled).
pub const BUTTON_ACTIVE_LOW: bool = true;

/// USB identity. VID 0x1209 is pid.codes' open-source vendor ID; the PID is Lanterne's
/// provisional one (to be registered with pid.codes before the panel ships). The udev rule in
/// images/udev/99-lanterne-panel.rules matches these plus the product string.
pub const USB_VID: u16 = 0x1209;
pub const USB_PID: u16 = 0x4C50;
pub const USB_MANUFACTURER: &str = "Lanterne";
pub const USB_PRODUCT: &str = "Lanterne front panel";

pub struct Board {
    pub usb: Peri<'static, USB>,
    pub button: Peri<'static, PIN_14>,
    pub led_pwm: Peri<'static, PWM_SLICE0>,
    pub lock_led: Peri<'static, PIN_16>,
    pub status_led: Peri<'static, PIN_17>,
    pub watchdog: Peri<'static, WATCHDOG>,
}

impl Board {
    pub fn new(p: Peripherals) -> Self {
        Self {
            usb: p.USB,
            button: p.PIN_14,
            led_pwm: p.PWM_SLICE0,
            lock_led: p.PIN_16,
            status_led: p.PIN_17,
            watchdog: p.WATCHDOG,
        }
    }
}
