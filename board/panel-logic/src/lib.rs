//! What the Lanterne front panel *does*, separated from the chip it runs on.
//!
//! The RP2040 firmware (`firmware/`) is thin wiring around [`Panel`]: it samples the button
//! pin, feeds received bytes to a [`FrameDecoder`](lanterne_panel_protocol::FrameDecoder),
//! calls [`Panel::tick`] and writes the returned brightness levels to PWM. The box's test suite
//! runs the very same [`Panel`] behind a pseudo-terminal as its simulated device, and the
//! Pi-GPIO backend reuses [`Button`] and [`pattern::level`]. Everything takes the current time
//! as an argument ([`Millis`] since boot), so the host tests drive time explicitly.
//!
//! The one rule this crate exists to keep: **the status LED never goes dark because the box
//! went quiet.** Until the box has been heard, and whenever it has not been heard for the
//! heartbeat timeout, the status LED shows [`LedPattern::Fault`].

#![no_std]
#![forbid(unsafe_code)]

pub mod button;
pub mod heartbeat;
pub mod panel;
pub mod pattern;

pub use button::{Button, ButtonConfig, ButtonEvent};
pub use heartbeat::HeartbeatWatch;
pub use lanterne_panel_protocol::LedPattern;
pub use panel::{LedLevels, Panel, PanelConfig};

/// Milliseconds since boot. 64 bits, so it does not wrap in the life of a panel.
pub type Millis = u64;
