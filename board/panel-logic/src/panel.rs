//! The panel's state machine: what the box asked for, whether the box is alive, and what to
//! tell it. It owns no hardware; the caller feeds it decoded frames and button samples and
//! applies the LED levels that [`Panel::tick`] returns.

use heapless::Deque;
use lanterne_panel_protocol::{
    BoxToPanel, DecodeError, FaultCode, FirmwareVersion, LedPattern, PanelToBox, PROTOCOL_VERSION,
};

use crate::button::{Button, ButtonConfig, ButtonEvent};
use crate::heartbeat::HeartbeatWatch;
use crate::pattern::level;
use crate::Millis;

/// Messages waiting for the USB writer. Small: the box polls every second, and a backlog of
/// stale button presses is worse than a dropped one.
pub const OUTBOX_LEN: usize = 8;

/// Longest identify flash honoured, so a buggy box cannot leave the panel flashing for hours.
pub const MAX_IDENTIFY_MS: u16 = 60_000;

const IDENTIFY_PATTERN: LedPattern = LedPattern::Blink {
    on_ms: 100,
    off_ms: 100,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PanelConfig {
    pub button: ButtonConfig,
    /// Box silent this long: status LED shows the fault pattern. The box sends a heartbeat
    /// every second by default, so 3 s tolerates two lost ones.
    pub heartbeat_timeout_ms: u32,
    pub firmware: FirmwareVersion,
}

impl PanelConfig {
    pub const fn new(firmware: FirmwareVersion) -> Self {
        Self {
            button: ButtonConfig {
                debounce_ms: 20,
                long_press_ms: 1500,
            },
            heartbeat_timeout_ms: 3000,
            firmware,
        }
    }
}

/// PWM levels (`0..=pattern::LEVEL_MAX`) to show right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LedLevels {
    pub lock: u16,
    pub status: u16,
}

/// A change worth a log line on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Transition {
    BoxHeard,
    BoxLost,
}

#[derive(Debug)]
pub struct Panel {
    cfg: PanelConfig,
    button: Button,
    watch: HeartbeatWatch,
    /// What the box last asked for.
    lock: LedPattern,
    status: LedPattern,
    identify_until: Option<Millis>,
    /// Whether the previous tick considered the box alive (for edge detection).
    alive: bool,
    /// Heartbeat losses not yet reported to the box.
    losses: u16,
    /// This boot follows a watchdog reset, not yet reported.
    watchdog_reset: bool,
    bad_frames: u16,
    outbox: Deque<PanelToBox, OUTBOX_LEN>,
    dropped: u32,
}

impl Panel {
    /// A panel that has just booted. It queues a `Hello` and shows the fault pattern until
    /// the box speaks.
    pub fn new(cfg: PanelConfig) -> Self {
        let mut panel = Self {
            cfg,
            button: Button::new(cfg.button),
            watch: HeartbeatWatch::new(cfg.heartbeat_timeout_ms),
            lock: LedPattern::Off,
            // Until the box says otherwise we do not know whether anyone is watching, so the
            // status LED must not claim "nobody" (a rebooted panel next to a live box would).
            status: LedPattern::Fault,
            identify_until: None,
            alive: false,
            losses: 0,
            watchdog_reset: false,
            bad_frames: 0,
            outbox: Deque::new(),
            dropped: 0,
        };
        panel.queue(panel.hello());
        panel
    }

    fn hello(&self) -> PanelToBox {
        PanelToBox::Hello {
            protocol: PROTOCOL_VERSION,
            firmware: self.cfg.firmware,
        }
    }

    /// The last boot was caused by the watchdog: tell the box once it listens (with the first
    /// frame it sends; anything queued before that would be discarded unheard).
    pub fn note_watchdog_reset(&mut self) {
        self.watchdog_reset = true;
    }

    /// A frame arrived (or failed to decode) at `now`.
    pub fn on_frame(&mut self, now: Millis, frame: Result<BoxToPanel, DecodeError>) {
        let msg = match frame {
            Ok(msg) => msg,
            Err(_) => {
                // Garbage does not count as the box being alive; it is reported in bulk with
                // the next good frame rather than flooding a line that is already in trouble.
                self.bad_frames = self.bad_frames.saturating_add(1);
                return;
            }
        };
        self.watch.heard(now);
        if core::mem::take(&mut self.watchdog_reset) {
            self.queue(PanelToBox::Fault {
                code: FaultCode::WatchdogReset,
                count: 1,
            });
        }
        if self.losses > 0 {
            let count = core::mem::take(&mut self.losses);
            self.queue(PanelToBox::Fault {
                code: FaultCode::HeartbeatLost,
                count,
            });
        }
        if self.bad_frames > 0 {
            let count = core::mem::take(&mut self.bad_frames);
            self.queue(PanelToBox::Fault {
                code: FaultCode::BadFrames,
                count,
            });
        }
        match msg {
            BoxToPanel::SetLeds { lock, status } => {
                self.lock = lock;
                self.status = status;
            }
            BoxToPanel::Heartbeat { seq } => self.queue(PanelToBox::HeartbeatReply { seq }),
            BoxToPanel::Identify { duration_ms } => {
                self.identify_until = Some(now + u64::from(duration_ms.min(MAX_IDENTIFY_MS)));
            }
            BoxToPanel::QueryVersion => self.queue(self.hello()),
        }
    }

    /// One raw button sample. A debounced press is queued for the box only while the box is
    /// alive: a press nobody could act on must not surface minutes later as a surprise lock.
    pub fn on_button(&mut self, now: Millis, raw_pressed: bool) -> Option<ButtonEvent> {
        let event = self.button.sample(now, raw_pressed)?;
        if self.watch.is_alive(now) {
            self.queue(match event {
                ButtonEvent::Pressed => PanelToBox::ButtonPressed,
                ButtonEvent::LongPressed => PanelToBox::ButtonLongPressed,
            });
        }
        Some(event)
    }

    /// Advances time: returns the LED levels to show and, if the box just appeared or
    /// vanished, which.
    pub fn tick(&mut self, now: Millis) -> (LedLevels, Option<Transition>) {
        let alive = self.watch.is_alive(now);
        let transition = match (self.alive, alive) {
            (false, true) => Some(Transition::BoxHeard),
            (true, false) => {
                self.losses = self.losses.saturating_add(1);
                Some(Transition::BoxLost)
            }
            _ => None,
        };
        self.alive = alive;

        if self.identify_until.is_some_and(|until| now >= until) {
            self.identify_until = None;
        }
        let levels = if self.identify_until.is_some() {
            let l = level(IDENTIFY_PATTERN, now);
            LedLevels { lock: l, status: l }
        } else {
            LedLevels {
                // The lock LED keeps the last known lock state: the stations hold their lock on
                // their own, so it is still the best guess while the box is away.
                lock: level(self.lock, now),
                status: level(self.displayed_status(now), now),
            }
        };
        (levels, transition)
    }

    /// The status pattern actually shown: the box's request while it is alive, the fault
    /// pattern otherwise.
    pub fn displayed_status(&self, now: Millis) -> LedPattern {
        if self.watch.is_alive(now) {
            self.status
        } else {
            LedPattern::Fault
        }
    }

    /// The lock pattern the box last asked for.
    pub fn requested_lock(&self) -> LedPattern {
        self.lock
    }

    pub fn box_alive(&self, now: Millis) -> bool {
        self.watch.is_alive(now)
    }

    /// Next message for the box, oldest first.
    pub fn pop_outgoing(&mut self) -> Option<PanelToBox> {
        self.outbox.pop_front()
    }

    /// Throws away queued messages (nobody is listening: USB host gone).
    pub fn discard_outgoing(&mut self) {
        self.outbox.clear();
    }

    /// Messages dropped because the outbox was full.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    fn queue(&mut self, msg: PanelToBox) {
        if self.outbox.push_back(msg).is_err() {
            self.dropped = self.dropped.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::{GLOW, LEVEL_MAX};

    const FW: FirmwareVersion = FirmwareVersion {
        major: 1,
        minor: 2,
        patch: 3,
    };

    fn drain(p: &mut Panel) -> heapless::Vec<PanelToBox, OUTBOX_LEN> {
        let mut v = heapless::Vec::new();
        while let Some(m) = p.pop_outgoing() {
            v.push(m).unwrap();
        }
        v
    }

    fn status_levels(p: &mut Panel, from: Millis, to: Millis) -> (u16, u16) {
        let mut lo = u16::MAX;
        let mut hi = 0;
        for t in from..to {
            let l = p.tick(t).0.status;
            lo = lo.min(l);
            hi = hi.max(l);
        }
        (lo, hi)
    }

    #[test]
    fn boots_with_hello_and_fault_pattern_until_the_box_speaks() {
        let mut p = Panel::new(PanelConfig::new(FW));
        assert_eq!(
            drain(&mut p).as_slice(),
            &[PanelToBox::Hello {
                protocol: PROTOCOL_VERSION,
                firmware: FW
            }]
        );
        assert_eq!(p.displayed_status(0), LedPattern::Fault);
        let (lo, hi) = status_levels(&mut p, 0, 2000);
        assert!(lo >= GLOW && hi == LEVEL_MAX);
    }

    #[test]
    fn follows_the_box_then_shows_fault_when_it_goes_silent() {
        let mut p = Panel::new(PanelConfig::new(FW));
        drain(&mut p);
        p.on_frame(
            100,
            Ok(BoxToPanel::SetLeds {
                lock: LedPattern::Steady,
                status: LedPattern::Off,
            }),
        );
        assert_eq!(p.tick(100).1, Some(Transition::BoxHeard));
        // Box alive and says "nobody watched": status dark, lock lit.
        let (lo, hi) = status_levels(&mut p, 101, 3099);
        assert_eq!((lo, hi), (0, 0));
        assert_eq!(p.tick(3099).0.lock, LEVEL_MAX);
        // Three seconds of silence: fault pattern, never dark.
        assert_eq!(p.tick(3100).1, Some(Transition::BoxLost));
        let (lo, _) = status_levels(&mut p, 3100, 10_000);
        assert!(lo >= GLOW, "status went dark with the box silent");
        // Lock LED keeps the last known state.
        assert_eq!(p.tick(10_000).0.lock, LEVEL_MAX);
        // Box returns: the loss is reported, requested pattern resumes.
        p.on_frame(10_001, Ok(BoxToPanel::Heartbeat { seq: 9 }));
        assert_eq!(p.tick(10_001).1, Some(Transition::BoxHeard));
        assert_eq!(
            drain(&mut p).as_slice(),
            &[
                PanelToBox::Fault {
                    code: FaultCode::HeartbeatLost,
                    count: 1
                },
                PanelToBox::HeartbeatReply { seq: 9 },
            ]
        );
        assert_eq!(p.tick(10_002).0.status, 0);
    }

    #[test]
    fn watchdog_reset_is_reported_once_the_box_speaks() {
        let mut p = Panel::new(PanelConfig::new(FW));
        p.note_watchdog_reset();
        // Nobody listening yet: the USB side discards what is queued now.
        p.discard_outgoing();
        p.on_frame(10, Ok(BoxToPanel::QueryVersion));
        assert_eq!(
            drain(&mut p).as_slice(),
            &[
                PanelToBox::Fault {
                    code: FaultCode::WatchdogReset,
                    count: 1
                },
                PanelToBox::Hello {
                    protocol: PROTOCOL_VERSION,
                    firmware: FW
                },
            ]
        );
        p.on_frame(20, Ok(BoxToPanel::Heartbeat { seq: 1 }));
        assert_eq!(
            drain(&mut p).as_slice(),
            &[PanelToBox::HeartbeatReply { seq: 1 }]
        );
    }

    #[test]
    fn rebooted_panel_does_not_show_off_before_set_leds() {
        let mut p = Panel::new(PanelConfig::new(FW));
        p.on_frame(0, Ok(BoxToPanel::Heartbeat { seq: 1 }));
        assert!(p.box_alive(0));
        assert_eq!(p.displayed_status(0), LedPattern::Fault);
        let (lo, _) = status_levels(&mut p, 0, 1000);
        assert!(lo >= GLOW);
    }

    #[test]
    fn heartbeats_keep_the_requested_pattern() {
        let mut p = Panel::new(PanelConfig::new(FW));
        p.on_frame(
            0,
            Ok(BoxToPanel::SetLeds {
                lock: LedPattern::Off,
                status: LedPattern::Steady,
            }),
        );
        for s in 1..60u16 {
            let t = u64::from(s) * 1000;
            p.on_frame(t, Ok(BoxToPanel::Heartbeat { seq: s }));
            assert_eq!(p.tick(t + 999).0.status, LEVEL_MAX);
        }
    }

    #[test]
    fn garbage_is_not_a_heartbeat_and_is_reported_in_bulk() {
        let mut p = Panel::new(PanelConfig::new(FW));
        drain(&mut p);
        for t in 0..5 {
            p.on_frame(t * 1000, Err(DecodeError::Crc));
            assert!(!p.box_alive(t * 1000));
        }
        p.on_frame(5000, Ok(BoxToPanel::QueryVersion));
        assert_eq!(
            drain(&mut p).as_slice(),
            &[
                PanelToBox::Fault {
                    code: FaultCode::BadFrames,
                    count: 5
                },
                PanelToBox::Hello {
                    protocol: PROTOCOL_VERSION,
                    firmware: FW
                },
            ]
        );
    }

    #[test]
    fn button_presses_reach_the_box_only_while_it_is_alive() {
        let mut p = Panel::new(PanelConfig::new(FW));
        drain(&mut p);
        let press = |p: &mut Panel, from: Millis, hold: Millis| {
            let mut seen = None;
            for t in (from..from + hold).step_by(5) {
                seen = seen.or(p.on_button(t, true));
            }
            for t in (from + hold..from + hold + 100).step_by(5) {
                seen = seen.or(p.on_button(t, false));
            }
            seen
        };
        // Box never heard: the press is seen but not queued.
        assert_eq!(press(&mut p, 0, 200), Some(ButtonEvent::Pressed));
        assert!(drain(&mut p).is_empty());
        p.on_frame(1000, Ok(BoxToPanel::Heartbeat { seq: 1 }));
        drain(&mut p);
        assert_eq!(press(&mut p, 1000, 200), Some(ButtonEvent::Pressed));
        assert_eq!(drain(&mut p).as_slice(), &[PanelToBox::ButtonPressed]);
        p.on_frame(2000, Ok(BoxToPanel::Heartbeat { seq: 2 }));
        drain(&mut p);
        assert_eq!(press(&mut p, 2000, 1600), Some(ButtonEvent::LongPressed));
        assert_eq!(drain(&mut p).as_slice(), &[PanelToBox::ButtonLongPressed]);
    }

    #[test]
    fn identify_flashes_both_leds_for_a_bounded_time() {
        let mut p = Panel::new(PanelConfig::new(FW));
        p.on_frame(
            0,
            Ok(BoxToPanel::SetLeds {
                lock: LedPattern::Off,
                status: LedPattern::Off,
            }),
        );
        p.on_frame(0, Ok(BoxToPanel::Identify { duration_ms: 1000 }));
        assert_eq!(
            p.tick(50).0,
            LedLevels {
                lock: LEVEL_MAX,
                status: LEVEL_MAX
            }
        );
        assert_eq!(p.tick(150).0, LedLevels { lock: 0, status: 0 });
        assert_eq!(p.tick(1000).0, LedLevels { lock: 0, status: 0 });
        p.on_frame(1000, Ok(BoxToPanel::Heartbeat { seq: 1 }));
        p.on_frame(
            1000,
            Ok(BoxToPanel::Identify {
                duration_ms: u16::MAX,
            }),
        );
        p.on_frame(60_500, Ok(BoxToPanel::Heartbeat { seq: 2 }));
        // 60_850 is in an "on" half of the 100/100 flash, 61_600 would be too.
        assert_eq!(p.tick(60_850).0.lock, LEVEL_MAX);
        p.on_frame(61_500, Ok(BoxToPanel::Heartbeat { seq: 3 }));
        assert_eq!(p.tick(61_600).0.lock, 0, "identify outlived its cap");
    }

    #[test]
    fn full_outbox_drops_and_counts() {
        let mut p = Panel::new(PanelConfig::new(FW));
        for s in 0..20 {
            p.on_frame(0, Ok(BoxToPanel::Heartbeat { seq: s }));
        }
        assert_eq!(drain(&mut p).len(), OUTBOX_LEN);
        assert_eq!(p.dropped(), 20 + 1 - OUTBOX_LEN as u32);
    }
}
