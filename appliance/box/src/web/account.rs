//! "My account": two-factor setup, recovery codes, the account page.

use super::*;
use lanterne_privacy::totp;

// ---- two-factor setup ----

#[derive(Serialize)]
pub(super) struct TotpSetup {
    otpauth_uri: String,
    /// The same URI as a QR code, to scan with the authenticator app.
    qr_svg: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Reauth {
    #[serde(default)]
    password: Option<String>,
}

/// The `{"password": …}` of a request that needs the password again; an empty body is
/// `None`.
fn reauth_password(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let r: Reauth = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("expected {{\"password\": …}}: {e}")))?;
    if r.password.as_ref().is_some_and(|p| p.len() > 256) {
        return Err(ApiError::BadRequest("'password' is too long".into()));
    }
    Ok(r.password.filter(|p| !p.is_empty()))
}

/// Asks for the password again (a missing one is a 401 the page answers with a prompt).
async fn confirm_password(
    state: &AppState,
    peer: SocketAddr,
    acc: &Account,
    body: &[u8],
) -> Result<(), ApiError> {
    match reauth_password(body)? {
        Some(pw) => check_current_password(state, peer, acc, &pw).await,
        None => Err(ApiError::Unauthorized(
            "enter your password again to do this ('password')".into(),
        )),
    }
}

/// Starts two-factor setup: a new secret, pending until confirmed with a code. Replacing a
/// second factor already set up asks for the password again (`{"password": …}`).
pub(super) async fn totp_setup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(acc): Extension<Account>,
    body: Bytes,
) -> Result<Json<TotpSetup>, ApiError> {
    use lanterne_privacy::totp::{otpauth_uri, qr_svg, TotpSecret, TotpVerifier};
    let id = acc.id;
    let (active, _, _) = state.store.run(move |c| store::totp_state(c, id)).await?;
    if active.is_some() {
        confirm_password(&state, peer, &acc, &body).await?;
    }
    let secret = TotpSecret::generate();
    let uri = otpauth_uri(&acc.username, &secret, &TotpVerifier::default());
    let qr = qr_svg(&uri).map_err(|e| ApiError::Internal(e.to_string()))?;
    let b32 = secret.to_base32();
    state
        .store
        .run(move |c| store::set_totp_pending(c, id, &b32))
        .await?;
    Ok(Json(TotpSetup {
        otpauth_uri: uri,
        qr_svg: qr,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TotpConfirm {
    code: String,
}

/// Confirms two-factor setup with a code from the app; from then on login asks for a code.
/// Answers the account's new recovery codes, shown this once.
pub(super) async fn totp_confirm(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<TotpConfirm>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    use lanterne_privacy::totp::{TotpSecret, TotpVerifier};
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let id = acc.id;
    let (_, pending, _) = state.store.run(move |c| store::totp_state(c, id)).await?;
    let pending = pending.ok_or_else(|| {
        ApiError::Conflict("start two-factor setup first (/api/account/totp/setup)".into())
    })?;
    let secret = TotpSecret::from_base32(&pending)
        .map_err(|e| ApiError::Internal(format!("pending TOTP secret unreadable: {e}")))?;
    let step = TotpVerifier::default()
        .verify(
            &secret,
            &req.code,
            lanterne_wire::now_us() / 1_000_000,
            None,
        )
        .map_err(|_| ApiError::BadRequest("'code' does not match the new secret".into()))?;
    state
        .store
        .run(move |c| store::activate_totp(c, id, step))
        .await?;
    state
        .audit
        .account(&acc.username, "enable-two-factor", &acc.username, "ok", "")
        .await;
    Ok(Json(issue_recovery_codes(&state, &acc).await?))
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
    state
        .audit
        .account(
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
    /// The first admin's generated password must be replaced first.
    password_change_required: bool,
}

/// "My account": what the signed-in user may see of their own login settings.
pub(super) async fn account_status(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<AccountStatus>, ApiError> {
    let id = acc.id;
    let (secret, left, must_change) = state
        .store
        .run(move |c| {
            let (secret, _, _) = store::totp_state(c, id)?;
            Ok((
                secret,
                store::recovery_codes_left(c, id)?,
                store::must_change_password(c, id)?,
            ))
        })
        .await?;
    Ok(Json(AccountStatus {
        totp_required: totp_required(&state, acc.role),
        username: acc.username,
        role: acc.role,
        totp_enabled: secret.is_some(),
        recovery_codes_left: left,
        password_change_required: must_change,
    }))
}

/// New recovery codes for the signed-in user (after printing the old ones was forgotten, or
/// after using several). Only with two-factor login on: without it they would open nothing.
/// Asks for the password again (`{"password": …}`).
pub(super) async fn new_recovery_codes(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(acc): Extension<Account>,
    body: Bytes,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let id = acc.id;
    let (secret, _, _) = state.store.run(move |c| store::totp_state(c, id)).await?;
    if secret.is_none() {
        return Err(ApiError::Conflict(
            "set up two-factor login first; recovery codes replace its codes".into(),
        ));
    }
    confirm_password(&state, peer, &acc, &body).await?;
    Ok(Json(issue_recovery_codes(&state, &acc).await?))
}

/// "My account", for every role.
pub(super) async fn account_page() -> Response {
    asset("account.html")
}
