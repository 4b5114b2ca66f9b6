//! What differs between the platforms a station runs on, one module per platform with the
//! same names in each: [`linux`] (X11 or the synthetic pattern through GStreamer, the X11
//! overlay, systemd and freedesktop tools, the Unix-socket session helper) and `windows`
//! (GDI capture and OpenH264, Windows' own tools). The link, enrolment, the schedule, the
//! allow-list and the session logic are shared and never look here except through these
//! names:
//!
//! * media: `CaptureSource`, `CodecProbe`, `init` (the codec probe), `LiveSource` (the live
//!   screen as a [`crate::sources::VideoSource`]), `DemoPlayer`, `PlayerConfig`,
//!   `PlayerOutput`;
//! * files: `write_file` (private files readable by the agent's account only), `sync_dir`,
//!   `secure_dir` (the data folder kept from other accounts),
//!   `check_config_ownership`, `default_config_path`, `default_data_dir`,
//!   `DEFAULT_SESSION_SOCKET`;
//! * the PC: `hostname`, `primary_mac`.

#[cfg(unix)]
pub mod linux;
#[cfg(unix)]
pub use linux::*;

#[cfg(windows)]
pub mod windows;
#[cfg(windows)]
pub use windows::*;
