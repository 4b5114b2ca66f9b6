//! Turns an [`LedPattern`] and the time into a PWM duty level.
//!
//! Levels are linear duty in per-mille (`0..=LEVEL_MAX`); the device scales them to its PWM
//! counter. Breathing applies a square curve because the eye is far more sensitive to changes
//! at low duty, and a linear ramp looks like "mostly on, brief dip".

use crate::{LedPattern, Millis};

/// Full brightness.
pub const LEVEL_MAX: u16 = 1000;

/// Where breathing and the fault pattern bottom out: dim but unmistakably lit, so neither can
/// be read as "off" at a glance.
pub const GLOW: u16 = 60;

/// The fault pattern repeats every second: two short full-brightness flashes over a glow.
pub const FAULT_PERIOD_MS: u64 = 1000;
const FAULT_FLASH_MS: u64 = 120;

/// Shortest breathing period honoured; anything faster is a flicker, not a breath.
pub const MIN_BREATHE_MS: u16 = 200;

/// Brightness of `pattern` at time `t`. Patterns are phase-locked to `t`, so two LEDs with
/// the same pattern blink together.
pub fn level(pattern: LedPattern, t: Millis) -> u16 {
    match pattern {
        LedPattern::Off => 0,
        LedPattern::Steady => LEVEL_MAX,
        LedPattern::Blink { on_ms: 0, .. } => 0,
        LedPattern::Blink { off_ms: 0, .. } => LEVEL_MAX,
        LedPattern::Blink { on_ms, off_ms } => {
            let period = u64::from(on_ms) + u64::from(off_ms);
            if t % period < u64::from(on_ms) {
                LEVEL_MAX
            } else {
                0
            }
        }
        LedPattern::Breathe { period_ms } => {
            let period = u64::from(period_ms.max(MIN_BREATHE_MS));
            let phase = t % period;
            let half = period / 2;
            // Triangle wave 0..=1000 rising over the first half, falling over the second.
            let x = if phase < half {
                phase * 1000 / half
            } else {
                (period - phase) * 1000 / (period - half)
            };
            let eased = x * x / 1000;
            GLOW + (eased * u64::from(LEVEL_MAX - GLOW) / 1000) as u16
        }
        LedPattern::Fault => {
            let phase = t % FAULT_PERIOD_MS;
            let flash =
                phase < FAULT_FLASH_MS || (2 * FAULT_FLASH_MS..3 * FAULT_FLASH_MS).contains(&phase);
            if flash {
                LEVEL_MAX
            } else {
                GLOW
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_and_off() {
        for t in [0, 1, 999, 123_456_789] {
            assert_eq!(level(LedPattern::Steady, t), LEVEL_MAX);
            assert_eq!(level(LedPattern::Off, t), 0);
        }
    }

    #[test]
    fn blink_timing() {
        let p = LedPattern::Blink {
            on_ms: 300,
            off_ms: 700,
        };
        assert_eq!(level(p, 0), LEVEL_MAX);
        assert_eq!(level(p, 299), LEVEL_MAX);
        assert_eq!(level(p, 300), 0);
        assert_eq!(level(p, 999), 0);
        assert_eq!(level(p, 1000), LEVEL_MAX);
        let lit = (0..10_000).filter(|&t| level(p, t) > 0).count();
        assert_eq!(lit, 3000);
    }

    #[test]
    fn degenerate_blinks_do_not_divide_by_zero() {
        assert_eq!(
            level(
                LedPattern::Blink {
                    on_ms: 0,
                    off_ms: 0
                },
                5
            ),
            0
        );
        assert_eq!(
            level(
                LedPattern::Blink {
                    on_ms: 10,
                    off_ms: 0
                },
                5
            ),
            LEVEL_MAX
        );
        assert_eq!(
            level(
                LedPattern::Blink {
                    on_ms: 0,
                    off_ms: 10
                },
                5
            ),
            0
        );
    }

    #[test]
    fn breathe_rises_then_falls_and_never_goes_dark() {
        let p = LedPattern::Breathe { period_ms: 2000 };
        assert_eq!(level(p, 0), GLOW);
        assert_eq!(level(p, 1000), LEVEL_MAX);
        assert_eq!(level(p, 2000), GLOW);
        let mut prev = level(p, 0);
        for t in 1..=1000 {
            let l = level(p, t);
            assert!(l >= prev, "not rising at {t}");
            prev = l;
        }
        for t in 1001..2000 {
            let l = level(p, t);
            assert!(l <= prev, "not falling at {t}");
            prev = l;
        }
        // Quarter way up the ramp the square curve is well below half brightness.
        assert!(level(p, 500) < LEVEL_MAX / 3);
        // Silly periods are clamped, not a divide-by-zero.
        assert!(level(LedPattern::Breathe { period_ms: 0 }, 77) >= GLOW);
    }

    #[test]
    fn fault_pattern_is_never_dark_and_has_two_flashes_per_second() {
        let mut flashes = 0;
        let mut prev = 0;
        for t in 0..FAULT_PERIOD_MS * 5 {
            let l = level(LedPattern::Fault, t);
            assert!(l >= GLOW, "fault pattern dark at {t}");
            if l == LEVEL_MAX && prev != LEVEL_MAX {
                flashes += 1;
            }
            prev = l;
        }
        assert_eq!(flashes, 10);
    }
}
