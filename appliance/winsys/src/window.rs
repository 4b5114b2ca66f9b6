//! Borderless, topmost windows filled with one colour, optionally with a line of text in the
//! middle, on a thread of their own with its own message loop; optionally with the keyboard
//! and mouse blocked for as long as they are up. The station shows its "watched" badge with
//! one ([`ColourWindow`]), its lock screen with one per monitor and input blocked
//! ([`TopWindows`]); the Windows scenario's test program paints the desktop with one.
//!
//! Input is blocked with low-level keyboard and mouse hooks (`WH_KEYBOARD_LL`,
//! `WH_MOUSE_LL`) that swallow every event. What Windows never lets a program block: the
//! secure attention sequence (Ctrl+Alt+Del, and what it opens: lock, switch user, sign out,
//! Task Manager), Win+L, and input in UAC prompts and the secure desktop.

use std::cell::RefCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, Ordering};

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, RECT, WPARAM};
use windows_sys::Win32::Graphics::Gdi::{
    BeginPaint, CreateSolidBrush, DeleteObject, DrawTextW, EndPaint, EnumDisplayMonitors,
    GetStockObject, SelectObject, SetBkMode, SetTextColor, UpdateWindow, DEFAULT_GUI_FONT,
    DT_CENTER, DT_SINGLELINE, DT_VCENTER, HDC, HMONITOR, PAINTSTRUCT, TRANSPARENT,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CallNextHookEx, CreateWindowExW, DefWindowProcW, DestroyWindow, DispatchMessageW,
    GetClientRect, GetMessageW, PeekMessageW, PostThreadMessageW, RegisterClassW, SetWindowPos,
    SetWindowsHookExW, ShowWindow, TranslateMessage, UnhookWindowsHookEx, HC_ACTION, MSG,
    PM_NOREMOVE, SWP_NOACTIVATE, SWP_NOSIZE, SWP_NOZORDER, SW_SHOW, WH_KEYBOARD_LL, WH_MOUSE_LL,
    WM_APP, WM_PAINT, WNDCLASSW, WS_EX_TOOLWINDOW, WS_EX_TOPMOST, WS_POPUP, WS_VISIBLE,
};

use crate::Win32Error;

/// Where a window goes and what size it is, in desktop pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

/// Most monitors taken into account (a lock covers each).
pub const MAX_MONITORS: usize = 16;

unsafe extern "system" fn monitor_proc(_m: HMONITOR, _dc: HDC, r: *mut RECT, data: LPARAM) -> i32 {
    // SAFETY: `data` is the &mut Vec<Rect> passed to EnumDisplayMonitors below, alive for the
    // whole (synchronous) enumeration; `r` is the monitor's rectangle given by Windows.
    let (list, r) = unsafe { (&mut *(data as *mut Vec<Rect>), &*r) };
    if list.len() < MAX_MONITORS && r.right > r.left && r.bottom > r.top {
        list.push(Rect {
            x: r.left,
            y: r.top,
            width: (r.right - r.left) as u32,
            height: (r.bottom - r.top) as u32,
        });
    }
    1
}

/// Every monitor's rectangle on the desktop.
pub fn monitors() -> Vec<Rect> {
    let mut list: Vec<Rect> = Vec::new();
    // SAFETY: the callback only writes to `list`, which outlives the synchronous call.
    unsafe {
        EnumDisplayMonitors(
            null_mut(),
            std::ptr::null(),
            Some(monitor_proc),
            &mut list as *mut Vec<Rect> as LPARAM,
        )
    };
    list
}

/// Topmost windows on a thread of their own; taken down (windows closed, hooks removed,
/// thread ended) on drop.
#[derive(Debug)]
pub struct TopWindows {
    ui: crate::ui_thread::UiThread,
}

/// A single colour window (see [`TopWindows`]).
pub type ColourWindow = TopWindows;

/// The thread message that moves the first window (`wParam` x, `lParam` y).
const MOVE_FIRST: u32 = WM_APP + 1;

/// Makes each window class's name unique: the class carries the background brush.
static CLASSES: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The text of the windows owned by this thread (each set has its own thread), UTF-16.
    static TEXT: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

unsafe extern "system" fn swallow_input(code: i32, wp: WPARAM, lp: LPARAM) -> LRESULT {
    if code == HC_ACTION as i32 {
        // Swallowed: no window, and no other hook, sees it.
        return 1;
    }
    // SAFETY: passing the hook's own arguments on, as Windows requires for code < 0.
    unsafe { CallNextHookEx(null_mut(), code, wp, lp) }
}

unsafe extern "system" fn window_proc(hwnd: HWND, msg: u32, wp: WPARAM, lp: LPARAM) -> LRESULT {
    if msg == WM_PAINT {
        // SAFETY: BeginPaint/EndPaint bracket the painting of this window on its own thread;
        // the text buffer outlives the DrawTextW call and its length is passed with it.
        unsafe {
            let mut ps: PAINTSTRUCT = std::mem::zeroed();
            let dc = BeginPaint(hwnd, &mut ps);
            if !dc.is_null() {
                TEXT.with(|t| {
                    let mut t = t.borrow_mut();
                    if !t.is_empty() {
                        SetBkMode(dc, TRANSPARENT as i32);
                        SetTextColor(dc, 0x00FF_FFFF);
                        SelectObject(dc, GetStockObject(DEFAULT_GUI_FONT));
                        let mut rect = ps.rcPaint;
                        GetClientRect(hwnd, &mut rect);
                        DrawTextW(
                            dc,
                            t.as_mut_ptr(),
                            t.len() as i32,
                            &mut rect,
                            DT_CENTER | DT_VCENTER | DT_SINGLELINE,
                        );
                    }
                });
            }
            EndPaint(hwnd, &ps);
        }
        return 0;
    }
    // SAFETY: the arguments are the ones Windows gave this window procedure.
    unsafe { DefWindowProcW(hwnd, msg, wp, lp) }
}

impl TopWindows {
    /// Opens a window over `rect` filled with `rgb`, and returns once it is shown.
    pub fn open(rect: Rect, rgb: [u8; 3]) -> Result<TopWindows, Win32Error> {
        Self::show(&[rect], rgb, "", false)
    }

    /// [`TopWindows::open`] over the whole virtual desktop (every monitor).
    pub fn cover_desktop(rgb: [u8; 3]) -> Result<TopWindows, Win32Error> {
        let (x, y, width, height) = crate::capture::desktop_rect();
        Self::open(
            Rect {
                x,
                y,
                width,
                height,
            },
            rgb,
        )
    }

    /// [`TopWindows::open`] with `text` (one line, white) in the middle.
    pub fn open_with_text(rect: Rect, rgb: [u8; 3], text: &str) -> Result<TopWindows, Win32Error> {
        Self::show(&[rect], rgb, text, false)
    }

    /// One window per rectangle, each filled with `rgb` and `text` in the middle; with
    /// `block_input`, the keyboard and mouse reach nothing until these are dropped. Returns
    /// once every window is shown and the hooks are in place.
    pub fn show(
        rects: &[Rect],
        rgb: [u8; 3],
        text: &str,
        block_input: bool,
    ) -> Result<TopWindows, Win32Error> {
        let text: Vec<u16> = text.encode_utf16().take(512).collect();
        let rects = rects.to_vec();
        let (ui, _) = crate::ui_thread::UiThread::start(
            "top windows",
            "spawning the window thread",
            "the window thread ended early",
            |id| *id,
            move |ready_tx| {
                TEXT.with(|t| *t.borrow_mut() = text);
                run(&rects, rgb, block_input, ready_tx)
            },
        )?;
        Ok(TopWindows { ui })
    }
}

/// What the window thread made, undone in reverse order when it ends.
struct Made {
    brush: *mut core::ffi::c_void,
    windows: Vec<HWND>,
    hooks: Vec<*mut core::ffi::c_void>,
}

impl Drop for Made {
    fn drop(&mut self) {
        // SAFETY: every handle here was made by this thread and is released once, here.
        unsafe {
            for h in self.hooks.drain(..) {
                UnhookWindowsHookEx(h);
            }
            for w in self.windows.drain(..) {
                DestroyWindow(w);
            }
            if !self.brush.is_null() {
                DeleteObject(self.brush);
            }
        }
    }
}

/// The windows' thread: registers their class, opens them, sets the hooks, says so on
/// `ready` (with its thread id), then pumps messages until told to quit.
fn run(
    rects: &[Rect],
    rgb: [u8; 3],
    block_input: bool,
    ready: std::sync::mpsc::Sender<Result<u32, Win32Error>>,
) {
    let class = wide(&format!(
        "LanterneTopWindow{}",
        CLASSES.fetch_add(1, Ordering::Relaxed)
    ));
    let title = wide("Lanterne");
    let colour = u32::from(rgb[0]) | (u32::from(rgb[1]) << 8) | (u32::from(rgb[2]) << 16);
    // SAFETY: every pointer passed lives on this stack frame for the whole call; handles are
    // checked and released by `made`; messages are pumped on the thread that created the
    // windows and hooks, as Win32 requires.
    unsafe {
        let instance = GetModuleHandleW(null_mut());
        let mut made = Made {
            brush: CreateSolidBrush(colour),
            windows: Vec::new(),
            hooks: Vec::new(),
        };
        if made.brush.is_null() {
            let _ = ready.send(Err(Win32Error::last("CreateSolidBrush")));
            return;
        }
        let wc = WNDCLASSW {
            style: 0,
            lpfnWndProc: Some(window_proc),
            cbClsExtra: 0,
            cbWndExtra: 0,
            hInstance: instance,
            hIcon: null_mut(),
            hCursor: null_mut(),
            hbrBackground: made.brush,
            lpszMenuName: std::ptr::null(),
            lpszClassName: class.as_ptr(),
        };
        if RegisterClassW(&wc) == 0 {
            let _ = ready.send(Err(Win32Error::last("RegisterClassW")));
            return;
        }
        for rect in rects {
            let hwnd = CreateWindowExW(
                WS_EX_TOPMOST | WS_EX_TOOLWINDOW,
                class.as_ptr(),
                title.as_ptr(),
                WS_POPUP | WS_VISIBLE,
                rect.x,
                rect.y,
                rect.width.min(i32::MAX as u32) as i32,
                rect.height.min(i32::MAX as u32) as i32,
                null_mut(),
                null_mut(),
                instance,
                std::ptr::null(),
            );
            if hwnd.is_null() {
                let _ = ready.send(Err(Win32Error::last("CreateWindowExW")));
                return;
            }
            made.windows.push(hwnd);
            ShowWindow(hwnd, SW_SHOW);
            UpdateWindow(hwnd);
        }
        if block_input {
            // The hooks are called through this thread's message queue: without one (no
            // window made it, as when only input is blocked), Wine skips them until the
            // thread first asks for a message, and input pressed meanwhile gets through.
            let mut msg: MSG = std::mem::zeroed();
            PeekMessageW(&mut msg, null_mut(), WM_APP, WM_APP, PM_NOREMOVE);
            for kind in [WH_KEYBOARD_LL, WH_MOUSE_LL] {
                let hook = SetWindowsHookExW(kind, Some(swallow_input), instance, 0);
                if hook.is_null() {
                    let _ = ready.send(Err(Win32Error::last("SetWindowsHookExW")));
                    return;
                }
                made.hooks.push(hook);
            }
        }
        let _ = ready.send(Ok(GetCurrentThreadId()));
        let mut msg: MSG = std::mem::zeroed();
        while GetMessageW(&mut msg, null_mut(), 0, 0) > 0 {
            if msg.hwnd.is_null() && msg.message == MOVE_FIRST {
                if let Some(&first) = made.windows.first() {
                    SetWindowPos(
                        first,
                        null_mut(),
                        msg.wParam as i32,
                        msg.lParam as i32,
                        0,
                        0,
                        SWP_NOSIZE | SWP_NOZORDER | SWP_NOACTIVATE,
                    );
                }
                continue;
            }
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        drop(made);
    }
}

impl TopWindows {
    /// Moves the first window's top left corner to (`x`, `y`) on the desktop (done on the
    /// windows' own thread; returns without waiting for it).
    pub fn move_first(&self, x: i32, y: i32) -> Result<(), Win32Error> {
        // SAFETY: posting a message to a thread takes no pointer; the values are plain
        // integers read back by the window thread's loop.
        let ok = unsafe { PostThreadMessageW(self.ui.id(), MOVE_FIRST, x as WPARAM, y as LPARAM) };
        if ok == 0 {
            return Err(Win32Error::last("PostThreadMessageW"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use windows_sys::Win32::UI::Input::KeyboardAndMouse::{
        GetAsyncKeyState, SendInput, INPUT, INPUT_0, INPUT_KEYBOARD, KEYBDINPUT, KEYEVENTF_KEYUP,
        VK_F13, VK_F14,
    };

    /// Presses or releases `vk` as a keyboard would (injected input goes through the same
    /// low-level hooks).
    fn key(vk: u16, up: bool) {
        let input = INPUT {
            r#type: INPUT_KEYBOARD,
            Anonymous: INPUT_0 {
                ki: KEYBDINPUT {
                    wVk: vk,
                    wScan: 0,
                    dwFlags: if up { KEYEVENTF_KEYUP } else { 0 },
                    time: 0,
                    dwExtraInfo: 0,
                },
            },
        };
        // SAFETY: one INPUT, its size given; nothing is kept after the call.
        let sent = unsafe { SendInput(1, &input, std::mem::size_of::<INPUT>() as i32) };
        assert_eq!(sent, 1);
    }

    fn is_down(vk: u16) -> bool {
        // SAFETY: reads the keyboard state; no pointer.
        (unsafe { GetAsyncKeyState(i32::from(vk)) } as u16) & 0x8000 != 0
    }

    #[test]
    fn keys_pressed_while_input_is_blocked_never_reach_the_pc() {
        let _turn = crate::input::desktop_turn();
        let blocked = TopWindows::show(&[], [0, 0, 0], "", true).unwrap();
        key(VK_F13, false);
        drop(blocked);
        // Input is processed in order: once a key pressed after the block is seen, the one
        // pressed during it would have been seen too.
        key(VK_F14, false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_down(VK_F14) {
            assert!(
                std::time::Instant::now() < deadline,
                "a key pressed without the block is never seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let swallowed = !is_down(VK_F13);
        key(VK_F14, true);
        key(VK_F13, true);
        assert!(swallowed, "a key pressed during the block reached the PC");
    }
}
