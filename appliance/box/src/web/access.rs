//! Access and privacy routes: the second factor at login (TOTP or a recovery code), account
//! self-service ("my account": two-factor status, recovery codes), the admin pages, the audit
//! filters, and screenshots (P4).
//!
//! Kept apart from the room and video routes of the parent module so each can change
//! without the other.

use super::*;
use lanterne_privacy::totp::{self, RecoveryError, StoredRecoveryCode};

/// Whether the configuration requires two-factor login of this role.
pub(super) fn totp_required(state: &AppState, role: store::Role) -> bool {
    match role {
        store::Role::Admin => state.account_rules.require_totp_for_admins,
        store::Role::Teacher => state.account_rules.require_totp_for_teachers,
        store::Role::Technician => false,
    }
}

/// Why a second factor was refused: (reason code for the login page, message for people).
type Refusal = (&'static str, &'static str);

const NOT_A_RECOVERY_CODE: &str =
    "this is not a recovery code (16 letters and digits, e.g. ABCD-EFGH-JKMN-PQRS)";

/// Checks the second factor of an account that has two-factor login: a one-time recovery
/// code when one is given, else the authenticator code. Answers how the user proved it (for
/// the audit line) or why not.
pub(super) async fn second_factor(
    state: &AppState,
    account: &Account,
    secret_b32: &str,
    last_step: Option<u64>,
    req: &LoginRequest,
) -> Result<Result<&'static str, Refusal>, ApiError> {
    let now_us = lanterne_wire::now_us();
    if let Some(typed) = req
        .recovery_code
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        let id = account.id;
        let typed = typed.to_string();
        // The crate compares in constant time and says why a code is refused; the store
        // then spends it with a conditional update, so two logins racing with one code
        // cannot both get in.
        let outcome = state
            .store
            .run(move |c| {
                let mut stored: Vec<StoredRecoveryCode> = store::recovery_codes(c, id)?
                    .into_iter()
                    .map(|(sha256, used)| StoredRecoveryCode { sha256, used })
                    .collect();
                let spent = match totp::redeem_recovery_code(&mut stored, &typed) {
                    Ok(i) => store::use_recovery_code(c, id, &stored[i].sha256, now_us as i64)?,
                    Err(e) => return Ok(Err(e)),
                };
                if !spent {
                    return Ok(Err(RecoveryError::AlreadyUsed));
                }
                Ok(Ok(store::recovery_codes_left(c, id)?))
            })
            .await?;
        let left = match outcome {
            Ok(left) => left,
            Err(RecoveryError::Malformed) => {
                return Ok(Err(("bad_recovery_code", NOT_A_RECOVERY_CODE)))
            }
            Err(RecoveryError::Unknown | RecoveryError::AlreadyUsed) => {
                return Ok(Err((
                    "bad_recovery_code",
                    "unknown or already used recovery code",
                )))
            }
        };
        audit(
            state,
            &account.username,
            "use-recovery-code",
            &account.username,
            "ok",
            &format!("{left} left"),
        )
        .await;
        return Ok(Ok("recovery code"));
    }
    let Some(code) = req.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(Err((
            "totp_required",
            "enter the code from your authenticator app",
        )));
    };
    let secret = lanterne_privacy::totp::TotpSecret::from_base32(secret_b32)
        .map_err(|e| ApiError::Internal(format!("stored TOTP secret unreadable: {e}")))?;
    let verifier = lanterne_privacy::totp::TotpVerifier::default();
    match verifier.verify(&secret, code, now_us / 1_000_000, last_step) {
        Ok(step) => {
            let id = account.id;
            // Two logins racing with one code both pass `verify`; only the one that moves
            // the last step forward gets in.
            let fresh = state
                .store
                .run(move |c| store::advance_totp_step(c, id, step))
                .await?;
            if !fresh {
                return Ok(Err((
                    "bad_code",
                    "wrong or already used authenticator code",
                )));
            }
            Ok(Ok("totp"))
        }
        Err(_) => Ok(Err((
            "bad_code",
            "wrong or already used authenticator code",
        ))),
    }
}

#[derive(Serialize)]
pub(super) struct RecoveryCodes {
    /// Shown once: the box keeps only their hashes.
    recovery_codes: Vec<String>,
}

/// Gives the account a fresh set of recovery codes; the previous ones stop working.
pub(super) async fn issue_recovery_codes(
    state: &AppState,
    acc: &Account,
) -> Result<RecoveryCodes, ApiError> {
    let codes = totp::generate_recovery_codes();
    let id = acc.id;
    let hashes: Vec<String> = codes.stored.into_iter().map(|s| s.sha256).collect();
    let now = lanterne_wire::now_us() as i64;
    state
        .store
        .run(move |c| store::replace_recovery_codes(c, id, &hashes, now))
        .await?;
    audit(
        state,
        &acc.username,
        "issue-recovery-codes",
        &acc.username,
        "ok",
        &format!("{} codes", codes.shown.len()),
    )
    .await;
    Ok(RecoveryCodes {
        recovery_codes: codes.shown,
    })
}

#[derive(Serialize)]
pub(super) struct AccountStatus {
    username: String,
    role: store::Role,
    totp_enabled: bool,
    /// The configuration requires two-factor login of this account's role.
    totp_required: bool,
    recovery_codes_left: i64,
}

/// "My account": what the signed-in user may see of their own login settings.
pub(super) async fn account_status(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<AccountStatus>, ApiError> {
    let id = acc.id;
    let (secret, left) = state
        .store
        .run(move |c| {
            let (secret, _, _) = store::totp_state(c, id)?;
            Ok((secret, store::recovery_codes_left(c, id)?))
        })
        .await?;
    Ok(Json(AccountStatus {
        totp_required: totp_required(&state, acc.role),
        username: acc.username,
        role: acc.role,
        totp_enabled: secret.is_some(),
        recovery_codes_left: left,
    }))
}

/// New recovery codes for the signed-in user (after printing the old ones was forgotten, or
/// after using several). Only with two-factor login on: without it they would open nothing.
pub(super) async fn new_recovery_codes(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let id = acc.id;
    let (secret, _, _) = state.store.run(move |c| store::totp_state(c, id)).await?;
    if secret.is_none() {
        return Err(ApiError::Conflict(
            "set up two-factor login first; recovery codes replace its codes".into(),
        ));
    }
    Ok(Json(issue_recovery_codes(&state, &acc).await?))
}

/// An admin turns an account's two-factor login off (lost phone and recovery codes); the
/// account's sessions end, and a role that requires it sets it up again at the next login.
pub(super) async fn reset_two_factor(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin_only(&acc, "managing accounts")?;
    let n = name.clone();
    if !state
        .store
        .run(move |c| store::reset_two_factor(c, &n))
        .await?
    {
        return Err(ApiError::NotFound(format!("no account '{name}'")));
    }
    audit(&state, &acc.username, "reset-two-factor", &name, "ok", "").await;
    Ok(StatusCode::NO_CONTENT)
}

/// An admin deletes an account: its row, sessions and recovery codes go; its audit lines
/// and the messages, command runs and screenshots it is named in keep `account#<id>`
/// instead (`store::delete_account`). An admin cannot delete their own account, so an
/// admin always remains.
pub(super) async fn delete_account(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin_only(&acc, "managing accounts")?;
    if name == acc.username {
        return Err(ApiError::BadRequest(
            "you cannot delete your own account".into(),
        ));
    }
    let n = name.clone();
    let Some(deleted) = state
        .store
        .run(move |c| store::delete_account(c, &n))
        .await?
    else {
        return Err(ApiError::NotFound(format!("no account '{name}'")));
    };
    info!(pseudonym = %deleted.pseudonym, "account deleted");
    audit(
        &state,
        &acc.username,
        "delete-account",
        &deleted.pseudonym,
        "ok",
        "",
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The admin pages, for admins only; anyone else gets a page that says so (403), and the
/// refusal is recorded.
pub(super) async fn admin_page(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Response {
    if acc.role == store::Role::Admin {
        return asset("admin.html");
    }
    audit(
        &state,
        &acc.username,
        "open-admin-pages",
        "-",
        "refused",
        acc.role.as_str(),
    )
    .await;
    let mut res = asset("forbidden.html");
    *res.status_mut() = StatusCode::FORBIDDEN;
    res
}

/// "My account", for every role.
pub(super) async fn account_page() -> Response {
    asset("account.html")
}

/// Longest text filter accepted (user names and station names are shorter).
const MAX_FILTER_CHARS: usize = 64;

/// Validates the audit filters: empty fields (as an HTML form sends them) mean "any".
pub(super) fn audit_filter(q: AuditQuery) -> Result<(store::AuditFilter, u32), ApiError> {
    let text = |name: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() > MAX_FILTER_CHARS => Err(ApiError::BadRequest(format!(
                "'{name}' is longer than {MAX_FILTER_CHARS} characters"
            ))),
            other => Ok(other),
        }
    };
    let filter = store::AuditFilter {
        actor: text("actor", q.actor)?,
        action: text("action", q.action)?,
        target: text("target", q.target)?,
        since_us: q.since_us,
        until_us: q.until_us,
    };
    for (name, v) in [("since_us", q.since_us), ("until_us", q.until_us)] {
        if v.is_some_and(|v| v < 0) {
            return Err(ApiError::BadRequest(format!(
                "'{name}' must be microseconds since 1970 (not negative)"
            )));
        }
    }
    if let (Some(a), Some(b)) = (q.since_us, q.until_us) {
        if b <= a {
            return Err(ApiError::BadRequest(
                "'until_us' must be after 'since_us'".into(),
            ));
        }
    }
    let limit = q.limit.unwrap_or(1000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::BadRequest(
            "'limit' must be between 1 and 100000".into(),
        ));
    }
    Ok((filter, limit))
}

// ---- screenshots (P4) ----

/// 403 with a flag the admin page reads, when the configuration keeps screenshots off.
fn screenshots_disabled() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({
            "error": "screenshots are turned off on this box (privacy.screenshots in the configuration)",
            "screenshots_disabled": true,
        })),
    )
        .into_response()
}

/// Takes a screenshot of one station, kept on the box (P4). Refused when screenshots are
/// off, outside the monitoring hours (P3) and to technicians.
pub(super) async fn take_screenshot(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
) -> Result<Response, ApiError> {
    refuse_technician(&acc, "taking screenshots")?;
    let target = id.to_string();
    if !state.screenshots.enabled {
        audit(
            &state,
            &acc.username,
            "screenshot",
            &target,
            "refused",
            "screenshots are off",
        )
        .await;
        return Ok(screenshots_disabled());
    }
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
            audit(
                &state,
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
            audit(
                &state,
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

/// Who may see which screenshots: admins all, a teacher the ones they took.
fn may_see(acc: &Account, row: &store::ScreenshotRow) -> bool {
    acc.role == store::Role::Admin || row.taken_by == acc.username
}

/// The kept screenshots, newest first (for a teacher: their own).
pub(super) async fn list_screenshots(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    refuse_technician(&acc, "screenshots")?;
    if !state.screenshots.enabled {
        return Ok(screenshots_disabled());
    }
    let rows = state.store.run(store::screenshots).await?;
    let rows: Vec<_> = rows.into_iter().filter(|r| may_see(&acc, r)).collect();
    Ok(Json(rows).into_response())
}

/// One screenshot as PNG (`/api/screenshots/12.png`); every viewing is audited.
pub(super) async fn screenshot_png(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    refuse_technician(&acc, "screenshots")?;
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
        .filter(|r| may_see(&acc, r))
        .ok_or_else(|| ApiError::NotFound(format!("no screenshot {id}")))?;
    let path = state.screenshots.file(id);
    let png = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("reading screenshot {}: {e}", path.display())))?;
    audit(
        &state,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn query(f: impl FnOnce(&mut AuditQuery)) -> AuditQuery {
        let mut q = AuditQuery {
            actor: None,
            action: None,
            target: None,
            since_us: None,
            until_us: None,
            limit: None,
        };
        f(&mut q);
        q
    }

    fn message(r: Result<(store::AuditFilter, u32), ApiError>) -> String {
        match r {
            Err(ApiError::BadRequest(m)) => m,
            Err(e) => panic!("not a 400: {e:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn audit_filters_name_the_bad_field() {
        assert!(
            message(audit_filter(query(|q| q.actor = Some("x".repeat(65))))).contains("'actor'")
        );
        assert!(message(audit_filter(query(|q| {
            q.since_us = Some(10);
            q.until_us = Some(10);
        })))
        .contains("'until_us'"));
        assert!(message(audit_filter(query(|q| q.since_us = Some(-1)))).contains("'since_us'"));
        assert!(message(audit_filter(query(|q| q.limit = Some(0)))).contains("'limit'"));
    }

    #[test]
    fn empty_audit_filters_mean_any() {
        let (f, limit) = audit_filter(query(|q| {
            q.actor = Some("".into());
            q.target = Some(" poste-01 ".into());
        }))
        .unwrap();
        assert_eq!(f.actor, None);
        assert_eq!(f.target.as_deref(), Some("poste-01"));
        assert_eq!(limit, 1000);
    }
}
