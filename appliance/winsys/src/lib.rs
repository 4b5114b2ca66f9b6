//! The Win32 calls of the Lanterne station agent on Windows, each behind a safe function.
//!
//! The station crate itself forbids `unsafe`; what it needs from Windows that no well-kept
//! safe crate offers lives here, small and reviewed: [`dxgi`] copies the desktop with DXGI
//! Desktop Duplication (every monitor, through Direct3D 11) and [`capture`] with GDI
//! (`BitBlt` from the screen's device context), the fallback; [`window`] opens topmost windows of one
//! colour (the watched badge, the lock screen on every monitor with input blocked, the test
//! program the Windows scenario draws with), [`message`] shows a teacher's message,
//! [`network`] reads the PC's MAC address for Wake-on-LAN, [`security`] keeps students out
//! of the agent's folder and key (access lists) and [`folders`] says where that folder is; for the station service and its
//! session helper, [`pipe`] makes the service's named pipe and names the process at its other
//! end, [`account`] says which account runs a process, [`session`] starts the helper in the
//! user's session, [`job`] ends it with the service, and [`service`] is the service control
//! manager's entry point; [`input`] plays remote help's pointer and keys (`SendInput`),
//! [`panel`] shows the consent prompt and the help banner (text and buttons), [`hotkey`]
//! registers Ctrl+Alt+H and Ctrl+Alt+End, [`video`] paints the demo player's pictures, and [`mf`]
//! encodes H.264 with Media Foundation (the PC's hardware encoder when it has one).
//!
//! On other platforms this crate is empty.
#![cfg(windows)]

pub mod account;
pub mod capture;
pub mod dxgi;
pub mod folders;
pub mod hotkey;
pub mod input;
pub mod job;
pub mod message;
pub mod mf;
pub mod network;
pub mod panel;
pub mod pipe;
pub mod security;
pub mod service;
pub mod session;
mod ui_thread;
pub mod video;
mod wide;
pub mod window;
pub mod wine;

/// A Win32 call that failed: which one, and the thread's last error code.
#[derive(Debug, thiserror::Error)]
#[error("{call} failed (Windows error {code})")]
pub struct Win32Error {
    pub call: &'static str,
    pub code: u32,
}

impl Win32Error {
    /// The failure of `call`, with `GetLastError`'s code.
    pub(crate) fn last(call: &'static str) -> Self {
        // SAFETY: GetLastError only reads the calling thread's last-error value.
        let code = unsafe { windows_sys::Win32::Foundation::GetLastError() };
        Win32Error { call, code }
    }
}
