//! Showing a screen to the class: start and stop a demo (fan-out).

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub(super) enum DemoModeChoice {
    Fullscreen,
    Windowed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DemoRegionBody {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DemoRequestBody {
    /// The station whose screen is shown, or "hdmi" for the box's HDMI input.
    source: DemoSourceBody,
    /// None: every other station of the room.
    targets: Option<Vec<u32>>,
    mode: DemoModeChoice,
    /// Part of the source screen, in its pixels; None: all of it.
    region: Option<DemoRegionBody>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum DemoSourceBody {
    Station(u32),
    Named(String),
}

/// Shows one station's screen on the others (replacing a demo already running), or the
/// teacher's PC through the box's HDMI input (`"source": "hdmi"`).
pub(super) async fn start_demo(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<DemoRequestBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    use crate::room::DemoError;
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if req.targets.as_ref().is_some_and(|t| t.len() > 1000) {
        return Err(ApiError::BadRequest(
            "'targets' lists too many stations".into(),
        ));
    }
    let region = req.region.map(|r| lanterne_wire::Region {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    });
    if let Some(r) = &region {
        r.validate()
            .map_err(|e| ApiError::BadRequest(format!("'region': {e}")))?;
    }
    let (source, source_label) = match req.source {
        DemoSourceBody::Station(id) => (
            crate::fanout::DemoSource::Station { station_id: id },
            id.to_string(),
        ),
        DemoSourceBody::Named(n) if n == "hdmi" => (crate::fanout::DemoSource::Hdmi, n),
        DemoSourceBody::Named(_) => {
            return Err(ApiError::BadRequest(
                "'source': a station id, or \"hdmi\" for the box's HDMI input".into(),
            ))
        }
    };
    if let crate::fanout::DemoSource::Station { .. } = source {
        // Showing a student's screen to the class is watching it: its own action.
        if let Err(refusal) = authorize(&state, &acc, Action::DemoOfStudent, &source_label).await {
            return Ok(refusal);
        }
    }
    let source_id = match source {
        crate::fanout::DemoSource::Station { station_id } => Some(station_id),
        crate::fanout::DemoSource::Hdmi => None,
    };
    let request = crate::room::DemoRequest {
        source,
        targets: req.targets,
        mode: match req.mode {
            DemoModeChoice::Fullscreen => lanterne_wire::DemoMode::FullScreen,
            DemoModeChoice::Windowed => lanterne_wire::DemoMode::Windowed,
        },
        region,
    };
    match state.room.start_demo(request, &acc.username).await {
        Ok(view) => Ok(Json(view).into_response()),
        Err(e) => Err(match e {
            DemoError::UnknownStation(id) if Some(id) == source_id => {
                ApiError::BadRequest(format!("'source': {e}"))
            }
            DemoError::UnknownStation(_) | DemoError::SourceIsTarget(_) | DemoError::NoTarget => {
                ApiError::BadRequest(format!("'targets': {e}"))
            }
            DemoError::Invalid(m) => ApiError::BadRequest(m),
            DemoError::SourceOffline(_) | DemoError::NotRunning | DemoError::NoHdmi => {
                ApiError::Conflict(e.to_string())
            }
            DemoError::HdmiFailed(_) => ApiError::Conflict(e.to_string()),
            DemoError::OutsideMonitoring { .. } => {
                state
                    .audit
                    .account(
                        &acc.username,
                        "demo-start",
                        &source_label,
                        "refused",
                        &e.to_string(),
                    )
                    .await;
                ApiError::Forbidden(e.to_string())
            }
            DemoError::Internal(m) => ApiError::Internal(m),
        }),
    }
}

/// Stops the running demo on every station.
pub(super) async fn stop_demo(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<crate::room::DemoEnd>, ApiError> {
    use crate::room::DemoError;
    state
        .room
        .stop_demo(&acc.username)
        .await
        .map(Json)
        .map_err(|e| match e {
            DemoError::NotRunning => ApiError::Conflict(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        })
}
