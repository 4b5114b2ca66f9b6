//! Remote help, the room's part: one help at a time per station, asked by a teacher or a
//! technician, answered by the student on the station (P5), and followed here until it ends.
//!
//! ```text
//!  tablet ── ask ──▶ room ── HelpAsk ──▶ station: consent prompt (only a click accepts)
//!                     ◀── HelpState: Asking, then Accepted | Refused | TimedOut | Unavailable
//!  Accepted: the helper's view (full stream, at any hour: consent is the safeguard) and input
//!  tablet ── input ──▶ room (only the helper, only while accepted, rate-limited) ── HelpInput ──▶
//!  end: the helper (HelpStop), the student (EndedByStudent), the station or its link going
//! ```
//!
//! The room never decides for the student: the station's report of the student's click is
//! the only way to `accepted`, and the station plays input only for the help its student
//! accepted, whatever the box sends. Every step goes to the audit log and to the list of
//! recent steps the tablet shows; the status LED blinks its remote-control pattern while a
//! help runs.

use std::collections::VecDeque;
use std::time::Duration;

use lanterne_wire::{Control, HelpAsk, HelpState, InputEvent};
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

use super::{lease, FocusSubscription, Lease, Room, Unwatchable};

/// How long the student has to answer (the prompt says so).
pub const HELP_ANSWER_S: u32 = 30;
/// The box gives the station this much longer to report the prompt's own timeout before it
/// counts the help as timed out itself.
const ANSWER_GRACE: Duration = Duration::from_secs(5);
/// Input messages one help may send per second (a drag sends about 20).
pub const INPUT_PER_SECOND: u32 = 60;
/// Steps of remote help the room keeps for tablets (older ones are in the audit log).
const LOG_KEPT: usize = 200;

/// Why remote help cannot be asked, driven or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelpError {
    #[error("no such station")]
    Unknown,
    #[error("the station is offline")]
    Offline,
    #[error("{station} cannot show its \"screen watched\" indicator, so nobody may see it")]
    NoIndicator { station: String },
    #[error("{helper} is already helping on this station, or waiting for the student's answer")]
    Busy { helper: String },
    #[error("no remote help of yours is running on this station")]
    NotYours,
    #[error("the student has not accepted remote help (yet)")]
    NotAccepted,
    #[error("more than {INPUT_PER_SECOND} input messages in a second")]
    TooFast,
    #[error("bad input: {0}")]
    BadInput(String),
}

/// One step of a remote help, as the tablet lists it and the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelpStep {
    pub id: u64,
    pub station_id: u32,
    pub station: String,
    pub at_us: u64,
    /// "asked", "prompt-shown", "accepted", "started", "refused", "timed-out",
    /// "unavailable", "ended".
    pub step: &'static str,
    /// Who: the helper's account, "student", "station" (its prompt's own timeout) or "box".
    pub by: String,
    pub detail: String,
}

/// A running or asked help, for the tablet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelpNow {
    pub id: u64,
    pub helper: String,
    /// "asking" until the student accepts, then "active".
    pub state: &'static str,
    pub asked_us: u64,
}

/// A station's remote help, for the tablet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HelpView {
    pub station_id: u32,
    pub station: String,
    pub help: Option<HelpNow>,
    /// Recent steps of help on this station, oldest first.
    pub steps: Vec<HelpStep>,
}

/// What the room is asked about remote help.
pub(super) enum HelpCmd {
    Ask {
        station_id: u32,
        helper: String,
        /// How the student's prompt names the helper.
        label: String,
        reply: oneshot::Sender<Result<HelpNow, HelpError>>,
    },
    Input {
        station_id: u32,
        helper: String,
        events: Vec<InputEvent>,
        reply: oneshot::Sender<Result<(), HelpError>>,
    },
    Stop {
        station_id: u32,
        helper: String,
        reply: oneshot::Sender<Result<(), HelpError>>,
    },
    View {
        station_id: u32,
        reply: oneshot::Sender<Result<HelpView, HelpError>>,
    },
    OpenView {
        station_id: u32,
        helper: String,
        reply: oneshot::Sender<Result<FocusSubscription, HelpError>>,
    },
    Reported {
        station_id: u32,
        conn: u64,
        id: u64,
        state: HelpState,
        reply: oneshot::Sender<bool>,
    },
    /// The student's time to answer is over (the room's own timer).
    Deadline { station_id: u32, id: u64 },
}

/// One help, owned by the room task.
pub(super) struct Help {
    pub id: u64,
    pub conn: u64,
    pub helper: String,
    pub accepted: bool,
    pub asked_us: u64,
    /// Ends the helper's view when the help ends.
    pub view_ended: watch::Sender<bool>,
    pub view_cut: watch::Sender<Option<Unwatchable>>,
    /// Input messages in the current second.
    window: tokio::time::Instant,
    inputs: u32,
}

impl Help {
    fn now_view(&self) -> HelpNow {
        HelpNow {
            id: self.id,
            helper: self.helper.clone(),
            state: if self.accepted { "active" } else { "asking" },
            asked_us: self.asked_us,
        }
    }

    fn take_input(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.inputs = 0;
        }
        self.inputs += 1;
        self.inputs <= INPUT_PER_SECOND
    }
}

/// Helps and their recent steps.
#[derive(Default)]
pub(super) struct Helps {
    pub running: std::collections::BTreeMap<u32, Help>,
    log: VecDeque<HelpStep>,
    next_id: u64,
}

impl Helps {
    pub fn active(&self, station_id: u32) -> bool {
        self.running.get(&station_id).is_some_and(|h| h.accepted)
    }

    pub fn any_active(&self) -> bool {
        self.running.values().any(|h| h.accepted)
    }

    /// "asking" or "active" for a tile.
    pub fn tile_state(&self, station_id: u32) -> Option<&'static str> {
        self.running
            .get(&station_id)
            .map(|h| if h.accepted { "active" } else { "asking" })
    }
}

impl Room {
    pub(super) async fn on_help(&mut self, cmd: HelpCmd) {
        match cmd {
            HelpCmd::Ask {
                station_id,
                helper,
                label,
                reply,
            } => {
                let r = self.ask_help(station_id, helper, label).await;
                let _ = reply.send(r);
            }
            HelpCmd::Input {
                station_id,
                helper,
                events,
                reply,
            } => {
                let _ = reply.send(self.help_input(station_id, &helper, events));
            }
            HelpCmd::Stop {
                station_id,
                helper,
                reply,
            } => {
                let r = match self.helps.running.get(&station_id) {
                    Some(h) if h.helper == helper => {
                        let id = h.id;
                        if let Some(link) =
                            self.stations.get(&station_id).and_then(|s| s.link.as_ref())
                        {
                            let _ = link.control.try_send(Control::HelpStop { id });
                        }
                        self.end_help(station_id, "ended", &helper, "").await;
                        Ok(())
                    }
                    _ => Err(HelpError::NotYours),
                };
                let _ = reply.send(r);
            }
            HelpCmd::View { station_id, reply } => {
                let _ = reply.send(self.help_view(station_id));
            }
            HelpCmd::OpenView {
                station_id,
                helper,
                reply,
            } => {
                let r = self.open_help_view(station_id, &helper);
                let _ = reply.send(r);
                self.publish();
            }
            HelpCmd::Reported {
                station_id,
                conn,
                id,
                state,
                reply,
            } => {
                let ok = self.help_reported(station_id, conn, id, state).await;
                let _ = reply.send(ok);
            }
            HelpCmd::Deadline { station_id, id } => {
                if self
                    .helps
                    .running
                    .get(&station_id)
                    .is_some_and(|h| h.id == id && !h.accepted)
                {
                    if let Some(link) = self.stations.get(&station_id).and_then(|s| s.link.as_ref())
                    {
                        let _ = link.control.try_send(Control::HelpStop { id });
                    }
                    self.end_help_as(
                        station_id,
                        "timed-out",
                        "box",
                        "no answer from the station in time",
                    )
                    .await;
                }
            }
        }
    }

    async fn ask_help(
        &mut self,
        station_id: u32,
        helper: String,
        label: String,
    ) -> Result<HelpNow, HelpError> {
        if let Some(h) = self.helps.running.get(&station_id) {
            return Err(HelpError::Busy {
                helper: h.helper.clone(),
            });
        }
        let st = self.stations.get(&station_id).ok_or(HelpError::Unknown)?;
        let link = st.link.as_ref().ok_or(HelpError::Offline)?;
        if link.indicator_missing() {
            return Err(HelpError::NoIndicator {
                station: st.row.name.clone(),
            });
        }
        // Ids are never reused while the box runs; starting from the clock keeps a station
        // from matching an id of a run before a restart.
        self.helps.next_id = self.helps.next_id.max(lanterne_wire::now_us()) + 1;
        let id = self.helps.next_id;
        let ask = HelpAsk {
            id,
            from: label
                .chars()
                .take(lanterne_wire::MAX_HELPER_NAME_CHARS)
                .collect(),
            timeout_s: HELP_ANSWER_S,
        };
        if link.control.try_send(Control::HelpAsk(ask)).is_err() {
            return Err(HelpError::Offline);
        }
        let help = Help {
            id,
            conn: link.conn,
            helper: helper.clone(),
            accepted: false,
            asked_us: lanterne_wire::now_us(),
            view_ended: watch::channel(false).0,
            view_cut: watch::channel(None).0,
            window: tokio::time::Instant::now(),
            inputs: 0,
        };
        let now = help.now_view();
        self.helps.running.insert(station_id, help);
        self.help_step(station_id, id, "asked", &helper, "").await;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(HELP_ANSWER_S)) + ANSWER_GRACE).await;
            let _ = tx
                .send(super::Cmd::Help(HelpCmd::Deadline { station_id, id }))
                .await;
        });
        self.publish();
        Ok(now)
    }

    fn help_input(
        &mut self,
        station_id: u32,
        helper: &str,
        events: Vec<InputEvent>,
    ) -> Result<(), HelpError> {
        lanterne_wire::validate_input(&events).map_err(HelpError::BadInput)?;
        let help = self
            .helps
            .running
            .get_mut(&station_id)
            .filter(|h| h.helper == helper)
            .ok_or(HelpError::NotYours)?;
        if !help.accepted {
            return Err(HelpError::NotAccepted);
        }
        if !help.take_input() {
            return Err(HelpError::TooFast);
        }
        let (id, conn) = (help.id, help.conn);
        let link = self.link_mut(station_id, conn).ok_or(HelpError::Offline)?;
        link.control
            .try_send(Control::HelpInput { id, events })
            .map_err(|_| HelpError::TooFast)
    }

    fn help_view(&self, station_id: u32) -> Result<HelpView, HelpError> {
        let st = self.stations.get(&station_id).ok_or(HelpError::Unknown)?;
        Ok(HelpView {
            station_id,
            station: st.row.name.clone(),
            help: self.helps.running.get(&station_id).map(Help::now_view),
            steps: {
                let mut recent: Vec<HelpStep> = self
                    .helps
                    .log
                    .iter()
                    .rev()
                    .filter(|s| s.station_id == station_id)
                    .take(50)
                    .cloned()
                    .collect();
                recent.reverse();
                recent
            },
        })
    }

    /// The helper's view of the screen while the student's consent holds, at any hour.
    fn open_help_view(
        &mut self,
        station_id: u32,
        helper: &str,
    ) -> Result<FocusSubscription, HelpError> {
        let help = self
            .helps
            .running
            .get(&station_id)
            .filter(|h| h.helper == helper)
            .ok_or(HelpError::NotYours)?;
        if !help.accepted {
            return Err(HelpError::NotAccepted);
        }
        let (id, conn) = (help.id, help.conn);
        let (ended, cut) = (help.view_ended.subscribe(), help.view_cut.subscribe());
        let st = self
            .stations
            .get_mut(&station_id)
            .ok_or(HelpError::Unknown)?;
        let station_name = st.row.name.clone();
        let link = st
            .link
            .as_mut()
            .filter(|l| l.conn == conn)
            .ok_or(HelpError::Offline)?;
        link.help_viewers += 1;
        let (lease_tx, closed) = lease(Lease::HelpView {
            station_id,
            conn,
            id,
        });
        let sub = FocusSubscription {
            frames: link.full_tx.subscribe(),
            ended,
            cut,
            station_name,
            station_id,
            conn,
            room: self.tx.clone(),
            _lease: lease_tx,
        };
        self.leases.push(closed);
        self.apply_streams();
        if let Some(link) = self.link_mut(station_id, conn) {
            let _ = link.control.try_send(Control::RequestKeyframe {
                stream: lanterne_wire::Stream::Full,
            });
        }
        Ok(sub)
    }

    /// A helper's view closed.
    pub(super) fn release_help_view(&mut self, station_id: u32, conn: u64, id: u64) {
        if self
            .helps
            .running
            .get(&station_id)
            .is_none_or(|h| h.id != id)
        {
            return; // the help already ended, and its views with it
        }
        if let Some(link) = self.link_mut(station_id, conn) {
            link.help_viewers = link.help_viewers.saturating_sub(1);
            self.apply_streams();
            self.publish();
        }
    }

    /// What a station reports of the help it was asked. False: not a help asked of this
    /// station's current link (nothing is recorded).
    async fn help_reported(
        &mut self,
        station_id: u32,
        conn: u64,
        id: u64,
        state: HelpState,
    ) -> bool {
        let Some(help) = self
            .helps
            .running
            .get_mut(&station_id)
            .filter(|h| h.id == id && h.conn == conn)
        else {
            // A station confirming the stop of a help the room already ended: nothing to
            // record, and nothing to warn about.
            return state == HelpState::Ended;
        };
        match state {
            HelpState::Asking => {
                self.help_step(station_id, id, "prompt-shown", "box", "")
                    .await;
            }
            HelpState::Accepted => {
                if help.accepted {
                    return true;
                }
                help.accepted = true;
                info!(station_id, id, "the student accepted remote help");
                self.help_step(station_id, id, "accepted", "student", "")
                    .await;
                let helper = help_helper(&self.helps, station_id);
                self.help_step(station_id, id, "started", &helper, "").await;
                self.apply_streams();
                self.publish();
            }
            HelpState::Refused => self.end_help_as(station_id, "refused", "student", "").await,
            // The prompt on the station waited its time without an answer.
            HelpState::TimedOut => {
                self.end_help_as(station_id, "timed-out", "station", "no answer within 30 s")
                    .await
            }
            HelpState::EndedByStudent => self.end_help_as(station_id, "ended", "student", "").await,
            // The station confirms a stop the helper asked for: already ended here.
            HelpState::Ended => {}
            HelpState::Unavailable { reason } => {
                self.end_help_as(station_id, "unavailable", "box", &reason)
                    .await
            }
        }
        true
    }

    /// Ends a station's help, if it has one: the helper's view closes, the step is recorded,
    /// and the full stream stops unless someone may still watch it.
    pub(super) async fn end_help(
        &mut self,
        station_id: u32,
        step: &'static str,
        by: &str,
        detail: &str,
    ) {
        self.end_help_as(station_id, step, by, detail).await;
    }

    async fn end_help_as(&mut self, station_id: u32, step: &'static str, by: &str, detail: &str) {
        let Some(help) = self.helps.running.remove(&station_id) else {
            return;
        };
        help.view_cut.send_replace(Some(Unwatchable::HelpOver));
        let _ = help.view_ended.send(true);
        if let Some(link) = self
            .stations
            .get_mut(&station_id)
            .and_then(|s| s.link.as_mut())
            .filter(|l| l.conn == help.conn)
        {
            link.help_viewers = 0;
        }
        info!(station_id, id = help.id, step, by, "remote help over");
        self.help_step(station_id, help.id, step, by, detail).await;
        self.apply_streams();
        self.publish();
    }

    /// Records one step: audit log and the tablet's list.
    async fn help_step(
        &mut self,
        station_id: u32,
        id: u64,
        step: &'static str,
        by: &str,
        detail: &str,
    ) {
        let station = self
            .stations
            .get(&station_id)
            .map(|s| s.row.name.clone())
            .unwrap_or_else(|| station_id.to_string());
        let at_us = lanterne_wire::now_us();
        let entry = HelpStep {
            id,
            station_id,
            station: station.clone(),
            at_us,
            step,
            by: by.to_string(),
            detail: detail.to_string(),
        };
        if self.helps.log.len() >= LOG_KEPT {
            self.helps.log.pop_front();
        }
        self.helps.log.push_back(entry);
        let (by, detail) = (
            by.to_string(),
            format!(
                "help {id}: {step}{}{detail}",
                if detail.is_empty() { "" } else { ": " }
            ),
        );
        let written = self
            .store
            .run(move |c| {
                crate::audit::write(
                    c,
                    at_us as i64,
                    &crate::audit::Entry {
                        actor: &by,
                        action: "remote-help",
                        target: &station,
                        result: step,
                        detail: &detail,
                    },
                )
            })
            .await;
        if let Err(e) = written {
            warn!("cannot record a remote-help step in the audit log: {e}");
        }
    }
}

fn help_helper(helps: &Helps, station_id: u32) -> String {
    helps
        .running
        .get(&station_id)
        .map(|h| h.helper.clone())
        .unwrap_or_default()
}
