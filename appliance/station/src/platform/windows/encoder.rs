//! The H.264 encoder of one Windows stream: Media Foundation's (`lanterne_winsys::mf`: the
//! PC's hardware encoder when it has one, else Microsoft's software one) when it starts, else
//! OpenH264 (built into the agent: it always does).
//!
//! Both follow the stream rules of [`super::media`]: an IDR when asked, Annex B, baseline
//! profile, SPS and PPS in front of every IDR. Why Media Foundation could not be used is
//! logged once per process (it is the same reason at every stream start), and so is the
//! encoder it gave. A Media Foundation encoder that starts but then fails to encode (a
//! hardware MFT that wants video memory, say) is dropped for OpenH264 at once, and not tried
//! again in this process.
//!
//! Media Foundation can be tested only on a real Windows PC, by hand (the ignored test
//! `media_foundation_encodes_keyframes_that_openh264_decodes` below says how), and has not
//! been run on one yet: Wine 8, where the automatic tests run, has no H.264 encoder MFT
//! (`MFTEnumEx` lists none), so there the agent (and every test) uses OpenH264.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use lanterne_media::StreamParams;
use lanterne_winsys::mf::MfEncoder;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, Profile, RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::OpenH264API;

use super::picture::I420;

/// Which encoder a stream, or the PC, uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderKind {
    MediaFoundation { hardware: bool },
    OpenH264,
}

impl EncoderKind {
    /// The name the box is told (`Capabilities::encoder`).
    pub fn wire_name(self) -> &'static str {
        match self {
            EncoderKind::MediaFoundation { hardware: true } => "mediafoundation-hw",
            EncoderKind::MediaFoundation { hardware: false } => "mediafoundation",
            EncoderKind::OpenH264 => "openh264",
        }
    }
}

/// One stream's encoder.
pub enum H264Encoder {
    /// With the stream's parameters, to go on with OpenH264 if it fails.
    MediaFoundation(MfEncoder, StreamParams),
    OpenH264(Box<Encoder>),
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            H264Encoder::MediaFoundation(mf, _) => {
                f.debug_tuple("MediaFoundation").field(mf).finish()
            }
            H264Encoder::OpenH264(_) => f.write_str("OpenH264"),
        }
    }
}

static MF_LOGGED: AtomicBool = AtomicBool::new(false);
static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);
/// Set when a Media Foundation encoder failed to encode: why. It is not tried again.
static MF_BROKEN: OnceLock<String> = OnceLock::new();

impl H264Encoder {
    /// Media Foundation's encoder for `p`, else OpenH264's; an error only when neither starts.
    pub fn new(p: StreamParams) -> Result<Self, String> {
        if MF_BROKEN.get().is_some() {
            return Self::openh264(p);
        }
        match MfEncoder::new(p.width, p.height, p.fps, p.bitrate_kbps) {
            Ok(mf) => {
                if !MF_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::info!("H.264 encoder: Media Foundation, {}", mf.name());
                }
                Ok(H264Encoder::MediaFoundation(mf, p))
            }
            Err(e) => {
                let openh264 = Self::openh264(p)?;
                if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "H.264 encoder: OpenH264, as Media Foundation's cannot be used: {e}"
                    );
                }
                Ok(openh264)
            }
        }
    }

    /// OpenH264's encoder for `p`.
    pub fn openh264(p: StreamParams) -> Result<Self, String> {
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .usage_type(UsageType::ScreenContentRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(p.bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(p.fps as f32))
            // OpenH264 holds the bit rate only when it may skip a picture now and then (a
            // skipped picture is simply not sent, and is encoded again when it next changes).
            .skip_frames(true)
            // Neither is supported for screen content (OpenH264 turns them off, with a warning).
            .adaptive_quantization(false)
            .background_detection(false);
        Encoder::with_api_config(OpenH264API::from_source(), config)
            .map(|e| H264Encoder::OpenH264(Box::new(e)))
            .map_err(|e| e.to_string())
    }

    pub fn kind(&self) -> EncoderKind {
        match self {
            H264Encoder::MediaFoundation(mf, _) => EncoderKind::MediaFoundation {
                hardware: mf.name().hardware,
            },
            H264Encoder::OpenH264(_) => EncoderKind::OpenH264,
        }
    }

    /// Encodes `pic` (an IDR if `force_key`): the access unit and whether it is a keyframe,
    /// or None when nothing came out (OpenH264 skipped the picture to hold the bit rate, or
    /// a Media Foundation encoder holds it back until the next one).
    pub fn encode(
        &mut self,
        pic: &I420,
        force_key: bool,
    ) -> Result<Option<(Vec<u8>, bool)>, String> {
        match self {
            H264Encoder::MediaFoundation(mf, p) => match mf.encode(&pic.data, force_key) {
                Ok(units) => Ok(join(units)),
                Err(e) => {
                    let reason = format!("{} cannot encode: {e}", mf.name());
                    tracing::warn!("{reason}; going on with OpenH264 (starting with a keyframe)");
                    let _ = MF_BROKEN.set(reason);
                    *self = Self::openh264(*p)?;
                    self.encode(pic, true)
                }
            },
            H264Encoder::OpenH264(encoder) => {
                if force_key {
                    encoder.force_intra_frame();
                }
                let (y, u, v) = pic.planes();
                let (w, h) = (pic.width, pic.height);
                let source = YUVSlices::new((y, u, v), (w, h), (w, w / 2, w / 2));
                let bits = encoder.encode(&source).map_err(|e| e.to_string())?;
                Ok(match bits.frame_type() {
                    FrameType::Skip | FrameType::Invalid => None,
                    t => Some((bits.to_vec(), matches!(t, FrameType::IDR | FrameType::I))),
                })
            }
        }
    }
}

/// The access units one picture gave, as one frame for the box: those from the last keyframe
/// on when there is one (a decoder needs nothing before an IDR), else all of them in order.
fn join(units: Vec<(Vec<u8>, bool)>) -> Option<(Vec<u8>, bool)> {
    let from = units.iter().rposition(|(_, key)| *key).unwrap_or(0);
    let keyframe = units.get(from)?.1;
    let data = units.into_iter().skip(from).flat_map(|(d, _)| d).collect();
    Some((data, keyframe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanterne_winsys::mf::{self, annexb};
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    const TEAL: [u8; 3] = [20, 160, 150];
    const ORANGE: [u8; 3] = [230, 120, 30];

    fn params() -> StreamParams {
        StreamParams {
            width: 320,
            height: 180,
            fps: 10,
            bitrate_kbps: 500,
        }
    }

    /// A `w` × `h` picture of `rgb` with a 64 × 64 square of `square` in the middle, through
    /// the agent's own BGRA-to-I420 path.
    fn picture(w: usize, h: usize, rgb: [u8; 3], square: [u8; 3]) -> I420 {
        let inside = |x: usize, y: usize| x.abs_diff(w / 2) < 32 && y.abs_diff(h / 2) < 32;
        let bgra: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let c = if inside(i % w, i / w) { square } else { rgb };
                [c[2], c[1], c[0], 255]
            })
            .collect();
        super::super::picture::bgra_to_i420(&bgra, w, h, w, h).expect("a picture")
    }

    fn centre(decoder: &mut Decoder, au: &[u8]) -> Option<((usize, usize), [u8; 3])> {
        let yuv = decoder.decode(au).ok()??;
        let (w, h) = yuv.dimensions();
        let mut rgb = vec![0u8; w * h * 3];
        yuv.write_rgb8(&mut rgb);
        let i = ((h / 2) * w + w / 2) * 3;
        Some(((w, h), [rgb[i], rgb[i + 1], rgb[i + 2]]))
    }

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 16)
    }

    /// Encodes `pic` until something comes out (an encoder may skip or hold a picture).
    fn encode(enc: &mut H264Encoder, pic: &I420, force_key: bool) -> (Vec<u8>, bool) {
        for _ in 0..10 {
            if let Some(unit) = enc.encode(pic, force_key).expect("encodes") {
                return unit;
            }
        }
        panic!("{enc:?} gave nothing for 10 pictures");
    }

    /// What the stream rules ask of any encoder, checked through OpenH264's decoder: the
    /// first unit is an IDR with SPS and PPS in front and shows the picture's colour; an
    /// unforced change (a small one: a whole new picture may be taken for a scene change) is
    /// not a keyframe; a forced one is, with its parameter sets.
    fn follows_the_stream_rules(enc: &mut H264Encoder) {
        let (w, h) = (320, 180);
        let teal = picture(w, h, TEAL, TEAL);
        let orange = picture(w, h, TEAL, ORANGE);
        let mut decoder = Decoder::new().unwrap();

        let (first, key) = encode(enc, &teal, true);
        assert!(key, "the first unit is a keyframe");
        let types = annexb::nal_types(&first);
        assert!(
            types.starts_with(&[7, 8]) && types.contains(&5),
            "SPS, PPS, IDR: {types:?}"
        );
        let (size, colour) = centre(&mut decoder, &first).expect("a decodable keyframe");
        assert_eq!(size, (w, h));
        assert!(close(colour, TEAL), "{colour:?}");

        let (next, key) = encode(enc, &orange, false);
        assert!(
            !key,
            "an unforced change is not a keyframe: {:?}",
            annexb::nal_types(&next)
        );
        assert!(!annexb::nal_types(&next).contains(&5));
        if let Some((_, colour)) = centre(&mut decoder, &next) {
            assert!(close(colour, ORANGE), "{colour:?}");
        }

        let (forced, key) = encode(enc, &teal, true);
        assert!(key, "a forced unit is a keyframe");
        let types = annexb::nal_types(&forced);
        assert!(
            types.starts_with(&[7, 8]) && types.contains(&5),
            "SPS, PPS, IDR: {types:?}"
        );
        // A fresh decoder starts on it, as the box's receivers do after a request.
        let (_, colour) = centre(&mut Decoder::new().unwrap(), &forced).expect("decodable");
        assert!(close(colour, TEAL), "{colour:?}");
    }

    #[test]
    fn without_an_encoder_mft_the_stream_falls_back_to_openh264_and_follows_the_rules() {
        let found = mf::h264_encoders().expect("Media Foundation starts");
        eprintln!("MFTEnumEx found these H.264 encoders: {found:?}");
        let mut enc = H264Encoder::new(params()).expect("an encoder");
        if found.is_empty() {
            assert_eq!(enc.kind(), EncoderKind::OpenH264);
            // And the probe, hence what the box is told, says so.
            let probe = super::super::media::init().expect("an encoder starts");
            assert_eq!(probe.encoder(), EncoderKind::OpenH264);
            assert_eq!(probe.encoder().wire_name(), "openh264");
        }
        if lanterne_winsys::wine::detected() && enc.kind() != EncoderKind::OpenH264 {
            eprintln!("this Wine has a working H.264 encoder MFT: {enc:?}");
        }
        follows_the_stream_rules(&mut enc);
        follows_the_stream_rules(&mut H264Encoder::openh264(params()).unwrap());
    }

    /// Media Foundation's own encoder, which Wine 8 does not have. To run it on a real
    /// Windows 10/11 PC (it picks the hardware encoder if there is one; the output names it):
    ///
    /// 1. On the Linux machine set up for `scripts/test-windows.sh` (rustup target
    ///    `x86_64-pc-windows-gnu`, mingw-w64), from the repository's root:
    ///    `cargo test -p lanterne-station --target x86_64-pc-windows-gnu --no-run`. Cargo
    ///    prints the test program as `Executable unittests src/lib.rs
    ///    (.../x86_64-pc-windows-gnu/debug/deps/lanterne_station-<hash>.exe)`.
    /// 2. Copy that .exe to the PC. It needs no other file: OpenH264 and the C runtime are
    ///    linked in, and `x86_64-w64-mingw32-objdump -p FILE | grep 'DLL Name'` lists only
    ///    Windows' own DLLs (mfplat.dll is loaded when needed).
    /// 3. On the PC, in a console (cmd or PowerShell) in that folder:
    ///    `.\lanterne_station-<hash>.exe --ignored --nocapture media_foundation`. It prints the
    ///    MFTs found and the one used, then `test result: ok. 1 passed`.
    #[test]
    #[ignore = "needs a Media Foundation H.264 encoder: a real Windows 10/11 PC, see this test's doc comment"]
    fn media_foundation_encodes_keyframes_that_openh264_decodes() {
        let found = mf::h264_encoders().expect("Media Foundation starts");
        eprintln!("MFTEnumEx found these H.264 encoders: {found:?}");
        let p = params();
        let mf = MfEncoder::new(p.width, p.height, p.fps, p.bitrate_kbps)
            .expect("a Media Foundation encoder takes the stream");
        eprintln!("using {}", mf.name());
        let mut enc = H264Encoder::MediaFoundation(mf, p);
        follows_the_stream_rules(&mut enc);
        // Still Media Foundation: a failed encode would have given way to OpenH264.
        assert!(
            matches!(enc.kind(), EncoderKind::MediaFoundation { .. }),
            "{enc:?}"
        );
        // And through the constructor the agent uses, Media Foundation is chosen.
        let chosen = H264Encoder::new(p).unwrap();
        assert!(
            matches!(chosen.kind(), EncoderKind::MediaFoundation { .. }),
            "{chosen:?}"
        );
    }

    #[test]
    fn access_units_of_one_picture_join_from_the_last_keyframe() {
        let unit = |b: u8, key| (vec![0, 0, 0, 1, b], key);
        assert_eq!(join(Vec::new()), None);
        assert_eq!(
            join(vec![unit(0x41, false)]),
            Some((vec![0, 0, 0, 1, 0x41], false))
        );
        assert_eq!(
            join(vec![unit(0x41, false), unit(0x41, false)]),
            Some((vec![0, 0, 0, 1, 0x41, 0, 0, 0, 1, 0x41], false))
        );
        // What came before an IDR is of no use to a decoder starting at it.
        assert_eq!(
            join(vec![unit(0x41, false), unit(0x65, true), unit(0x41, false)]),
            Some((vec![0, 0, 0, 1, 0x65, 0, 0, 0, 1, 0x41], true))
        );
    }
}
