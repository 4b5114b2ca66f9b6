//! The station on Linux: GStreamer capture and encoding ([`media`]), the X11 overlay
//! ([`screen`]), systemd and freedesktop tools ([`system`]), the Unix-socket link between
//! the root service and the student's session helper ([`session_socket`]).

pub mod media;
pub mod screen;
pub mod session_socket;
pub mod system;

use std::path::Path;

pub use lanterne_media::{CaptureSource, CodecProbe};
pub use media::{init, DemoPlayer, LiveSource, PlayerConfig, PlayerOutput};

/// Where `lanterne-station run` reads its configuration unless told otherwise.
pub fn default_config_path() -> std::path::PathBuf {
    "/etc/lanterne/station.toml".into()
}
/// Where the identity lives unless told otherwise.
pub fn default_data_dir() -> std::path::PathBuf {
    "/var/lib/lanterne-station".into()
}
/// Where the service waits for the session helper unless configured otherwise.
pub const DEFAULT_SESSION_SOCKET: &str = session_socket::DEFAULT_SOCKET;

/// Writes `data` to `path` (created or truncated), readable by the agent's account only when
/// `private` (mode 0600), by everyone otherwise (0644), and flushed to disk.
pub fn write_file(path: &Path, data: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Flushes a directory's entries (after renames in it) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Nothing more than the key's own mode (0600, [`write_file`]): the folder is the service's
/// state directory, made by systemd (`StateDirectory=`, mode 0700 in its unit).
pub fn secure_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Err (the problem) when the configuration file could have been written by an account other
/// than root or the agent's own: writable by its group or others, or owned by someone else.
pub fn check_config_ownership(_path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "is writable by its group or by every user (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "belongs to uid {}, neither root nor this agent's account (uid {me})",
            meta.uid()
        ));
    }
    Ok(())
}

/// This machine's host name (`/etc/hostname`), or "station".
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "station".into())
}

/// The MAC address of the first real network interface, for Wake-on-LAN.
pub fn primary_mac() -> Option<String> {
    let mut entries: Vec<_> = std::fs::read_dir("/sys/class/net")
        .ok()?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().find_map(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        if name == "lo" || !e.path().join("device").exists() {
            return None;
        }
        let mac = std::fs::read_to_string(e.path().join("address")).ok()?;
        let mac = mac.trim().to_string();
        (mac.len() == 17 && mac != "00:00:00:00:00:00").then_some(mac)
    })
}
