//! DXGI Desktop Duplication of the whole virtual desktop (every monitor, every graphics
//! adapter): each output attached to the desktop is duplicated (`IDXGIOutput1::DuplicateOutput`
//! on a Direct3D 11 device of its adapter), its frames are copied on the GPU into a staging
//! texture, mapped and written at the output's place on the desktop. The result is the same
//! picture as [`crate::capture`]'s GDI copy: a [`Bgra`] of the virtual desktop, top row first,
//! (0, 0) at its top-left corner (the leftmost, topmost point of any monitor). Duplicated
//! frames are in physical pixels, while Windows describes the outputs' places
//! (`DesktopCoordinates`) to a thread that is not DPI-aware in scaled units: with display
//! scaling above 100 % (most laptops) the frames would not fit their places. So
//! [`DuplicationCapture::new`] makes its thread per-monitor DPI-aware first, and a frame whose
//! size differs from its output's place is an error (the station then falls back to GDI),
//! never a cropped picture. GDI, on that thread afterwards, sees physical pixels too.
//!
//! Why both: duplication hands over only what changed on the GPU and costs far less than
//! GDI's `BitBlt` on a real PC (Windows 8 and later), but it is refused in places GDI works:
//! a disconnected session, the secure desktop (UAC prompts, Ctrl+Alt+Del), some
//! hybrid-graphics laptops, and Wine (whose `DuplicateOutput` answers E_NOTIMPL). The station
//! prefers this path and falls back to GDI (`lanterne-station`'s `ScreenCapture`).
//!
//! Like the GDI copy, the picture has no mouse pointer: duplicated frames never contain it
//! (DXGI hands the pointer's shape over separately), and GDI's `BitBlt` does not draw it
//! either. The stream shows what is on the screen, not where the pointer is.
//!
//! Rotated monitors (portrait mode) are not turned back: an output whose rotation is not the
//! identity makes [`DuplicationCapture::new`] fail with [`DxgiError::Rotated`], and the station
//! then uses GDI, which copies the desktop as the user sees it.

use windows::core::Interface;
use windows::Win32::Foundation::{HMODULE, RECT};
use windows::Win32::Graphics::Direct3D::D3D_DRIVER_TYPE_UNKNOWN;
use windows::Win32::Graphics::Direct3D11::{
    D3D11CreateDevice, ID3D11Device, ID3D11DeviceContext, ID3D11Texture2D, D3D11_CPU_ACCESS_READ,
    D3D11_CREATE_DEVICE_FLAG, D3D11_MAPPED_SUBRESOURCE, D3D11_MAP_READ, D3D11_SDK_VERSION,
    D3D11_TEXTURE2D_DESC, D3D11_USAGE_STAGING,
};
use windows::Win32::Graphics::Dxgi::Common::{
    DXGI_FORMAT_B8G8R8A8_UNORM, DXGI_MODE_ROTATION_IDENTITY, DXGI_MODE_ROTATION_UNSPECIFIED,
    DXGI_SAMPLE_DESC,
};
use windows::Win32::Graphics::Dxgi::{
    CreateDXGIFactory1, IDXGIAdapter1, IDXGIFactory1, IDXGIOutput1, IDXGIOutputDuplication,
    IDXGIResource, DXGI_ERROR_ACCESS_LOST, DXGI_ERROR_NOT_FOUND, DXGI_ERROR_WAIT_TIMEOUT,
    DXGI_OUTDUPL_FRAME_INFO,
};

use crate::capture::{Bgra, MAX_SIDE};

/// How long a grab waits for an output's new frame once it has had one: not at all. The
/// station's capture loop paces itself (the streams' frame rates); no new frame means the
/// screen has not changed, and the last picture is the answer.
const NEXT_FRAME_TIMEOUT_MS: u32 = 0;

/// How long a grab waits for an output's first frame (Windows hands the current desktop
/// image over at once after `DuplicateOutput`, but not always by the very first call).
const FIRST_FRAME_TIMEOUT_MS: u32 = 500;

/// Why the desktop cannot be duplicated, or a frame not read.
#[derive(Debug, thiserror::Error)]
pub enum DxgiError {
    /// A DXGI or Direct3D call failed; `source` has its HRESULT.
    #[error("{call} failed: {source}")]
    Call {
        call: &'static str,
        #[source]
        source: windows::core::Error,
    },
    #[error("no display output is attached to the desktop")]
    NoOutput,
    /// Portrait and flipped monitors are left to GDI (see the module's documentation).
    #[error("display {output} is rotated ({degrees} degrees); its frames are not turned back")]
    Rotated { output: String, degrees: u32 },
    #[error("display {output} gives frames in DXGI format {format}, not B8G8R8A8")]
    Format { output: String, format: i32 },
    /// The output's frames and its place on the desktop differ in size: Windows describes the
    /// desktop scaled (display scaling, and the thread could not be made DPI-aware).
    #[error("display {output} gives {}x{} frames for a {}x{} place on the desktop (display scaling)", frame.0, frame.1, place.0, place.1)]
    Scaled {
        output: String,
        frame: (u32, u32),
        place: (i64, i64),
    },
    #[error("the desktop ({width}x{height}) is empty or larger than {MAX_SIDE} pixels a side")]
    Size { width: i64, height: i64 },
    /// The duplication was lost (desktop switch, mode change, secure desktop), made anew, and
    /// lost again at once.
    #[error("the desktop duplication was lost again right after it was made anew")]
    AccessLost,
}

impl DxgiError {
    fn call(call: &'static str) -> impl FnOnce(windows::core::Error) -> DxgiError {
        move |source| DxgiError::Call { call, source }
    }

    /// The call's HRESULT, if a call failed.
    pub fn hresult(&self) -> Option<i32> {
        match self {
            DxgiError::Call { source, .. } => Some(source.code().0),
            _ => None,
        }
    }

    /// Trying again cannot help: this Windows (or Wine) does not implement duplication
    /// (E_NOTIMPL).
    pub fn is_permanent(&self) -> bool {
        self.hresult() == Some(windows::Win32::Foundation::E_NOTIMPL.0)
    }

    fn is_access_lost(&self) -> bool {
        self.hresult() == Some(DXGI_ERROR_ACCESS_LOST.0)
    }
}

/// A staging texture (CPU-readable) the size of one output's frames.
#[derive(Debug)]
struct Staging {
    texture: ID3D11Texture2D,
    width: u32,
    height: u32,
}

/// One output's duplication.
#[derive(Debug)]
struct Duplicated {
    /// Windows' name of the display (`\\.\DISPLAY1`), for messages.
    name: String,
    /// Where the output is on the virtual desktop.
    rect: RECT,
    device: ID3D11Device,
    context: ID3D11DeviceContext,
    duplication: IDXGIOutputDuplication,
    staging: Option<Staging>,
    /// A frame of this output is in the picture already.
    seen: bool,
    /// The first frame was waited for (once only: an output whose monitor sleeps sends none).
    waited: bool,
}

/// Releases the acquired frame on drop, whatever happened to it (a frame kept acquired makes
/// the next `AcquireNextFrame` fail).
struct AcquiredFrame(IDXGIOutputDuplication);

impl Drop for AcquiredFrame {
    fn drop(&mut self) {
        // SAFETY: a frame of this duplication was acquired and is released once, here. A
        // failure (the duplication lost meanwhile) is reported by the next AcquireNextFrame.
        let _ = unsafe { self.0.ReleaseFrame() };
    }
}

/// Unmaps the staging texture on drop.
struct Mapped<'a> {
    context: &'a ID3D11DeviceContext,
    texture: &'a ID3D11Texture2D,
    data: D3D11_MAPPED_SUBRESOURCE,
}

impl Drop for Mapped<'_> {
    fn drop(&mut self) {
        // SAFETY: subresource 0 of this texture was mapped by this context and is unmapped
        // once, here; nothing read from `data` outlives this guard.
        unsafe { self.context.Unmap(self.texture, 0) };
    }
}

/// Duplication of every output on the desktop, one [`DuplicationCapture::grab`] per frame.
#[derive(Debug)]
pub struct DuplicationCapture {
    outputs: Vec<Duplicated>,
    /// The virtual desktop's top-left corner (the union of the outputs).
    left: i32,
    top: i32,
    /// The last picture: outputs without a new frame keep their part of it.
    picture: Bgra,
}

impl DuplicationCapture {
    /// Duplicates every output attached to the desktop, on every adapter. Makes the calling
    /// thread per-monitor DPI-aware (see the module's documentation): call it on the thread
    /// that captures.
    pub fn new() -> Result<Self, DxgiError> {
        per_monitor_dpi_aware_thread();
        // SAFETY: CreateDXGIFactory1 returns a new factory or an error; no pointer of ours.
        let factory: IDXGIFactory1 =
            unsafe { CreateDXGIFactory1() }.map_err(DxgiError::call("CreateDXGIFactory1"))?;
        let mut outputs = Vec::new();
        for a in 0.. {
            // SAFETY: enumeration by index; DXGI_ERROR_NOT_FOUND ends it.
            let adapter = match unsafe { factory.EnumAdapters1(a) } {
                Ok(adapter) => adapter,
                Err(e) if e.code() == DXGI_ERROR_NOT_FOUND => break,
                Err(e) => return Err(DxgiError::call("EnumAdapters1")(e)),
            };
            duplicate_outputs(&adapter, &mut outputs)?;
        }
        if outputs.is_empty() {
            return Err(DxgiError::NoOutput);
        }
        let left = outputs.iter().map(|o| o.rect.left).min().unwrap_or(0);
        let top = outputs.iter().map(|o| o.rect.top).min().unwrap_or(0);
        let right = outputs.iter().map(|o| o.rect.right).max().unwrap_or(0);
        let bottom = outputs.iter().map(|o| o.rect.bottom).max().unwrap_or(0);
        let (width, height) = (
            i64::from(right) - i64::from(left),
            i64::from(bottom) - i64::from(top),
        );
        if width <= 0 || height <= 0 || width > MAX_SIDE.into() || height > MAX_SIDE.into() {
            return Err(DxgiError::Size { width, height });
        }
        let (width, height) = (width as u32, height as u32);
        Ok(DuplicationCapture {
            outputs,
            left,
            top,
            // Black where no monitor is (an L-shaped desktop), as GDI gives.
            picture: Bgra {
                width,
                height,
                data: vec![0; width as usize * height as usize * 4],
            },
        })
    }

    /// How many outputs are duplicated.
    pub fn outputs(&self) -> usize {
        self.outputs.len()
    }

    /// The desktop as it is now: what changed since the last grab, over the last picture.
    ///
    /// A lost duplication (`DXGI_ERROR_ACCESS_LOST`: a switch to another desktop, a display
    /// mode change, a monitor plugged in) is made anew once, from the desktop's new layout;
    /// lost again at once, the grab fails with [`DxgiError::AccessLost`]. So does anything
    /// that fails while the new one is made (the secure desktop refuses duplication), and
    /// every grab after that: the caller starts afresh with [`DuplicationCapture::new`].
    pub fn grab(&mut self) -> Result<Bgra, DxgiError> {
        // A remake that failed leaves nothing to grab from: still lost.
        if self.outputs.is_empty() {
            return Err(DxgiError::AccessLost);
        }
        match self.update() {
            Err(e) if e.is_access_lost() => {
                // The lost duplications go before new ones are asked for: Windows lets an
                // output be duplicated only a few times at once.
                self.outputs.clear();
                *self = DuplicationCapture::new()?;
                match self.update() {
                    Err(e) if e.is_access_lost() => return Err(DxgiError::AccessLost),
                    r => r?,
                }
            }
            r => r?,
        }
        Ok(self.picture.clone())
    }

    /// Copies each output's new frame, if it has one, into the picture.
    fn update(&mut self) -> Result<(), DxgiError> {
        let (left, top) = (self.left, self.top);
        for out in &mut self.outputs {
            let timeout = if out.waited {
                NEXT_FRAME_TIMEOUT_MS
            } else {
                FIRST_FRAME_TIMEOUT_MS
            };
            out.waited = true;
            let mut info = DXGI_OUTDUPL_FRAME_INFO::default();
            let mut resource: Option<IDXGIResource> = None;
            // SAFETY: both out-pointers are to locals that live through the call; the frame
            // acquired is released by the guard below on every path.
            let acquired = unsafe {
                out.duplication
                    .AcquireNextFrame(timeout, &mut info, &mut resource)
            };
            match acquired {
                Ok(()) => {}
                // Nothing new on this output: its part of the last picture stands.
                Err(e) if e.code() == DXGI_ERROR_WAIT_TIMEOUT => continue,
                Err(e) => return Err(DxgiError::call("AcquireNextFrame")(e)),
            }
            let _frame = AcquiredFrame(out.duplication.clone());
            // Only the pointer moved (no new desktop image since the last frame).
            if info.LastPresentTime == 0 && out.seen {
                continue;
            }
            let Some(resource) = resource else {
                continue;
            };
            let texture: ID3D11Texture2D = resource
                .cast()
                .map_err(DxgiError::call("IDXGIResource as ID3D11Texture2D"))?;
            copy_frame(out, &texture, &mut self.picture, left, top)?;
            out.seen = true;
        }
        Ok(())
    }
}

/// Duplicates `adapter`'s outputs that are attached to the desktop, on one device of its own.
fn duplicate_outputs(
    adapter: &IDXGIAdapter1,
    outputs: &mut Vec<Duplicated>,
) -> Result<(), DxgiError> {
    let mut device: Option<(ID3D11Device, ID3D11DeviceContext)> = None;
    for o in 0.. {
        // SAFETY: enumeration by index; DXGI_ERROR_NOT_FOUND ends it.
        let output = match unsafe { adapter.EnumOutputs(o) } {
            Ok(output) => output,
            Err(e) if e.code() == DXGI_ERROR_NOT_FOUND => break,
            Err(e) => return Err(DxgiError::call("EnumOutputs")(e)),
        };
        // SAFETY: GetDesc fills a description it returns by value.
        let desc = unsafe { output.GetDesc() }.map_err(DxgiError::call("IDXGIOutput::GetDesc"))?;
        if !desc.AttachedToDesktop.as_bool() {
            continue;
        }
        let end = desc
            .DeviceName
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(desc.DeviceName.len());
        let name = String::from_utf16_lossy(&desc.DeviceName[..end]);
        // Turning frames back is left to GDI (see the module's documentation): the station
        // falls back to it on this error.
        if desc.Rotation != DXGI_MODE_ROTATION_IDENTITY
            && desc.Rotation != DXGI_MODE_ROTATION_UNSPECIFIED
        {
            return Err(DxgiError::Rotated {
                output: name,
                degrees: (desc.Rotation.0.clamp(1, 4) as u32 - 1) * 90,
            });
        }
        let (device, context) = match &device {
            Some(d) => d.clone(),
            None => device.insert(new_device(adapter)?).clone(),
        };
        let output: IDXGIOutput1 = output
            .cast()
            .map_err(DxgiError::call("IDXGIOutput as IDXGIOutput1"))?;
        // SAFETY: the device is a live Direct3D 11 device made on this output's adapter.
        let duplication = unsafe { output.DuplicateOutput(&device) }
            .map_err(DxgiError::call("DuplicateOutput"))?;
        outputs.push(Duplicated {
            name,
            rect: desc.DesktopCoordinates,
            device,
            context,
            duplication,
            staging: None,
            seen: false,
            waited: false,
        });
    }
    Ok(())
}

/// A Direct3D 11 device (and its immediate context) on `adapter`.
fn new_device(adapter: &IDXGIAdapter1) -> Result<(ID3D11Device, ID3D11DeviceContext), DxgiError> {
    let mut device = None;
    let mut context = None;
    // SAFETY: an explicit adapter with the UNKNOWN driver type, as D3D11CreateDevice requires;
    // no software module; the default feature levels; both out-pointers are to locals.
    unsafe {
        D3D11CreateDevice(
            adapter,
            D3D_DRIVER_TYPE_UNKNOWN,
            HMODULE::default(),
            D3D11_CREATE_DEVICE_FLAG(0),
            None,
            D3D11_SDK_VERSION,
            Some(&mut device),
            None,
            Some(&mut context),
        )
    }
    .map_err(DxgiError::call("D3D11CreateDevice"))?;
    match (device, context) {
        (Some(device), Some(context)) => Ok((device, context)),
        _ => Err(DxgiError::Call {
            call: "D3D11CreateDevice (no device returned)",
            source: windows::core::Error::empty(),
        }),
    }
}

/// Makes the calling thread per-monitor DPI-aware (v2), so that Windows describes the
/// outputs in physical pixels, as duplication delivers them. Looked up at run time: Windows 10
/// before version 1607 has no `SetThreadDpiAwarenessContext` (there the frame-size check in
/// [`copy_frame`] catches a scaled desktop).
fn per_monitor_dpi_aware_thread() {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    // DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2, a pseudo-handle Windows defines as -4.
    const PER_MONITOR_AWARE_V2: isize = -4;
    type SetContext = unsafe extern "system" fn(isize) -> isize;
    let user32 = crate::wide::to_wide("user32.dll");
    // SAFETY: the name ends with NUL; user32 stays loaded in a process that uses windows.
    let module = unsafe { GetModuleHandleW(user32.as_ptr()) };
    if module.is_null() {
        return;
    }
    // SAFETY: `module` is user32's handle; the symbol name ends with NUL.
    let Some(f) =
        (unsafe { GetProcAddress(module, c"SetThreadDpiAwarenessContext".as_ptr().cast()) })
    else {
        return;
    };
    // SAFETY: the exported function has this signature (DPI_AWARENESS_CONTEXT is a
    // pointer-sized handle); it returns the previous context, or null when it refused.
    let set: SetContext = unsafe { std::mem::transmute(f) };
    // SAFETY: a documented pseudo-handle; the call only changes this thread's awareness.
    unsafe { set(PER_MONITOR_AWARE_V2) };
}

/// Copies one acquired frame of `out` into `picture`, whose top-left corner is at
/// (`left`, `top`) on the desktop.
fn copy_frame(
    out: &mut Duplicated,
    frame: &ID3D11Texture2D,
    picture: &mut Bgra,
    left: i32,
    top: i32,
) -> Result<(), DxgiError> {
    let mut desc = D3D11_TEXTURE2D_DESC::default();
    // SAFETY: GetDesc writes the description into the local it is given.
    unsafe { frame.GetDesc(&mut desc) };
    if desc.Format != DXGI_FORMAT_B8G8R8A8_UNORM {
        return Err(DxgiError::Format {
            output: out.name.clone(),
            format: desc.Format.0,
        });
    }
    let place_size = (
        i64::from(out.rect.right) - i64::from(out.rect.left),
        i64::from(out.rect.bottom) - i64::from(out.rect.top),
    );
    if place_size != (i64::from(desc.Width), i64::from(desc.Height)) {
        return Err(DxgiError::Scaled {
            output: out.name.clone(),
            frame: (desc.Width, desc.Height),
            place: place_size,
        });
    }
    let staging = match &out.staging {
        Some(s) if s.width == desc.Width && s.height == desc.Height => s,
        _ => {
            let staging_desc = D3D11_TEXTURE2D_DESC {
                Width: desc.Width,
                Height: desc.Height,
                MipLevels: 1,
                ArraySize: 1,
                Format: desc.Format,
                SampleDesc: DXGI_SAMPLE_DESC {
                    Count: 1,
                    Quality: 0,
                },
                Usage: D3D11_USAGE_STAGING,
                BindFlags: 0,
                CPUAccessFlags: D3D11_CPU_ACCESS_READ.0 as u32,
                MiscFlags: 0,
            };
            let mut texture = None;
            // SAFETY: the description lives through the call; no initial data; the texture
            // is written into a local.
            unsafe {
                out.device
                    .CreateTexture2D(&staging_desc, None, Some(&mut texture))
            }
            .map_err(DxgiError::call("CreateTexture2D (staging)"))?;
            let texture = texture.ok_or_else(|| DxgiError::Call {
                call: "CreateTexture2D (no texture returned)",
                source: windows::core::Error::empty(),
            })?;
            out.staging.insert(Staging {
                texture,
                width: desc.Width,
                height: desc.Height,
            })
        }
    };
    // SAFETY: both textures are live, on the same device, of the same size and format.
    unsafe { out.context.CopyResource(&staging.texture, frame) };
    let mut data = D3D11_MAPPED_SUBRESOURCE::default();
    // SAFETY: the staging texture is CPU-readable; `data` is a local the call fills. Map
    // waits for the copy above to finish.
    unsafe {
        out.context
            .Map(&staging.texture, 0, D3D11_MAP_READ, 0, Some(&mut data))
    }
    .map_err(DxgiError::call("Map (staging)"))?;
    let mapped = Mapped {
        context: &out.context,
        texture: &staging.texture,
        data,
    };
    let pitch = mapped.data.RowPitch as usize;
    if mapped.data.pData.is_null() || pitch < desc.Width as usize * 4 {
        return Err(DxgiError::Call {
            call: "Map (staging: no rows)",
            source: windows::core::Error::empty(),
        });
    }
    // SAFETY: while mapped, pData points to `Height` rows of `RowPitch` bytes each, which
    // nothing else writes; the slice is dropped before `mapped` unmaps them.
    let rows = unsafe {
        std::slice::from_raw_parts(mapped.data.pData as *const u8, pitch * desc.Height as usize)
    };
    place(
        rows,
        pitch,
        (desc.Width, desc.Height),
        (out.rect.left - left, out.rect.top - top),
        picture,
    );
    drop(mapped);
    Ok(())
}

/// Writes a `size` picture of BGRA rows (`pitch` bytes apart) into `picture` with its top-left
/// corner at `at`, clipped to `picture`.
fn place(rows: &[u8], pitch: usize, size: (u32, u32), at: (i32, i32), picture: &mut Bgra) {
    let (w, h) = (size.0 as i64, size.1 as i64);
    let (x0, y0) = (i64::from(at.0), i64::from(at.1));
    let (pw, ph) = (i64::from(picture.width), i64::from(picture.height));
    // The part of the frame inside the picture.
    let (sx, sy) = ((-x0).max(0), (-y0).max(0));
    let (ex, ey) = (w.min(pw - x0), h.min(ph - y0));
    if sx >= ex || sy >= ey {
        return;
    }
    let n = ((ex - sx) * 4) as usize;
    for y in sy..ey {
        let src = y as usize * pitch + sx as usize * 4;
        let dst = (((y0 + y) * pw + x0 + sx) * 4) as usize;
        picture.data[dst..dst + n].copy_from_slice(&rows[src..src + n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::desktop_rect;
    use crate::window::ColourWindow;

    fn black(width: u32, height: u32) -> Bgra {
        Bgra {
            width,
            height,
            data: vec![0; (width * height * 4) as usize],
        }
    }

    /// A `w` x `h` frame of one colour, rows padded to `pitch` bytes with 0xEE.
    fn frame(w: u32, h: u32, pitch: usize, rgb: [u8; 3]) -> Vec<u8> {
        let mut rows = vec![0xEE; pitch * h as usize];
        for y in 0..h as usize {
            for x in 0..w as usize {
                rows[y * pitch + x * 4..][..4].copy_from_slice(&[rgb[2], rgb[1], rgb[0], 255]);
            }
        }
        rows
    }

    #[test]
    fn outputs_land_at_their_desktop_coordinates_and_padding_is_left_out() {
        // Two monitors side by side, the second lower: an L-shaped desktop 6 x 4.
        let mut picture = black(6, 4);
        let red = frame(3, 3, 16, [255, 0, 0]);
        let blue = frame(3, 3, 12, [0, 0, 255]);
        place(&red, 16, (3, 3), (0, 0), &mut picture);
        place(&blue, 12, (3, 3), (3, 1), &mut picture);
        assert_eq!(picture.rgb_at(0, 0), Some([255, 0, 0]));
        assert_eq!(picture.rgb_at(2, 2), Some([255, 0, 0]));
        assert_eq!(picture.rgb_at(3, 1), Some([0, 0, 255]));
        assert_eq!(picture.rgb_at(5, 3), Some([0, 0, 255]));
        // Where no monitor is: black, not the rows' padding.
        assert_eq!(picture.rgb_at(4, 0), Some([0, 0, 0]));
        assert_eq!(picture.rgb_at(0, 3), Some([0, 0, 0]));
    }

    #[test]
    fn a_frame_larger_than_its_place_is_clipped_to_the_picture() {
        let mut picture = black(4, 4);
        let green = frame(4, 4, 16, [0, 255, 0]);
        place(&green, 16, (4, 4), (2, -2), &mut picture);
        assert_eq!(picture.rgb_at(2, 0), Some([0, 255, 0]));
        assert_eq!(picture.rgb_at(3, 1), Some([0, 255, 0]));
        assert_eq!(picture.rgb_at(1, 0), Some([0, 0, 0]));
        assert_eq!(picture.rgb_at(2, 2), Some([0, 0, 0]));
        // Entirely outside: nothing written, nothing out of bounds.
        place(&green, 16, (4, 4), (10, 10), &mut picture);
        place(&green, 16, (4, 4), (-10, 0), &mut picture);
        assert_eq!(picture.rgb_at(0, 3), Some([0, 0, 0]));
    }

    /// The duplicated desktop shows a window of a known colour, at the same size as GDI's
    /// copy. Wine does not implement `DuplicateOutput`, so this runs on a real PC only:
    ///
    /// 1. On Linux: `cargo test -p lanterne-winsys --target x86_64-pc-windows-gnu --no-run`;
    ///    cargo prints the test program's path (`target/x86_64-pc-windows-gnu/debug/deps/
    ///    lanterne_winsys-<hash>.exe`).
    /// 2. Copy that `.exe` to a Windows 10 or 11 PC (not a remote desktop session: log on at
    ///    the PC itself), in the session of the user whose desktop is shown.
    /// 3. In a console there: `lanterne_winsys-<hash>.exe --ignored --exact
    ///    dxgi::tests::duplication_shows_a_window_of_a_known_colour`. A teal window covers
    ///    the screens for a moment; the test prints `ok`.
    #[test]
    #[ignore = "needs DXGI Desktop Duplication: a real Windows 10/11 PC, see the doc comment"]
    fn duplication_shows_a_window_of_a_known_colour() {
        const TEAL: [u8; 3] = [20, 160, 150];
        let _turn = crate::input::desktop_turn();
        let (_, _, width, height) = desktop_rect();
        let _window = ColourWindow::cover_desktop(TEAL).expect("a window over the desktop");
        let mut capture = DuplicationCapture::new().expect("the desktop is duplicated");
        assert!(capture.outputs() >= 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let picture = capture.grab().expect("a frame");
            // Physical pixels: as large as GDI's size read above (before this thread became
            // DPI-aware), larger with display scaling.
            assert!(
                picture.width >= width && picture.height >= height,
                "{}x{} against GDI's {width}x{height}",
                picture.width,
                picture.height
            );
            let centre = picture.rgb_at(picture.width / 2, picture.height / 2);
            if centre == Some(TEAL) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the centre stayed {centre:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// What Wine 8 does with duplication, pinned so that a Wine that implements it is noticed
    /// (then the test above can run here): the factory, the adapter, its output and the
    /// Direct3D 11 device are all there, and `DuplicateOutput` answers E_NOTIMPL. On Windows
    /// this test has nothing to check (the one above does).
    #[test]
    fn wine_refuses_duplication() {
        if !crate::wine::detected() {
            return;
        }
        let err = DuplicationCapture::new().expect_err("Wine 8 does not duplicate outputs");
        eprintln!("DXGI under Wine: {err}");
        assert!(
            matches!(
                err,
                DxgiError::Call {
                    call: "DuplicateOutput",
                    ..
                }
            ) && err.hresult() == Some(windows::Win32::Foundation::E_NOTIMPL.0)
                && err.is_permanent(),
            "{err:?}"
        );
    }
}
