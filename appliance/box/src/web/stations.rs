//! Station administration routes (admins only): the list of enrolled stations, revoked
//! ones included, revocation and deletion. What they do is in `crate::stations`; these
//! handlers answer and write the audit line (the route layer has checked the role).
//!
//! ```text
//! GET    /api/stations              every station: id, name, host name, MAC, revoked
//! POST   /api/stations/{id}/revoke  refuse its certificate, cut its link     204
//! DELETE /api/stations/{id}         revoke, then forget it (audit: station#id)  204
//! ```

use super::*;
use crate::stations::{self, StationError};

fn station_error(e: StationError) -> ApiError {
    match e {
        StationError::NotFound(_) | StationError::NoSuchName(_) => {
            ApiError::NotFound(e.to_string())
        }
        StationError::Store(e) => ApiError::from(e),
        StationError::NoDatabase(_) => ApiError::Internal(e.to_string()),
    }
}

/// Every enrolled station, revoked ones included, for the admin page.
pub(super) async fn list_stations(
    State(state): State<AppState>,
) -> Result<Json<Vec<store::StationAdminRow>>, ApiError> {
    Ok(Json(state.store.run(store::all_stations).await?))
}

/// Revokes a station: its certificate is refused from now on and its live link is cut.
/// Revoking a revoked station again is not an error (it says so in the audit line).
pub(super) async fn revoke_station(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
) -> Result<StatusCode, ApiError> {
    let before = stations::revoke(&state.store, &state.room, id)
        .await
        .map_err(station_error)?;
    let detail = if before.revoked {
        "already revoked"
    } else {
        ""
    };
    state
        .audit
        .account(&acc.username, "revoke-station", &before.name, "ok", detail)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a station and everything the box holds about it; its audit lines keep
/// `station#<id>` instead of its name, this one included.
pub(super) async fn delete_station(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
) -> Result<StatusCode, ApiError> {
    let deleted = stations::delete(&state.store, &state.room, &state.screenshots, id)
        .await
        .map_err(station_error)?;
    state
        .audit
        .account(
            &acc.username,
            "delete-station",
            &deleted.pseudonym,
            "ok",
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
