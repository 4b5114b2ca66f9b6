//! What a Windows station shows its user: the "Écran observé" badge (a small topmost window
//! in the top-right corner of the desktop while video leaves the station), the lock screen (a
//! topmost window on every monitor, keyboard and mouse swallowed by low-level hooks; see
//! `lanterne_winsys::window` for what Windows never lets a program block), input blocking for
//! full-screen demos, teachers' messages (a standard Windows message box; its OK is the read
//! receipt), remote help with the student's consent ([`help`]: prompt, banner, `SendInput`),
//! the raised hand (Ctrl+Alt+H, with a small indicator in the bottom-right corner while it is
//! up), the "shown to the class" banner, and where the demo player paints. Colours and words
//! are the X11 overlay's (`lanterne_overlay::theme`, `lanterne_overlay::scene`).
//!
//! Remote-help input never reaches a locked screen: it is refused while the lock is up (and
//! the lock's hooks would swallow it anyway).

mod help;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lanterne_winsys::capture::desktop_rect;
use lanterne_winsys::hotkey::{Combo, HotKeys};
use lanterne_winsys::message::MessageBox;
use lanterne_winsys::window::{monitors, ColourWindow, Rect, TopWindows};
use lanterne_wire::{HelpAsk, InputEvent, Shown};

use crate::screen::{HelpEvent, Screen, StudentEvent};

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
/// The "shown to the class" banner: the X11 overlay's words and blue.
pub const CLASS_BANNER_TEXT: &str = "Votre écran est montré à la classe";
pub const CLASS_BANNER_RGB: [u8; 3] = [0x1d, 0x4e, 0xd8];
const CLASS_BANNER_SIZE: (u32, u32) = (300, 36);
/// The raised hand's indicator (bottom-right corner) while the hand is up.
pub const HAND_LABEL: &str = "Main levée — Ctrl+Alt+H pour la baisser";
pub const HAND_RGB: [u8; 3] = [0xb4, 0x53, 0x09];
const HAND_SIZE: (u32, u32) = (300, 32);
/// The X11 overlay's note when the teacher has seen the hand.
const HAND_SEEN_TEXT: &str = "L'enseignant a vu votre main levée.";
const VK_H: u16 = 0x48;

/// Every monitor's rectangle, or the whole desktop when Windows lists none.
pub(super) fn monitor_rects() -> Vec<Rect> {
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
    rects
}

/// The raised hand: Ctrl+Alt+H toggles it, the teacher clears it.
struct Hand {
    up: AtomicBool,
    indicator: Mutex<Option<ColourWindow>>,
    events: tokio::sync::broadcast::Sender<StudentEvent>,
}

impl Hand {
    /// Puts the hand up or down, with its indicator; reports it when `report`.
    fn set(&self, up: bool, report: bool) {
        self.up.store(up, Ordering::SeqCst);
        let mut indicator = self.indicator.lock().unwrap_or_else(|p| p.into_inner());
        if !up {
            *indicator = None;
        } else if indicator.is_none() {
            let (left, top, width, height) = desktop_rect();
            let rect = Rect {
                x: left + width as i32 - HAND_SIZE.0 as i32 - 8,
                y: top + height as i32 - HAND_SIZE.1 as i32 - 48,
                width: HAND_SIZE.0,
                height: HAND_SIZE.1,
            };
            match ColourWindow::open_with_text(rect, HAND_RGB, HAND_LABEL) {
                Ok(w) => *indicator = Some(w),
                Err(e) => tracing::warn!("cannot show the raised-hand indicator: {e}"),
            }
        }
        drop(indicator);
        if report {
            let _ = self.events.send(StudentEvent::Hand(up));
        }
    }
}

/// The desktop of the Windows session the agent runs in.
pub struct WindowsScreen {
    badge: Mutex<Option<ColourWindow>>,
    lock: Mutex<Option<TopWindows>>,
    /// Input blocked without a lock (full-screen demo).
    blocked: Mutex<Option<TopWindows>>,
    messages: Mutex<HashMap<u64, MessageBox>>,
    dismissed: tokio::sync::broadcast::Sender<u64>,
    help: Option<help::RemoteHelp>,
    help_events: tokio::sync::broadcast::Sender<HelpEvent>,
    class_banner: Mutex<Option<TopWindows>>,
    hand: Arc<Hand>,
    /// Ctrl+Alt+H; None when another program holds it.
    _hand_key: Option<HotKeys>,
    /// The note that the teacher saw the hand.
    hand_seen: Mutex<Option<MessageBox>>,
}

impl WindowsScreen {
    pub fn new() -> Self {
        let help_events = tokio::sync::broadcast::channel(crate::screen::DISMISSALS).0;
        let help = help::RemoteHelp::new(help_events.clone())
            .map_err(|e| tracing::warn!("remote help is not available: {e}"))
            .ok();
        let hand = Arc::new(Hand {
            up: AtomicBool::new(false),
            indicator: Mutex::new(None),
            events: tokio::sync::broadcast::channel(crate::screen::STUDENT_EVENTS).0,
        });
        let toggled = hand.clone();
        let hand_key = HotKeys::register(
            &[Combo {
                ctrl: true,
                alt: true,
                shift: false,
                vk: VK_H,
            }],
            Box::new(move |_| {
                let up = !toggled.up.load(Ordering::SeqCst);
                toggled.set(up, true);
            }),
        )
        .map_err(|e| tracing::warn!("Ctrl+Alt+H is held by another program: {e}"))
        .ok();
        WindowsScreen {
            badge: Mutex::new(None),
            lock: Mutex::new(None),
            blocked: Mutex::new(None),
            messages: Mutex::new(HashMap::new()),
            dismissed: tokio::sync::broadcast::channel(crate::screen::DISMISSALS).0,
            help,
            help_events,
            class_banner: Mutex::new(None),
            hand,
            _hand_key: hand_key,
            hand_seen: Mutex::new(None),
        }
    }

    fn help(&self) -> Result<&help::RemoteHelp, String> {
        self.help
            .as_ref()
            .ok_or_else(|| "remote help cannot start on this screen".to_string())
    }

    fn is_locked(&self) -> bool {
        self.lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
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
        let rects = monitor_rects();
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
        let mut banner = self.class_banner.lock().unwrap_or_else(|p| p.into_inner());
        if !on {
            *banner = None;
            return Ok(());
        }
        if banner.is_none() {
            // The top-left corner of every monitor, as on X11.
            let rects: Vec<Rect> = monitor_rects()
                .into_iter()
                .map(|m| Rect {
                    x: m.x + 12,
                    y: m.y + 12,
                    width: CLASS_BANNER_SIZE.0.min(m.width),
                    height: CLASS_BANNER_SIZE.1.min(m.height),
                })
                .collect();
            *banner = Some(
                TopWindows::show(&rects, CLASS_BANNER_RGB, CLASS_BANNER_TEXT, false)
                    .map_err(|e| format!("cannot show the \"shown to the class\" banner: {e}"))?,
            );
        }
        Ok(())
    }

    fn demo_output(&self, fullscreen: bool) -> crate::platform::PlayerOutput {
        crate::platform::PlayerOutput::Window { fullscreen }
    }

    fn ask_help(&self, ask: &HelpAsk) -> Result<(), String> {
        if self.is_locked() {
            return Err("the screen is locked: the student cannot answer".into());
        }
        self.help()?.ask(ask, &monitor_rects())
    }

    fn end_help(&self, id: u64) -> Result<(), String> {
        self.help()?.end(id)
    }

    fn inject(&self, id: u64, events: Vec<InputEvent>) -> Result<(), String> {
        // Checked here and under the lock's hooks: nothing reaches a locked screen.
        if self.is_locked() {
            return Err(format!(
                "input for remote help {id} refused: the screen is locked"
            ));
        }
        self.help()?.inject(id, &events)
    }

    fn help_events(&self) -> tokio::sync::broadcast::Receiver<HelpEvent> {
        self.help_events.subscribe()
    }

    fn student_events(&self) -> Option<tokio::sync::broadcast::Receiver<StudentEvent>> {
        Some(self.hand.events.subscribe())
    }

    fn clear_hand(&self) -> Result<(), String> {
        if !self.hand.up.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.hand.set(false, false);
        let mut seen = self.hand_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.as_ref().is_some_and(MessageBox::is_open) {
            return Ok(());
        }
        *seen = Some(
            MessageBox::show("Lanterne", HAND_SEEN_TEXT, Box::new(|| {}))
                .map_err(|e| format!("cannot show that the teacher saw the hand: {e}"))?,
        );
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
        let (_, _, width, height) = desktop_rect();
        let teal = [20, 160, 150];
        let _background = ColourWindow::cover_desktop(teal).unwrap();
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

    /// The desktop fraction (1/65535ths) of pixel `v` along an axis starting at `origin`.
    fn frac(v: i32, origin: i32, size: u32) -> u16 {
        (((v - origin) as i64 * 65535) / i64::from(size.max(2) - 1)).clamp(0, 65535) as u16
    }

    /// Clicks the middle of `r` with synthetic input, as the student's mouse would.
    fn click(r: Rect) {
        use lanterne_winsys::input::{send, MouseButton, Synth};
        let (left, top, width, height) = desktop_rect();
        let (cx, cy) = (r.x + r.width as i32 / 2, r.y + r.height as i32 / 2);
        send(&[Synth::MoveTo {
            x: frac(cx, left, width),
            y: frac(cy, top, height),
        }])
        .unwrap();
        // Under Wine a late pointer event from the X server can move the pointer back: the
        // button is pressed once the pointer is seen on the button.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !lanterne_winsys::input::cursor_pos()
            .is_some_and(|(x, y)| (x - cx).abs() <= 2 && (y - cy).abs() <= 2)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the pointer never came"
            );
            std::thread::yield_now();
        }
        send(&[
            Synth::Button {
                button: MouseButton::Left,
                down: true,
            },
            Synth::Button {
                button: MouseButton::Left,
                down: false,
            },
        ])
        .unwrap();
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// The next remote-help event within `secs` seconds, if any.
    fn next_help(
        rt: &tokio::runtime::Runtime,
        rx: &mut tokio::sync::broadcast::Receiver<HelpEvent>,
        secs: u64,
    ) -> Option<HelpEvent> {
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(secs), rx.recv())
                .await
                .ok()
                .map(|r| r.unwrap())
        })
    }

    fn ask(id: u64, timeout_s: u32) -> HelpAsk {
        HelpAsk {
            id,
            from: "Mme Martin (enseignante)".into(),
            timeout_s,
        }
    }

    #[test]
    fn remote_help_plays_input_only_between_the_students_accept_and_stop() {
        use lanterne_wire::{HelpState, InputEvent};
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let rt = runtime();
        let screen = WindowsScreen::new();
        let help = screen.help.as_ref().expect("remote help starts");
        let mut events = screen.help_events();
        let (left, top, width, height) = desktop_rect();
        let centre = InputEvent::PointerMove { x: 32767, y: 32767 };

        screen.ask_help(&ask(4, 60)).unwrap();
        assert!(screen.ask_help(&ask(5, 60)).is_err(), "one help at a time");
        assert!(
            screen.inject(4, vec![centre.clone()]).is_err(),
            "not accepted yet"
        );
        let (refuse, accept) = help.prompt_buttons().expect("the prompt is up");
        assert!(accept.x > refuse.x);
        // The student clicks "Accepter"; a click in the prompt's first moments does not
        // count (it was meant for what was under it), so they click until it takes.
        click(accept);
        let accepted = loop {
            if let Some(ev) = next_help(&rt, &mut events, 1) {
                break ev;
            }
            click(accept);
        };
        assert_eq!(accepted, (4, HelpState::Accepted));
        assert_eq!(help.open(), Some((4, true)));

        // The helper's pointer lands where the fractions say.
        screen.inject(4, vec![centre.clone()]).unwrap();
        let want = (left + (width as i32 - 1) / 2, top + (height as i32 - 1) / 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let at = lanterne_winsys::input::cursor_pos().unwrap();
            if (at.0 - want.0).abs() <= 2 && (at.1 - want.1).abs() <= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pointer at {at:?}, not {want:?}"
            );
            std::thread::yield_now();
        }
        assert!(
            screen.inject(5, vec![centre.clone()]).is_err(),
            "another help's input"
        );
        assert!(
            screen
                .inject(4, vec![InputEvent::Scroll { steps: 40 }])
                .is_err(),
            "checked like on the wire"
        );

        // Never into a locked screen.
        screen.lock("").unwrap();
        let err = screen.inject(4, vec![centre.clone()]).unwrap_err();
        assert!(err.contains("locked"), "{err}");
        screen.unlock().unwrap();

        // The banner's "Arrêter" ends it, and input stops there.
        let stop = help.stop_button().expect("the banner is up");
        click(stop);
        assert_eq!(
            next_help(&rt, &mut events, 10),
            Some((4, HelpState::EndedByStudent))
        );
        assert!(
            screen.inject(4, vec![centre]).is_err(),
            "ended by the student"
        );
        assert_eq!(help.open(), None);
    }

    #[test]
    fn remote_help_refused_timed_out_or_withdrawn_goes_away() {
        use lanterne_wire::HelpState;
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let rt = runtime();
        let screen = WindowsScreen::new();
        let help = screen.help.as_ref().expect("remote help starts");
        let mut events = screen.help_events();

        screen.ask_help(&ask(7, 60)).unwrap();
        let (refuse, _) = help.prompt_buttons().unwrap();
        click(refuse);
        assert_eq!(
            next_help(&rt, &mut events, 10),
            Some((7, HelpState::Refused))
        );
        assert_eq!(help.open(), None);

        // The helper withdraws: the prompt goes, and nobody is told the student decided.
        screen.ask_help(&ask(8, 60)).unwrap();
        screen.end_help(8).unwrap();
        assert_eq!(help.open(), None);
        assert_eq!(next_help(&rt, &mut events, 1), None);

        // Nobody answers: refused by itself once the prompt's time is up.
        let asked = std::time::Instant::now();
        screen.ask_help(&ask(9, 5)).unwrap();
        assert_eq!(
            next_help(&rt, &mut events, 20),
            Some((9, HelpState::TimedOut))
        );
        assert!(asked.elapsed() >= std::time::Duration::from_secs(5));
        assert!(
            screen.ask_help(&ask(10, 500)).is_err(),
            "timeout out of bounds"
        );
    }

    #[test]
    fn ctrl_alt_h_raises_and_lowers_the_hand_and_the_teacher_clears_it() {
        use lanterne_winsys::input::{send, Synth};
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let rt = runtime();
        let screen = WindowsScreen::new();
        assert!(screen._hand_key.is_some(), "Ctrl+Alt+H registered");
        let mut students = screen.student_events().unwrap();
        let press = || {
            let key = |vk, down| Synth::Key { vk, down };
            send(&[
                key(0x11, true),
                key(0x12, true),
                key(VK_H, true),
                key(VK_H, false),
                key(0x12, false),
                key(0x11, false),
            ])
            .unwrap();
        };
        let next = |rx: &mut tokio::sync::broadcast::Receiver<StudentEvent>| {
            rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
                    .await
                    .expect("the hand within 10 s")
                    .unwrap()
            })
        };
        let (_, _, width, height) = desktop_rect();
        let (hx, hy) = (width - 20, height - 48 - HAND_SIZE.1 / 2);
        press();
        assert_eq!(next(&mut students), StudentEvent::Hand(true));
        let seen = wait_for(hx, hy, HAND_RGB);
        assert!(close(seen, HAND_RGB), "the indicator shows {seen:?}");
        press();
        assert_eq!(next(&mut students), StudentEvent::Hand(false));
        assert!(screen.hand.indicator.lock().unwrap().is_none());

        press();
        assert_eq!(next(&mut students), StudentEvent::Hand(true));
        screen.clear_hand().unwrap();
        assert!(screen.hand.indicator.lock().unwrap().is_none());
        assert!(!screen.hand.up.load(Ordering::SeqCst));
        let seen_note = screen.hand_seen.lock().unwrap();
        let note = seen_note.as_ref().expect("the student is told");
        assert!(note.is_open());
        assert!(note.press_ok());
        drop(seen_note);
        // The teacher's clearing is not the student's doing: nothing is reported.
        assert!(students.try_recv().is_err());
    }

    #[test]
    fn the_shown_to_the_class_banner_is_up_while_asked() {
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let teal = [20, 160, 150];
        let _background = ColourWindow::cover_desktop(teal).unwrap();
        let screen = WindowsScreen::new();
        screen.set_shown_to_class(true).unwrap();
        let seen = wait_for(20, 16, CLASS_BANNER_RGB);
        assert!(
            close(seen, CLASS_BANNER_RGB),
            "the banner corner shows {seen:?}"
        );
        screen.set_shown_to_class(false).unwrap();
        assert!(close(wait_for(20, 16, teal), teal));
    }

    #[test]
    fn demos_go_to_a_window_full_screen_or_not() {
        let _turn = crate::platform::windows::DESKTOP.blocking_lock();
        let screen = WindowsScreen::new();
        assert_eq!(
            screen.demo_output(true),
            crate::platform::PlayerOutput::Window { fullscreen: true }
        );
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
