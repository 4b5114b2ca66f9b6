//! The station on Windows: the desktop copied with DXGI Desktop Duplication, GDI its fallback
//! ([`capture`]), encoded by Media Foundation (hardware when the PC has it) or OpenH264
//! ([`encoder`]), and the demo player ([`media`], [`picture`]); the screen ([`screen`]): the
//! watched badge, the lock on every monitor with keyboard and mouse blocked, input blocking
//! for full-screen demos, teachers' messages with their read receipt, remote help with the
//! student's consent, the raised hand, the "shown to the class" banner; Windows' own tools
//! for system actions ([`system`]). The Win32 calls are in `lanterne-winsys`.
//!
//! As on Linux the agent is two processes: the service ([`service`]: `lanterne-station.exe
//! service` under the service control manager as LocalSystem, or `run` in an administrator's
//! console) holds the identity and the link, and the session helper (`lanterne-station.exe
//! session`, in the user's session, as the user) does what the student sees. They meet on the
//! named pipe `\\.\pipe\lanterne-station` ([`session_pipe`]), each checking the other's
//! account. The service starts the helper in the console session itself. `desktop` still
//! runs the whole station in one process in the user's session.
//!
//! The data folder and the key are for LocalSystem and Administrators only, and the service
//! refuses a configuration file another account owns or may write ([`acl`]).
//!
//! What this platform does not have yet, said plainly: "open a session" (refused: Windows
//! needs the user's password); the Event Log (the service's own log goes to `service.log` in
//! the data folder). DXGI duplication and the Media Foundation encoder can be tested only by
//! hand on a real PC and have not been yet (Wine 8 has neither: the automatic tests use GDI
//! and OpenH264).

pub mod acl;
pub mod capture;
pub mod encoder;
pub mod media;
pub mod picture;
pub mod screen;
pub mod service;
pub mod session_pipe;
pub mod system;

use std::path::{Path, PathBuf};

pub use media::{
    init, CaptureSource, CodecProbe, DemoPlayer, LiveSource, MediaError, PlayerConfig, PlayerOutput,
};

/// Tests that paint and read the one desktop take turns.
#[cfg(test)]
pub(crate) static DESKTOP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the agent reads its configuration unless told otherwise: `station.toml` in the data
/// folder, where the MSI installs it.
pub fn default_config_path() -> PathBuf {
    default_data_dir().join("station.toml")
}
/// Where the identity lives unless told otherwise: `Lanterne` in the machine's application
/// data folder (the MSI's `CommonAppDataFolder`; `C:\ProgramData` on a standard
/// installation), asked of Windows when the agent starts.
pub fn default_data_dir() -> PathBuf {
    program_data(lanterne_winsys::folders::program_data().ok()).join("Lanterne")
}

/// The shell's answer if it gave a full path, else Windows' standard place.
fn program_data(from_shell: Option<PathBuf>) -> PathBuf {
    from_shell
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
}
/// Where the service waits for its session helper (a named pipe).
pub const DEFAULT_SESSION_SOCKET: &str = session_pipe::DEFAULT_PIPE;

/// Writes `data` to `path` (created or truncated) and flushes it. A `private` file (the
/// station's key) gets an access list of its own before anything is written to it: full
/// control for LocalSystem and Administrators, nobody else, nothing inherited.
pub fn write_file(path: &Path, data: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    if private {
        lanterne_winsys::security::restrict_to_admins(path).map_err(std::io::Error::other)?;
    }
    f.write_all(data)?;
    f.sync_all()
}

/// Nothing to do: NTFS journals renames, and a directory cannot be opened as a file to flush.
pub fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Keeps students out of the agent's folder (`%ProgramData%\Lanterne`, whose default access
/// list lets every user read and create files): a protected access list with full control
/// for LocalSystem and Administrators only, which Windows also applies to what the folder
/// holds and what is made in it later.
pub fn secure_dir(dir: &Path) -> std::io::Result<()> {
    lanterne_winsys::security::restrict_to_admins(dir).map_err(std::io::Error::other)
}

/// Err (the problem) when the configuration file could have been written by an account other
/// than LocalSystem, the Administrators group, TrustedInstaller or the agent's own: owned by
/// another account, or an access-list entry lets another account write it.
pub fn check_config_ownership(path: &Path, _meta: &std::fs::Metadata) -> Result<(), String> {
    let sddl = lanterne_winsys::security::describe(path)
        .map_err(|e| format!("its access list cannot be read: {e}"))?;
    let me = lanterne_winsys::account::of_current_process()
        .ok()
        .map(|a| a.user.sid);
    acl::check_writers(&sddl, me.as_deref())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_folder_follows_the_machines_program_data() {
        assert_eq!(
            program_data(Some(r"D:\ProgramData".into())),
            PathBuf::from(r"D:\ProgramData")
        );
        // No answer, or not a full path: Windows' standard place.
        assert_eq!(program_data(None), PathBuf::from(r"C:\ProgramData"));
        assert_eq!(
            program_data(Some("ProgramData".into())),
            PathBuf::from(r"C:\ProgramData")
        );
        assert_eq!(
            default_config_path(),
            default_data_dir().join("station.toml")
        );
        assert!(default_data_dir().ends_with("Lanterne"));
    }
}
