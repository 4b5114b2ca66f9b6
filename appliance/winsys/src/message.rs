//! A teacher's message in front of the student: a standard Windows message box (topmost, an
//! OK button), on a thread of its own. Pressing OK (click, Enter or Space) is the student's
//! acknowledgement: the box's caller hears of it through `on_ok`.

use std::ptr::null_mut;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{HWND, LPARAM};
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    EnumThreadWindows, IsWindowVisible, MessageBoxW, PostMessageW, IDOK, MB_ICONINFORMATION, MB_OK,
    MB_SETFOREGROUND, MB_TOPMOST, WM_COMMAND,
};

use crate::Win32Error;

/// How long [`MessageBox::show`] waits for the box to be on screen.
const SHOWN_WITHIN: Duration = Duration::from_secs(10);

/// A message box on screen (or already acknowledged).
#[derive(Debug)]
pub struct MessageBox {
    thread_id: u32,
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16()
        .filter(|&c| c != 0)
        .take(4096)
        .chain(std::iter::once(0))
        .collect()
}

unsafe extern "system" fn first_visible(hwnd: HWND, data: LPARAM) -> i32 {
    // SAFETY: `data` is the &mut usize passed to EnumThreadWindows below, alive for the whole
    // synchronous enumeration.
    unsafe {
        if IsWindowVisible(hwnd) != 0 {
            *(data as *mut usize) = hwnd as usize;
            return 0;
        }
    }
    1
}

/// The visible top-level window of `thread_id`, if any.
fn window_of(thread_id: u32) -> Option<HWND> {
    let mut found = 0usize;
    // SAFETY: the callback only writes to `found`, which outlives the synchronous call.
    unsafe {
        EnumThreadWindows(
            thread_id,
            Some(first_visible),
            &mut found as *mut usize as LPARAM,
        )
    };
    (found != 0).then_some(found as HWND)
}

impl MessageBox {
    /// Shows `text` under `title`; `on_ok` runs (on the box's thread) when the student
    /// presses OK. Returns once the box is on screen.
    pub fn show(
        title: &str,
        text: &str,
        on_ok: Box<dyn FnOnce() + Send>,
    ) -> Result<MessageBox, Win32Error> {
        let (title, text) = (wide(title), wide(text));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("message box".into())
            .spawn(move || {
                // SAFETY: reads the calling thread's id; the strings are NUL-terminated and
                // live until MessageBoxW returns.
                let answer = unsafe {
                    let _ = ready_tx.send(GetCurrentThreadId());
                    MessageBoxW(
                        null_mut(),
                        text.as_ptr(),
                        title.as_ptr(),
                        MB_OK | MB_ICONINFORMATION | MB_TOPMOST | MB_SETFOREGROUND,
                    )
                };
                if answer == IDOK {
                    on_ok();
                }
            })
            .map_err(|_| Win32Error {
                call: "spawning the message box thread",
                code: 0,
            })?;
        let thread_id = ready_rx.recv().map_err(|_| Win32Error {
            call: "the message box thread ended early",
            code: 0,
        })?;
        let deadline = Instant::now() + SHOWN_WITHIN;
        while window_of(thread_id).is_none() {
            if Instant::now() > deadline {
                return Err(Win32Error {
                    call: "MessageBoxW (never shown)",
                    code: 0,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(MessageBox { thread_id })
    }

    /// Still on screen.
    pub fn is_open(&self) -> bool {
        window_of(self.thread_id).is_some()
    }

    /// Presses OK as the student's click would (the button's own command to its dialog);
    /// false when the box is already gone. For tests.
    pub fn press_ok(&self) -> bool {
        match window_of(self.thread_id) {
            // SAFETY: posting to a window handle is allowed from any thread.
            Some(hwnd) => unsafe { PostMessageW(hwnd, WM_COMMAND, IDOK as usize, 0) != 0 },
            None => false,
        }
    }
}
