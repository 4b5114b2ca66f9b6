//! A station's life after enrolment: revocation and deletion, asked from the admin page or
//! from the `lanterne-box` command line.
//!
//! - **Revoke**: the station's certificate is refused from then on (checked against the
//!   database at every link start) and its live link is cut at once. The station stays
//!   listed, marked revoked, so an admin can see what happened; to come back it must be
//!   enrolled again (a new certificate).
//! - **Delete**: revoke, then remove everything the box holds about the station (its row
//!   with name, host name and MAC address, receipts, command output, screenshots with their
//!   files); its audit lines keep its pseudonym (`store::delete_station`).
//!
//! The database is the source of truth, so the command line only writes to it. The running
//! box hears of such a change through [`watch_database`]: SQLite bumps `PRAGMA data_version`
//! on a connection whenever *another* connection commits, a check that costs a lock and no
//! disk read, so the box asks four times a second and reads the station list again only
//! when it moved. A link is thus cut within about 250 ms of a command-line revocation, and
//! at once for one from the admin page.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{error, info};

use crate::room::RoomHandle;
use crate::screenshots;
use crate::store::{self, DeletedStation, StationAdminRow, Store, StoreError};

/// How often the box asks whether another process changed the database.
const WATCH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum StationError {
    #[error("no station with id {0}")]
    NotFound(u32),
    #[error("no station named '{0}'")]
    NoSuchName(String),
    #[error("no box database in {0} (is --data-dir right?)")]
    NoDatabase(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revokes station `id` and cuts its live link. Returns the station as it was before (its
/// `revoked` says whether it already was).
pub async fn revoke(
    store: &Store,
    room: &RoomHandle,
    id: u32,
) -> Result<StationAdminRow, StationError> {
    let before = store
        .run(move |c| store::revoke_station(c, id))
        .await?
        .ok_or(StationError::NotFound(id))?;
    // After the database: a link starting now is refused by its lookup or, if it looked
    // before the update, by the room.
    room.remove_station(id).await;
    if !before.revoked {
        info!(station = %before.name, id, "station revoked");
    }
    Ok(before)
}

/// Deletes station `id`: revoked and cut first, then every record of it and its
/// screenshot files.
pub async fn delete(
    store: &Store,
    room: &RoomHandle,
    shots: &screenshots::Settings,
    id: u32,
) -> Result<DeletedStation, StationError> {
    revoke(store, room, id).await?;
    let deleted = store
        .run(move |c| store::delete_station(c, id))
        .await?
        .ok_or(StationError::NotFound(id))?;
    screenshots::delete_files(shots, &deleted.screenshot_ids);
    info!(id, pseudonym = %deleted.pseudonym, "station deleted");
    Ok(deleted)
}

/// Finds a station by id (digits) or by name, revoked ones included.
pub fn find(store: &Store, which: &str) -> Result<StationAdminRow, StationError> {
    let all = store.with(store::all_stations)?;
    let found = match which.parse::<u32>() {
        Ok(id) => all.into_iter().find(|s| s.id == id),
        Err(_) => all.into_iter().find(|s| s.name == which),
    };
    found.ok_or_else(|| StationError::NoSuchName(which.to_string()))
}

/// The box database in `data_dir`, for the command line; never creates one.
fn open_existing(data_dir: &Path) -> Result<Store, StationError> {
    let path = data_dir.join("box.sqlite");
    if !path.exists() {
        return Err(StationError::NoDatabase(data_dir.to_path_buf()));
    }
    Ok(Store::open(&path)?)
}

/// The command line's list of stations.
pub fn list_in(data_dir: &Path) -> Result<Vec<StationAdminRow>, StationError> {
    Ok(open_existing(data_dir)?.with(store::all_stations)?)
}

/// The command line's revocation: the database only; a running box cuts the link (see
/// [`watch_database`]). Audited as done from the command line.
pub fn revoke_in(data_dir: &Path, which: &str) -> Result<StationAdminRow, StationError> {
    let store = open_existing(data_dir)?;
    let id = find(&store, which)?.id;
    store
        .with(|c| {
            let before = store::revoke_station(c, id)?;
            if let Some(b) = &before {
                let detail = if b.revoked { "already revoked" } else { "" };
                audit_cli(c, "revoke-station", &b.name, detail)?;
            }
            Ok(before)
        })?
        .ok_or(StationError::NotFound(id))
}

/// The command line's deletion, screenshot files in `data_dir` included.
pub fn delete_in(data_dir: &Path, which: &str) -> Result<DeletedStation, StationError> {
    let store = open_existing(data_dir)?;
    let id = find(&store, which)?.id;
    let deleted = store
        .with(|c| {
            store::revoke_station(c, id)?;
            let d = store::delete_station(c, id)?;
            if let Some(d) = &d {
                audit_cli(c, "delete-station", &d.pseudonym, "")?;
            }
            Ok(d)
        })?
        .ok_or(StationError::NotFound(id))?;
    let shots = screenshots::Settings {
        enabled: false,
        retention_days: 1,
        dir: data_dir.join("screenshots"),
    };
    screenshots::delete_files(&shots, &deleted.screenshot_ids);
    Ok(deleted)
}

fn audit_cli(
    c: &rusqlite::Connection,
    action: &str,
    target: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    crate::audit::write(
        c,
        lanterne_wire::now_us() as i64,
        &crate::audit::Entry {
            actor: "command-line",
            action,
            target,
            result: "ok",
            detail,
        },
    )
}

/// Applies to the room the revocations and deletions another process (the command line)
/// writes to the database, until the box stops. See the module comment.
pub async fn watch_database(store: Store, room: RoomHandle) {
    let version = |c: &rusqlite::Connection| {
        c.pragma_query_value(None, "data_version", |r| r.get::<_, i64>(0))
    };
    let mut seen = None;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = match store.run(version).await {
            Ok(v) => v,
            Err(e) => {
                error!("cannot watch the database for revoked stations: {e}");
                continue;
            }
        };
        if seen == Some(now) {
            continue;
        }
        seen = Some(now);
        let active: BTreeSet<u32> = match store.run(store::stations).await {
            Ok(rows) => rows.into_iter().map(|s| s.id).collect(),
            Err(e) => {
                error!("cannot read the stations: {e}");
                continue;
            }
        };
        // The room's own list (its tiles), not a copy kept here: a station enrolled through
        // this box's HTTPS does not bump the version this connection sees.
        let in_room: Vec<u32> = room
            .view()
            .borrow()
            .mosaic
            .tiles
            .iter()
            .map(|t| t.station_id)
            .collect();
        for id in in_room.into_iter().filter(|id| !active.contains(id)) {
            if room.remove_station(id).await {
                info!(
                    id,
                    "station revoked or deleted from the command line; link cut"
                );
            }
        }
    }
}
