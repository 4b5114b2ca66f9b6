//! Remote help over HTTPS: ask the student, follow the answer, send input, stop, and the
//! helper's view of the screen. The route layer has already asked the policy for
//! `remote_help` (the role, and `remote_help.roles`; at any hour, since nothing happens
//! before the student accepts). Everything else — one help per station, only the helper who
//! asked, only once the student accepted — is the room's rule (`room/help.rs`), and the
//! station checks the consent again before playing anything.

use super::*;
use crate::room::HelpError;
use lanterne_wire::InputEvent;

fn help_error(e: HelpError) -> ApiError {
    match e {
        HelpError::Unknown => ApiError::NotFound(e.to_string()),
        // The state of the room, not the policy, says no: 409 (403 is the policy's answer).
        HelpError::Offline
        | HelpError::Busy { .. }
        | HelpError::NotAccepted
        | HelpError::NotYours
        | HelpError::NoIndicator { .. } => ApiError::Conflict(e.to_string()),
        HelpError::TooFast => ApiError::TooManyRequests(e.to_string()),
        HelpError::BadInput(_) => ApiError::BadRequest(e.to_string()),
    }
}

/// How the student's prompt names the helper: their account and role, in French.
fn prompt_label(acc: &Account) -> String {
    use store::Role;
    let role = match acc.role {
        Role::Admin => "administrateur",
        Role::Teacher => "enseignant",
        Role::Technician => "technicien",
    };
    format!("{} ({role})", acc.username)
}

/// The station's help now and its recent steps.
pub(super) async fn help_status(
    State(state): State<AppState>,
    Path(id): Path<u32>,
) -> Result<Json<crate::room::HelpView>, ApiError> {
    state.room.help_view(id).await.map(Json).map_err(help_error)
}

/// Asks the student at station `id` for remote help.
pub(super) async fn ask_help(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
) -> Result<Json<crate::room::HelpNow>, ApiError> {
    state
        .room
        .ask_help(id, &acc.username, &prompt_label(&acc))
        .await
        .map(Json)
        .map_err(help_error)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InputRequest {
    events: Vec<InputEvent>,
}

/// The helper's input, passed on while the student's consent holds.
pub(super) async fn help_input(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
    body: Result<Json<InputRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    state
        .room
        .help_input(id, &acc.username, req.events)
        .await
        .map_err(help_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The helper ends the help (or withdraws the question).
pub(super) async fn stop_help(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
) -> Result<StatusCode, ApiError> {
    state
        .room
        .stop_help(id, &acc.username)
        .await
        .map_err(help_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The helper's view of the station: its full stream, for as long as the student's consent
/// holds (at any hour). Same messages as the focus view; it ends with
/// `{"type":"ended","reason":"help-ended"}`.
pub(super) async fn help_video_ws(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Extension(live): Extension<store::LiveSession>,
    Path(id): Path<u32>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let sub = state
        .room
        .open_help_view(id, &acc.username)
        .await
        .map_err(help_error)?;
    Ok(ws
        .max_message_size(video::WS_MAX_IN)
        .on_upgrade(move |socket| video::focus_session(socket, state, acc, live, sub)))
}
