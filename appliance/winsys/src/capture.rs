//! GDI capture of the whole virtual desktop (every monitor): `BitBlt` from the screen's device
//! context into a memory bitmap, then `GetDIBits` as top-down 32-bit BGRA.
//!
//! GDI works everywhere (any Windows since XP, remote sessions, Wine), at the cost of a copy
//! through the CPU each frame; DXGI Desktop Duplication ([`crate::dxgi`]) is the faster path
//! on real Windows 8+ PCs, and this the fallback where it is refused. `CAPTUREBLT` brings in
//! layered windows; the mouse pointer is not drawn (nor is it in duplicated frames).

use std::ffi::c_void;
use std::ptr::null_mut;

use windows_sys::Win32::Graphics::Gdi::{
    BitBlt, CreateCompatibleBitmap, CreateCompatibleDC, DeleteDC, DeleteObject, GetDC, GetDIBits,
    ReleaseDC, SelectObject, BITMAPINFO, BITMAPINFOHEADER, BI_RGB, CAPTUREBLT, DIB_RGB_COLORS,
    HBITMAP, HDC, SRCCOPY,
};
use windows_sys::Win32::UI::WindowsAndMessaging::{
    GetSystemMetrics, SM_CXVIRTUALSCREEN, SM_CYVIRTUALSCREEN, SM_XVIRTUALSCREEN, SM_YVIRTUALSCREEN,
};

use crate::Win32Error;

/// Largest desktop captured (8K by 8K: several 4K monitors side by side); a bigger one is
/// refused rather than allocated.
pub const MAX_SIDE: u32 = 8192;

/// One captured desktop: `width` × `height` pixels, top row first, 4 bytes each in
/// B, G, R, X order.
#[derive(Clone, Debug)]
pub struct Bgra {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Bgra {
    /// The (R, G, B) of the pixel at (`x`, `y`); None outside the picture.
    pub fn rgb_at(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = ((y * self.width + x) * 4) as usize;
        Some([self.data[i + 2], self.data[i + 1], self.data[i]])
    }
}

/// The virtual desktop's rectangle: left, top, width, height.
pub fn desktop_rect() -> (i32, i32, u32, u32) {
    // SAFETY: GetSystemMetrics takes an index and returns a number; no pointer is involved.
    let (x, y, w, h) = unsafe {
        (
            GetSystemMetrics(SM_XVIRTUALSCREEN),
            GetSystemMetrics(SM_YVIRTUALSCREEN),
            GetSystemMetrics(SM_CXVIRTUALSCREEN),
            GetSystemMetrics(SM_CYVIRTUALSCREEN),
        )
    };
    (x, y, w.max(0) as u32, h.max(0) as u32)
}

/// The screen's device context, released on drop.
struct ScreenDc(HDC);

impl Drop for ScreenDc {
    fn drop(&mut self) {
        // SAFETY: self.0 came from GetDC(NULL) and is released once, here.
        unsafe { ReleaseDC(null_mut(), self.0) };
    }
}

/// A memory device context, deleted on drop.
struct MemDc(HDC);

impl Drop for MemDc {
    fn drop(&mut self) {
        // SAFETY: self.0 came from CreateCompatibleDC and is deleted once, here.
        unsafe { DeleteDC(self.0) };
    }
}

/// A GDI bitmap, deleted on drop (after the DC it was selected into gave it back).
struct Bitmap(HBITMAP);

impl Drop for Bitmap {
    fn drop(&mut self) {
        // SAFETY: self.0 came from CreateCompatibleBitmap and is deleted once, here.
        unsafe { DeleteObject(self.0) };
    }
}

/// Capture of the whole desktop, one [`DesktopCapture::grab`] per frame.
#[derive(Debug, Default)]
pub struct DesktopCapture {
    _private: (),
}

impl DesktopCapture {
    pub fn new() -> Self {
        DesktopCapture::default()
    }

    /// Copies the desktop as it is now.
    pub fn grab(&mut self) -> Result<Bgra, Win32Error> {
        let (left, top, width, height) = desktop_rect();
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(Win32Error {
                call: "GetSystemMetrics (desktop size out of range)",
                code: 0,
            });
        }
        // SAFETY: GetDC(NULL) returns the screen's DC or NULL (checked); ScreenDc releases it.
        let screen = unsafe { GetDC(null_mut()) };
        if screen.is_null() {
            return Err(Win32Error::last("GetDC"));
        }
        let screen = ScreenDc(screen);
        // SAFETY: screen.0 is a valid DC for the calls below; every handle made is checked
        // for NULL and freed by its guard, and the bitmap is deselected before it is freed.
        unsafe {
            let mem = CreateCompatibleDC(screen.0);
            if mem.is_null() {
                return Err(Win32Error::last("CreateCompatibleDC"));
            }
            let mem = MemDc(mem);
            let bitmap = CreateCompatibleBitmap(screen.0, width as i32, height as i32);
            if bitmap.is_null() {
                return Err(Win32Error::last("CreateCompatibleBitmap"));
            }
            let bitmap = Bitmap(bitmap);
            let previous = SelectObject(mem.0, bitmap.0);
            let copied = BitBlt(
                mem.0,
                0,
                0,
                width as i32,
                height as i32,
                screen.0,
                left,
                top,
                SRCCOPY | CAPTUREBLT,
            );
            SelectObject(mem.0, previous);
            if copied == 0 {
                return Err(Win32Error::last("BitBlt"));
            }
            let mut info: BITMAPINFO = std::mem::zeroed();
            info.bmiHeader = BITMAPINFOHEADER {
                biSize: std::mem::size_of::<BITMAPINFOHEADER>() as u32,
                biWidth: width as i32,
                // Negative: top-down rows.
                biHeight: -(height as i32),
                biPlanes: 1,
                biBitCount: 32,
                biCompression: BI_RGB,
                ..std::mem::zeroed()
            };
            let mut data = vec![0u8; width as usize * height as usize * 4];
            let lines = GetDIBits(
                mem.0,
                bitmap.0,
                0,
                height,
                data.as_mut_ptr() as *mut c_void,
                &mut info,
                DIB_RGB_COLORS,
            );
            if lines != height as i32 {
                return Err(Win32Error::last("GetDIBits"));
            }
            Ok(Bgra {
                width,
                height,
                data,
            })
        }
    }
}
