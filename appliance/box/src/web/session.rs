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
) -> Result<Option<store::LiveSession>, ApiError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let now = lanterne_wire::now_us() as i64;
    let idle = state.idle_timeout.as_micros() as i64;
    Ok(state
        .store
        .run(move |c| store::session_account(c, &token, now, idle))
        .await?)
}

/// Why sessions ended, for whatever holds one open (the video WebSockets close within a
/// second of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// One session (sign-out), by token hash.
    Token(String),
    /// Every session of an account (disabled, password or second factor changed, deleted).
    Account(i64),
}

/// Tells live views that sessions ended. Every path that deletes sessions calls
/// [`end_sessions`], which deletes them and then publishes here.
#[derive(Clone)]
pub struct SessionEvents(tokio::sync::broadcast::Sender<SessionEnd>);

impl Default for SessionEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionEvents {
    pub fn new() -> Self {
        SessionEvents(tokio::sync::broadcast::channel(64).0)
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<SessionEnd> {
        self.0.subscribe()
    }

    pub fn publish(&self, end: SessionEnd) {
        // No receiver means no live view: nothing to close.
        let _ = self.0.send(end);
    }
}

/// Deletes the sessions `end` names and closes their live views.
pub(super) async fn end_sessions(state: &AppState, end: SessionEnd) -> Result<(), ApiError> {
    let e = end.clone();
    state
        .store
        .run(move |c| match &e {
            SessionEnd::Token(hash) => store::delete_session_by_hash(c, hash),
            SessionEnd::Account(id) => store::delete_account_sessions(c, *id).map(|_| ()),
        })
        .await?;
    state.sessions.publish(end);
    Ok(())
}

/// The store has just ended every session of the account `name` (disabled, password or
/// second factor reset): close its live views.
pub(super) async fn sessions_ended_for(state: &AppState, name: &str) -> Result<(), ApiError> {
    let n = name.to_string();
    if let Some(acc) = state
        .store
        .run(move |c| store::account_by_name(c, &n))
        .await?
    {
        state.sessions.publish(SessionEnd::Account(acc.id));
    }
    Ok(())
}

/// Resolves when `live` ends: signed out, its account's sessions ended, or its absolute end
/// reached. A live view counts as use, so it keeps the session from going idle meanwhile.
pub(super) async fn session_over(state: AppState, live: store::LiveSession) -> &'static str {
    let mut ends = state.sessions.subscribe();
    let left = live.expires_at_us - lanterne_wire::now_us() as i64;
    let deadline = tokio::time::Instant::now() + Duration::from_micros(left.max(0) as u64);
    let mut touch = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return "session-expired",
            end = ends.recv() => match end {
                Ok(SessionEnd::Token(h)) if h == live.token_hash => return "signed-out",
                Ok(SessionEnd::Account(id)) if id == live.account.id => return "signed-out",
                Ok(_) => {}
                // Missed events: check the store itself.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let (hash, now) = (live.token_hash.clone(), lanterne_wire::now_us() as i64);
                    let alive = state
                        .store
                        .run(move |c| store::session_alive(c, &hash, now))
                        .await
                        .unwrap_or(false);
                    if !alive {
                        return "signed-out";
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return "signed-out",
            },
            _ = touch.tick() => {
                let (hash, now) = (live.token_hash.clone(), lanterne_wire::now_us() as i64);
                let _ = state.store.run(move |c| store::touch_session(c, &hash, now)).await;
            }
        }
    }
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
        Ok(Some(live)) => {
            req.extensions_mut().insert(live.account.clone());
            req.extensions_mut().insert(live);
            next.run(req).await
        }
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => e.into_response(),
    }
}

/// Routes a user who must still set up two-factor login, or replace the first admin's
/// generated password, may use.
pub(super) const SETUP_ROUTES: &[&str] = &[
    "/api/me",
    "/api/account",
    "/api/logout",
    "/api/account/totp/setup",
    "/api/account/totp/confirm",
    "/api/account/password",
];

pub(super) async fn require_api_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match account_of(&state, req.headers()).await {
        Ok(Some(live)) => {
            let acc = &live.account;
            let setup_route = SETUP_ROUTES.contains(&req.uri().path());
            if live.must_change_password && !setup_route {
                return (
                    StatusCode::FORBIDDEN,
                    Json(serde_json::json!({
                        "error": "replace the generated password first",
                        "password_change_required": true
                    })),
                )
                    .into_response();
            }
            if totp_required(&state, acc.role) && !setup_route {
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
            req.extensions_mut().insert(live.account.clone());
            req.extensions_mut().insert(live);
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
    /// The first admin's generated password must be replaced now.
    password_change_required: bool,
}

#[derive(Serialize)]
pub(super) struct Me {
    username: String,
    role: store::Role,
}

/// 429 for an address or name that is locked out, or that has too many sign-ins running.
fn gate_refused(refused: login_gate::Refused) -> Response {
    let (secs, body) = match refused {
        login_gate::Refused::LockedOut(left) => {
            let secs = left.as_secs().max(1);
            (
                secs,
                serde_json::json!({
                    "error": format!("too many failed attempts; try again in {} min", secs.div_ceil(60)),
                    "reason": "locked_out",
                    "retry_after_s": secs,
                }),
            )
        }
        login_gate::Refused::Busy => (
            1,
            serde_json::json!({
                "error": "a sign-in from this device is already being checked; try again",
                "reason": "busy",
                "retry_after_s": 1,
            }),
        ),
    };
    let mut res = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// 503 when every argon2 slot stayed taken: not a failure, try again in a second.
fn argon2_busy() -> Response {
    let mut res = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({
            "error": "the box is busy checking other sign-ins; try again in a moment",
            "reason": "busy",
            "retry_after_s": 1,
        })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    res
}

/// Checks `password` against `hash` (or a dummy hash when there is no usable account, so
/// timing does not reveal which names exist) on one of the argon2 threads. `None`: none
/// came free in time.
pub(super) async fn verify_bounded(
    attempt: &login_gate::Attempt,
    password: &str,
    hash: Option<&str>,
) -> Result<Option<bool>, ApiError> {
    let (pw, hash) = (password.to_string(), hash.map(str::to_string));
    Ok(attempt
        .run_argon2(move || match hash {
            Some(h) => accounts::verify_password(&pw, &h),
            None => {
                accounts::verify_password(&pw, dummy_hash());
                false
            }
        })
        .await)
}

/// A refused sign-in, for the audit log: caused by someone without a session, so it goes
/// through the per-address rate limit.
async fn audit_refusal(state: &AppState, peer: SocketAddr, name: &str, result: &str, detail: &str) {
    state
        .metrics
        .login_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    state
        .audit
        .record(
            crate::audit::Source::Anonymous(peer.ip()),
            crate::audit::Entry {
                actor: name,
                action: "login",
                target: &peer.ip().to_string(),
                result,
                detail,
            },
        )
        .await;
}

/// Starts a session for `account` and answers its cookie (`__Host-` prefixed: HTTPS only,
/// this host only, path `/`).
pub(super) async fn new_session(state: &AppState, account_id: i64) -> Result<String, ApiError> {
    let token = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        rand::random::<[u8; 32]>(),
    );
    let tok = token.clone();
    let now_us = lanterne_wire::now_us() as i64;
    state
        .store
        .run(move |c| {
            store::insert_session(c, &tok, account_id, now_us, SESSION_TTL.as_micros() as i64)
        })
        .await?;
    Ok(format!(
        "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    ))
}

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    // Checked and counted in one step; given back below when it was not a failure.
    let attempt = match state
        .login_gate
        .begin(peer.ip(), &req.username, Instant::now())
    {
        Ok(a) => a,
        Err(refused) => {
            audit_refusal(&state, peer, &req.username, "locked-out", "").await;
            return Ok(gate_refused(refused));
        }
    };
    let name = req.username.clone();
    let account = state
        .store
        .run(move |c| store::account_by_name(c, &name))
        .await?
        .filter(|a| !a.disabled);
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let Some(ok) = verify_bounded(&attempt, &req.password, hash).await? else {
        attempt.not_a_failure();
        return Ok(argon2_busy());
    };
    let Some(account) = account.filter(|_| ok) else {
        attempt.failed();
        audit_refusal(&state, peer, &req.username, "refused", "bad credentials").await;
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
                if reason == "totp_required" {
                    attempt.not_a_failure();
                } else {
                    attempt.failed();
                    audit_refusal(&state, peer, &req.username, "refused", reason).await;
                }
                return Ok(login_refused(StatusCode::UNAUTHORIZED, reason, message));
            }
        }
    }
    attempt.succeeded();
    let cookie = new_session(&state, account.id).await?;
    state
        .audit
        .account(
            &account.username,
            "login",
            &peer.ip().to_string(),
            "ok",
            factor,
        )
        .await;
    let totp_setup_required = !has_totp && totp_required(&state, account.role);
    let password_change_required = state
        .store
        .run(move |c| store::must_change_password(c, account_id))
        .await?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(LoginReply {
            username: account.username,
            role: account.role,
            totp_setup_required,
            password_change_required,
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
    Extension(live): Extension<store::LiveSession>,
) -> Result<Response, ApiError> {
    end_sessions(&state, SessionEnd::Token(live.token_hash)).await?;
    state
        .audit
        .account(&acc.username, "logout", "-", "ok", "")
        .await;
    let cookie = format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes one's own password (the current one is required). Every session of the account
/// ends, this one gets a fresh session; the first admin's generated-password file is removed.
pub(super) async fn change_own_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(acc): Extension<Account>,
    body: Result<Json<PasswordChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if req.current_password.len() > 256 {
        return Err(ApiError::BadRequest(
            "'current_password' is too long".into(),
        ));
    }
    check_current_password(&state, peer, &acc, &req.current_password).await?;
    accounts::check_password_rule(&req.new_password)
        .map_err(|rule| ApiError::BadRequest(format!("'new_password': {rule}")))?;
    if req.new_password == req.current_password {
        return Err(ApiError::BadRequest(
            "'new_password' must differ from the current one".into(),
        ));
    }
    let pw = req.new_password.clone();
    let Some(hash) = state
        .login_gate
        .run_argon2(move || accounts::hash_password(&pw))
        .await
    else {
        return Ok(argon2_busy());
    };
    let (name, id) = (acc.username.clone(), acc.id);
    state
        .store
        .run(move |c| {
            store::set_password(c, &name, &hash)?;
            store::set_must_change_password(c, id, false)
        })
        .await?;
    end_sessions(&state, SessionEnd::Account(acc.id)).await?;
    if let Some(path) = &state.first_password_file {
        if acc.username == "admin" {
            match std::fs::remove_file(path) {
                Ok(()) => info!("first admin password file removed"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => error!("cannot remove {}: {e}", path.display()),
            }
        }
    }
    state
        .audit
        .account(
            &acc.username,
            "change-own-password",
            &acc.username,
            "ok",
            "",
        )
        .await;
    let cookie = new_session(&state, acc.id).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// Asks for the password again before a sensitive change of one's own account (a new
/// password, a replaced second factor, new recovery codes). Throttled like a sign-in.
pub(super) async fn check_current_password(
    state: &AppState,
    peer: SocketAddr,
    acc: &Account,
    password: &str,
) -> Result<(), ApiError> {
    let attempt = state
        .login_gate
        .begin(peer.ip(), &acc.username, Instant::now())
        .map_err(|r| match r {
            login_gate::Refused::LockedOut(left) => ApiError::TooManyRequests(format!(
                "too many wrong passwords; try again in {} min",
                left.as_secs().max(1).div_ceil(60)
            )),
            login_gate::Refused::Busy => {
                ApiError::TooManyRequests("a password check is already running; try again".into())
            }
        })?;
    match verify_bounded(&attempt, password, Some(&acc.password_hash)).await? {
        None => {
            attempt.not_a_failure();
            Err(ApiError::TooManyRequests(
                "the box is busy checking other sign-ins; try again in a moment".into(),
            ))
        }
        Some(true) => {
            attempt.succeeded();
            Ok(())
        }
        Some(false) => {
            attempt.failed();
            state
                .audit
                .account(
                    &acc.username,
                    "confirm-password",
                    &acc.username,
                    "refused",
                    "wrong password",
                )
                .await;
            Err(ApiError::Forbidden(
                "'current_password' is not your current password".into(),
            ))
        }
    }
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
            HeaderValue::from_static("a=b; __Host-lanterne_session=tok123; c=d"),
        );
        assert_eq!(session_token(&h).as_deref(), Some("tok123"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-lanterne_session="),
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
