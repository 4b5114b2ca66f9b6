//! What a Windows station shows its user, so far: the "Écran observé" badge, a small topmost
//! window in the top-right corner of the desktop while video leaves the station. The lock
//! screen, teachers' messages and input blocking are not there yet: they are refused with a
//! clear error, so nobody believes a Windows screen is locked when it is not.

use std::sync::Mutex;

use lanterne_winsys::capture::desktop_rect;
use lanterne_winsys::window::{ColourWindow, Rect};
use lanterne_wire::Shown;

use crate::screen::Screen;

/// The badge's text (the same words as the X11 overlay's default).
pub const WATCHED_LABEL: &str = "Écran observé";
const BADGE_SIZE: (u32, u32) = (160, 32);
const BADGE_RGB: [u8; 3] = [180, 30, 30];
const NOT_YET: &str = "not available on Windows stations yet";

/// The desktop of the Windows session the agent runs in.
pub struct WindowsScreen {
    badge: Mutex<Option<ColourWindow>>,
    dismissed: tokio::sync::broadcast::Sender<u64>,
}

impl WindowsScreen {
    pub fn new() -> Self {
        WindowsScreen {
            badge: Mutex::new(None),
            dismissed: tokio::sync::broadcast::channel(1).0,
        }
    }
}

impl Default for WindowsScreen {
    fn default() -> Self {
        Self::new()
    }
}

impl Screen for WindowsScreen {
    fn lock(&self, _message: &str) -> Result<(), String> {
        Err(format!("the lock screen is {NOT_YET}"))
    }

    fn unlock(&self) -> Result<(), String> {
        Ok(())
    }

    fn set_watched(&self, on: bool) -> Result<(), String> {
        let mut badge = self.badge.lock().unwrap_or_else(|p| p.into_inner());
        if !on {
            *badge = None;
            return Ok(());
        }
        if badge.is_none() {
            let (left, top, width, _) = desktop_rect();
            let rect = Rect {
                x: left + width as i32 - BADGE_SIZE.0 as i32 - 8,
                y: top + 8,
                width: BADGE_SIZE.0,
                height: BADGE_SIZE.1,
            };
            let window = ColourWindow::open_with_text(rect, BADGE_RGB, WATCHED_LABEL)
                .map_err(|e| format!("cannot show the watched indicator: {e}"))?;
            *badge = Some(window);
        }
        Ok(())
    }

    fn show_message(&self, _id: u64, _from: &str, _text: &str) -> Result<(), String> {
        Err(format!("messages are {NOT_YET}"))
    }

    fn dismissals(&self) -> tokio::sync::broadcast::Receiver<u64> {
        self.dismissed.subscribe()
    }

    fn shown(&self) -> Shown {
        Shown {
            locked: false,
            watched_indicator: self
                .badge
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some(),
            indicator_available: true,
        }
    }

    fn block_input(&self, on: bool) -> Result<(), String> {
        if on {
            return Err(format!("blocking input is {NOT_YET}"));
        }
        Ok(())
    }
}
