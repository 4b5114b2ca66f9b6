//! Has the box been heard recently enough?

use crate::Millis;

/// Tracks when the box last sent a valid frame. "Never heard" counts as lost: a panel that
/// powers up next to a dead box must show the fault pattern, not a reassuring dark LED.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatWatch {
    timeout_ms: u32,
    last_heard: Option<Millis>,
}

impl HeartbeatWatch {
    pub const fn new(timeout_ms: u32) -> Self {
        Self {
            timeout_ms,
            last_heard: None,
        }
    }

    pub fn heard(&mut self, now: Millis) {
        self.last_heard = Some(now);
    }

    pub fn is_alive(&self, now: Millis) -> bool {
        self.last_heard
            .is_some_and(|t| now.saturating_sub(t) < u64::from(self.timeout_ms))
    }

    /// The box was heard at least once since boot.
    pub fn ever_heard(&self) -> bool {
        self.last_heard.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_heard_is_not_alive() {
        let w = HeartbeatWatch::new(3000);
        assert!(!w.is_alive(0));
        assert!(!w.is_alive(10_000));
        assert!(!w.ever_heard());
    }

    #[test]
    fn alive_until_the_timeout_elapses() {
        let mut w = HeartbeatWatch::new(3000);
        w.heard(1000);
        assert!(w.is_alive(1000));
        assert!(w.is_alive(3999));
        assert!(!w.is_alive(4000));
        w.heard(4500);
        assert!(w.is_alive(5000));
    }
}
