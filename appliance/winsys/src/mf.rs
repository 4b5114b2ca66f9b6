//! Media Foundation's H.264 encoder: the PC's hardware encoder (Intel Quick Sync, NVIDIA
//! NVENC, AMD VCE/VCN, as their drivers register them) when it has one, else Microsoft's
//! software encoder that ships with Windows 10/11.
//!
//! ```text
//!  I420 ──► NV12 sample ──► IMFTransform (H.264 encoder MFT) ──► H.264 samples
//!                              ▲ ICodecAPI: CBR, low latency,        │ Annex B, SPS+PPS put in
//!                              │ no B-frames, GOP, keyframe now      ▼ front of every keyframe
//! ```
//!
//! The encoder is chosen with `MFTEnumEx` (hardware MFTs first, then synchronous software
//! ones), each candidate tried in turn until one accepts the stream: baseline profile, the
//! frame size and rate, a mean bit rate, progressive NV12 input. One that cannot make a
//! keyframe on request (`CODECAPI_AVEncVideoForceKeyFrame`) is refused, because the stream
//! rules need one whenever the box asks.
//!
//! Both kinds of MFT are driven: synchronous ones with `ProcessInput`/`ProcessOutput` until
//! `MF_E_TRANSFORM_NEED_MORE_INPUT`; asynchronous ones (every hardware encoder) are unlocked
//! with `MF_TRANSFORM_ASYNC_UNLOCK` and fed as their `IMFMediaEventGenerator` asks
//! (`METransformNeedInput`, `METransformHaveOutput`).
//!
//! What comes out is made to follow the agent's stream rules whatever the MFT does: Annex B
//! (start codes), no access unit delimiters, SPS and PPS in front of each IDR (taken from
//! `MF_MT_MPEG_SEQUENCE_HEADER` or from an earlier keyframe when the MFT sends them only
//! once), and whether a unit is a keyframe (`MFSampleExtension_CleanPoint`, or an IDR slice
//! in it). The byte-level rules live in [`annexb`], which needs no MFT and is tested here.
//!
//! mfplat.dll is loaded at run time, not linked: Windows "N" editions without the Media
//! Feature Pack have none, and there the agent must still start (and use OpenH264).
//!
//! It can be tested only on a real Windows PC, by hand (the ignored test in the station's
//! `platform/windows/encoder.rs` says how), and has not been run on one yet: Wine 8, where
//! the automatic tests run, has no H.264 encoder MFT (`MFTEnumEx` lists none), and the agent
//! uses OpenH264 there.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use windows::core::{Interface, GUID, HRESULT};
use windows::Win32::Foundation::{E_POINTER, RPC_E_CHANGED_MODE, VARIANT_TRUE};
use windows::Win32::Media::MediaFoundation::{
    eAVEncCommonRateControlMode_CBR, eAVEncH264VProfile_Base, CODECAPI_AVEncCommonRateControlMode,
    CODECAPI_AVEncMPVDefaultBPictureCount, CODECAPI_AVEncMPVGOPSize,
    CODECAPI_AVEncVideoForceKeyFrame, CODECAPI_AVLowLatencyMode, ICodecAPI, IMFActivate,
    IMFMediaBuffer, IMFMediaEventGenerator, IMFMediaType, IMFSample, IMFTransform, MEError,
    METransformHaveOutput, METransformNeedInput, MFMediaType_Video, MFSampleExtension_CleanPoint,
    MFT_FRIENDLY_NAME_Attribute, MFVideoFormat_H264, MFVideoFormat_NV12,
    MFVideoInterlace_Progressive, MFSTARTUP_FULL, MFT_CATEGORY_VIDEO_ENCODER, MFT_ENUM_FLAG,
    MFT_ENUM_FLAG_HARDWARE, MFT_ENUM_FLAG_SORTANDFILTER, MFT_ENUM_FLAG_SYNCMFT,
    MFT_MESSAGE_NOTIFY_BEGIN_STREAMING, MFT_MESSAGE_NOTIFY_END_STREAMING,
    MFT_MESSAGE_NOTIFY_START_OF_STREAM, MFT_OUTPUT_DATA_BUFFER,
    MFT_OUTPUT_STREAM_CAN_PROVIDE_SAMPLES, MFT_OUTPUT_STREAM_PROVIDES_SAMPLES,
    MFT_REGISTER_TYPE_INFO, MF_EVENT_FLAG_NO_WAIT, MF_E_NOTACCEPTING, MF_E_NO_EVENTS_AVAILABLE,
    MF_E_TRANSFORM_NEED_MORE_INPUT, MF_E_TRANSFORM_STREAM_CHANGE, MF_LOW_LATENCY,
    MF_MT_AVG_BITRATE, MF_MT_DEFAULT_STRIDE, MF_MT_FRAME_RATE, MF_MT_FRAME_SIZE,
    MF_MT_INTERLACE_MODE, MF_MT_MAJOR_TYPE, MF_MT_MPEG2_PROFILE, MF_MT_MPEG_SEQUENCE_HEADER,
    MF_MT_PIXEL_ASPECT_RATIO, MF_MT_SUBTYPE, MF_TRANSFORM_ASYNC, MF_TRANSFORM_ASYNC_UNLOCK,
    MF_VERSION,
};
use windows::Win32::System::Com::{
    CoInitializeEx, CoTaskMemFree, CoUninitialize, COINIT_MULTITHREADED,
};
use windows::Win32::System::Variant::{VARIANT, VT_BOOL, VT_UI4};
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

/// Longest wait for an asynchronous MFT to ask for a picture or hand one back. A hardware
/// encoder in low-latency mode answers in milliseconds; one that keeps a picture until the
/// next arrives gives it with the next call instead.
const ASYNC_WAIT: Duration = Duration::from_millis(200);

/// Pictures between IDRs the encoder makes on its own, in seconds of frames: the agent asks
/// for keyframes itself (first frame, on request, at least every minute of encoded frames).
const GOP_SECONDS: u32 = 60;

/// Why the Media Foundation encoder cannot start or encode.
#[derive(Debug, thiserror::Error)]
pub enum MfError {
    #[error("{call} failed: {source}")]
    Call {
        call: &'static str,
        source: windows::core::Error,
    },
    #[error("Media Foundation is not installed (no mfplat.dll: a Windows \"N\" edition without the Media Feature Pack?)")]
    NotInstalled,
    #[error("COM cannot start on this thread ({0})")]
    Com(HRESULT),
    #[error("no Media Foundation H.264 encoder on this PC")]
    NoEncoder,
    #[error("no Media Foundation H.264 encoder accepted the stream: {0}")]
    NoneAccepted(String),
    #[error("cannot make a keyframe on request (CODECAPI_AVEncVideoForceKeyFrame)")]
    NoForcedKeyframe,
    #[error("{width}x{height} at {fps} fps is not a stream this encoder takes")]
    Params { width: u32, height: u32, fps: u32 },
    #[error("the picture is {got} bytes, {expected} expected for I420")]
    PictureSize { got: usize, expected: usize },
    #[error("the encoder gave no {0} within {ASYNC_WAIT:?}")]
    Stalled(&'static str),
    #[error("the encoder reported an error: {0}")]
    Event(HRESULT),
    #[error("a keyframe came without SPS and PPS, and the encoder gave no sequence header")]
    NoParameterSets,
}

trait Call<T> {
    fn call(self, call: &'static str) -> Result<T, MfError>;
}

impl<T> Call<T> for windows::core::Result<T> {
    fn call(self, call: &'static str) -> Result<T, MfError> {
        self.map_err(|source| MfError::Call { call, source })
    }
}

/// Which encoder an [`MfEncoder`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderName {
    /// The MFT's friendly name (`MFT_FRIENDLY_NAME_Attribute`), e.g. "H264 Encoder MFT".
    pub friendly: String,
    /// A hardware MFT (found with `MFT_ENUM_FLAG_HARDWARE`).
    pub hardware: bool,
}

impl std::fmt::Display for EncoderName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.hardware {
            "hardware"
        } else {
            "software"
        };
        write!(f, "{} ({kind})", self.friendly)
    }
}

/// COM on the calling thread, for as long as the thread lives (Media Foundation's objects
/// are COM objects; the capture thread that encodes never uses another apartment).
struct Apartment(HRESULT);

impl Apartment {
    fn usable(&self) -> Result<(), MfError> {
        // A thread already in a single-threaded apartment can use the MFTs as well.
        if self.0.is_ok() || self.0 == RPC_E_CHANGED_MODE {
            Ok(())
        } else {
            Err(MfError::Com(self.0))
        }
    }
}

impl Drop for Apartment {
    fn drop(&mut self) {
        if self.0.is_ok() {
            // SAFETY: balances this thread's successful CoInitializeEx, once, at thread exit.
            unsafe { CoUninitialize() };
        }
    }
}

thread_local! {
    // SAFETY: CoInitializeEx takes no pointer (reserved: None) and only sets up this thread.
    static APARTMENT: Apartment = Apartment(unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) });
}

type OutPtr = *mut *mut c_void;
type EnumEx = unsafe extern "system" fn(
    GUID,
    u32,
    *const MFT_REGISTER_TYPE_INFO,
    *const MFT_REGISTER_TYPE_INFO,
    *mut *mut *mut c_void,
    *mut u32,
) -> HRESULT;
type Proc = unsafe extern "system" fn() -> isize;
type Startup = unsafe extern "system" fn(u32, u32) -> HRESULT;
type Create = unsafe extern "system" fn(OutPtr) -> HRESULT;
type CreateBuffer = unsafe extern "system" fn(u32, OutPtr) -> HRESULT;

/// The mfplat.dll functions used here, with the signatures the `windows` crate declares.
struct Mfplat {
    startup: Startup,
    enum_ex: EnumEx,
    create_media_type: Create,
    create_memory_buffer: CreateBuffer,
    create_sample: Create,
}

/// mfplat.dll from System32 (never from the program's folder), loaded once and kept.
fn mfplat() -> Result<&'static Mfplat, MfError> {
    static MFPLAT: OnceLock<Option<Mfplat>> = OnceLock::new();
    MFPLAT
        .get_or_init(|| {
            let name = crate::wide::to_wide("mfplat.dll");
            // SAFETY: the name ends with NUL; the module is never freed, so the function
            // pointers taken from it stay valid for the life of the process.
            let module = unsafe {
                LoadLibraryExW(
                    name.as_ptr(),
                    std::ptr::null_mut(),
                    LOAD_LIBRARY_SEARCH_SYSTEM32,
                )
            };
            if module.is_null() {
                return None;
            }
            // SAFETY: the symbol names end with NUL; `module` stays loaded.
            let get =
                |symbol: &std::ffi::CStr| unsafe { GetProcAddress(module, symbol.as_ptr().cast()) };
            // SAFETY: each pointer is cast to the signature Windows' SDK (and the `windows`
            // crate's own declaration) gives that function.
            unsafe {
                Some(Mfplat {
                    startup: std::mem::transmute::<Proc, Startup>(get(c"MFStartup")?),
                    enum_ex: std::mem::transmute::<Proc, EnumEx>(get(c"MFTEnumEx")?),
                    create_media_type: std::mem::transmute::<Proc, Create>(get(
                        c"MFCreateMediaType",
                    )?),
                    create_memory_buffer: std::mem::transmute::<Proc, CreateBuffer>(get(
                        c"MFCreateMemoryBuffer",
                    )?),
                    create_sample: std::mem::transmute::<Proc, Create>(get(c"MFCreateSample")?),
                })
            }
        })
        .as_ref()
        .ok_or(MfError::NotInstalled)
}

/// The interface an mfplat.dll function wrote to `out` (one reference, now owned).
fn created<T: Interface>(call: &'static str, hr: HRESULT, out: *mut c_void) -> Result<T, MfError> {
    hr.ok().call(call)?;
    if out.is_null() {
        return Err(MfError::Call {
            call,
            source: E_POINTER.into(),
        });
    }
    // SAFETY: on success the function wrote a new reference to a `T` into `out`; it is
    // taken over here, once.
    Ok(unsafe { T::from_raw(out) })
}

fn create_media_type() -> Result<IMFMediaType, MfError> {
    let mut out = std::ptr::null_mut();
    // SAFETY: `out` is a valid place for the new object's pointer.
    let hr = unsafe { (mfplat()?.create_media_type)(&mut out) };
    created("MFCreateMediaType", hr, out)
}

fn create_memory_buffer(len: u32) -> Result<IMFMediaBuffer, MfError> {
    let mut out = std::ptr::null_mut();
    // SAFETY: as in create_media_type.
    let hr = unsafe { (mfplat()?.create_memory_buffer)(len, &mut out) };
    created("MFCreateMemoryBuffer", hr, out)
}

fn create_sample() -> Result<IMFSample, MfError> {
    let mut out = std::ptr::null_mut();
    // SAFETY: as in create_media_type.
    let hr = unsafe { (mfplat()?.create_sample)(&mut out) };
    created("MFCreateSample", hr, out)
}

/// COM on this thread and Media Foundation in this process (started once, never shut down:
/// the agent encodes until it exits).
fn start() -> Result<(), MfError> {
    let api = mfplat()?;
    APARTMENT.with(Apartment::usable)?;
    static STARTED: OnceLock<HRESULT> = OnceLock::new();
    // SAFETY: MFStartup takes two numbers; MF_VERSION is the SDK version it checks.
    let started = *STARTED.get_or_init(|| unsafe { (api.startup)(MF_VERSION, MFSTARTUP_FULL) });
    started.ok().call("MFStartup")
}

/// The H.264 encoder MFTs that take NV12, as `MFTEnumEx` lists them with `flags`.
fn enumerate(flags: MFT_ENUM_FLAG) -> Result<Vec<IMFActivate>, MfError> {
    let input = MFT_REGISTER_TYPE_INFO {
        guidMajorType: MFMediaType_Video,
        guidSubtype: MFVideoFormat_NV12,
    };
    let output = MFT_REGISTER_TYPE_INFO {
        guidMajorType: MFMediaType_Video,
        guidSubtype: MFVideoFormat_H264,
    };
    let mut array: *mut *mut c_void = std::ptr::null_mut();
    let mut count = 0u32;
    // SAFETY: the type infos live across the call; MFTEnumEx writes a CoTaskMemAlloc'd array
    // of `count` activation objects (one reference each) into `array`.
    unsafe {
        (mfplat()?.enum_ex)(
            MFT_CATEGORY_VIDEO_ENCODER,
            flags.0 as u32,
            &input,
            &output,
            &mut array,
            &mut count,
        )
    }
    .ok()
    .call("MFTEnumEx")?;
    let array = array.cast::<Option<IMFActivate>>();
    if array.is_null() {
        return Ok(Vec::new());
    }
    let activates = (0..count as usize)
        // SAFETY: `array` holds `count` interface pointers (Option<IMFActivate> has their
        // layout, null being None); each is read (moved out) once, so each reference is
        // released once, by the Vec.
        .filter_map(|i| unsafe { std::ptr::read(array.add(i)) })
        .collect();
    // SAFETY: the array came from MFTEnumEx's CoTaskMemAlloc; its entries were moved out above.
    unsafe { CoTaskMemFree(Some(array as *const c_void)) };
    Ok(activates)
}

fn friendly_name(activate: &IMFActivate) -> String {
    // SAFETY: the attribute key is a constant GUID; the length excludes the final NUL.
    let Ok(len) = (unsafe { activate.GetStringLength(&MFT_FRIENDLY_NAME_Attribute) }) else {
        return "unnamed encoder".into();
    };
    let mut buf = vec![0u16; len as usize + 1];
    // SAFETY: `buf` has room for the string and its NUL, as GetStringLength said.
    match unsafe { activate.GetString(&MFT_FRIENDLY_NAME_Attribute, &mut buf, None) } {
        Ok(()) => String::from_utf16_lossy(&buf[..len as usize]),
        Err(_) => "unnamed encoder".into(),
    }
}

/// Hardware first, then synchronous software MFTs.
const PASSES: [(MFT_ENUM_FLAG, bool); 2] = [
    (
        MFT_ENUM_FLAG(MFT_ENUM_FLAG_HARDWARE.0 | MFT_ENUM_FLAG_SORTANDFILTER.0),
        true,
    ),
    (
        MFT_ENUM_FLAG(MFT_ENUM_FLAG_SYNCMFT.0 | MFT_ENUM_FLAG_SORTANDFILTER.0),
        false,
    ),
];

/// The H.264 encoders this PC has, in the order [`MfEncoder::new`] tries them.
pub fn h264_encoders() -> Result<Vec<EncoderName>, MfError> {
    start()?;
    let mut names = Vec::new();
    for (flags, hardware) in PASSES {
        for activate in enumerate(flags)? {
            names.push(EncoderName {
                friendly: friendly_name(&activate),
                hardware,
            });
        }
    }
    Ok(names)
}

fn pack(high: u32, low: u32) -> u64 {
    (u64::from(high) << 32) | u64::from(low)
}

fn variant_u32(value: u32) -> VARIANT {
    let mut v = VARIANT::default();
    // SAFETY: a zeroed VARIANT is VT_EMPTY; the tag and the member it names are set together.
    unsafe {
        let inner = &mut *v.Anonymous.Anonymous;
        inner.vt = VT_UI4;
        inner.Anonymous.ulVal = value;
    }
    v
}

fn variant_true() -> VARIANT {
    let mut v = VARIANT::default();
    // SAFETY: as in variant_u32, for VT_BOOL.
    unsafe {
        let inner = &mut *v.Anonymous.Anonymous;
        inner.vt = VT_BOOL;
        inner.Anonymous.boolVal = VARIANT_TRUE;
    }
    v
}

/// Sets one codec property; `Err` when the MFT does not take it.
fn set(codec: &ICodecAPI, api: &GUID, value: &VARIANT) -> windows::core::Result<()> {
    // SAFETY: `api` and `value` are valid for the call; a VT_UI4/VT_BOOL VARIANT owns nothing.
    unsafe { codec.SetValue(api, value) }
}

/// One H.264 encoder MFT, set up for one stream. Not `Send`: it stays on the thread that
/// made it (COM objects of that thread's apartment).
pub struct MfEncoder {
    activate: IMFActivate,
    transform: IMFTransform,
    codec: ICodecAPI,
    /// Some for an asynchronous MFT: its events say when it takes input and has output.
    events: Option<IMFMediaEventGenerator>,
    /// `METransformNeedInput` events not yet answered with a picture.
    input_credits: u32,
    /// None when the MFT allocates its output samples; else the size of the ones we give it.
    output_size: Option<u32>,
    width: u32,
    height: u32,
    frame_duration: i64,
    started: Instant,
    last_time: i64,
    /// SPS and PPS (Annex B) to put in front of a keyframe that comes without them.
    sequence_header: Vec<u8>,
    name: EncoderName,
}

impl std::fmt::Debug for MfEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfEncoder")
            .field("name", &self.name)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("async", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

impl MfEncoder {
    /// The first encoder MFT (hardware first) that takes a `width` × `height` stream at `fps`
    /// frames per second and `bitrate_kbps`, in baseline profile from NV12.
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Result<Self, MfError> {
        if width == 0 || height == 0 || width % 2 != 0 || height % 2 != 0 || fps == 0 {
            return Err(MfError::Params { width, height, fps });
        }
        start()?;
        let mut refusals = Vec::new();
        for (flags, hardware) in PASSES {
            for activate in enumerate(flags)? {
                let name = EncoderName {
                    friendly: friendly_name(&activate),
                    hardware,
                };
                match Self::open(&activate, name.clone(), width, height, fps, bitrate_kbps) {
                    Ok(encoder) => return Ok(encoder),
                    Err(e) => {
                        // SAFETY: releases what ActivateObject made, if anything; the
                        // activation object stays valid.
                        let _ = unsafe { activate.ShutdownObject() };
                        refusals.push(format!("{name}: {e}"));
                    }
                }
            }
        }
        if refusals.is_empty() {
            Err(MfError::NoEncoder)
        } else {
            Err(MfError::NoneAccepted(refusals.join("; ")))
        }
    }

    fn open(
        activate: &IMFActivate,
        name: EncoderName,
        width: u32,
        height: u32,
        fps: u32,
        bitrate_kbps: u32,
    ) -> Result<Self, MfError> {
        // SAFETY: every call below is a COM method on a live interface, with arguments that
        // live across the call (constant GUIDs, local media types and VARIANTs).
        unsafe {
            let transform: IMFTransform = activate
                .ActivateObject()
                .call("IMFActivate::ActivateObject")?;
            let attributes = transform.GetAttributes().ok();
            let is_async = attributes
                .as_ref()
                .is_some_and(|a| a.GetUINT32(&MF_TRANSFORM_ASYNC).unwrap_or(0) != 0);
            let events = if is_async {
                let a = attributes.as_ref().expect("async MFTs have attributes");
                a.SetUINT32(&MF_TRANSFORM_ASYNC_UNLOCK, 1)
                    .call("MF_TRANSFORM_ASYNC_UNLOCK")?;
                Some(
                    transform
                        .cast::<IMFMediaEventGenerator>()
                        .call("IMFMediaEventGenerator")?,
                )
            } else {
                None
            };
            if let Some(a) = &attributes {
                // Where supported; CODECAPI_AVLowLatencyMode below says the same.
                let _ = a.SetUINT32(&MF_LOW_LATENCY, 1);
            }
            let codec: ICodecAPI = transform.cast().call("ICodecAPI")?;
            // IsSupported answers S_FALSE for "not supported", which the binding's Result
            // turns into Ok: only S_OK counts (the method's documentation says to test for
            // it), so an MFT without forced keyframes is skipped for the next one.
            let supported: HRESULT = (Interface::vtable(&codec).IsSupported)(
                Interface::as_raw(&codec),
                &CODECAPI_AVEncVideoForceKeyFrame,
            );
            if supported != windows::Win32::Foundation::S_OK {
                return Err(MfError::NoForcedKeyframe);
            }
            // Before the media types: Microsoft's encoder takes the rate control mode only
            // then. Each is "where supported": an MFT without one still encodes correctly
            // (baseline profile has no B-frames anyway).
            let _ = set(
                &codec,
                &CODECAPI_AVEncCommonRateControlMode,
                &variant_u32(eAVEncCommonRateControlMode_CBR.0 as u32),
            );
            let _ = set(&codec, &CODECAPI_AVLowLatencyMode, &variant_true());
            let _ = set(
                &codec,
                &CODECAPI_AVEncMPVDefaultBPictureCount,
                &variant_u32(0),
            );
            let _ = set(
                &codec,
                &CODECAPI_AVEncMPVGOPSize,
                &variant_u32(fps.saturating_mul(GOP_SECONDS)),
            );

            // The output type first (encoders check the input against it), then the input.
            let output: IMFMediaType = create_media_type()?;
            output
                .SetGUID(&MF_MT_MAJOR_TYPE, &MFMediaType_Video)
                .call("output MF_MT_MAJOR_TYPE")?;
            output
                .SetGUID(&MF_MT_SUBTYPE, &MFVideoFormat_H264)
                .call("output MF_MT_SUBTYPE")?;
            output
                .SetUINT32(&MF_MT_AVG_BITRATE, bitrate_kbps.saturating_mul(1000))
                .call("MF_MT_AVG_BITRATE")?;
            output
                .SetUINT64(&MF_MT_FRAME_SIZE, pack(width, height))
                .call("output MF_MT_FRAME_SIZE")?;
            output
                .SetUINT64(&MF_MT_FRAME_RATE, pack(fps, 1))
                .call("output MF_MT_FRAME_RATE")?;
            output
                .SetUINT64(&MF_MT_PIXEL_ASPECT_RATIO, pack(1, 1))
                .call("output MF_MT_PIXEL_ASPECT_RATIO")?;
            output
                .SetUINT32(&MF_MT_INTERLACE_MODE, MFVideoInterlace_Progressive.0 as u32)
                .call("output MF_MT_INTERLACE_MODE")?;
            output
                .SetUINT32(&MF_MT_MPEG2_PROFILE, eAVEncH264VProfile_Base.0 as u32)
                .call("MF_MT_MPEG2_PROFILE")?;
            transform
                .SetOutputType(0, &output, 0)
                .call("IMFTransform::SetOutputType")?;

            let input: IMFMediaType = create_media_type()?;
            input
                .SetGUID(&MF_MT_MAJOR_TYPE, &MFMediaType_Video)
                .call("input MF_MT_MAJOR_TYPE")?;
            input
                .SetGUID(&MF_MT_SUBTYPE, &MFVideoFormat_NV12)
                .call("input MF_MT_SUBTYPE")?;
            input
                .SetUINT64(&MF_MT_FRAME_SIZE, pack(width, height))
                .call("input MF_MT_FRAME_SIZE")?;
            input
                .SetUINT64(&MF_MT_FRAME_RATE, pack(fps, 1))
                .call("input MF_MT_FRAME_RATE")?;
            input
                .SetUINT64(&MF_MT_PIXEL_ASPECT_RATIO, pack(1, 1))
                .call("input MF_MT_PIXEL_ASPECT_RATIO")?;
            input
                .SetUINT32(&MF_MT_INTERLACE_MODE, MFVideoInterlace_Progressive.0 as u32)
                .call("input MF_MT_INTERLACE_MODE")?;
            input
                .SetUINT32(&MF_MT_DEFAULT_STRIDE, width)
                .call("MF_MT_DEFAULT_STRIDE")?;
            transform
                .SetInputType(0, &input, 0)
                .call("IMFTransform::SetInputType")?;

            let mut encoder = MfEncoder {
                activate: activate.clone(),
                transform,
                codec,
                events,
                input_credits: 0,
                output_size: None,
                width,
                height,
                frame_duration: 10_000_000 / i64::from(fps),
                started: Instant::now(),
                last_time: -1,
                sequence_header: Vec::new(),
                name,
            };
            encoder.output_changed()?;
            encoder
                .transform
                .ProcessMessage(MFT_MESSAGE_NOTIFY_BEGIN_STREAMING, 0)
                .call("MFT_MESSAGE_NOTIFY_BEGIN_STREAMING")?;
            encoder
                .transform
                .ProcessMessage(MFT_MESSAGE_NOTIFY_START_OF_STREAM, 0)
                .call("MFT_MESSAGE_NOTIFY_START_OF_STREAM")?;
            Ok(encoder)
        }
    }

    /// Which MFT this is.
    pub fn name(&self) -> &EncoderName {
        &self.name
    }

    /// Rereads what depends on the output type: who allocates output samples, and the
    /// sequence header. Encoders are single-stream: input and output stream ids are 0.
    fn output_changed(&mut self) -> Result<(), MfError> {
        // SAFETY: COM calls on the live transform; the blob buffer is as large as the MFT
        // said the blob is.
        unsafe {
            let info = self
                .transform
                .GetOutputStreamInfo(0)
                .call("IMFTransform::GetOutputStreamInfo")?;
            let provides = (MFT_OUTPUT_STREAM_PROVIDES_SAMPLES.0
                | MFT_OUTPUT_STREAM_CAN_PROVIDE_SAMPLES.0) as u32;
            self.output_size = if info.dwFlags & provides != 0 {
                None
            } else {
                // cbSize is a minimum; a raw picture's size bounds any sane encoded one.
                Some(info.cbSize.max(self.width * self.height * 3 / 2))
            };
            if let Ok(current) = self.transform.GetOutputCurrentType(0) {
                if let Ok(size) = current.GetBlobSize(&MF_MT_MPEG_SEQUENCE_HEADER) {
                    let mut blob = vec![0u8; size as usize];
                    if current
                        .GetBlob(&MF_MT_MPEG_SEQUENCE_HEADER, &mut blob, None)
                        .is_ok()
                    {
                        if let Some(header) = annexb::sequence_header(&blob) {
                            self.sequence_header = header;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Encodes one I420 picture (`width` × `height`, planes Y, U, V with no padding);
    /// `force_key` makes it an IDR. Gives the access units that came out (usually one; none
    /// while an MFT holds a picture back), each Annex B with whether it is a keyframe.
    pub fn encode(
        &mut self,
        i420: &[u8],
        force_key: bool,
    ) -> Result<Vec<(Vec<u8>, bool)>, MfError> {
        let (w, h) = (self.width as usize, self.height as usize);
        let expected = w * h * 3 / 2;
        if i420.len() != expected {
            return Err(MfError::PictureSize {
                got: i420.len(),
                expected,
            });
        }
        let sample = self.input_sample(i420)?;
        if force_key {
            set(
                &self.codec,
                &CODECAPI_AVEncVideoForceKeyFrame,
                &variant_u32(1),
            )
            .call("CODECAPI_AVEncVideoForceKeyFrame")?;
        }
        let mut units = Vec::new();
        match self.events.clone() {
            None => self.encode_sync(&sample, &mut units)?,
            Some(events) => self.encode_async(&events, &sample, &mut units)?,
        }
        Ok(units)
    }

    /// The picture as an NV12 sample, stamped with the time since the stream started (the
    /// agent sends nothing while the screen is still, so frame counts would lie to the rate
    /// control).
    fn input_sample(&mut self, i420: &[u8]) -> Result<IMFSample, MfError> {
        let (w, h) = (self.width as usize, self.height as usize);
        let len = i420.len() as u32;
        // SAFETY: COM calls on live objects; between Lock and Unlock the buffer's memory is
        // ours, `max` bytes long (at least `len`, as asked of MFCreateMemoryBuffer).
        unsafe {
            let buffer = create_memory_buffer(len)?;
            let mut data: *mut u8 = std::ptr::null_mut();
            let mut max = 0u32;
            buffer
                .Lock(&mut data, Some(&mut max), None)
                .call("IMFMediaBuffer::Lock")?;
            if data.is_null() || max < len {
                let _ = buffer.Unlock();
                return Err(MfError::PictureSize {
                    got: max as usize,
                    expected: len as usize,
                });
            }
            let dst = std::slice::from_raw_parts_mut(data, len as usize);
            annexb::i420_to_nv12(i420, w, h, dst);
            buffer.Unlock().call("IMFMediaBuffer::Unlock")?;
            buffer
                .SetCurrentLength(len)
                .call("IMFMediaBuffer::SetCurrentLength")?;
            let sample = create_sample()?;
            sample.AddBuffer(&buffer).call("IMFSample::AddBuffer")?;
            let elapsed = (self.started.elapsed().as_nanos() / 100) as i64;
            let time = elapsed.max(self.last_time + 1);
            self.last_time = time;
            sample
                .SetSampleTime(time)
                .call("IMFSample::SetSampleTime")?;
            sample
                .SetSampleDuration(self.frame_duration)
                .call("IMFSample::SetSampleDuration")?;
            Ok(sample)
        }
    }

    fn encode_sync(
        &mut self,
        sample: &IMFSample,
        units: &mut Vec<(Vec<u8>, bool)>,
    ) -> Result<(), MfError> {
        // SAFETY: a COM call with a live sample.
        match unsafe { self.transform.ProcessInput(0, sample, 0) } {
            Ok(()) => {}
            Err(e) if e.code() == MF_E_NOTACCEPTING => {
                // It still holds output: take it, then it takes the picture.
                while let Some(unit) = self.take_output()? {
                    units.push(unit);
                }
                // SAFETY: as above.
                unsafe { self.transform.ProcessInput(0, sample, 0) }
                    .call("IMFTransform::ProcessInput")?;
            }
            Err(source) => {
                return Err(MfError::Call {
                    call: "IMFTransform::ProcessInput",
                    source,
                })
            }
        }
        while let Some(unit) = self.take_output()? {
            units.push(unit);
        }
        Ok(())
    }

    fn encode_async(
        &mut self,
        events: &IMFMediaEventGenerator,
        sample: &IMFSample,
        units: &mut Vec<(Vec<u8>, bool)>,
    ) -> Result<(), MfError> {
        let deadline = Instant::now() + ASYNC_WAIT;
        while self.input_credits == 0 {
            if !self.handle_event(events, deadline, units)? {
                return Err(MfError::Stalled("METransformNeedInput"));
            }
        }
        // SAFETY: a COM call with a live sample, after the MFT asked for one.
        unsafe { self.transform.ProcessInput(0, sample, 0) }.call("IMFTransform::ProcessInput")?;
        self.input_credits -= 1;
        // Wait for this picture's output (it may come with the next one instead), then take
        // whatever else is already waiting.
        let before = units.len();
        let deadline = Instant::now() + ASYNC_WAIT;
        while units.len() == before {
            if !self.handle_event(events, deadline, units)? {
                break;
            }
        }
        while self.handle_event(events, Instant::now(), units)? {}
        Ok(())
    }

    /// Waits until `deadline` for one event of an asynchronous MFT and acts on it; false
    /// when none came. `GetEvent` blocks with no time limit, so this polls it.
    fn handle_event(
        &mut self,
        events: &IMFMediaEventGenerator,
        deadline: Instant,
        units: &mut Vec<(Vec<u8>, bool)>,
    ) -> Result<bool, MfError> {
        let event = loop {
            // SAFETY: a COM call on the live event generator; NO_WAIT returns at once.
            match unsafe { events.GetEvent(MF_EVENT_FLAG_NO_WAIT) } {
                Ok(event) => break event,
                Err(e) if e.code() == MF_E_NO_EVENTS_AVAILABLE => {
                    if Instant::now() >= deadline {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(source) => {
                    return Err(MfError::Call {
                        call: "IMFMediaEventGenerator::GetEvent",
                        source,
                    })
                }
            }
        };
        // SAFETY: COM calls on the live event.
        let (kind, status) = unsafe {
            (
                event.GetType().call("IMFMediaEvent::GetType")?,
                event.GetStatus().call("IMFMediaEvent::GetStatus")?,
            )
        };
        if status.is_err() {
            return Err(MfError::Event(status));
        }
        match kind as i32 {
            k if k == METransformNeedInput.0 => self.input_credits += 1,
            k if k == METransformHaveOutput.0 => {
                if let Some(unit) = self.take_output()? {
                    units.push(unit);
                }
            }
            k if k == MEError.0 => return Err(MfError::Event(status)),
            _ => {}
        }
        Ok(true)
    }

    /// One `ProcessOutput`: an access unit, or None when the MFT needs more input.
    fn take_output(&mut self) -> Result<Option<(Vec<u8>, bool)>, MfError> {
        loop {
            let given = match self.output_size {
                Some(size) => Some(self.output_sample(size)?),
                None => None,
            };
            let mut buffers = [MFT_OUTPUT_DATA_BUFFER {
                dwStreamID: 0,
                pSample: ManuallyDrop::new(given),
                dwStatus: 0,
                pEvents: ManuallyDrop::new(None),
            }];
            let mut status = 0u32;
            // SAFETY: the buffer array lives across the call; afterwards we own one reference
            // to the sample in it (ours, or the MFT's) and to any events, each taken once.
            let (result, sample) = unsafe {
                let result = self.transform.ProcessOutput(0, &mut buffers, &mut status);
                let sample = ManuallyDrop::take(&mut buffers[0].pSample);
                drop(ManuallyDrop::take(&mut buffers[0].pEvents));
                (result, sample)
            };
            match result {
                Ok(()) => {}
                Err(e) if e.code() == MF_E_TRANSFORM_NEED_MORE_INPUT => return Ok(None),
                Err(e) if e.code() == MF_E_TRANSFORM_STREAM_CHANGE => {
                    // SAFETY: COM calls on the live transform; the type it offers is set back.
                    unsafe {
                        let offered = self
                            .transform
                            .GetOutputAvailableType(0, 0)
                            .call("IMFTransform::GetOutputAvailableType")?;
                        self.transform
                            .SetOutputType(0, &offered, 0)
                            .call("IMFTransform::SetOutputType")?;
                    }
                    self.output_changed()?;
                    if self.events.is_some() {
                        // An asynchronous MFT says with another METransformHaveOutput when
                        // the unit is ready in the new type.
                        return Ok(None);
                    }
                    continue;
                }
                Err(source) => {
                    return Err(MfError::Call {
                        call: "IMFTransform::ProcessOutput",
                        source,
                    })
                }
            }
            let Some(sample) = sample else {
                return Ok(None);
            };
            let (data, clean) = sample_bytes(&sample)?;
            if data.is_empty() {
                // Nothing in it: a synchronous MFT may have more; an asynchronous one says so
                // with another event.
                if self.events.is_some() {
                    return Ok(None);
                }
                continue;
            }
            return self.finish(data, clean).map(Some);
        }
    }

    fn output_sample(&self, size: u32) -> Result<IMFSample, MfError> {
        // SAFETY: COM calls creating and joining two new objects.
        unsafe {
            let buffer = create_memory_buffer(size)?;
            let sample = create_sample()?;
            sample.AddBuffer(&buffer).call("IMFSample::AddBuffer")?;
            Ok(sample)
        }
    }

    /// Makes an MFT's access unit follow the stream rules (see [`annexb::normalise`]).
    fn finish(&mut self, data: Vec<u8>, clean: bool) -> Result<(Vec<u8>, bool), MfError> {
        let mut unit = annexb::normalise(&data);
        let keyframe = clean || annexb::nal_types(&unit).contains(&annexb::IDR);
        if keyframe {
            if self.sequence_header.is_empty() {
                // Some MFTs fill in the sequence header only once they have encoded.
                self.output_changed()?;
            }
            let in_band = annexb::parameter_sets(&unit);
            if !in_band.is_empty() {
                self.sequence_header = in_band;
            }
            unit = annexb::with_parameter_sets(unit, &self.sequence_header)
                .ok_or(MfError::NoParameterSets)?;
        }
        Ok((unit, keyframe))
    }
}

/// The bytes of an output sample, and whether it is a clean point (a keyframe).
fn sample_bytes(sample: &IMFSample) -> Result<(Vec<u8>, bool), MfError> {
    // SAFETY: COM calls on the live sample; between Lock and Unlock `len` bytes at `data`
    // are readable, and are copied out before Unlock.
    unsafe {
        let clean = sample.GetUINT32(&MFSampleExtension_CleanPoint).unwrap_or(0) != 0;
        let buffer = sample
            .ConvertToContiguousBuffer()
            .call("IMFSample::ConvertToContiguousBuffer")?;
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut len = 0u32;
        buffer
            .Lock(&mut data, None, Some(&mut len))
            .call("IMFMediaBuffer::Lock")?;
        let bytes = if data.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(data, len as usize).to_vec()
        };
        buffer.Unlock().call("IMFMediaBuffer::Unlock")?;
        Ok((bytes, clean))
    }
}

impl Drop for MfEncoder {
    fn drop(&mut self) {
        // SAFETY: COM calls on live objects; ShutdownObject releases what ActivateObject made
        // (hardware MFTs need it to free their resources).
        unsafe {
            let _ = self
                .transform
                .ProcessMessage(MFT_MESSAGE_NOTIFY_END_STREAMING, 0);
            let _ = self.activate.ShutdownObject();
        }
    }
}

/// H.264 bytes as the agent sends them: Annex B access units, SPS and PPS in front of every
/// IDR. Pure byte work, for what Media Foundation encoders hand out.
pub mod annexb {
    /// NAL unit types used here (ITU-T H.264 table 7-1).
    pub const IDR: u8 = 5;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;

    /// The NAL units of an Annex B stream, without their start codes (3- or 4-byte).
    pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
        let mut starts = Vec::new();
        let mut i = 0;
        while i + 3 <= data.len() {
            if data[i..i + 3] == [0, 0, 1] {
                starts.push((i, i + 3));
                i += 3;
            } else {
                i += 1;
            }
        }
        let mut units = Vec::with_capacity(starts.len());
        for (k, &(_, body)) in starts.iter().enumerate() {
            let mut end = starts.get(k + 1).map_or(data.len(), |&(code, _)| code);
            // A 4-byte start code's leading zero (and trailing zeros) belong to no unit.
            while end > body && data[end - 1] == 0 {
                end -= 1;
            }
            if end > body {
                units.push(&data[body..end]);
            }
        }
        units
    }

    /// The type of each NAL unit, in order.
    pub fn nal_types(data: &[u8]) -> Vec<u8> {
        nal_units(data).iter().map(|n| n[0] & 0x1f).collect()
    }

    fn push_unit(out: &mut Vec<u8>, unit: &[u8]) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(unit);
    }

    /// 4-byte length-prefixed NAL units (as in MP4) as Annex B; None when the lengths do
    /// not add up to the data.
    pub fn length_prefixed_to_annex_b(data: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(data.len() + 16);
        let mut rest = data;
        while !rest.is_empty() {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_be_bytes(*len) as usize;
            if len == 0 || len > tail.len() {
                return None;
            }
            push_unit(&mut out, &tail[..len]);
            rest = &tail[len..];
        }
        Some(out)
    }

    fn starts_with_start_code(data: &[u8]) -> bool {
        data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
    }

    /// An MFT's access unit as Annex B with 4-byte start codes and no access unit
    /// delimiters (the box's "SPS first" keyframe check and OpenH264 need neither).
    pub fn normalise(data: &[u8]) -> Vec<u8> {
        let annex_b;
        let data = if starts_with_start_code(data) {
            data
        } else {
            match length_prefixed_to_annex_b(data) {
                Some(converted) => {
                    annex_b = converted;
                    &annex_b
                }
                None => data,
            }
        };
        let mut out = Vec::with_capacity(data.len() + 8);
        for unit in nal_units(data) {
            if unit[0] & 0x1f != AUD {
                push_unit(&mut out, unit);
            }
        }
        out
    }

    /// `MF_MT_MPEG_SEQUENCE_HEADER` as Annex B SPS and PPS: encoders give it in Annex B,
    /// but an `avcC` record (ISO 14496-15) is read too. None when it holds no SPS and PPS.
    pub fn sequence_header(blob: &[u8]) -> Option<Vec<u8>> {
        let annex_b = if starts_with_start_code(blob) {
            normalise(blob)
        } else {
            avcc_to_annex_b(blob)?
        };
        let sets = parameter_sets(&annex_b);
        (!sets.is_empty()).then_some(sets)
    }

    /// The SPS and PPS of an `avcC` record, Annex B.
    fn avcc_to_annex_b(blob: &[u8]) -> Option<Vec<u8>> {
        if blob.len() < 7 || blob[0] != 1 {
            return None;
        }
        let mut out = Vec::new();
        let mut i = 5;
        for count_mask in [0x1f, 0xff] {
            let count = *blob.get(i)? & count_mask;
            i += 1;
            for _ in 0..count {
                let len = u16::from_be_bytes([*blob.get(i)?, *blob.get(i + 1)?]) as usize;
                i += 2;
                push_unit(&mut out, blob.get(i..i + len)?);
                i += len;
            }
        }
        Some(out)
    }

    /// The SPS and PPS units of an access unit, Annex B; empty unless it has both.
    pub fn parameter_sets(data: &[u8]) -> Vec<u8> {
        let units = nal_units(data);
        let has = |t| units.iter().any(|u| u[0] & 0x1f == t);
        let mut out = Vec::new();
        if has(SPS) && has(PPS) {
            for unit in units.iter().filter(|u| matches!(u[0] & 0x1f, SPS | PPS)) {
                push_unit(&mut out, unit);
            }
        }
        out
    }

    /// A keyframe with SPS and PPS in front: as it is when it starts with them, else with
    /// `header` (Annex B SPS and PPS) put before it. None when it needs them and `header`
    /// is empty.
    pub fn with_parameter_sets(unit: Vec<u8>, header: &[u8]) -> Option<Vec<u8>> {
        let types = nal_types(&unit);
        let leading = types
            .iter()
            .take_while(|t| matches!(**t, SPS | PPS))
            .count();
        if types[..leading].contains(&SPS) && types[..leading].contains(&PPS) {
            return Some(unit);
        }
        if header.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(header.len() + unit.len());
        out.extend_from_slice(header);
        // The unit's own (misplaced) parameter sets are dropped: the header has them.
        for nal in nal_units(&unit) {
            if !matches!(nal[0] & 0x1f, SPS | PPS) {
                push_unit(&mut out, nal);
            }
        }
        Some(out)
    }

    /// I420 (planes Y, U, V) to NV12 (Y, then U and V interleaved), `width` × `height`
    /// (both even). `dst` is `width * height * 3 / 2` bytes, as is `src`.
    pub fn i420_to_nv12(src: &[u8], width: usize, height: usize, dst: &mut [u8]) {
        let luma = width * height;
        let chroma = luma / 4;
        dst[..luma].copy_from_slice(&src[..luma]);
        let (u, v) = src[luma..luma + 2 * chroma].split_at(chroma);
        for (pair, (u, v)) in dst[luma..luma + 2 * chroma]
            .chunks_exact_mut(2)
            .zip(u.iter().zip(v))
        {
            pair[0] = *u;
            pair[1] = *v;
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const SPS_UNIT: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda];
        const PPS_UNIT: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        const IDR_UNIT: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
        const P_UNIT: &[u8] = &[0x41, 0x9a, 0x02];
        const AUD_UNIT: &[u8] = &[0x09, 0xf0];

        fn annex_b(units: &[&[u8]], three_byte: bool) -> Vec<u8> {
            let mut out = Vec::new();
            for u in units {
                if !three_byte {
                    out.push(0);
                }
                out.extend_from_slice(&[0, 0, 1]);
                out.extend_from_slice(u);
            }
            out
        }

        #[test]
        fn nal_units_are_split_on_3_and_4_byte_start_codes() {
            let mut data = annex_b(&[SPS_UNIT, PPS_UNIT], true);
            data.extend(annex_b(&[IDR_UNIT], false));
            assert_eq!(nal_units(&data), vec![SPS_UNIT, PPS_UNIT, IDR_UNIT]);
            assert_eq!(nal_types(&data), vec![SPS, PPS, IDR]);
            assert!(nal_units(&[0, 0, 2, 5]).is_empty());
        }

        #[test]
        fn length_prefixed_units_become_annex_b_and_bad_lengths_are_refused() {
            let mut data = Vec::new();
            for u in [SPS_UNIT, IDR_UNIT] {
                data.extend((u.len() as u32).to_be_bytes());
                data.extend_from_slice(u);
            }
            assert_eq!(
                length_prefixed_to_annex_b(&data).unwrap(),
                annex_b(&[SPS_UNIT, IDR_UNIT], false)
            );
            assert_eq!(normalise(&data), annex_b(&[SPS_UNIT, IDR_UNIT], false));
            data.push(0x65);
            assert_eq!(length_prefixed_to_annex_b(&data), None);
            assert_eq!(length_prefixed_to_annex_b(&[0, 0, 0, 9, 1]), None);
        }

        #[test]
        fn normalise_drops_delimiters_and_uses_4_byte_start_codes() {
            let data = annex_b(&[AUD_UNIT, SPS_UNIT, PPS_UNIT, IDR_UNIT], true);
            assert_eq!(
                normalise(&data),
                annex_b(&[SPS_UNIT, PPS_UNIT, IDR_UNIT], false)
            );
        }

        #[test]
        fn a_keyframe_without_parameter_sets_gets_the_sequence_header_in_front() {
            let header = annex_b(&[SPS_UNIT, PPS_UNIT], false);
            let idr = annex_b(&[IDR_UNIT], false);
            let out = with_parameter_sets(idr.clone(), &header).unwrap();
            assert_eq!(nal_types(&out), vec![SPS, PPS, IDR]);
            assert_eq!(out, annex_b(&[SPS_UNIT, PPS_UNIT, IDR_UNIT], false));
            // Already in front: left alone (no second copy).
            assert_eq!(with_parameter_sets(out.clone(), &header).unwrap(), out);
            // Misplaced (after the slice): moved to the front, not repeated.
            let late = annex_b(&[IDR_UNIT, SPS_UNIT, PPS_UNIT], false);
            assert_eq!(
                nal_types(&with_parameter_sets(late, &header).unwrap()),
                vec![SPS, PPS, IDR]
            );
            // Nothing to put in front.
            assert_eq!(with_parameter_sets(idr, &[]), None);
        }

        #[test]
        fn parameter_sets_need_both_sps_and_pps() {
            let full = annex_b(&[SPS_UNIT, PPS_UNIT, IDR_UNIT], true);
            assert_eq!(parameter_sets(&full), annex_b(&[SPS_UNIT, PPS_UNIT], false));
            assert!(parameter_sets(&annex_b(&[SPS_UNIT, IDR_UNIT], true)).is_empty());
            assert!(parameter_sets(&annex_b(&[P_UNIT], true)).is_empty());
        }

        #[test]
        fn sequence_headers_are_read_in_annex_b_and_avcc() {
            let annex = annex_b(&[SPS_UNIT, PPS_UNIT], true);
            let expected = annex_b(&[SPS_UNIT, PPS_UNIT], false);
            assert_eq!(sequence_header(&annex).unwrap(), expected);
            let mut avcc = vec![1, 0x42, 0xc0, 0x1e, 0xff, 0xe1];
            avcc.extend((SPS_UNIT.len() as u16).to_be_bytes());
            avcc.extend_from_slice(SPS_UNIT);
            avcc.push(1);
            avcc.extend((PPS_UNIT.len() as u16).to_be_bytes());
            avcc.extend_from_slice(PPS_UNIT);
            assert_eq!(sequence_header(&avcc).unwrap(), expected);
            // Truncated, or SPS only: nothing usable.
            assert_eq!(sequence_header(&avcc[..avcc.len() - 2]), None);
            assert_eq!(sequence_header(&annex_b(&[SPS_UNIT], true)), None);
        }

        #[test]
        fn i420_becomes_nv12_with_interleaved_chroma() {
            // 2x2: four luma bytes, one U, one V; then 4x2 for two chroma pairs.
            let mut dst = [0u8; 6];
            i420_to_nv12(&[1, 2, 3, 4, 50, 60], 2, 2, &mut dst);
            assert_eq!(dst, [1, 2, 3, 4, 50, 60]);
            let src = [1, 2, 3, 4, 5, 6, 7, 8, 50, 51, 60, 61];
            let mut dst = [0u8; 12];
            i420_to_nv12(&src, 4, 2, &mut dst);
            assert_eq!(dst, [1, 2, 3, 4, 5, 6, 7, 8, 50, 60, 51, 61]);
        }
    }
}
