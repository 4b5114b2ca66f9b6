//! Who is asking: the session cookie, the Origin check, the session middleware, sign-in
//! (password, then the second factor) and sign-out.

use super::*;
use lanterne_privacy::totp::{self, RecoveryError, StoredRecoveryCode};

pub(super) fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

pub(super) async fn account_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Account>, ApiError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let now = lanterne_wire::now_us() as i64;
    Ok(state
        .store
        .run(move |c| store::session_account(c, &token, now))
        .await?)
}

/// Cross-site request forgery and cross-site WebSocket hijacking: a state-changing request
/// or a WebSocket must come from a page of this box. Browsers always send `Origin` on those.
pub(super) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Forbidden("missing Origin header".into()))?;
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("missing Host header".into()))?;
    if origin != format!("https://{host}") {
        return Err(ApiError::Forbidden(format!(
            "cross-origin request from {origin} refused"
        )));
    }
    Ok(())
}

pub(super) async fn require_page_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match account_of(&state, req.headers()).await {
        Ok(Some(acc)) => {
            req.extensions_mut().insert(acc);
            next.run(req).await
        }
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => e.into_response(),
    }
}

/// Routes a user who must still set up two-factor login may use.
pub(super) const TOTP_SETUP_ROUTES: &[&str] = &[
    "/api/me",
    "/api/account",
    "/api/logout",
    "/api/account/totp/setup",
    "/api/account/totp/confirm",
];

pub(super) async fn require_api_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match account_of(&state, req.headers()).await {
        Ok(Some(acc)) => {
            let required = match acc.role {
                store::Role::Admin => state.account_rules.require_totp_for_admins,
                store::Role::Teacher => state.account_rules.require_totp_for_teachers,
                store::Role::Technician => false,
            };
            if required && !TOTP_SETUP_ROUTES.contains(&req.uri().path()) {
                let id = acc.id;
                match state.store.run(move |c| store::totp_state(c, id)).await {
                    Ok((None, _, _)) => {
                        return (
                            StatusCode::FORBIDDEN,
                            Json(serde_json::json!({
                                "error": "set up two-factor login first",
                                "totp_setup_required": true
                            })),
                        )
                            .into_response()
                    }
                    Ok(_) => {}
                    Err(e) => return ApiError::from(e).into_response(),
                }
            }
            let is_ws = req.headers().contains_key(header::UPGRADE);
            if (req.method() != Method::GET && req.method() != Method::HEAD) || is_ws {
                if let Err(e) = same_origin(req.headers()) {
                    return e.into_response();
                }
            }
            req.extensions_mut().insert(acc);
            next.run(req).await
        }
        Ok(None) => ApiError::Unauthorized("login required".into()).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoginRequest {
    username: String,
    password: String,
    /// The six-digit code of the authenticator app, for accounts with two-factor login.
    #[serde(default)]
    code: Option<String>,
    /// Instead of `code`: one of the account's one-time recovery codes.
    #[serde(default)]
    recovery_code: Option<String>,
}

/// A refused login: the message for people plus a `reason` code the login page translates
/// (`bad_credentials`, `totp_required`, `bad_code`, `bad_recovery_code`, `locked_out`).
pub(super) fn login_refused(status: StatusCode, reason: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({
            "error": message,
            "reason": reason,
            "totp_required": reason == "totp_required",
        })),
    )
        .into_response()
}

/// What a successful login answers: who is signed in, and whether they must set up
/// two-factor login before anything else (the login page then shows the enrolment).
#[derive(Serialize)]
pub(super) struct LoginReply {
    username: String,
    role: store::Role,
    totp_setup_required: bool,
}

#[derive(Serialize)]
pub(super) struct Me {
    username: String,
    role: store::Role,
}

pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if req.username.is_empty() || req.username.len() > 64 || req.password.len() > 256 {
        return Err(ApiError::BadRequest(
            "username or password has a bad length".into(),
        ));
    }
    let now = Instant::now();
    let locked = state
        .throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(&req.username, now);
    if let Err(left) = locked {
        state
            .audit
            .account(&req.username, "login", "-", "locked-out", "")
            .await;
        let secs = left.as_secs().max(1);
        let mut res = (
            StatusCode::TOO_MANY_REQUESTS,
            Json(serde_json::json!({
                "error": format!("too many failed attempts; try again in {} min", secs.div_ceil(60)),
                "reason": "locked_out",
                "retry_after_s": secs,
            })),
        )
            .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return Ok(res);
    }
    let name = req.username.clone();
    let account = state
        .store
        .run(move |c| store::account_by_name(c, &name))
        .await?;
    // Verify against a dummy hash when the user does not exist, so timing does not reveal
    // which user names are real.
    let ok = match &account {
        Some(a) if !a.disabled => {
            let (pw, hash) = (req.password.clone(), a.password_hash.clone());
            tokio::task::spawn_blocking(move || accounts::verify_password(&pw, &hash))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
        }
        _ => {
            let pw = req.password.clone();
            tokio::task::spawn_blocking(move || {
                accounts::verify_password(&pw, dummy_hash());
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
            false
        }
    };
    let Some(account) = account.filter(|_| ok) else {
        state
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failed(&req.username, now);
        state
            .audit
            .account(&req.username, "login", "-", "refused", "bad credentials")
            .await;
        return Ok(login_refused(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong username or password",
        ));
    };
    // Second factor, for accounts that set one up.
    let account_id = account.id;
    let (secret, _, last_step) = state
        .store
        .run(move |c| store::totp_state(c, account_id))
        .await?;
    let has_totp = secret.is_some();
    let mut factor = "";
    if let Some(secret) = secret {
        match second_factor(&state, &account, &secret, last_step, &req).await? {
            Ok(how) => factor = how,
            Err((reason, message)) => {
                // A missing code is a question, not a failure: the password was right.
                if reason != "totp_required" {
                    state
                        .throttle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .failed(&req.username, now);
                    state
                        .audit
                        .account(&req.username, "login", "-", "refused", reason)
                        .await;
                }
                return Ok(login_refused(StatusCode::UNAUTHORIZED, reason, message));
            }
        }
    }
    state
        .throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .succeeded(&req.username);
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        rand::random::<[u8; 32]>(),
    );
    let (tok, id) = (token.clone(), account.id);
    let now_us = lanterne_wire::now_us() as i64;
    state
        .store
        .run(move |c| store::insert_session(c, &tok, id, now_us, SESSION_TTL.as_micros() as i64))
        .await?;
    state
        .audit
        .account(&account.username, "login", "-", "ok", factor)
        .await;
    let totp_setup_required = !has_totp && totp_required(&state, account.role);
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(LoginReply {
            username: account.username,
            role: account.role,
            totp_setup_required,
        }),
    )
        .into_response())
}

pub(super) fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| accounts::hash_password("not-a-real-password-1A!"))
}

pub(super) async fn logout(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_token(&headers) {
        state
            .store
            .run(move |c| store::delete_session(c, &token))
            .await?;
    }
    state
        .audit
        .account(&acc.username, "logout", "-", "ok", "")
        .await;
    let cookie = format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

pub(super) async fn me(Extension(acc): Extension<Account>) -> Json<Me> {
    Json(Me {
        username: acc.username,
        role: acc.role,
    })
}

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

pub(super) const NOT_A_RECOVERY_CODE: &str =
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
        state
            .audit
            .account(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; lanterne_session=tok123; c=d"),
        );
        assert_eq!(session_token(&h).as_deref(), Some("tok123"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("lanterne_session="),
        );
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("box.local:8443"));
        assert!(same_origin(&h).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(same_origin(&h).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://box.local:8443"),
        );
        assert!(same_origin(&h).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://box.local:8443"),
        );
        assert!(same_origin(&h).is_err());
    }
}
