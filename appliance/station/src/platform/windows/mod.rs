//! The station on Windows: GDI capture and OpenH264, and the demo player ([`media`],
//! [`picture`]); the screen ([`screen`]): the watched badge, the lock on every monitor with
//! keyboard and mouse blocked, input blocking for full-screen demos, teachers' messages with
//! their read receipt, remote help with the student's consent, the raised hand, the "shown to
//! the class" banner; Windows' own tools for system actions ([`system`]). The Win32 calls are
//! in `lanterne-winsys`.
//!
//! What this platform does not have yet, said plainly: the Windows service and its session
//! helper (the agent runs as one process in the user's session, `lanterne-station desktop`,
//! so "open a session" is refused and "log out" ends that session); the ACL on
//! `%ProgramData%\Lanterne` (files are written with the folder's inherited permissions); the
//! ownership check of the configuration file; DXGI capture and the Media Foundation encoder.

pub mod media;
pub mod picture;
pub mod screen;
pub mod system;

use std::path::Path;

pub use media::{
    init, CaptureSource, CodecProbe, DemoPlayer, LiveSource, MediaError, PlayerConfig, PlayerOutput,
};

/// Tests that paint and read the one desktop take turns.
#[cfg(test)]
pub(crate) static DESKTOP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the agent reads its configuration unless told otherwise.
pub const DEFAULT_CONFIG_PATH: &str = r"C:\ProgramData\Lanterne\station.toml";
/// Where the identity lives unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = r"C:\ProgramData\Lanterne";
/// Where a service would wait for its session helper (named pipe; not used yet).
pub const DEFAULT_SESSION_SOCKET: &str = r"\\.\pipe\lanterne-station";

/// Writes `data` to `path` (created or truncated) and flushes it. The file takes its
/// folder's permissions: `private` cannot be enforced here yet (no ACL is set), which is
/// why the identity must live in a folder only administrators can read.
pub fn write_file(path: &Path, data: &[u8], _private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Nothing to do: NTFS journals renames, and a directory cannot be opened as a file to flush.
pub fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The configuration file's owner and ACL are not checked on Windows yet: nothing is refused.
pub fn check_config_ownership(_meta: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// This PC's name (`COMPUTERNAME`), or "station".
pub fn hostname() -> String {
    std::env::var("COMPUTERNAME")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 63)
        .unwrap_or_else(|| "station".into())
}

/// The MAC address of the first Ethernet (else Wi-Fi) adapter, for Wake-on-LAN.
pub fn primary_mac() -> Option<String> {
    lanterne_winsys::network::primary_mac()
}
