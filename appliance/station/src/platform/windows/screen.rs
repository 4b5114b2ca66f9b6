//! What a Windows station shows its user, so far: the "Écran observé" badge (a small topmost
//! window in the top-right corner of the desktop while video leaves the station), the lock
//! screen (a topmost window on every monitor, keyboard and mouse swallowed by low-level hooks;
//! see `lanterne_winsys::window` for what Windows never lets a program block), and input
//! blocking for full-screen demos, and teachers' messages (a standard Windows message box;
//! its OK is the read receipt). Colours and words are the X11 overlay's
//! (`lanterne_overlay::theme`).

use std::collections::HashMap;
use std::sync::Mutex;

use lanterne_winsys::capture::desktop_rect;
use lanterne_winsys::message::MessageBox;
use lanterne_winsys::window::{monitors, ColourWindow, Rect, TopWindows};
use lanterne_wire::Shown;

use crate::screen::Screen;

/// The badge's text (the same words as the X11 overlay's default).
pub const WATCHED_LABEL: &str = "Écran observé";
const BADGE_SIZE: (u32, u32) = (160, 32);
const BADGE_RGB: [u8; 3] = [0xb9, 0x1c, 0x1c];
/// The lock screen's night blue.
pub const LOCK_RGB: [u8; 3] = [0x0b, 0x14, 0x26];
/// Shown when the teacher locks without a message of their own.
pub const DEFAULT_LOCK_MESSAGE: &str = "Écrans verrouillés — regardez le tableau";
/// Most messages on screen at once; more are refused until some are read.
const MAX_OPEN_MESSAGES: usize = 16;

/// The desktop of the Windows session the agent runs in.
pub struct WindowsScreen {
    badge: Mutex<Option<ColourWindow>>,
    lock: Mutex<Option<TopWindows>>,
    /// Input blocked without a lock (full-screen demo).
    blocked: Mutex<Option<TopWindows>>,
    messages: Mutex<HashMap<u64, MessageBox>>,
    dismissed: tokio::sync::broadcast::Sender<u64>,
}

impl WindowsScreen {
    pub fn new() -> Self {
        WindowsScreen {
            badge: Mutex::new(None),
            lock: Mutex::new(None),
            blocked: Mutex::new(None),
            messages: Mutex::new(HashMap::new()),
            dismissed: tokio::sync::broadcast::channel(crate::screen::DISMISSALS).0,
        }
    }
}

impl Default for WindowsScreen {
    fn default() -> Self {
        Self::new()
    }
}

impl Screen for WindowsScreen {
    fn lock(&self, message: &str) -> Result<(), String> {
        let text = match message.trim() {
            "" => DEFAULT_LOCK_MESSAGE,
            m => m,
        };
        let mut rects = monitors();
        if rects.is_empty() {
            let (x, y, width, height) = desktop_rect();
            rects.push(Rect {
                x,
                y,
                width,
                height,
            });
        }
        // A new lock (another message) goes up before the old one comes down: no gap.
        let windows = TopWindows::show(&rects, LOCK_RGB, text, true)
            .map_err(|e| format!("cannot lock the screen: {e}"))?;
        *self.lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(windows);
        Ok(())
    }

    fn unlock(&self) -> Result<(), String> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
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

    fn show_message(&self, id: u64, from: &str, text: &str) -> Result<(), String> {
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        messages.retain(|_, m| m.is_open());
        if messages.contains_key(&id) {
            return Ok(());
        }
        if messages.len() >= MAX_OPEN_MESSAGES {
            return Err(format!(
                "{MAX_OPEN_MESSAGES} messages are already waiting to be read on this screen"
            ));
        }
        let dismissed = self.dismissed.clone();
        let shown = MessageBox::show(
            &format!("Message de {from}"),
            text,
            Box::new(move || {
                let _ = dismissed.send(id);
            }),
        )
        .map_err(|e| format!("cannot show the message: {e}"))?;
        messages.insert(id, shown);
        Ok(())
    }

    fn dismissals(&self) -> tokio::sync::broadcast::Receiver<u64> {
        self.dismissed.subscribe()
    }

    fn shown(&self) -> Shown {
        Shown {
            locked: self
                .lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some(),
            watched_indicator: self
                .badge
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some(),
            indicator_available: true,
        }
    }

    fn set_shown_to_class(&self, on: bool) -> Result<(), String> {
        if on {
            return Err(
                "the \"shown to the class\" banner is not available on Windows stations yet".into(),
            );
        }
        Ok(())
    }

    fn block_input(&self, on: bool) -> Result<(), String> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if !on {
            blocked.take();
        } else if blocked.is_none() {
            *blocked = Some(
                TopWindows::show(&[], LOCK_RGB, "", true)
                    .map_err(|e| format!("cannot block input: {e}"))?,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Under Wine on Xvfb (scripts/test-windows.sh) or on a real PC: what the screen shows is
    //! read back with the same GDI capture the station streams.

    use super::*;
    use lanterne_winsys::capture::DesktopCapture;

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 8)
    }

    /// Waits (up to 10 s) until the desktop's pixel at (`x`, `y`) is about `rgb`.
    fn wait_for(x: u32, y: u32, rgb: [u8; 3]) -> [u8; 3] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut capture = DesktopCapture::new();
        loop {
            let seen = capture.grab().unwrap().rgb_at(x, y).unwrap();
            if close(seen, rgb) || std::time::Instant::now() > deadline {
                return seen;
            }
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_lock_covers_the_screen_and_goes_and_the_badge_shows_while_watched() {
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let (left, top, width, height) = desktop_rect();
        let teal = [20, 160, 150];
        let _background = ColourWindow::open(
            Rect {
                x: left,
                y: top,
                width,
                height,
            },
            teal,
        )
        .unwrap();
        let (x, y) = (width / 4, height / 2);
        assert_eq!(wait_for(x, y, teal), teal);

        let screen = WindowsScreen::new();
        assert!(!screen.shown().locked);
        screen.lock("").unwrap();
        assert!(screen.shown().locked);
        let seen = wait_for(x, y, LOCK_RGB);
        assert!(close(seen, LOCK_RGB), "locked screen shows {seen:?}");
        // Another message replaces the lock without a gap.
        screen.lock("Regardez le tableau").unwrap();
        assert!(close(wait_for(x, y, LOCK_RGB), LOCK_RGB));
        screen.unlock().unwrap();
        assert!(!screen.shown().locked);
        let seen = wait_for(x, y, teal);
        assert!(close(seen, teal), "unlocked screen shows {seen:?}");

        // The badge sits in the top-right corner while watched.
        screen.set_watched(true).unwrap();
        assert!(screen.shown().watched_indicator);
        let (bx, by) = (width - 20, 12);
        let seen = wait_for(bx, by, BADGE_RGB);
        assert!(close(seen, BADGE_RGB), "badge corner shows {seen:?}");
        screen.set_watched(false).unwrap();
        assert!(close(wait_for(bx, by, teal), teal));
    }

    #[test]
    fn a_message_stays_until_the_student_presses_ok_and_that_is_the_receipt() {
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let screen = WindowsScreen::new();
        let mut dismissals = screen.dismissals();
        screen
            .show_message(7, "M. Martin", "Enregistrez votre travail.")
            .unwrap();
        // The same message again is not a second box.
        screen
            .show_message(7, "M. Martin", "Enregistrez votre travail.")
            .unwrap();
        assert!(dismissals.try_recv().is_err(), "nothing read yet");
        let messages = screen.messages.lock().unwrap();
        assert_eq!(messages.len(), 1);
        assert!(messages[&7].press_ok());
        drop(messages);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let read = rt
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(10), dismissals.recv()).await
            })
            .expect("the receipt within 10 s")
            .unwrap();
        assert_eq!(read, 7);
    }
}
