//! The classroom controls: the room view, lock, messages, power, open a URL, approved
//! commands, Wake-on-LAN, and what the stations answered.

use super::*;

pub(super) async fn room_view(State(state): State<AppState>) -> Json<RoomView> {
    Json(state.room.view().borrow().clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LockRequest {
    locked: bool,
    /// None: the whole room (stations enrolled later included).
    #[serde(default)]
    stations: Option<Vec<u32>>,
}

/// Locks or unlocks the whole room (the tablet's counterpart of the panel button) or some
/// stations.
pub(super) async fn lock_room(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<LockRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::LockReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state
        .room
        .set_lock(Some(req.locked), req.stations, &acc.username)
        .await
        .map(Json)
        .map_err(order_error)
}

/// Whether a clear found the hand up.
#[derive(serde::Serialize)]
pub(super) struct HandCleared {
    cleared: bool,
}

/// Clears a student's raised hand (the teacher has seen it); the station takes its hand
/// down. Not a monitoring action: it works at any hour.
pub(super) async fn clear_hand(
    State(state): State<AppState>,
    Path(id): Path<u32>,
) -> Result<Json<HandCleared>, ApiError> {
    match state.room.clear_hand(id).await {
        Ok(cleared) => Ok(Json(HandCleared { cleared })),
        Err(crate::room::SendError::UnknownStation(_)) => Err(ApiError::NotFound(format!(
            "no station with id {id} in this room"
        ))),
        Err(e) => Err(order_error(e)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MessageRequest {
    text: String,
    /// None: the whole room.
    stations: Option<Vec<u32>>,
}

/// Sends a text message to the whole room or to some stations.
pub(super) async fn send_message(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<MessageRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let text = req.text.trim();
    if text.is_empty() {
        return Err(ApiError::BadRequest("'text' must not be empty".into()));
    }
    if text.chars().count() > lanterne_wire::MAX_TEXT_CHARS {
        return Err(ApiError::BadRequest(format!(
            "'text' is longer than {} characters",
            lanterne_wire::MAX_TEXT_CHARS
        )));
    }
    if req.stations.as_ref().is_some_and(|s| s.len() > 1000) {
        return Err(ApiError::BadRequest(
            "'stations' lists too many stations".into(),
        ));
    }
    state
        .room
        .send_message(req.stations, &acc.username, text)
        .await
        .map(Json)
        .map_err(order_error)
}

/// The latest messages with, per station, whether they were delivered and read.
pub(super) async fn list_messages(
    State(state): State<AppState>,
) -> Result<Json<Vec<store::MessageRow>>, ApiError> {
    Ok(Json(
        state.store.run(|c| store::recent_messages(c, 20)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub(super) enum PowerChoice {
    Shutdown,
    Restart,
    Logout,
    #[serde(rename = "open-session")]
    OpenSession,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PowerRequest {
    action: PowerChoice,
    /// Seconds the students see a countdown first (0 to 600).
    #[serde(default)]
    countdown_s: u32,
    stations: Option<Vec<u32>>,
}

pub(super) fn order_error(e: crate::room::SendError) -> ApiError {
    use crate::room::SendError;
    match e {
        SendError::UnknownStation(_) | SendError::NoTarget => {
            ApiError::BadRequest(format!("'stations': {e}"))
        }
        SendError::Internal(m) => ApiError::Internal(m),
    }
}

/// Shuts down, restarts or logs out stations, after a countdown the students see.
pub(super) async fn power_stations(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<PowerRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if req.countdown_s > 600 {
        return Err(ApiError::BadRequest(
            "'countdown_s' must be between 0 and 600".into(),
        ));
    }
    let action = match req.action {
        PowerChoice::Shutdown => lanterne_wire::PowerAction::Shutdown,
        PowerChoice::Restart => lanterne_wire::PowerAction::Restart,
        PowerChoice::Logout => lanterne_wire::PowerAction::Logout,
        PowerChoice::OpenSession => lanterne_wire::PowerAction::OpenSession,
    };
    let report = state
        .room
        .order(
            req.stations,
            lanterne_wire::Control::Power {
                action,
                countdown_s: req.countdown_s,
            },
        )
        .await
        .map_err(order_error)?;
    let what = action.name();
    state
        .audit
        .account(
            &acc.username,
            what,
            &format!("{} station(s)", report.sent_to.len()),
            "sent",
            "",
        )
        .await;
    Ok(Json(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenUrlRequest {
    url: String,
    stations: Option<Vec<u32>>,
}

/// Opens a web page in the students' browsers.
pub(super) async fn open_url(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<OpenUrlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    lanterne_wire::validate_url(&req.url)
        .map_err(|e| ApiError::BadRequest(format!("'url' {e}")))?;
    let report = state
        .room
        .order(
            req.stations,
            lanterne_wire::Control::OpenUrl {
                url: req.url.clone(),
            },
        )
        .await
        .map_err(order_error)?;
    state
        .audit
        .account(
            &acc.username,
            "open-url",
            &format!("{} station(s)", report.sent_to.len()),
            "sent",
            &req.url,
        )
        .await;
    Ok(Json(report))
}

#[derive(Serialize)]
pub(super) struct CommandView {
    name: String,
    program: String,
    args: Vec<String>,
    allowed_args: Vec<String>,
}

/// The commands a teacher may run.
pub(super) async fn list_commands(
    State(state): State<AppState>,
) -> Result<Json<Vec<CommandView>>, ApiError> {
    Ok(Json(
        state
            .commands
            .iter()
            .map(|c| CommandView {
                name: c.name.clone(),
                program: c.program.clone(),
                args: c.args.clone(),
                allowed_args: c.allowed_args.clone(),
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunRequest {
    name: String,
    /// Extra arguments, each from the command's `allowed_args`.
    #[serde(default)]
    args: Vec<String>,
    stations: Option<Vec<u32>>,
}

/// Runs an approved command on stations. Anything not in the box's approved list is refused.
pub(super) async fn run_command(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<RunRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let Some(approved) = state.commands.iter().find(|c| c.name == req.name) else {
        state
            .audit
            .account(&acc.username, "run-command", "-", "refused", "not approved")
            .await;
        return Err(ApiError::BadRequest(format!(
            "'name': '{}' is not an approved command; the admin lists approved commands in the box configuration",
            req.name.chars().take(64).collect::<String>()
        )));
    };
    if let Some(bad) = req.args.iter().find(|a| !approved.allowed_args.contains(a)) {
        state
            .audit
            .account(
                &acc.username,
                "run-command",
                &approved.name,
                "refused",
                "argument not allowed",
            )
            .await;
        return Err(ApiError::BadRequest(format!(
            "'args': '{}' is not an allowed argument of '{}'",
            bad.chars().take(64).collect::<String>(),
            approved.name
        )));
    }
    let mut args = approved.args.clone();
    args.extend(req.args.iter().cloned());
    state
        .room
        .run_command(
            req.stations,
            &acc.username,
            crate::room::CommandOrder {
                name: approved.name.clone(),
                program: approved.program.clone(),
                args,
                timeout_s: approved.timeout_s,
            },
        )
        .await
        .map(Json)
        .map_err(order_error)
}

/// One run with each station's exit code and output (or why it did not run).
pub(super) async fn command_run(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<store::CommandRun>, ApiError> {
    state
        .store
        .run(move |c| store::command_run(c, id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no command run {id}")))
}

/// What the stations answered to a power or open-URL order (kept for the most recent ones).
pub(super) async fn order_run(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<crate::room::OrderRun>, ApiError> {
    state
        .room
        .order_run(id)
        .await
        .map_err(order_error)?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no recent order {id}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WakeRequest {
    /// None: every offline station.
    stations: Option<Vec<u32>>,
}

#[derive(Serialize)]
pub(super) struct WakeReport {
    sent_to: Vec<String>,
    /// Stations whose MAC address is unknown (enrolled without one).
    no_mac: Vec<String>,
}

/// Powers stations on with Wake-on-LAN magic packets sent by the box.
pub(super) async fn wake_stations(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<WakeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<WakeReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let rows = state.store.run(store::stations).await?;
    let online: std::collections::HashSet<u32> = state
        .room
        .view()
        .borrow()
        .mosaic
        .tiles
        .iter()
        .filter(|t| t.online)
        .map(|t| t.station_id)
        .collect();
    let targets: Vec<&store::StationRow> = match &req.stations {
        None => rows.iter().filter(|r| !online.contains(&r.id)).collect(),
        Some(ids) => {
            if ids.is_empty() {
                return Err(ApiError::BadRequest("'stations' is empty".into()));
            }
            let mut out = Vec::new();
            for id in ids {
                let row = rows.iter().find(|r| r.id == *id).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "'stations': no station with id {id} in this room"
                    ))
                })?;
                out.push(row);
            }
            out
        }
    };
    let mut report = WakeReport {
        sent_to: Vec::new(),
        no_mac: Vec::new(),
    };
    for row in targets {
        match row.mac.as_deref().map(crate::wol::parse_mac) {
            Some(Ok(mac)) => {
                crate::wol::wake(mac, state.wol_target)
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                report.sent_to.push(row.name.clone());
            }
            _ => report.no_mac.push(row.name.clone()),
        }
    }
    state
        .audit
        .account(
            &acc.username,
            "wake",
            &format!("{} station(s)", report.sent_to.len()),
            "ok",
            "",
        )
        .await;
    Ok(Json(report))
}
