//! The box's HDMI input as a demo source: the teacher's PC, captured by the box itself
//! (`lanterne_media::hdmi_capture`, docs/hardware.md), shown to the class through the same
//! relay as a station's screen.
//!
//! ```text
//! HdmiCapture ─ mpsc ─▶ forward task ─ broadcast ─▶ fanout::Relay ─▶ stations
//!                        (ends on a pipeline error or 3 s without a frame: no signal)
//! ```
//!
//! The capture runs only while a demo from HDMI runs. When the forward task ends, the relay's
//! feed closes and the room ends the demo everywhere as "source-gone".

use std::sync::Arc;
use std::time::Duration;

use lanterne_media::hdmi_capture::{CaptureChoice, CaptureInput, FrameRate, HdmiCapture};
use lanterne_media::{CodecProbe, EncodedFrame, PipelineError};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::{Hdmi, HdmiInput};
use crate::fanout::SourceFeed;
use crate::room::FullFrame;

/// A capture that delivers nothing for this long has lost its signal (the PC is off or the
/// cable was pulled: a bridge then simply stops delivering frames).
pub const SILENCE: Duration = Duration::from_secs(3);

/// Size and rate of the test pattern that stands in for a device.
const TEST_PATTERN: (u32, u32, u32) = (1280, 720, 30);

/// What the room tells the tablet and the students the source is.
pub const SOURCE_NAME: &str = "l'ordinateur de l'enseignant (HDMI)";

/// A running HDMI source. Dropping it stops the capture.
pub struct HdmiSource {
    _capture: Arc<HdmiCapture>,
    forward: JoinHandle<()>,
}

impl Drop for HdmiSource {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// Starts capturing and returns the source with the relay's feed.
pub fn start(cfg: &Hdmi, probe: &CodecProbe) -> Result<(HdmiSource, SourceFeed), String> {
    let (tx, rx) = mpsc::channel::<EncodedFrame>(32);
    let capture = match cfg.input {
        HdmiInput::None => return Err("no HDMI input is configured ([hdmi] input)".into()),
        HdmiInput::TestPattern => {
            let (w, h, fps) = TEST_PATTERN;
            let choice = CaptureChoice::test_pattern(w, h, FrameRate::new(fps, 1));
            HdmiCapture::start(
                &choice,
                CaptureInput::TestPattern,
                probe,
                cfg.bitrate_kbps,
                tx,
            )
            .map_err(|e| format!("the HDMI test pattern could not start: {e}"))?
        }
        HdmiInput::Device => start_device(cfg, probe, tx)?,
    };
    let capture = Arc::new(capture);
    let (frames_tx, frames) = broadcast::channel(64);
    let forward = tokio::spawn(forward(rx, capture.errors(), frames_tx, SILENCE));
    let keyframes = capture.clone();
    Ok((
        HdmiSource {
            _capture: capture,
            forward,
        },
        SourceFeed {
            frames,
            request_keyframe: Box::new(move || keyframes.request_keyframe()),
        },
    ))
}

#[cfg(feature = "v4l2-capture")]
fn start_device(
    cfg: &Hdmi,
    probe: &CodecProbe,
    tx: mpsc::Sender<EncodedFrame>,
) -> Result<HdmiCapture, String> {
    use lanterne_media::hdmi_capture::{start_hdmi_capture, CapturePreferences};
    let prefs = CapturePreferences {
        device: cfg.device.clone(),
        ..CapturePreferences::for_encoder(probe.encoder)
    };
    start_hdmi_capture(&prefs, probe, cfg.bitrate_kbps, tx).map_err(|e| e.to_string())
}

#[cfg(not(feature = "v4l2-capture"))]
fn start_device(
    _cfg: &Hdmi,
    _probe: &CodecProbe,
    _tx: mpsc::Sender<EncodedFrame>,
) -> Result<HdmiCapture, String> {
    // The configuration check refuses this at start; kept for a config changed underneath.
    Err("this box was built without the v4l2-capture feature".into())
}

/// Hands the capture's access units to the relay until the capture fails or falls silent;
/// returning drops `out`, which closes the relay's feed.
async fn forward(
    mut rx: mpsc::Receiver<EncodedFrame>,
    mut errors: watch::Receiver<Option<PipelineError>>,
    out: broadcast::Sender<FullFrame>,
    silence: Duration,
) {
    loop {
        tokio::select! {
            next = tokio::time::timeout(silence, rx.recv()) => match next {
                Ok(Some(frame)) => {
                    // No receiver yet is not an error: the relay subscribes as it starts.
                    let _ = out.send(Arc::new(frame));
                }
                Ok(None) => return,
                Err(_) => {
                    warn!("the HDMI input sent nothing for {silence:?} (no signal?); ending the demo");
                    return;
                }
            },
            changed = errors.changed() => {
                if changed.is_err() {
                    return;
                }
                if let Some(e) = errors.borrow().clone() {
                    warn!(error = %e, "the HDMI capture failed; ending the demo");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(seq: u64) -> EncodedFrame {
        EncodedFrame {
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            keyframe: seq == 0,
            capture_us: 1,
            seq,
        }
    }

    #[tokio::test]
    async fn frames_pass_until_the_input_falls_silent_then_the_feed_closes() {
        let (tx, rx) = mpsc::channel(8);
        let (_err_tx, errors) = watch::channel(None);
        let (out, mut feed) = broadcast::channel(8);
        let task = tokio::spawn(forward(rx, errors, out, Duration::from_millis(200)));
        tx.send(frame(0)).await.unwrap();
        tx.send(frame(1)).await.unwrap();
        assert_eq!(feed.recv().await.unwrap().seq, 0);
        assert_eq!(feed.recv().await.unwrap().seq, 1);
        // The sender stays open but nothing comes: no signal.
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("silence ends the forwarding")
            .unwrap();
        assert!(matches!(
            feed.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));
        drop(tx);
    }

    #[tokio::test]
    async fn a_pipeline_error_closes_the_feed() {
        let (_tx, rx) = mpsc::channel::<EncodedFrame>(8);
        let (err_tx, errors) = watch::channel(None);
        let (out, mut feed) = broadcast::channel(8);
        let task = tokio::spawn(forward(rx, errors, out, Duration::from_secs(60)));
        err_tx
            .send(Some(PipelineError {
                pipeline: "hdmi".into(),
                source_element: "v4l2src0".into(),
                message: "device unplugged".into(),
                debug: String::new(),
            }))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("an error ends the forwarding")
            .unwrap();
        assert!(matches!(
            feed.recv().await,
            Err(broadcast::error::RecvError::Closed)
        ));
    }
}
