//! A topmost panel with text and push buttons, on a thread of its own with its own message
//! loop: the remote-help consent prompt ("Refuser", "Accepter") and the banner shown while
//! someone helps ("Arrêter"). A click on a button (pointer, or Space/Enter on the focused
//! button) calls the panel's `on_click` with the button's index, on the panel's thread.
//!
//! Panels taller than [`ROW_LAYOUT_BELOW`] put their buttons in a row under the text; lower
//! ones (banners) put them on the right of it.

use std::cell::RefCell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, Ordering};

use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, RECT, WPARAM};
use windows_sys::Win32::Graphics::Gdi::{
    BeginPaint, CreateFontW, CreateSolidBrush, DeleteObject, DrawTextW, EndPaint, SelectObject,
    SetBkMode, SetTextColor, UpdateWindow, CLEARTYPE_QUALITY, DEFAULT_CHARSET, DT_LEFT,
    DT_NOPREFIX, DT_VCENTER, DT_WORDBREAK, FW_NORMAL, HFONT, PAINTSTRUCT, TRANSPARENT,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::System::Threading::GetCurrentThreadId;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DestroyWindow, DispatchMessageW, GetMessageW, GetWindowRect,
    IsDialogMessageW, PostMessageW, RegisterClassW, SendMessageW, ShowWindow, BN_CLICKED,
    BS_PUSHBUTTON, HMENU, MSG, SW_SHOWNOACTIVATE, WM_CLOSE, WM_COMMAND, WM_PAINT, WM_SETFONT,
    WNDCLASSW, WS_CHILD, WS_EX_TOOLWINDOW, WS_EX_TOPMOST, WS_POPUP, WS_TABSTOP, WS_VISIBLE,
};

use crate::window::Rect;
use crate::Win32Error;

/// Panels at least this high lay their buttons out in a row under the text.
pub const ROW_LAYOUT_BELOW: u32 = 120;
/// Most buttons on one panel.
pub const MAX_BUTTONS: usize = 4;
/// Most UTF-16 units of a panel's text.
const MAX_TEXT: usize = 2048;

/// What a panel shows.
#[derive(Clone, Debug)]
pub struct PanelSpec {
    pub rect: Rect,
    pub background: [u8; 3],
    pub ink: [u8; 3],
    /// Paragraphs separated by newlines, wrapped to the panel's width.
    pub text: String,
    /// The buttons' labels, left to right.
    pub buttons: Vec<String>,
    /// Text height in pixels.
    pub font_px: u32,
    /// The window title (what screen readers and the task switcher say).
    pub title: String,
}

/// A panel on screen; taken down (window closed, thread ended) on drop.
#[derive(Debug)]
pub struct Panel {
    _ui: crate::ui_thread::UiThread,
    window: usize,
    buttons: Vec<usize>,
}

/// The first button's control id; the others follow.
const FIRST_ID: usize = 100;

static CLASSES: AtomicU32 = AtomicU32::new(0);

struct PanelState {
    text: Vec<u16>,
    ink: u32,
    font: HFONT,
    /// Where the text goes, in client coordinates.
    text_rect: RECT,
    on_click: Box<dyn FnMut(usize) + Send>,
}

thread_local! {
    static STATE: RefCell<Option<PanelState>> = const { RefCell::new(None) };
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16()
        .filter(|&c| c != 0)
        .take(MAX_TEXT)
        .chain(std::iter::once(0))
        .collect()
}

fn colorref(rgb: [u8; 3]) -> u32 {
    u32::from(rgb[0]) | (u32::from(rgb[1]) << 8) | (u32::from(rgb[2]) << 16)
}

unsafe extern "system" fn panel_proc(hwnd: HWND, msg: u32, wp: WPARAM, lp: LPARAM) -> LRESULT {
    match msg {
        WM_PAINT => {
            // SAFETY: BeginPaint/EndPaint bracket this window's painting on its own thread;
            // the text buffer and rectangle outlive the DrawTextW call.
            unsafe {
                let mut ps: PAINTSTRUCT = std::mem::zeroed();
                let dc = BeginPaint(hwnd, &mut ps);
                if !dc.is_null() {
                    STATE.with(|s| {
                        if let Some(s) = s.borrow_mut().as_mut() {
                            SetBkMode(dc, TRANSPARENT as i32);
                            SetTextColor(dc, s.ink);
                            SelectObject(dc, s.font);
                            let mut r = s.text_rect;
                            let len = s.text.len().saturating_sub(1) as i32;
                            let single = !s.text.contains(&u16::from(b'\n'));
                            let flags = DT_LEFT
                                | DT_NOPREFIX
                                | DT_WORDBREAK
                                | if single { DT_VCENTER } else { 0 };
                            DrawTextW(dc, s.text.as_mut_ptr(), len, &mut r, flags);
                        }
                    });
                }
                EndPaint(hwnd, &ps);
            }
            0
        }
        WM_COMMAND if ((wp >> 16) & 0xffff) as u32 == BN_CLICKED => {
            let id = wp & 0xffff;
            if (FIRST_ID..FIRST_ID + MAX_BUTTONS).contains(&id) {
                STATE.with(|s| {
                    // The callback runs without the state borrowed by anything else.
                    if let Some(s) = s.borrow_mut().as_mut() {
                        (s.on_click)(id - FIRST_ID);
                    }
                });
            }
            0
        }
        // The student cannot close the panel with Alt+F4: it goes when its owner says so.
        WM_CLOSE => 0,
        // SAFETY: the arguments are the ones Windows gave this window procedure.
        _ => unsafe { DefWindowProcW(hwnd, msg, wp, lp) },
    }
}

impl Panel {
    /// Opens the panel and returns once it is on screen.
    pub fn show(
        spec: PanelSpec,
        on_click: Box<dyn FnMut(usize) + Send>,
    ) -> Result<Panel, Win32Error> {
        if spec.buttons.len() > MAX_BUTTONS {
            return Err(Win32Error {
                call: "Panel::show (too many buttons)",
                code: 0,
            });
        }
        let (ui, (_, window, buttons)) = crate::ui_thread::UiThread::start(
            "panel",
            "spawning the panel thread",
            "the panel thread ended early",
            |ready: &(u32, usize, Vec<usize>)| ready.0,
            move |ready_tx| run(spec, on_click, ready_tx),
        )?;
        Ok(Panel {
            _ui: ui,
            window,
            buttons,
        })
    }

    /// Button `index`'s rectangle on the desktop (where a click lands on it).
    pub fn button_rect(&self, index: usize) -> Option<Rect> {
        let hwnd = *self.buttons.get(index)? as HWND;
        let mut r = RECT {
            left: 0,
            top: 0,
            right: 0,
            bottom: 0,
        };
        // SAFETY: `r` is a valid RECT to fill; a stale handle makes the call fail, not crash.
        if unsafe { GetWindowRect(hwnd, &mut r) } == 0 {
            return None;
        }
        Some(Rect {
            x: r.left,
            y: r.top,
            width: (r.right - r.left).max(0) as u32,
            height: (r.bottom - r.top).max(0) as u32,
        })
    }

    /// The panel's own rectangle on the desktop.
    pub fn rect(&self) -> Option<Rect> {
        let mut r = RECT {
            left: 0,
            top: 0,
            right: 0,
            bottom: 0,
        };
        // SAFETY: as in `button_rect`.
        if unsafe { GetWindowRect(self.window as HWND, &mut r) } == 0 {
            return None;
        }
        Some(Rect {
            x: r.left,
            y: r.top,
            width: (r.right - r.left).max(0) as u32,
            height: (r.bottom - r.top).max(0) as u32,
        })
    }

    /// Presses button `index` as the student's click would (the button's notification to
    /// its panel); false when there is no such button. For tests and keyboard-less checks.
    pub fn press(&self, index: usize) -> bool {
        let Some(&button) = self.buttons.get(index) else {
            return false;
        };
        let wp = (FIRST_ID + index) | ((BN_CLICKED as usize) << 16);
        // SAFETY: posting to a window handle is allowed from any thread; a stale handle makes
        // the call fail.
        unsafe { PostMessageW(self.window as HWND, WM_COMMAND, wp, button as LPARAM) != 0 }
    }
}

type Ready = Result<(u32, usize, Vec<usize>), Win32Error>;

fn run(
    spec: PanelSpec,
    on_click: Box<dyn FnMut(usize) + Send>,
    ready: std::sync::mpsc::Sender<Ready>,
) {
    let class = wide(&format!(
        "LanternePanel{}",
        CLASSES.fetch_add(1, Ordering::Relaxed)
    ));
    let title = wide(&spec.title);
    let button_class = wide("BUTTON");
    let (w, h) = (
        spec.rect.width.clamp(1, 16384) as i32,
        spec.rect.height.clamp(1, 16384) as i32,
    );
    let px = spec.font_px.clamp(8, 96) as i32;
    let pad = px;
    let button_h = px * 2 + px / 2;
    // SAFETY: every pointer passed lives on this stack frame for the whole call; the handles
    // made here are released before the thread ends; messages are pumped on the thread that
    // made the windows, as Win32 requires.
    unsafe {
        let instance = GetModuleHandleW(null_mut());
        let brush = CreateSolidBrush(colorref(spec.background));
        let font = CreateFontW(
            -px,
            0,
            0,
            0,
            FW_NORMAL as i32,
            0,
            0,
            0,
            DEFAULT_CHARSET as u32,
            0,
            0,
            CLEARTYPE_QUALITY as u32,
            0,
            wide("Segoe UI").as_ptr(),
        );
        let cleanup = |window: HWND| {
            if !window.is_null() {
                DestroyWindow(window);
            }
            if !font.is_null() {
                DeleteObject(font);
            }
            if !brush.is_null() {
                DeleteObject(brush);
            }
        };
        if brush.is_null() || font.is_null() {
            let _ = ready.send(Err(Win32Error::last("CreateSolidBrush/CreateFontW")));
            cleanup(null_mut());
            return;
        }
        let wc = WNDCLASSW {
            style: 0,
            lpfnWndProc: Some(panel_proc),
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
            cleanup(null_mut());
            return;
        }
        let window = CreateWindowExW(
            WS_EX_TOPMOST | WS_EX_TOOLWINDOW,
            class.as_ptr(),
            title.as_ptr(),
            WS_POPUP,
            spec.rect.x,
            spec.rect.y,
            w,
            h,
            null_mut(),
            null_mut(),
            instance,
            std::ptr::null(),
        );
        if window.is_null() {
            let _ = ready.send(Err(Win32Error::last("CreateWindowExW")));
            cleanup(null_mut());
            return;
        }
        // Button widths: the longest label, at least six text heights.
        let n = spec.buttons.len() as i32;
        let longest = spec
            .buttons
            .iter()
            .map(|b| b.chars().count())
            .max()
            .unwrap_or(0) as i32;
        let button_w = (longest * px * 6 / 10 + 2 * pad).max(6 * px);
        let row = spec.rect.height >= ROW_LAYOUT_BELOW;
        let text_rect = if row {
            RECT {
                left: pad,
                top: pad,
                right: w - pad,
                bottom: h - 2 * pad - button_h,
            }
        } else {
            RECT {
                left: pad,
                top: 0,
                right: (w - pad - n * (button_w + pad)).max(pad + 1),
                bottom: h,
            }
        };
        let mut buttons = Vec::new();
        for (i, label) in spec.buttons.iter().enumerate() {
            let i = i as i32;
            // Right-aligned: the last button is the rightmost.
            let x = w - (n - i) * (button_w + pad);
            let y = if row {
                h - pad - button_h
            } else {
                (h - button_h) / 2
            };
            let label = wide(label);
            let b = CreateWindowExW(
                0,
                button_class.as_ptr(),
                label.as_ptr(),
                WS_CHILD | WS_VISIBLE | WS_TABSTOP | BS_PUSHBUTTON as u32,
                x,
                y,
                button_w,
                button_h,
                window,
                (FIRST_ID + i as usize) as HMENU,
                instance,
                std::ptr::null(),
            );
            if b.is_null() {
                let _ = ready.send(Err(Win32Error::last("CreateWindowExW (button)")));
                cleanup(window);
                return;
            }
            SendMessageW(b, WM_SETFONT, font as WPARAM, 1);
            buttons.push(b as usize);
        }
        STATE.with(|s| {
            *s.borrow_mut() = Some(PanelState {
                text: wide(&spec.text),
                ink: colorref(spec.ink),
                font,
                text_rect,
                on_click,
            })
        });
        // Shown without taking the keyboard from what the student is typing into.
        ShowWindow(window, SW_SHOWNOACTIVATE);
        UpdateWindow(window);
        let _ = ready.send(Ok((GetCurrentThreadId(), window as usize, buttons)));
        let mut msg: MSG = std::mem::zeroed();
        while GetMessageW(&mut msg, null_mut(), 0, 0) > 0 {
            // Tab, Space and Enter work on the buttons as in a dialog.
            if IsDialogMessageW(window, &msg) != 0 {
                continue;
            }
            windows_sys::Win32::UI::WindowsAndMessaging::TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        STATE.with(|s| s.borrow_mut().take());
        cleanup(window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{send, MouseButton, Synth};

    /// Clicks the middle of `r` with synthetic input, as a person would.
    fn click(r: Rect) {
        let (left, top, width, height) = crate::capture::desktop_rect();
        let frac = |v: i32, origin: i32, size: u32| -> u16 {
            (((v - origin) as i64 * 65535 + i64::from(size) / 2) / i64::from(size.max(2) - 1))
                .clamp(0, 65535) as u16
        };
        let (cx, cy) = (r.x + r.width as i32 / 2, r.y + r.height as i32 / 2);
        send(&[Synth::MoveTo {
            x: frac(cx, left, width),
            y: frac(cy, top, height),
        }])
        .unwrap();
        // Under Wine a late pointer event from the X server can move the pointer back: the
        // button is pressed once the pointer is seen on the button.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !crate::input::cursor_pos()
            .is_some_and(|(x, y)| (x - cx).abs() <= 2 && (y - cy).abs() <= 2)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the pointer never came"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
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

    #[test]
    fn a_click_on_a_button_reaches_its_owner_with_the_buttons_index() {
        let _turn = crate::input::desktop_turn();
        let (tx, rx) = std::sync::mpsc::channel();
        let spec = PanelSpec {
            rect: Rect {
                x: 200,
                y: 150,
                width: 600,
                height: 240,
            },
            background: [255, 255, 255],
            ink: [0x11, 0x18, 0x27],
            text: "Demande de prise en main\n\nUn essai.".into(),
            buttons: vec!["Refuser".into(), "Accepter".into()],
            font_px: 18,
            title: "Lanterne — essai".into(),
        };
        let panel = Panel::show(
            spec,
            Box::new(move |i| {
                let _ = tx.send(i);
            }),
        )
        .unwrap();
        let accept = panel.button_rect(1).unwrap();
        let refuse = panel.button_rect(0).unwrap();
        assert!(accept.x > refuse.x, "Accepter on the right of Refuser");
        assert!(panel.button_rect(2).is_none());
        click(accept);
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the click within 10 s");
        assert_eq!(got, 1);
        assert!(panel.press(0));
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap(),
            0
        );
        assert!(!panel.press(5));
    }
}
