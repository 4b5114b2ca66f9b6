//! Screenshots of stations (policy P4): off unless the configuration turns them on; when
//! on, a teacher's screenshot is one full-resolution keyframe of the station's focus stream,
//! decoded to PNG on the box and kept in the box's data directory only, for a bounded
//! retention, after which the hourly retention task (`retention.rs`) deletes it.
//!
//! Taking one goes through the room's focus path, so the monitoring schedule (P3) applies
//! exactly as for the focus view, and the status LED and the station's indicator show the
//! screen is being watched while the picture is taken. A screenshot still in progress when
//! the monitoring window closes (or the station loses its indicator) is abandoned: nothing is
//! kept, and the teacher is told why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::error;

use crate::room::{FocusError, RoomHandle, Unwatchable};
use crate::store::{self, ScreenshotRow, Store, StoreError};

/// How long a station has to send a keyframe once asked. Stations answer a keyframe request
/// within a frame or two; this bounds a station that stalls.
const KEYFRAME_WAIT: Duration = Duration::from_secs(8);

#[derive(Debug, thiserror::Error)]
pub enum ScreenshotError {
    #[error("{0}")]
    Focus(#[from] FocusError),
    #[error("the station sent no picture within {} s", KEYFRAME_WAIT.as_secs())]
    NoPicture,
    #[error("the station left before its picture arrived")]
    StationLeft,
    #[error("decoding the station's picture failed: {0}")]
    Decode(#[from] lanterne_media::MediaError),
    #[error("writing the screenshot to {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Screenshot settings and where they are kept.
#[derive(Debug, Clone)]
pub struct Settings {
    pub enabled: bool,
    pub retention_days: u32,
    /// `<data dir>/screenshots`, mode 0700.
    pub dir: PathBuf,
}

impl Settings {
    pub fn file(&self, id: i64) -> PathBuf {
        file_in(&self.dir, id)
    }
}

fn file_in(dir: &Path, id: i64) -> PathBuf {
    dir.join(format!("{id}.png"))
}

/// Takes a screenshot of one station for `taken_by`; returns its row once the file is safely
/// written.
pub async fn take(
    settings: &Settings,
    room: &RoomHandle,
    store: &Store,
    station_id: u32,
    taken_by: &str,
) -> Result<ScreenshotRow, ScreenshotError> {
    let mut sub = room.open_focus(station_id).await?;
    let cut = sub.cut();
    let keyframe = tokio::time::timeout(KEYFRAME_WAIT, async {
        loop {
            tokio::select! {
                // The room ended the view: the window closed, the indicator was lost, or
                // the station left.
                _ = sub.ended.changed() => {
                    still_allowed(&cut)?;
                    return Err(ScreenshotError::StationLeft);
                }
                f = sub.frames.recv() => match f {
                    Ok(f) if f.keyframe => return Ok(f),
                    Ok(_) => {}
                    // Fell behind a burst: the next keyframe still does.
                    Err(RecvError::Lagged(_)) => sub.request_keyframe(),
                    Err(RecvError::Closed) => return Err(ScreenshotError::StationLeft),
                },
            }
        }
    })
    .await
    .map_err(|_| ScreenshotError::NoPicture)??;
    let station_name = sub.station_name.clone();
    // Stop the full stream (when no one else watches) before the slower decoding.
    drop(sub);
    let data = keyframe.data.clone();
    let still = tokio::task::spawn_blocking(move || lanterne_media::still::keyframe_to_png(&data))
        .await
        .map_err(|e| StoreError::Join(e.to_string()))??;
    // Still in progress: a window that closed meanwhile abandons it.
    still_allowed(&cut)?;
    let mut row = ScreenshotRow {
        id: 0,
        station_id,
        station_name,
        taken_by: taken_by.to_string(),
        // The box's clock, not the station's: retention is counted by the box.
        taken_at_us: lanterne_wire::now_us() as i64,
        width: still.width,
        height: still.height,
        bytes: still.png.len() as u64,
    };
    let r = row.clone();
    row.id = store.run(move |c| store::insert_screenshot(c, &r)).await?;
    let path = settings.file(row.id);
    let written = write_private(&settings.dir, &path, still.png)
        .await
        .map_err(|source| ScreenshotError::Io {
            path: path.clone(),
            source,
        })
        // The window may have closed while the file was written: it is not kept then.
        .and_then(|()| still_allowed(&cut));
    if let Err(e) = written {
        // No row may point at a file that does not exist, and nothing taken as the window
        // closed is kept.
        let id = row.id;
        let _ = std::fs::remove_file(&path);
        let _ = store
            .run(move |c| {
                c.execute("DELETE FROM screenshots WHERE id = ?1", [id])
                    .map(|_| ())
            })
            .await;
        return Err(e);
    }
    Ok(row)
}

/// Err when the room cut the view this screenshot is taken through (the screen may no
/// longer be watched): the screenshot is abandoned, saying why.
fn still_allowed(cut: &watch::Receiver<Option<Unwatchable>>) -> Result<(), ScreenshotError> {
    match cut.borrow().clone() {
        None => Ok(()),
        Some(why) => Err(ScreenshotError::Focus(FocusError::OutsideMonitoring {
            why,
        })),
    }
}

async fn write_private(dir: &Path, path: &Path, png: Vec<u8>) -> std::io::Result<()> {
    let (dir, path) = (dir.to_path_buf(), path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&png)?;
        f.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Deletes the rows and files of screenshots older than the retention at `now_us`. Called
/// by the retention task, also while screenshots are turned off: pictures taken before
/// still expire on time.
pub async fn purge(store: &Store, settings: &Settings, now_us: i64) -> Result<usize, StoreError> {
    let before = now_us - i64::from(settings.retention_days) * 86_400_000_000;
    let ids = store
        .run(move |c| store::purge_screenshots(c, before))
        .await?;
    delete_files(settings, &ids);
    Ok(ids.len())
}

/// Deletes the files of screenshots whose rows are gone (expired, or their station
/// deleted). A file already missing is fine; any other failure is logged.
pub fn delete_files(settings: &Settings, ids: &[i64]) {
    for id in ids {
        let path = settings.file(*id);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                error!(path = %path.display(), "deleting a screenshot: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn purge_deletes_expired_files_and_keeps_recent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            enabled: true,
            retention_days: 7,
            dir: dir.path().join("screenshots"),
        };
        let store = Store::in_memory().unwrap();
        let day = 86_400_000_000i64;
        let now = 100 * day;
        let mut ids = Vec::new();
        for age_days in [8, 1] {
            let row = ScreenshotRow {
                id: 0,
                station_id: 1,
                station_name: "poste-01".into(),
                taken_by: "prof".into(),
                taken_at_us: now - age_days * day,
                width: 1,
                height: 1,
                bytes: 3,
            };
            let id = store
                .run(move |c| store::insert_screenshot(c, &row))
                .await
                .unwrap();
            write_private(&settings.dir, &settings.file(id), b"png".to_vec())
                .await
                .unwrap();
            ids.push(id);
        }
        assert_eq!(purge(&store, &settings, now).await.unwrap(), 1);
        assert!(!settings.file(ids[0]).exists(), "expired file deleted");
        assert!(settings.file(ids[1]).exists(), "recent file kept");
        let meta = std::fs::metadata(settings.file(ids[1])).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}
