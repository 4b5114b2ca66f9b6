//! Still pictures: one H.264 keyframe decoded and written as a PNG, for the box's
//! screenshots (policy P4). Runs a short-lived pipeline per picture; screenshots are rare
//! (a teacher's click), so nothing is kept running for them.
//!
//! ```text
//! appsrc (Annex B AU) → h264parse → decoder (as probed) → videoconvert → pngenc → appsink
//! ```

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::MediaError;

/// A decoded picture as PNG bytes.
#[derive(Debug, Clone)]
pub struct Still {
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
}

/// How long decoding one picture may take before it is given up (a Pi 4 decodes a 1080p
/// keyframe in well under a second; this only guards against a decoder that never answers).
const DECODE_TIMEOUT_S: u64 = 10;

fn element(factory: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| MediaError::MissingElement(factory.to_string()))
}

/// Decodes `keyframe` (an H.264 access unit in Annex B form that starts a picture: SPS, PPS
/// and an IDR slice) and encodes it as PNG. Blocking: call it off the async runtime.
pub fn keyframe_to_png(keyframe: &[u8]) -> Result<Still, MediaError> {
    let probe = crate::init()?;
    let build = |detail: String| MediaError::Build {
        what: "still picture",
        detail,
    };
    let pipeline = gst::Pipeline::new();
    let src = gst_app::AppSrc::builder()
        .caps(&crate::probe::annexb_au_caps())
        .format(gst::Format::Time)
        .build();
    let parse = element("h264parse")?;
    let dec = crate::probe::make_decoder(probe.decoder)?;
    let convert = element("videoconvert")?;
    let png = element("pngenc")?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline
        .add_many([
            src.upcast_ref(),
            &parse,
            &dec,
            &convert,
            &png,
            sink.upcast_ref(),
        ])
        .map_err(|e| build(e.to_string()))?;
    gst::Element::link_many([
        src.upcast_ref(),
        &parse,
        &dec,
        &convert,
        &png,
        sink.upcast_ref(),
    ])
    .map_err(|e| build(e.to_string()))?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| MediaError::Start {
                what: "still picture",
                detail: e.to_string(),
            })?;
        let mut buf = gst::Buffer::from_slice(keyframe.to_vec());
        buf.get_mut()
            .expect("a fresh buffer is writable")
            .set_pts(gst::ClockTime::ZERO);
        src.push_buffer(buf)
            .map_err(|e| build(format!("pushing the keyframe: {e}")))?;
        src.end_of_stream()
            .map_err(|e| build(format!("ending the stream: {e}")))?;
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(DECODE_TIMEOUT_S))
            .ok_or_else(|| {
                MediaError::Timeout("the decoder produced no picture from the keyframe".into())
            })?;
        let s = sample
            .caps()
            .and_then(|c| c.structure(0).map(|s| s.to_owned()))
            .ok_or_else(|| build("the PNG has no caps".into()))?;
        let (width, height) = (
            s.get::<i32>("width").map_err(|e| build(e.to_string()))? as u32,
            s.get::<i32>("height").map_err(|e| build(e.to_string()))? as u32,
        );
        let map = sample
            .buffer()
            .ok_or_else(|| build("the PNG sample has no buffer".into()))?
            .map_readable()
            .map_err(|e| build(e.to_string()))?;
        Ok(Still {
            width,
            height,
            png: map.as_slice().to_vec(),
        })
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One keyframe of a test pattern from whichever software encoder this machine has.
    fn encoded_keyframe(width: u32, height: u32) -> Vec<u8> {
        let enc = ["x264enc", "openh264enc"]
            .into_iter()
            .find(|f| gst::ElementFactory::find(f).is_some())
            .expect("a software H.264 encoder");
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc num-buffers=1 ! video/x-raw,format=I420,width={width},height={height} \
             ! {enc} ! h264parse config-interval=-1 \
             ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(10))
            .expect("an encoded frame");
        let au = sample.buffer().unwrap().map_readable().unwrap().to_vec();
        pipeline.set_state(gst::State::Null).unwrap();
        au
    }

    /// A real keyframe from a software encoder decodes to a PNG of the stream's size.
    #[test]
    fn a_keyframe_becomes_a_png_of_its_size() {
        crate::init().unwrap();
        let au = encoded_keyframe(320, 180);
        let still = keyframe_to_png(&au).unwrap();
        assert_eq!((still.width, still.height), (320, 180));
        assert_eq!(&still.png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn garbage_is_an_error_not_a_hang() {
        crate::init().unwrap();
        assert!(keyframe_to_png(&[0, 0, 0, 1, 0x65, 1, 2, 3]).is_err());
    }
}
