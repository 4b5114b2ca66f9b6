//! The box's own demo source: the teacher PC's screen, captured from HDMI through V4L2.
//!
//! Two kinds of hardware: a TC358743 HDMI-to-CSI bridge on a Raspberry Pi 4's camera
//! connector (driver `unicam`, reports the input's DV timings, delivers UYVY), or a USB
//! capture dongle (`uvcvideo`, usually Motion-JPEG for 1080p30 over USB 2).
//!
//! * [`DeviceDescription`] — what one `/dev/videoN` node offers, as plain serde data.
//!   `describe_devices` (feature `v4l2-capture`) fills it from the real nodes.
//! * [`select`] — pure logic: picks device, format, size and rate for [`CapturePreferences`]
//!   and lists every rejection with its reason; tested against the device descriptions in
//!   `tests/fixtures/v4l2/` (hand-written for now, to be replaced by recordings).
//! * [`HdmiCapture`] — the pipeline for a [`CaptureChoice`]: `v4l2src` (or, as
//!   [`CaptureInput::TestPattern`], a generated picture in the same caps) → jpegdec for
//!   Motion-JPEG → rate, scale, convert → H.264 → [`crate::EncodedFrame`]s.
//! * `start_hdmi_capture` (feature `v4l2-capture`) — describe, select, apply the bridge's
//!   DV timings, start: the box's HDMI demo source in one call.
//!
//! The feature is separate because the `v4l` crate runs bindgen (libclang) at build time;
//! everything that needs no device builds and is tested without it.
//!
//! See `docs/hardware.md` for testing on a Pi with a TC358743 or a dongle.

mod description;
#[cfg(feature = "v4l2-capture")]
mod device;
mod pipeline;
mod select;

pub use description::{
    parse_query_dv_timings, Capability, DeviceDescription, DvTimings, DvTimingsStatus,
    FormatDescription, FrameRate, FrameSize,
};
#[cfg(feature = "v4l2-capture")]
pub use device::{
    describe_device, describe_devices, prepare_device, start_hdmi_capture, DeviceError,
};
pub use pipeline::{CaptureInput, HdmiCapture};
pub use select::{
    select, CaptureChoice, CaptureLimits, CapturePreferences, DeviceKind, PixelFormat,
    RejectReason, Rejection, SelectError,
};
