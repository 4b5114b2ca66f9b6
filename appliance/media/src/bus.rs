//! Bus watching shared by every long-lived pipeline.
//!
//! A plain thread rather than `bus.stream()` in a tokio task: `ScreenEncoder::start` and
//! `replay::record` are synchronous and may run outside any runtime (the recorder runs on its
//! own thread), and a thread that polls the bus every 100 ms costs nothing measurable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::watch;

/// An error reported by a running pipeline; the pipeline has been set to `Null`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pipeline} pipeline failed in {source_element}: {message} ({debug})")]
pub struct PipelineError {
    /// Which pipeline (e.g. "station encoder").
    pub pipeline: String,
    /// Path of the element that posted the error.
    pub source_element: String,
    pub message: String,
    /// GStreamer's debug text (file, function, detail); may be empty.
    pub debug: String,
}

impl PipelineError {
    pub(crate) fn from_message(pipeline: &str, err: &gst::message::Error) -> Self {
        PipelineError {
            pipeline: pipeline.to_string(),
            source_element: err
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_else(|| "?".into()),
            message: err.error().to_string(),
            debug: err.debug().map(|d| d.to_string()).unwrap_or_default(),
        }
    }
}

/// Watches one pipeline's bus until dropped. On an error it logs it, sets the pipeline to
/// `Null` (so a broken capture never keeps a half-running graph) and publishes the error.
pub(crate) struct BusWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    errors: watch::Receiver<Option<PipelineError>>,
}

impl BusWatch {
    pub(crate) fn spawn(name: &'static str, pipeline: &gst::Pipeline) -> BusWatch {
        let (tx, rx) = watch::channel(None);
        let stop = Arc::new(AtomicBool::new(false));
        let bus = pipeline.bus().expect("a pipeline always has a bus");
        // A weak reference: the watch must not keep a dropped pipeline alive.
        let weak = pipeline.downgrade();
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("bus {name}"))
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let Some(msg) = bus.timed_pop_filtered(
                        gst::ClockTime::from_mseconds(100),
                        &[gst::MessageType::Error, gst::MessageType::Warning],
                    ) else {
                        continue;
                    };
                    match msg.view() {
                        gst::MessageView::Error(e) => {
                            let err = PipelineError::from_message(name, e);
                            tracing::error!(
                                pipeline = name,
                                source = %err.source_element,
                                message = %err.message,
                                debug = %err.debug,
                                "pipeline error; stopping it"
                            );
                            if let Some(p) = weak.upgrade() {
                                let _ = p.set_state(gst::State::Null);
                            }
                            let _ = tx.send(Some(err));
                            break;
                        }
                        gst::MessageView::Warning(w) => {
                            tracing::warn!(
                                pipeline = name,
                                source = ?w.src().map(|s| s.path_string()),
                                message = %w.error(),
                                debug = ?w.debug(),
                                "pipeline warning"
                            );
                        }
                        _ => {}
                    }
                }
            })
            .expect("spawning a bus thread");
        BusWatch {
            stop,
            thread: Some(thread),
            errors: rx,
        }
    }

    pub(crate) fn errors(&self) -> watch::Receiver<Option<PipelineError>> {
        self.errors.clone()
    }

    /// Resolves when the pipeline fails.
    pub(crate) async fn wait_error(&self) -> PipelineError {
        let mut rx = self.errors();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                // The watch ended without an error: only happens while dropping.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for BusWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes one element or says which plugin is missing.
pub(crate) fn make(factory: &str) -> Result<gst::Element, crate::MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| crate::MediaError::MissingElement(factory.to_string()))
}

/// Sets a pipeline to Playing and turns a refusal into an error with the bus's explanation.
pub(crate) fn start_pipeline(
    what: &'static str,
    pipeline: &gst::Pipeline,
) -> Result<(), crate::MediaError> {
    if pipeline.set_state(gst::State::Playing).is_ok() {
        return Ok(());
    }
    // The reason is on the bus (e.g. "Could not open X display").
    let bus = pipeline.bus().expect("a pipeline always has a bus");
    let detail = bus
        .timed_pop_filtered(
            gst::ClockTime::from_mseconds(500),
            &[gst::MessageType::Error],
        )
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => Some(PipelineError::from_message(what, e).to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "state change to Playing failed".into());
    let _ = pipeline.set_state(gst::State::Null);
    Err(crate::MediaError::Start { what, detail })
}

/// A pipeline clock that runs on Unix time, so base_time + PTS is wall-clock capture time.
pub(crate) fn realtime_clock() -> gst::Clock {
    // A private clock instance: changing the type of the shared system clock would change
    // every other pipeline in the process.
    gst::glib::Object::builder::<gst::SystemClock>()
        .property("clock-type", gst::ClockType::Realtime)
        .build()
        .upcast()
}

/// Wall-clock microseconds of a buffer timestamp in a pipeline running on [`realtime_clock`].
pub(crate) fn wallclock_us(base_time: Option<gst::ClockTime>, pts: Option<gst::ClockTime>) -> u64 {
    match (base_time, pts) {
        (Some(b), Some(p)) => (b + p).useconds(),
        _ => crate::now_us(),
    }
}

/// Buffer PTS → running time. Encoders shift PTS by 1000 h (to keep DTS positive) and move the
/// segment to match, so the raw PTS is not a running time.
pub(crate) fn running_time(
    sample: &gst::Sample,
    pts: Option<gst::ClockTime>,
) -> Option<gst::ClockTime> {
    let pts = pts?;
    match sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>())
    {
        Some(seg) => seg.to_running_time(pts),
        None => Some(pts),
    }
}
