//! Synthetic keyboard and mouse input (`SendInput`), as remote help plays the helper's
//! pointer and keys into the student's session, and where the pointer is.
//!
//! Pointer positions are absolute over the virtual screen (every monitor), in 1/65535ths,
//! the way the wire sends them: Windows maps them itself (`MOUSEEVENTF_VIRTUALDESK`), so no
//! monitor layout is read here. Text is typed as Unicode characters
//! (`KEYEVENTF_UNICODE`), which needs no key of the current keyboard layout: an "é" types
//! the same on a French and a US keyboard.
//!
//! Input played here goes through the low-level hooks like a real keyboard's: while the lock
//! screen ([`crate::window::TopWindows`] with input blocked) is up, it reaches nothing.

use windows_sys::Win32::Foundation::POINT;
use windows_sys::Win32::UI::Input::KeyboardAndMouse::{
    MapVirtualKeyW, SendInput, INPUT, INPUT_0, INPUT_KEYBOARD, INPUT_MOUSE, KEYBDINPUT,
    KEYEVENTF_EXTENDEDKEY, KEYEVENTF_KEYUP, KEYEVENTF_UNICODE, MAPVK_VK_TO_VSC,
    MOUSEEVENTF_ABSOLUTE, MOUSEEVENTF_LEFTDOWN, MOUSEEVENTF_LEFTUP, MOUSEEVENTF_MIDDLEDOWN,
    MOUSEEVENTF_MIDDLEUP, MOUSEEVENTF_MOVE, MOUSEEVENTF_RIGHTDOWN, MOUSEEVENTF_RIGHTUP,
    MOUSEEVENTF_VIRTUALDESK, MOUSEEVENTF_WHEEL, MOUSEINPUT,
};
use windows_sys::Win32::UI::WindowsAndMessaging::GetCursorPos;

use crate::Win32Error;

/// A mouse button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MouseButton {
    Left,
    Middle,
    Right,
}

/// One synthetic input event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synth {
    /// The pointer to (`x`, `y`) in 1/65535ths of the virtual screen.
    MoveTo {
        x: u16,
        y: u16,
    },
    Button {
        button: MouseButton,
        down: bool,
    },
    /// Wheel notches: positive scrolls down (towards the user).
    Wheel {
        notches: i8,
    },
    /// A key by its virtual-key code (`VK_*`), pressed or released.
    Key {
        vk: u16,
        down: bool,
    },
    /// One UTF-16 unit typed as a character, pressed or released.
    Unicode {
        unit: u16,
        down: bool,
    },
}

/// One notch of a wheel, in Windows' units.
const WHEEL_DELTA: i32 = 120;

/// Virtual keys whose scan code carries the E0 prefix on a real keyboard: without the
/// extended flag, an arrow would come as the numeric keypad's.
fn is_extended(vk: u16) -> bool {
    matches!(
        vk,
        0x21..=0x28 // Page Up, Page Down, End, Home, arrows
            | 0x2D | 0x2E // Insert, Delete
            | 0xA3 | 0xA5 // right Ctrl, right Alt
    )
}

fn mouse(flags: u32, dx: i32, dy: i32, data: i32) -> INPUT {
    INPUT {
        r#type: INPUT_MOUSE,
        Anonymous: INPUT_0 {
            mi: MOUSEINPUT {
                dx,
                dy,
                mouseData: data as u32,
                dwFlags: flags,
                time: 0,
                dwExtraInfo: 0,
            },
        },
    }
}

fn keyboard(vk: u16, scan: u16, flags: u32) -> INPUT {
    INPUT {
        r#type: INPUT_KEYBOARD,
        Anonymous: INPUT_0 {
            ki: KEYBDINPUT {
                wVk: vk,
                wScan: scan,
                dwFlags: flags,
                time: 0,
                dwExtraInfo: 0,
            },
        },
    }
}

fn to_input(e: Synth) -> INPUT {
    match e {
        Synth::MoveTo { x, y } => mouse(
            MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE | MOUSEEVENTF_VIRTUALDESK,
            i32::from(x),
            i32::from(y),
            0,
        ),
        Synth::Button { button, down } => {
            let flags = match (button, down) {
                (MouseButton::Left, true) => MOUSEEVENTF_LEFTDOWN,
                (MouseButton::Left, false) => MOUSEEVENTF_LEFTUP,
                (MouseButton::Middle, true) => MOUSEEVENTF_MIDDLEDOWN,
                (MouseButton::Middle, false) => MOUSEEVENTF_MIDDLEUP,
                (MouseButton::Right, true) => MOUSEEVENTF_RIGHTDOWN,
                (MouseButton::Right, false) => MOUSEEVENTF_RIGHTUP,
            };
            mouse(flags, 0, 0, 0)
        }
        // Windows counts positive as away from the user (up).
        Synth::Wheel { notches } => {
            mouse(MOUSEEVENTF_WHEEL, 0, 0, -i32::from(notches) * WHEEL_DELTA)
        }
        Synth::Key { vk, down } => {
            // SAFETY: a pure lookup in the current layout's tables; no pointer.
            let scan = unsafe { MapVirtualKeyW(u32::from(vk), MAPVK_VK_TO_VSC) } as u16;
            let mut flags = if down { 0 } else { KEYEVENTF_KEYUP };
            if is_extended(vk) {
                flags |= KEYEVENTF_EXTENDEDKEY;
            }
            keyboard(vk, scan, flags)
        }
        Synth::Unicode { unit, down } => keyboard(
            0,
            unit,
            KEYEVENTF_UNICODE | if down { 0 } else { KEYEVENTF_KEYUP },
        ),
    }
}

/// Most events played in one call (a remote-help message holds at most 32 events, a text
/// event up to 256 characters of two units pressed and released).
pub const MAX_EVENTS: usize = 4096;

/// Plays `events` in order, as one uninterrupted sequence (no real input comes between
/// them). Fails when Windows took fewer than all (another desktop is in front: the secure
/// desktop, a UAC prompt, a locked session).
pub fn send(events: &[Synth]) -> Result<(), Win32Error> {
    if events.is_empty() {
        return Ok(());
    }
    if events.len() > MAX_EVENTS {
        return Err(Win32Error {
            call: "SendInput (too many events)",
            code: 0,
        });
    }
    let inputs: Vec<INPUT> = events.iter().map(|e| to_input(*e)).collect();
    // SAFETY: `inputs` holds `len` initialised INPUT structures and outlives the call; the
    // size passed is the structure's own.
    let sent = unsafe {
        SendInput(
            inputs.len() as u32,
            inputs.as_ptr(),
            std::mem::size_of::<INPUT>() as i32,
        )
    };
    if (sent as usize) < inputs.len() {
        return Err(Win32Error::last("SendInput"));
    }
    Ok(())
}

/// Where the pointer is, in desktop pixels.
pub fn cursor_pos() -> Option<(i32, i32)> {
    let mut p = POINT { x: 0, y: 0 };
    // SAFETY: `p` is a valid POINT for the call to fill.
    (unsafe { GetCursorPos(&mut p) } != 0).then_some((p.x, p.y))
}

/// Tests that use the one desktop, pointer and keyboard take turns.
#[cfg(test)]
pub(crate) static DESKTOP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes the desktop's turn for a test (a failed test's turn is still a turn).
#[cfg(test)]
pub(crate) fn desktop_turn() -> std::sync::MutexGuard<'static, ()> {
    DESKTOP.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::desktop_rect;

    #[test]
    fn the_pointer_goes_where_the_fractions_of_the_screen_say() {
        let _turn = desktop_turn();
        let (left, top, width, height) = desktop_rect();
        send(&[Synth::MoveTo {
            x: 65535 / 4,
            y: 65535 / 2,
        }])
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let want = (left + width as i32 / 4, top + height as i32 / 2);
        loop {
            let (x, y) = cursor_pos().unwrap();
            if (x - want.0).abs() <= 2 && (y - want.1).abs() <= 2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pointer at {:?}, expected about {want:?}",
                (x, y)
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn arrows_are_extended_keys_and_letters_are_not() {
        assert!(is_extended(0x25) && is_extended(0x2E) && is_extended(0x24));
        assert!(!is_extended(0x41) && !is_extended(0x0D) && !is_extended(0x11));
        let up = to_input(Synth::Wheel { notches: 2 });
        // SAFETY (test): reading the union member this event was built with.
        let data = unsafe { up.Anonymous.mi.mouseData } as i32;
        assert_eq!(data, -240, "two notches down");
    }

    /// An edit box in a window of its own, focused, on its own thread: what the test types
    /// into. Returns its handle and a way to end the thread.
    fn edit_box() -> (usize, u32, std::thread::JoinHandle<()>) {
        use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
        use windows_sys::Win32::System::Threading::GetCurrentThreadId;
        use windows_sys::Win32::UI::Input::KeyboardAndMouse::SetFocus;
        use windows_sys::Win32::UI::WindowsAndMessaging::{
            CreateWindowExW, DestroyWindow, DispatchMessageW, GetMessageW, SetForegroundWindow,
            TranslateMessage, MSG, WS_EX_TOPMOST, WS_POPUP, WS_VISIBLE,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let class: Vec<u16> = "EDIT\0".encode_utf16().collect();
            // SAFETY (test): a window made, focused and pumped on this thread.
            unsafe {
                let edit = CreateWindowExW(
                    WS_EX_TOPMOST,
                    class.as_ptr(),
                    std::ptr::null(),
                    WS_POPUP | WS_VISIBLE,
                    300,
                    300,
                    400,
                    40,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    GetModuleHandleW(std::ptr::null()),
                    std::ptr::null(),
                );
                assert!(!edit.is_null());
                SetForegroundWindow(edit);
                SetFocus(edit);
                tx.send((edit as usize, GetCurrentThreadId())).unwrap();
                let mut msg: MSG = std::mem::zeroed();
                while GetMessageW(&mut msg, std::ptr::null_mut(), 0, 0) > 0 {
                    TranslateMessage(&msg);
                    DispatchMessageW(&msg);
                }
                DestroyWindow(edit);
            }
        });
        let (edit, thread_id) = rx.recv().unwrap();
        (edit, thread_id, thread)
    }

    fn text_of(edit: usize) -> String {
        use windows_sys::Win32::UI::WindowsAndMessaging::GetWindowTextW;
        let mut buf = [0u16; 256];
        // SAFETY (test): the buffer's length is passed with it.
        let n = unsafe { GetWindowTextW(edit as _, buf.as_mut_ptr(), buf.len() as i32) };
        String::from_utf16_lossy(&buf[..n.max(0) as usize])
    }

    #[test]
    fn typed_text_and_keys_reach_the_focused_window() {
        use windows_sys::Win32::UI::WindowsAndMessaging::{PostThreadMessageW, WM_QUIT};
        let _turn = desktop_turn();
        let (edit, thread_id, thread) = edit_box();
        let mut events = Vec::new();
        for unit in "Bonjour é€".encode_utf16() {
            events.push(Synth::Unicode { unit, down: true });
            events.push(Synth::Unicode { unit, down: false });
        }
        // Backspace takes the euro sign off again; Left then "!" types before the "é".
        events.push(Synth::Key {
            vk: 0x08,
            down: true,
        });
        events.push(Synth::Key {
            vk: 0x08,
            down: false,
        });
        events.push(Synth::Key {
            vk: 0x25,
            down: true,
        });
        events.push(Synth::Key {
            vk: 0x25,
            down: false,
        });
        for unit in "!".encode_utf16() {
            events.push(Synth::Unicode { unit, down: true });
            events.push(Synth::Unicode { unit, down: false });
        }
        send(&events).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = text_of(edit);
        while seen != "Bonjour !é" && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen = text_of(edit);
        }
        // SAFETY (test): posting to a thread takes no pointer.
        unsafe { PostThreadMessageW(thread_id, WM_QUIT, 0, 0) };
        thread.join().unwrap();
        assert_eq!(seen, "Bonjour !é");
    }
}
