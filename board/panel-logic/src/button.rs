//! Debouncing and short/long press classification for the lock button.
//!
//! Short press fires on *release* (so a press that turns into a long press is never also a
//! short press); long press fires as soon as the threshold passes while the button is still
//! held, so the person holding it gets feedback without guessing when to let go.

use crate::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ButtonConfig {
    /// A level change must be stable this long to count (contact bounce is typically < 10 ms).
    pub debounce_ms: u32,
    /// Held at least this long: a long press.
    pub long_press_ms: u32,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        Self {
            debounce_ms: 20,
            long_press_ms: 1500,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ButtonEvent {
    Pressed,
    LongPressed,
}

/// Feed it raw samples (any rate well above 1/debounce); it reports debounced presses.
#[derive(Debug)]
pub struct Button {
    cfg: ButtonConfig,
    /// Debounced level.
    stable: bool,
    /// Last raw level and since when it has held.
    candidate: bool,
    candidate_since: Millis,
    pressed_at: Option<Millis>,
    long_reported: bool,
}

impl Button {
    pub fn new(cfg: ButtonConfig) -> Self {
        Self {
            cfg,
            stable: false,
            candidate: false,
            candidate_since: 0,
            pressed_at: None,
            long_reported: false,
        }
    }

    /// One raw sample (`true` = contact closed) taken at `now`.
    pub fn sample(&mut self, now: Millis, raw_pressed: bool) -> Option<ButtonEvent> {
        if raw_pressed != self.candidate {
            self.candidate = raw_pressed;
            self.candidate_since = now;
        }
        let settled = now.saturating_sub(self.candidate_since) >= u64::from(self.cfg.debounce_ms);
        if settled && self.candidate != self.stable {
            self.stable = self.candidate;
            if self.stable {
                // Time the press from the first raw edge: the bounce was part of the press.
                self.pressed_at = Some(self.candidate_since);
                self.long_reported = false;
            } else if self.pressed_at.take().is_some() && !self.long_reported {
                return Some(ButtonEvent::Pressed);
            }
        }
        if let Some(at) = self.pressed_at {
            // While a release is still being debounced, the press ended at the raw edge: a
            // press let go just before the threshold must not turn long during debounce.
            let held_until = if self.candidate {
                now
            } else {
                self.candidate_since
            };
            if !self.long_reported
                && held_until.saturating_sub(at) >= u64::from(self.cfg.long_press_ms)
            {
                self.long_reported = true;
                return Some(ButtonEvent::LongPressed);
            }
        }
        None
    }

    /// Debounced state.
    pub fn is_pressed(&self) -> bool {
        self.stable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples every 5 ms from `from` to `to` (exclusive) at a constant level.
    fn hold(
        b: &mut Button,
        from: Millis,
        to: Millis,
        level: bool,
    ) -> heapless::Vec<(Millis, ButtonEvent), 8> {
        let mut out = heapless::Vec::new();
        let mut t = from;
        while t < to {
            if let Some(e) = b.sample(t, level) {
                out.push((t, e)).unwrap();
            }
            t += 5;
        }
        out
    }

    #[test]
    fn short_press_fires_once_on_release() {
        let mut b = Button::new(ButtonConfig::default());
        assert!(hold(&mut b, 0, 100, false).is_empty());
        assert!(hold(&mut b, 100, 300, true).is_empty());
        assert!(b.is_pressed());
        let ev = hold(&mut b, 300, 400, false);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].1, ButtonEvent::Pressed);
        // Reported once the release has been stable for the debounce time.
        assert_eq!(ev[0].0, 320);
        assert!(!b.is_pressed());
    }

    #[test]
    fn bounce_shorter_than_debounce_is_ignored() {
        let mut b = Button::new(ButtonConfig::default());
        let mut events = 0;
        // 15 ms glitches every 50 ms: never stable for 20 ms.
        for t in (0..2000).step_by(5) {
            let level = t % 50 < 15;
            events += usize::from(b.sample(t, level).is_some());
        }
        assert_eq!(events, 0);
        assert!(!b.is_pressed());
    }

    #[test]
    fn bouncy_contact_gives_exactly_one_press() {
        let mut b = Button::new(ButtonConfig::default());
        let mut events = heapless::Vec::<ButtonEvent, 4>::new();
        // Closing: bounces for 10 ms, then solid for 200 ms, then bounces open.
        let trace = [
            (0, true),
            (2, false),
            (4, true),
            (7, false),
            (9, true),
            (210, false),
            (212, true),
            (214, false),
        ];
        let mut t = 0;
        let mut level = false;
        let mut next = 0;
        while t < 400 {
            while next < trace.len() && trace[next].0 <= t {
                level = trace[next].1;
                next += 1;
            }
            if let Some(e) = b.sample(t, level) {
                events.push(e).unwrap();
            }
            t += 1;
        }
        assert_eq!(events.as_slice(), &[ButtonEvent::Pressed]);
    }

    #[test]
    fn long_press_fires_while_held_and_release_adds_nothing() {
        let cfg = ButtonConfig {
            debounce_ms: 20,
            long_press_ms: 1000,
        };
        let mut b = Button::new(cfg);
        let ev = hold(&mut b, 0, 3000, true);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0], (1000, ButtonEvent::LongPressed));
        assert!(hold(&mut b, 3000, 3500, false).is_empty());
        // And the next short press still works.
        hold(&mut b, 3500, 3600, true);
        let ev = hold(&mut b, 3600, 3700, false);
        assert_eq!(ev.as_slice(), &[(3620, ButtonEvent::Pressed)]);
    }

    #[test]
    fn press_just_under_the_threshold_is_short() {
        let cfg = ButtonConfig {
            debounce_ms: 20,
            long_press_ms: 1000,
        };
        let mut b = Button::new(cfg);
        assert!(hold(&mut b, 0, 995, true).is_empty());
        let ev = hold(&mut b, 995, 1100, false);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].1, ButtonEvent::Pressed);
    }
}
