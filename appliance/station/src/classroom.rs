//! The simulated classroom seen from outside: what each simulated station shows, written to a
//! JSON status file, and what its student does, read as orders on standard input.
//!
//! Browser tests and demos drive the teacher's tablet and need to check the effect on the
//! students' side without a display per station. Each simulated station keeps its screen in
//! memory ([`SimulatedScreen`]) and records its system actions ([`SimulatedSystem`]); this
//! module publishes both and lets a test act as the students:
//!
//! ```text
//! dismiss poste-03 7      # the student of poste-03 clicks OK on message 7
//! unplug poste-02         # poste-02 goes offline (its link is stopped for good)
//! login poste-01 Élise Martin   # Élise Martin logs in at poste-01 (display name)
//! logout poste-01         # and out again (her hand, if raised, goes down)
//! hand poste-01 up        # she raises her hand (down: withdraws it)
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::screen::{Screen, SimulatedScreen};
use crate::system::SimulatedSystem;
use crate::RunningStation;

/// One simulated station as the classroom process holds it.
pub struct SimulatedStation {
    pub running: RunningStation,
    pub screen: Arc<SimulatedScreen>,
    pub system: Arc<SimulatedSystem>,
}

#[derive(Debug, Serialize, PartialEq)]
struct MessageOnScreen {
    id: u64,
    from: String,
    text: String,
}

/// What one station's student sees, as written to the status file.
#[derive(Debug, Serialize, PartialEq)]
struct StationStatus {
    id: u32,
    name: String,
    connected: bool,
    locked: bool,
    lock_message: Option<String>,
    watched_indicator: bool,
    /// Keyboard and pointer taken away (a full-screen demo).
    input_blocked: bool,
    messages: Vec<MessageOnScreen>,
    /// System actions carried out so far ("restart", "open-url https://…").
    system: Vec<String>,
    /// The display name of the student logged in, if any.
    user: Option<String>,
    /// The student's hand is up (until they withdraw it or the teacher clears it).
    hand_raised: bool,
}

fn snapshot(stations: &[SimulatedStation]) -> Vec<StationStatus> {
    stations
        .iter()
        .map(|s| {
            let shown = s.screen.shown();
            StationStatus {
                id: s.running.station_id,
                name: s.running.name.clone(),
                connected: !s.running.task.is_finished() && s.running.status.borrow().connected,
                locked: shown.locked,
                lock_message: s.screen.lock_message(),
                watched_indicator: shown.watched_indicator,
                input_blocked: s.screen.input_blocked(),
                messages: s
                    .screen
                    .open_messages()
                    .into_iter()
                    .map(|(id, from, text)| MessageOnScreen { id, from, text })
                    .collect(),
                system: s.system.done(),
                user: s.screen.student().0,
                hand_raised: s.screen.student().1,
            }
        })
        .collect()
}

/// Writes `stations`' status to `path` whenever it changes (checked every 100 ms), by
/// writing a temporary file and renaming it so a reader never sees half a file.
pub async fn publish_status(
    path: PathBuf,
    stations: Arc<tokio::sync::Mutex<Vec<SimulatedStation>>>,
) {
    let mut last = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let now = snapshot(&stations.lock().await);
        if last.as_ref() == Some(&now) {
            continue;
        }
        if let Err(e) = write_atomically(&path, &now) {
            tracing::warn!(
                "cannot write the classroom status to {}: {e}",
                path.display()
            );
        }
        last = Some(now);
    }
}

fn write_atomically(path: &Path, status: &[StationStatus]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(status)?)?;
    std::fs::rename(&tmp, path)
}

/// Why a student order from standard input was not carried out.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error(
        "unknown order {0:?} (expected: dismiss STATION ID, unplug STATION, login STATION NAME, \
         logout STATION, hand STATION up|down)"
    )]
    Unknown(String),
    #[error("{0}")]
    BadName(&'static str),
    #[error("no station named {0:?}")]
    NoStation(String),
    #[error("'{0}' is not a message id")]
    BadId(String),
    #[error("{station} shows no message {id}")]
    NoMessage { station: String, id: u64 },
}

/// Carries out one order line.
pub async fn obey(
    line: &str,
    stations: &tokio::sync::Mutex<Vec<SimulatedStation>>,
) -> Result<(), OrderError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let stations = stations.lock().await;
    let by_name: HashMap<&str, &SimulatedStation> = stations
        .iter()
        .map(|s| (s.running.name.as_str(), s))
        .collect();
    let find = |name: &str| {
        by_name
            .get(name)
            .copied()
            .ok_or_else(|| OrderError::NoStation(name.to_string()))
    };
    match words.as_slice() {
        ["dismiss", station, id] => {
            let s = find(station)?;
            let id: u64 = id.parse().map_err(|_| OrderError::BadId(id.to_string()))?;
            if s.screen.dismiss(id) {
                Ok(())
            } else {
                Err(OrderError::NoMessage {
                    station: station.to_string(),
                    id,
                })
            }
        }
        ["unplug", station] => {
            find(station)?.running.task.abort();
            Ok(())
        }
        ["login", station, name @ ..] if !name.is_empty() => {
            let s = find(station)?;
            let name = name.join(" ");
            lanterne_wire::validate_display_name(&name).map_err(OrderError::BadName)?;
            s.screen.set_user(Some(name));
            Ok(())
        }
        ["logout", station] => {
            find(station)?.screen.set_user(None);
            Ok(())
        }
        ["hand", station, way @ ("up" | "down")] => {
            find(station)?.screen.raise_hand(*way == "up");
            Ok(())
        }
        _ => Err(OrderError::Unknown(line.trim().to_string())),
    }
}

/// Reads orders, one per line, until the input ends. A bad order is logged and skipped:
/// the classroom keeps running.
pub async fn follow_orders(
    input: impl AsyncBufRead + Unpin,
    stations: Arc<tokio::sync::Mutex<Vec<SimulatedStation>>>,
) {
    let mut lines = input.lines();
    // Orders are short; a longer line is not ours.
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() || line.len() > 256 {
            continue;
        }
        match obey(&line, &stations).await {
            Ok(()) => tracing::info!(order = %line.trim(), "student order carried out"),
            Err(e) => tracing::warn!("student order refused: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_orders_are_refused_with_the_reason() {
        let none = tokio::sync::Mutex::new(Vec::new());
        assert_eq!(
            obey("reboot everything", &none).await,
            Err(OrderError::Unknown("reboot everything".into()))
        );
        assert_eq!(
            obey("dismiss poste-09 3", &none).await,
            Err(OrderError::NoStation("poste-09".into()))
        );
        assert_eq!(
            obey("unplug", &none).await,
            Err(OrderError::Unknown("unplug".into()))
        );
        assert_eq!(
            obey("login poste-09 Élise Martin", &none).await,
            Err(OrderError::NoStation("poste-09".into()))
        );
        assert_eq!(
            obey("hand poste-01 sideways", &none).await,
            Err(OrderError::Unknown("hand poste-01 sideways".into()))
        );
        assert_eq!(
            obey("login poste-01", &none).await,
            Err(OrderError::Unknown("login poste-01".into()))
        );
    }
}
