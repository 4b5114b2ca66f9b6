//! Screenshots (P4): taken on a teacher's request when the policy allows, kept on the box for
//! the retention period, shown to whoever took them (admins: all).

use super::*;

/// 403 with a flag the admin page reads, when the configuration keeps screenshots off.
pub(super) fn screenshots_disabled() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "error": "screenshots are turned off on this box (privacy.screenshots in the configuration)",
            "screenshots_disabled": true,
        })),
    )
        .into_response()
}

/// Takes a screenshot of one station, kept on the box (P4). The route layer has already
/// refused it when screenshots are off, outside the monitoring hours (P3) and to technicians.
pub(super) async fn take_screenshot(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
) -> Result<Response, ApiError> {
    let target = id.to_string();
    use crate::screenshots::ScreenshotError as E;
    match crate::screenshots::take(
        &state.screenshots,
        &state.room,
        &state.store,
        id,
        &acc.username,
    )
    .await
    {
        Ok(row) => {
            state
                .audit
                .account(
                    &acc.username,
                    "screenshot",
                    &row.station_name,
                    "ok",
                    &format!("screenshot {}", row.id),
                )
                .await;
            Ok((StatusCode::CREATED, Json(row)).into_response())
        }
        Err(e) => {
            state
                .audit
                .account(
                    &acc.username,
                    "screenshot",
                    &target,
                    "refused",
                    &e.to_string(),
                )
                .await;
            Err(match e {
                E::Focus(FocusError::Unknown) => ApiError::NotFound(format!("no station {id}")),
                E::Focus(FocusError::Offline) | E::StationLeft | E::NoPicture => {
                    ApiError::Conflict(format!("station {id}: {e}"))
                }
                E::Focus(f @ FocusError::OutsideMonitoring { .. }) => {
                    ApiError::Forbidden(f.to_string())
                }
                other => ApiError::Internal(other.to_string()),
            })
        }
    }
}

/// Who may see which screenshots: the person who took it, and whoever the policy lets review
/// the records (admins: the audit export).
pub(super) fn may_see(state: &AppState, acc: &Account, row: &store::ScreenshotRow) -> bool {
    row.taken_by == acc.username
        || state
            .policy
            .decide(acc.role, Action::AuditExport)
            .is_allowed()
}

/// The kept screenshots, newest first (for a teacher: their own).
pub(super) async fn list_screenshots(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    if !state.screenshots.enabled {
        return Ok(screenshots_disabled());
    }
    let rows = state.store.run(store::screenshots).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| may_see(&state, &acc, r))
        .collect();
    Ok(Json(rows).into_response())
}

/// One screenshot as PNG (`/api/screenshots/12.png`); every viewing is audited.
pub(super) async fn screenshot_png(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    if !state.screenshots.enabled {
        return Ok(screenshots_disabled());
    }
    let id: i64 = file
        .strip_suffix(".png")
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no screenshot '{file}'")))?;
    let row = state
        .store
        .run(move |c| store::screenshot(c, id))
        .await?
        .filter(|r| may_see(&state, &acc, r))
        .ok_or_else(|| ApiError::NotFound(format!("no screenshot {id}")))?;
    let path = state.screenshots.file(id);
    let png = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("reading screenshot {}: {e}", path.display())))?;
    state
        .audit
        .account(
            &acc.username,
            "view-screenshot",
            &row.station_name,
            "ok",
            &format!("screenshot {id}"),
        )
        .await;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            // Personal data: never kept by the tablet's browser cache.
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    )
        .into_response())
}
