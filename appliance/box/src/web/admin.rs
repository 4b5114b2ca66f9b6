//! The admin side: documents (room notice, GDPR record), the developer panel, the room link,
//! accounts, the audit log export.

use super::*;

pub(super) fn documents(
    state: &AppState,
) -> Result<Arc<lanterne_privacy::documents::DocumentConfig>, ApiError> {
    state.documents.clone().map_err(ApiError::Conflict)
}

/// The printable room notice (P2), from the live configuration.
pub(super) async fn poster_html(State(state): State<AppState>) -> Result<Response, ApiError> {
    let html = lanterne_privacy::documents::poster_html(&*documents(&state)?, true);
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The notice is self-contained with its print styles inline; nothing else runs.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        html,
    )
        .into_response())
}

/// The same notice as an A4 PDF.
pub(super) async fn poster_pdf(State(state): State<AppState>) -> Result<Response, ApiError> {
    let docs = documents(&state)?;
    let pdf = tokio::task::spawn_blocking(move || {
        let fonts = lanterne_privacy::documents::PosterFonts::dejavu()?;
        lanterne_privacy::documents::poster_pdf(&docs, true, &fonts)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"affiche-lanterne.pdf\"",
            ),
        ],
        pdf,
    )
        .into_response())
}

/// The GDPR processing record (P4), Markdown.
pub(super) async fn gdpr_markdown(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    let md =
        lanterne_privacy::documents::gdpr_record(&*documents(&state)?, lanterne_privacy::Lang::Fr)
            .to_markdown();
    state
        .audit
        .account(
            &acc.username,
            "export-gdpr-record",
            "room",
            "ok",
            "markdown",
        )
        .await;
    Ok(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response())
}

/// The GDPR processing record (P4), JSON.
pub(super) async fn gdpr_json(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    let json =
        lanterne_privacy::documents::gdpr_record(&*documents(&state)?, lanterne_privacy::Lang::Fr)
            .to_json()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .audit
        .account(&acc.username, "export-gdpr-record", "room", "ok", "json")
        .await;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

#[derive(Serialize)]
pub(super) struct PanelView {
    lock_led: bool,
    status_led: &'static str,
}

pub(super) fn simulated_panel(
    state: &AppState,
) -> Result<Arc<lanterne_panel::SimulatedPanel>, ApiError> {
    state
        .simulated_panel
        .clone()
        .ok_or_else(|| ApiError::NotFound("this box has a real front panel".into()))
}

/// What the simulated panel's LEDs show (for development and tests).
pub(super) async fn dev_panel(State(state): State<AppState>) -> Result<Json<PanelView>, ApiError> {
    let leds = simulated_panel(&state)?.leds();
    Ok(Json(PanelView {
        lock_led: leds.lock,
        status_led: match leds.status {
            lanterne_panel::StatusLed::Off => "off",
            lanterne_panel::StatusLed::Watching => "watching",
            lanterne_panel::StatusLed::RemoteControl => "remote-control",
            lanterne_panel::StatusLed::Fault => "fault",
        },
    }))
}

/// Presses the simulated lock button (for development and tests).
pub(super) async fn dev_panel_press(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    simulated_panel(&state)?.press();
    Ok(StatusCode::ACCEPTED)
}

// ---- room link (P7) ----

#[derive(Serialize)]
pub(super) struct RoomLink {
    url: String,
    qr_svg: String,
}

/// Makes a new room link for the tablets (a QR code to scan); the previous link stops
/// working at once. Share it in a restricted circle; regenerate it after an incident.
pub(super) async fn regenerate_room_link(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    headers: HeaderMap,
) -> Result<Json<RoomLink>, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .ok_or_else(|| ApiError::BadRequest("missing or odd Host header".into()))?
        .to_string();
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        rand::random::<[u8; 16]>(),
    );
    let hash = store::sha256_hex(&token);
    state
        .store
        .run(move |c| store::set_room_state(c, "room_link", &hash))
        .await?;
    state
        .audit
        .account(&acc.username, "regenerate-room-link", "room", "ok", "")
        .await;
    let url = format!("https://{host}/r/{token}");
    let qr_svg =
        lanterne_privacy::totp::qr_svg(&url).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(RoomLink { url, qr_svg }))
}

/// A tablet scanned the room link: the current one leads to the login page, an old one is
/// refused with the reason.
pub(super) async fn follow_room_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    if token.len() > 64 {
        return Err(ApiError::NotFound("unknown room link".into()));
    }
    let current = state
        .store
        .run(|c| store::room_state(c, "room_link"))
        .await?;
    match current {
        Some(hash) if hash == store::sha256_hex(&token) => {
            Ok(Redirect::to("/login").into_response())
        }
        _ => Err(ApiError::NotFound(
            "this room link is no longer valid; ask the school's admin for the current one".into(),
        )),
    }
}

// ---- accounts (admin) ----

#[derive(Serialize)]
pub(super) struct AccountView {
    username: String,
    role: store::Role,
    disabled: bool,
    totp_enabled: bool,
}

pub(super) async fn list_accounts(
    State(state): State<AppState>,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let rows = state
        .store
        .run(|c| {
            store::accounts(c)?
                .into_iter()
                .map(|a| Ok((store::totp_state(c, a.id)?.0.is_some(), a)))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(totp_enabled, a)| AccountView {
                username: a.username,
                role: a.role,
                disabled: a.disabled,
                totp_enabled,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub(super) enum RoleChoice {
    Admin,
    Teacher,
    Technician,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    username: String,
    role: RoleChoice,
    password: String,
}

pub(super) fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Creates a personal account (P6: no shared accounts, the school's password rule).
pub(super) async fn create_account(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<NewAccount>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if !valid_username(&req.username) {
        return Err(ApiError::BadRequest(
            "'username' must be 1 to 64 letters, digits, '.', '-' or '_'".into(),
        ));
    }
    accounts::check_password_rule(&req.password)
        .map_err(|rule| ApiError::BadRequest(format!("'password': {rule}")))?;
    let role = match req.role {
        RoleChoice::Admin => store::Role::Admin,
        RoleChoice::Teacher => store::Role::Teacher,
        RoleChoice::Technician => store::Role::Technician,
    };
    let pw = req.password.clone();
    let hash = state
        .login_gate
        .run_argon2(move || accounts::hash_password(&pw))
        .await
        .ok_or_else(|| {
            ApiError::TooManyRequests("the box is busy checking sign-ins; try again".into())
        })?;
    let name = req.username.clone();
    let now = lanterne_wire::now_us() as i64;
    let created = state
        .store
        .run(move |c| match store::account_by_name(c, &name)? {
            Some(_) => Ok(false),
            None => store::insert_account(c, &name, role, &hash, now).map(|_| true),
        })
        .await?;
    if !created {
        return Err(ApiError::Conflict(format!(
            "account '{}' already exists",
            req.username
        )));
    }
    state
        .audit
        .account(
            &acc.username,
            "create-account",
            &req.username,
            "ok",
            role.as_str(),
        )
        .await;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DisableRequest {
    disabled: bool,
}

pub(super) async fn disable_account(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(name): Path<String>,
    body: Result<Json<DisableRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if name == acc.username && req.disabled {
        return Err(ApiError::BadRequest(
            "you cannot disable your own account".into(),
        ));
    }
    let n = name.clone();
    let found = state
        .store
        .run(move |c| store::set_account_disabled(c, &n, req.disabled))
        .await?;
    if !found {
        return Err(ApiError::NotFound(format!("no account '{name}'")));
    }
    if req.disabled {
        sessions_ended_for(&state, &name).await?;
    }
    let what = if req.disabled {
        "disable-account"
    } else {
        "enable-account"
    };
    state
        .audit
        .account(&acc.username, what, &name, "ok", "")
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordRequest {
    password: String,
}

/// Sets a new password (admin reset); the account's sessions end.
pub(super) async fn reset_password(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(name): Path<String>,
    body: Result<Json<PasswordRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    accounts::check_password_rule(&req.password)
        .map_err(|rule| ApiError::BadRequest(format!("'password': {rule}")))?;
    let pw = req.password.clone();
    let hash = state
        .login_gate
        .run_argon2(move || accounts::hash_password(&pw))
        .await
        .ok_or_else(|| {
            ApiError::TooManyRequests("the box is busy checking sign-ins; try again".into())
        })?;
    let n = name.clone();
    if !state
        .store
        .run(move |c| store::set_password(c, &n, &hash))
        .await?
    {
        return Err(ApiError::NotFound(format!("no account '{name}'")));
    }
    sessions_ended_for(&state, &name).await?;
    state
        .audit
        .account(&acc.username, "reset-password", &name, "ok", "")
        .await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- audit (admin) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    /// The station (or other target) acted on.
    target: Option<String>,
    /// Unix-epoch microseconds, inclusive.
    since_us: Option<i64>,
    /// Unix-epoch microseconds, exclusive.
    until_us: Option<i64>,
    limit: Option<u32>,
}

pub(super) async fn audit_rows(
    state: &AppState,
    acc: &Account,
    q: AuditQuery,
    format: &str,
) -> Result<Vec<store::AuditRow>, ApiError> {
    let (filter, limit) = audit_filter(q)?;
    let rows = state
        .store
        .run(move |c| store::audit_rows(c, &filter, limit))
        .await?;
    state
        .audit
        .account(&acc.username, "export-audit", "audit", "ok", format)
        .await;
    Ok(rows)
}

/// The audit log, newest first, filtered by `actor`, `action`, `since_us`.
pub(super) async fn audit_json(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    q: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<store::AuditRow>>, ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(audit_rows(&state, &acc, q, "json").await?))
}

/// The same as CSV, for the school's records.
pub(super) async fn audit_csv(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    q: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let rows = audit_rows(&state, &acc, q, "csv").await?;
    let field = |s: &str| {
        // Quote every field; a leading = + - @ is neutralised so a spreadsheet never runs it.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.to_string()
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    };
    let mut csv = String::from("id,at_us,actor,action,target,result,detail\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.id,
            r.at_us,
            field(&r.actor),
            field(&r.action),
            field(&r.target),
            field(&r.result),
            field(&r.detail)
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"lanterne-audit.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

/// An admin turns an account's two-factor login off (lost phone and recovery codes); the
/// account's sessions end, and a role that requires it sets it up again at the next login.
pub(super) async fn reset_two_factor(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let n = name.clone();
    if !state
        .store
        .run(move |c| store::reset_two_factor(c, &n))
        .await?
    {
        return Err(ApiError::NotFound(format!("no account '{name}'")));
    }
    sessions_ended_for(&state, &name).await?;
    state
        .audit
        .account(&acc.username, "reset-two-factor", &name, "ok", "")
        .await;
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
    // Its sessions went with it: close its live views too.
    state.sessions.publish(SessionEnd::Account(deleted.id));
    state
        .audit
        .account(
            &acc.username,
            "delete-account",
            &deleted.pseudonym,
            "ok",
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The admin pages (the route layer lets only admins in; others get the 403 page).
pub(super) async fn admin_page() -> Response {
    asset("admin.html")
}

/// Longest text filter accepted (user names and station names are shorter).
pub(super) const MAX_FILTER_CHARS: usize = 64;

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
