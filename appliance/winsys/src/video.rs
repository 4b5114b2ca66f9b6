//! A window that shows pictures as they are handed to it (the demo player's output): each
//! [`VideoWindow::present`] replaces the picture waiting to be painted, and the window's own
//! thread paints the latest one, scaled to fit with black bars (aspect ratio kept), with a
//! label in the top-left corner. A slow paint never queues pictures: only the newest is kept.
//!
//! Full screen: a borderless topmost window over the primary monitor. Windowed: an ordinary
//! window with a title bar the student can move, which does not close on Alt+F4 (it goes
//! when the demo ends).

use std::cell::RefCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, RECT, WPARAM};
use windows_sys::Win32::Graphics::Gdi::{
    BeginPaint, CreateSolidBrush, DeleteObject, DrawTextW, EndPaint, FillRect, GetStockObject,
    InvalidateRect, SelectObject, SetBkColor, SetBkMode, SetStretchBltMode, SetTextColor,
    StretchDIBits, UpdateWindow, BITMAPINFO, BITMAPINFOHEADER, BI_RGB, COLORONCOLOR,
    DEFAULT_GUI_FONT, DIB_RGB_COLORS, DT_LEFT, DT_NOPREFIX, DT_SINGLELINE, OPAQUE, PAINTSTRUCT,
    SRCCOPY,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DestroyWindow, DispatchMessageW, GetClientRect, GetMessageW,
    GetSystemMetrics, PostThreadMessageW, RegisterClassW, ShowWindow, TranslateMessage, MSG,
    SM_CXSCREEN, SM_CYSCREEN, SW_SHOWNOACTIVATE, WM_APP, WM_CLOSE, WM_ERASEBKGND, WM_PAINT,
    WNDCLASSW, WS_EX_TOOLWINDOW, WS_EX_TOPMOST, WS_OVERLAPPEDWINDOW, WS_POPUP, WS_VISIBLE,
};

use crate::window::Rect;
use crate::Win32Error;

/// Largest picture side accepted.
pub const MAX_SIDE: u32 = 8192;

/// A picture: `width` × `height` pixels, 4 bytes each (blue, green, red, unused), rows packed
/// top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub bgrx: Vec<u8>,
}

/// How the window sits on the desktop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Borderless and topmost over `rect` (a whole monitor).
    FullScreen(Rect),
    /// An ordinary window with a title bar, its outer rectangle at `rect`.
    Windowed(Rect),
}

/// The primary monitor's rectangle (it always starts at the desktop's origin).
pub fn primary_monitor() -> Rect {
    // SAFETY: plain reads of system metrics.
    let (w, h) = unsafe { (GetSystemMetrics(SM_CXSCREEN), GetSystemMetrics(SM_CYSCREEN)) };
    Rect {
        x: 0,
        y: 0,
        width: w.max(1) as u32,
        height: h.max(1) as u32,
    }
}

/// A window showing pictures; closed (and its thread ended) on drop.
#[derive(Debug)]
pub struct VideoWindow {
    ui: crate::ui_thread::UiThread,
    latest: Arc<Mutex<Option<Picture>>>,
}

/// The thread message that asks for a repaint with the latest picture.
const REPAINT: u32 = WM_APP + 7;

static CLASSES: AtomicU32 = AtomicU32::new(0);

struct WindowState {
    latest: Arc<Mutex<Option<Picture>>>,
    /// The picture being shown (kept to repaint after the window is uncovered).
    shown: Option<Picture>,
    label: Vec<u16>,
    black: *mut core::ffi::c_void,
}

thread_local! {
    static STATE: RefCell<Option<WindowState>> = const { RefCell::new(None) };
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16()
        .filter(|&c| c != 0)
        .take(512)
        .chain(std::iter::once(0))
        .collect()
}

/// Where a `pw` × `ph` picture goes in a `cw` × `ch` client area: as large as fits, centred.
pub fn fit(pw: u32, ph: u32, cw: u32, ch: u32) -> (i32, i32, i32, i32) {
    if pw == 0 || ph == 0 || cw == 0 || ch == 0 {
        return (0, 0, 0, 0);
    }
    let (pw, ph, cw, ch) = (pw as u64, ph as u64, cw as u64, ch as u64);
    let (w, h) = if cw * ph <= ch * pw {
        (cw, (cw * ph / pw).max(1))
    } else {
        ((ch * pw / ph).max(1), ch)
    };
    (
        ((cw - w) / 2) as i32,
        ((ch - h) / 2) as i32,
        w as i32,
        h as i32,
    )
}

unsafe extern "system" fn video_proc(hwnd: HWND, msg: u32, wp: WPARAM, lp: LPARAM) -> LRESULT {
    match msg {
        WM_PAINT => {
            // SAFETY: BeginPaint/EndPaint bracket this window's painting on its own thread;
            // the picture's bytes, its header and the label outlive the GDI calls that read
            // them, and the header's size matches the bytes (checked in `present`).
            unsafe {
                let mut ps: PAINTSTRUCT = std::mem::zeroed();
                let dc = BeginPaint(hwnd, &mut ps);
                if !dc.is_null() {
                    STATE.with(|s| {
                        let mut s = s.borrow_mut();
                        let Some(s) = s.as_mut() else { return };
                        let mut client: RECT = std::mem::zeroed();
                        GetClientRect(hwnd, &mut client);
                        let (cw, ch) = (client.right.max(0) as u32, client.bottom.max(0) as u32);
                        match &s.shown {
                            Some(p) => {
                                let (x, y, w, h) = fit(p.width, p.height, cw, ch);
                                // The bars around the picture.
                                let bars = [
                                    RECT {
                                        left: 0,
                                        top: 0,
                                        right: client.right,
                                        bottom: y,
                                    },
                                    RECT {
                                        left: 0,
                                        top: y + h,
                                        right: client.right,
                                        bottom: client.bottom,
                                    },
                                    RECT {
                                        left: 0,
                                        top: y,
                                        right: x,
                                        bottom: y + h,
                                    },
                                    RECT {
                                        left: x + w,
                                        top: y,
                                        right: client.right,
                                        bottom: y + h,
                                    },
                                ];
                                for r in &bars {
                                    if r.right > r.left && r.bottom > r.top {
                                        FillRect(dc, r, s.black);
                                    }
                                }
                                let mut info: BITMAPINFO = std::mem::zeroed();
                                info.bmiHeader = BITMAPINFOHEADER {
                                    biSize: std::mem::size_of::<BITMAPINFOHEADER>() as u32,
                                    biWidth: p.width as i32,
                                    // Negative: rows top to bottom.
                                    biHeight: -(p.height as i32),
                                    biPlanes: 1,
                                    biBitCount: 32,
                                    biCompression: BI_RGB,
                                    ..std::mem::zeroed()
                                };
                                SetStretchBltMode(dc, COLORONCOLOR);
                                StretchDIBits(
                                    dc,
                                    x,
                                    y,
                                    w,
                                    h,
                                    0,
                                    0,
                                    p.width as i32,
                                    p.height as i32,
                                    p.bgrx.as_ptr().cast(),
                                    &info,
                                    DIB_RGB_COLORS,
                                    SRCCOPY,
                                );
                            }
                            None => {
                                FillRect(dc, &client, s.black);
                            }
                        }
                        if s.label.len() > 1 {
                            SetBkMode(dc, OPAQUE as i32);
                            SetBkColor(dc, 0x0026_140b);
                            SetTextColor(dc, 0x00FF_FFFF);
                            SelectObject(dc, GetStockObject(DEFAULT_GUI_FONT));
                            let mut r = RECT {
                                left: 8,
                                top: 8,
                                right: client.right - 8,
                                bottom: 40,
                            };
                            let len = s.label.len() as i32 - 1;
                            DrawTextW(
                                dc,
                                s.label.as_mut_ptr(),
                                len,
                                &mut r,
                                DT_LEFT | DT_SINGLELINE | DT_NOPREFIX,
                            );
                        }
                    });
                }
                EndPaint(hwnd, &ps);
            }
            0
        }
        // Painting covers everything: no erase (no flicker).
        WM_ERASEBKGND => 1,
        WM_CLOSE => 0,
        // SAFETY: the arguments are the ones Windows gave this window procedure.
        _ => unsafe { DefWindowProcW(hwnd, msg, wp, lp) },
    }
}

impl VideoWindow {
    /// Opens the window (black until the first picture) and returns once it is shown.
    pub fn open(placement: Placement, title: &str, label: &str) -> Result<VideoWindow, Win32Error> {
        let latest = Arc::new(Mutex::new(None));
        let (title, label) = (wide(title), wide(label));
        let shared = latest.clone();
        let (ui, _) = crate::ui_thread::UiThread::start(
            "video window",
            "spawning the video window thread",
            "the video window thread ended early",
            |id| *id,
            move |ready_tx| run(placement, &title, label, shared, ready_tx),
        )?;
        Ok(VideoWindow { ui, latest })
    }

    /// Hands the next picture over (replacing one not painted yet); never waits for the
    /// paint. Refuses a picture whose size and bytes disagree, or larger than [`MAX_SIDE`].
    pub fn present(&self, picture: Picture) -> Result<(), Win32Error> {
        let bad = picture.width == 0
            || picture.height == 0
            || picture.width > MAX_SIDE
            || picture.height > MAX_SIDE
            || picture.bgrx.len() != picture.width as usize * picture.height as usize * 4;
        if bad {
            return Err(Win32Error {
                call: "VideoWindow::present (picture size)",
                code: 0,
            });
        }
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(picture);
        // SAFETY: posting to a thread takes no pointer.
        if unsafe { PostThreadMessageW(self.ui.id(), REPAINT, 0, 0) } == 0 {
            return Err(Win32Error::last("PostThreadMessageW"));
        }
        Ok(())
    }
}

fn run(
    placement: Placement,
    title: &[u16],
    label: Vec<u16>,
    latest: Arc<Mutex<Option<Picture>>>,
    ready: std::sync::mpsc::Sender<Result<u32, Win32Error>>,
) {
    let class = wide(&format!(
        "LanterneVideo{}",
        CLASSES.fetch_add(1, Ordering::Relaxed)
    ));
    let (ex, style, rect) = match placement {
        Placement::FullScreen(r) => (WS_EX_TOPMOST | WS_EX_TOOLWINDOW, WS_POPUP | WS_VISIBLE, r),
        Placement::Windowed(r) => (0, WS_OVERLAPPEDWINDOW | WS_VISIBLE, r),
    };
    // SAFETY: every pointer passed lives on this stack frame for the whole call; the window
    // and brush are released before the thread ends; messages are pumped on the thread that
    // made the window, as Win32 requires.
    unsafe {
        let instance = GetModuleHandleW(null_mut());
        let black = CreateSolidBrush(0);
        if black.is_null() {
            let _ = ready.send(Err(Win32Error::last("CreateSolidBrush")));
            return;
        }
        let wc = WNDCLASSW {
            style: 0,
            lpfnWndProc: Some(video_proc),
            cbClsExtra: 0,
            cbWndExtra: 0,
            hInstance: instance,
            hIcon: null_mut(),
            hCursor: null_mut(),
            hbrBackground: null_mut(),
            lpszMenuName: std::ptr::null(),
            lpszClassName: class.as_ptr(),
        };
        if RegisterClassW(&wc) == 0 {
            let _ = ready.send(Err(Win32Error::last("RegisterClassW")));
            DeleteObject(black);
            return;
        }
        STATE.with(|s| {
            *s.borrow_mut() = Some(WindowState {
                latest,
                shown: None,
                label,
                black,
            })
        });
        let window = CreateWindowExW(
            ex,
            class.as_ptr(),
            title.as_ptr(),
            style,
            rect.x,
            rect.y,
            rect.width.clamp(1, 16384) as i32,
            rect.height.clamp(1, 16384) as i32,
            null_mut(),
            null_mut(),
            instance,
            std::ptr::null(),
        );
        if window.is_null() {
            let _ = ready.send(Err(Win32Error::last("CreateWindowExW")));
            STATE.with(|s| s.borrow_mut().take());
            DeleteObject(black);
            return;
        }
        ShowWindow(window, SW_SHOWNOACTIVATE);
        UpdateWindow(window);
        let _ = ready.send(Ok(GetCurrentThreadId()));
        let mut msg: MSG = std::mem::zeroed();
        while GetMessageW(&mut msg, null_mut(), 0, 0) > 0 {
            if msg.hwnd.is_null() && msg.message == REPAINT {
                let fresh = STATE.with(|s| {
                    let mut s = s.borrow_mut();
                    let s = s.as_mut()?;
                    let p = s.latest.lock().unwrap_or_else(|p| p.into_inner()).take()?;
                    s.shown = Some(p);
                    Some(())
                });
                if fresh.is_some() {
                    InvalidateRect(window, std::ptr::null(), 0);
                    UpdateWindow(window);
                }
                continue;
            }
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        DestroyWindow(window);
        STATE.with(|s| s.borrow_mut().take());
        DeleteObject(black);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_keep_their_shape_inside_the_window() {
        assert_eq!(fit(1280, 720, 1280, 720), (0, 0, 1280, 720));
        // A 16:9 picture in a 4:3 area: bars above and below.
        assert_eq!(fit(1600, 900, 800, 600), (0, 75, 800, 450));
        // A 4:3 picture in a 16:9 area: bars on the sides.
        assert_eq!(fit(640, 480, 1280, 720), (160, 0, 960, 720));
        assert_eq!(fit(0, 480, 1280, 720), (0, 0, 0, 0));
    }

    #[test]
    fn a_presented_picture_is_painted_on_the_desktop() {
        let _turn = crate::input::desktop_turn();
        let r = Rect {
            x: 100,
            y: 100,
            width: 320,
            height: 180,
        };
        let window = VideoWindow::open(Placement::FullScreen(r), "essai", "").unwrap();
        let orange = [0x10u8, 0x80, 0xf0, 0]; // blue, green, red
        let picture = Picture {
            width: 16,
            height: 9,
            bgrx: orange.repeat(16 * 9),
        };
        assert!(window
            .present(Picture {
                width: 16,
                height: 10,
                bgrx: picture.bgrx.clone()
            })
            .is_err());
        window.present(picture).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut capture = crate::capture::DesktopCapture::new();
        loop {
            let seen = capture.grab().unwrap().rgb_at(260, 190).unwrap();
            if seen == [0xf0, 0x80, 0x10] {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the window shows {seen:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
