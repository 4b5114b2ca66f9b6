//! A borderless, topmost window filled with one colour, optionally with a line of text in
//! the middle, on its own thread with its own message loop. The station shows its "watched"
//! badge with one; the Windows scenario's test program shows one to put a known colour on the
//! desktop.

use std::cell::RefCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, Ordering};

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::Graphics::Gdi::{
    BeginPaint, CreateSolidBrush, DeleteObject, DrawTextW, EndPaint, GetStockObject, SelectObject,
    SetBkMode, SetTextColor, UpdateWindow, DEFAULT_GUI_FONT, DT_CENTER, DT_SINGLELINE, DT_VCENTER,
    PAINTSTRUCT, TRANSPARENT,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DispatchMessageW, GetMessageW, PostMessageW, PostQuitMessage,
    RegisterClassW, ShowWindow, TranslateMessage, MSG, SW_SHOW, WM_CLOSE, WM_DESTROY, WM_PAINT,
    WNDCLASSW, WS_EX_TOOLWINDOW, WS_EX_TOPMOST, WS_POPUP, WS_VISIBLE,
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

/// An open colour window; closed (and its thread ended) on drop.
#[derive(Debug)]
pub struct ColourWindow {
    /// The window's handle as a number: an HWND may be used from any thread for
    /// `PostMessageW`, but the pointer type is not `Send`.
    hwnd: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Makes each window's class name unique: the class carries the background brush.
static CLASSES: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The text of the window owned by this thread (each window has its own thread), UTF-16.
    static TEXT: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
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
                        let _ = windows_sys::Win32::UI::WindowsAndMessaging::GetClientRect(
                            hwnd, &mut rect,
                        );
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
    if msg == WM_DESTROY {
        // SAFETY: ends this thread's message loop; takes no pointer.
        unsafe { PostQuitMessage(0) };
        return 0;
    }
    // SAFETY: the arguments are the ones Windows gave this window procedure.
    unsafe { DefWindowProcW(hwnd, msg, wp, lp) }
}

impl ColourWindow {
    /// Opens a window over `rect` filled with `rgb`, and returns once it is shown.
    pub fn open(rect: Rect, rgb: [u8; 3]) -> Result<ColourWindow, Win32Error> {
        Self::open_with_text(rect, rgb, "")
    }

    /// [`ColourWindow::open`] with `text` (one line, white) in the middle.
    pub fn open_with_text(
        rect: Rect,
        rgb: [u8; 3],
        text: &str,
    ) -> Result<ColourWindow, Win32Error> {
        let text: Vec<u16> = text.encode_utf16().take(256).collect();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("colour window".into())
            .spawn(move || {
                TEXT.with(|t| *t.borrow_mut() = text);
                run(rect, rgb, ready_tx)
            })
            .map_err(|_| Win32Error {
                call: "spawning the window thread",
                code: 0,
            })?;
        match ready_rx.recv() {
            Ok(Ok(hwnd)) => Ok(ColourWindow {
                hwnd,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Win32Error {
                    call: "the window thread ended early",
                    code: 0,
                })
            }
        }
    }
}

/// The window's thread: registers its class, opens it, says so on `ready`, then pumps
/// messages until it is closed.
fn run(rect: Rect, rgb: [u8; 3], ready: std::sync::mpsc::Sender<Result<usize, Win32Error>>) {
    let class = wide(&format!(
        "LanterneColourWindow{}",
        CLASSES.fetch_add(1, Ordering::Relaxed)
    ));
    let title = wide("Lanterne");
    let colour = u32::from(rgb[0]) | (u32::from(rgb[1]) << 8) | (u32::from(rgb[2]) << 16);
    // SAFETY: every pointer passed lives on this stack frame for the whole call; the brush is
    // owned by the class until the window is gone, then deleted here; messages are pumped on
    // the thread that created the window, as Win32 requires.
    unsafe {
        let instance = GetModuleHandleW(null_mut());
        let brush = CreateSolidBrush(colour);
        if brush.is_null() {
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
            hbrBackground: brush,
            lpszMenuName: std::ptr::null(),
            lpszClassName: class.as_ptr(),
        };
        if RegisterClassW(&wc) == 0 {
            let _ = ready.send(Err(Win32Error::last("RegisterClassW")));
            DeleteObject(brush);
            return;
        }
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
            DeleteObject(brush);
            return;
        }
        ShowWindow(hwnd, SW_SHOW);
        UpdateWindow(hwnd);
        let _ = ready.send(Ok(hwnd as usize));
        let mut msg: MSG = std::mem::zeroed();
        while GetMessageW(&mut msg, null_mut(), 0, 0) > 0 {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        DeleteObject(brush);
    }
}

impl Drop for ColourWindow {
    fn drop(&mut self) {
        // SAFETY: posting to a window handle is allowed from any thread; a handle already
        // destroyed makes the call fail harmlessly.
        unsafe { PostMessageW(self.hwnd as HWND, WM_CLOSE, 0, 0) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
