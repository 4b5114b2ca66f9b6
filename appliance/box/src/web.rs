//! The box's HTTPS server: the teacher's web UI, its JSON API, the live video WebSockets and
//! station enrolment.
//!
//! Routes (everything but the login page, static assets, login and enrolment needs a session):
//!
//! ```text
//! GET  /login                  login page                      public
//! GET  /assets/*               static assets                   public
//! POST /api/login              {username,password} → cookie    public, throttled, Origin-checked
//! POST /api/enrol              station CSR + one-time code     public, code-authenticated
//! GET  /  /room                pages                           session, else 303 → /login
//! GET  /api/me  /api/room      JSON                            session, else 401
//! POST /api/logout                                             session + Origin check
//! GET  /api/mosaic             WebSocket: the composed class   session + Origin check
//! GET  /api/stations/{id}/focus WebSocket: one full stream     session + Origin check
//! GET  /admin  /account        admin pages (admins; others 403), my account (any role)
//! GET  /api/account            my two-factor status            session
//! POST /api/account/recovery-codes  new one-time codes         session + Origin check
//! POST /api/stations/{id}/screenshot  PNG kept on the box      session, config, schedule
//! GET  /api/screenshots  /api/screenshots/{id}.png             session (admins: all)
//! POST /api/demo               start a demo (fan-out)          session (teacher) + Origin
//! POST /api/demo/stop          stop it on every station        session (teacher) + Origin
//! ```
//!
//! `SESSION_ROUTES` below is the complete list of routes that need a session. The running
//! demo, with each receiver's health, is the `demo` field of `GET /api/room`.
//!
//! Video messages on the WebSockets (big endian): version u8 = 1, flags u8 (bit 0 keyframe),
//! seq u64, capture_us u64, n u16, n × (tile u16, capture_us u64), then one H.264 access unit
//! in Annex B form. A text message `{"type":"config","codec":…}` precedes the first keyframe
//! and any codec change; `{"type":"layout",…}` describes the tiles; `{"type":"ended",…}` tells
//! a focus viewer that the station left.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use include_dir::{include_dir, Dir};
use lanterne_media::Mosaic;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

use crate::accounts::{self, Throttle};
use crate::pki::BoxCa;
use crate::room::{FocusError, RoomHandle, RoomView};
use crate::store::{self, Account, AuditEntry, Redeem, Store};

/// Account self-service, recovery codes, the admin pages and screenshots.
mod access;
use access::{new_recovery_codes, reset_two_factor, take_screenshot};

static WEB_UI: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web-ui");

pub const SESSION_COOKIE: &str = "lanterne_session";
/// A teacher's session lasts a school day; they log in again the next morning.
const SESSION_TTL: Duration = Duration::from_secs(10 * 3600);
/// Enrolment codes are valid for a day.
pub const ENROL_CODE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub room: RoomHandle,
    pub mosaic: Arc<Mosaic>,
    pub ca: Arc<BoxCa>,
    pub station_link_port: u16,
    pub throttle: Arc<Mutex<Throttle>>,
    /// Present when the box runs with the simulated front panel (development, tests).
    pub simulated_panel: Option<Arc<lanterne_panel::SimulatedPanel>>,
    /// Where Wake-on-LAN packets are sent.
    pub wol_target: SocketAddr,
    /// The admin-approved commands (from the config); nothing else can be run.
    pub commands: Arc<Vec<crate::config::ApprovedCommand>>,
    /// Login rules from the configuration.
    pub account_rules: crate::config::Accounts,
    /// What the room notice and the GDPR record say, or why they cannot be made.
    pub documents: Result<Arc<lanterne_privacy::documents::DocumentConfig>, String>,
    /// Whether screenshots are allowed, their retention and where they are kept.
    pub screenshots: Arc<crate::screenshots::Settings>,
}

/// One error type for every handler: 4xx carry a precise message, 5xx a generic one (the
/// detail is logged, never sent).
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    TooManyRequests(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::TooManyRequests(m) => (StatusCode::TOO_MANY_REQUESTS, m),
            ApiError::Internal(detail) => {
                error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the box log".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Every route that needs a session, as (method, example path). Pages answer 303 → /login
/// without one, API routes 401. The scenario `tests/scenarios/tests/unauthenticated.rs`
/// requests each; a unit test below checks that every `.route(` of [`router`] is listed here
/// or is one of the public ones, so a new route cannot skip the check.
pub const SESSION_ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/room"),
    ("GET", "/dev"),
    ("GET", "/api/me"),
    ("GET", "/api/room"),
    ("POST", "/api/logout"),
    ("GET", "/api/accounts"),
    ("POST", "/api/accounts"),
    ("POST", "/api/accounts/admin/disabled"),
    ("POST", "/api/accounts/admin/password"),
    ("POST", "/api/accounts/admin/totp/reset"),
    ("POST", "/api/room/link"),
    ("GET", "/api/audit"),
    ("GET", "/api/audit.csv"),
    ("POST", "/api/account/totp/setup"),
    ("POST", "/api/account/totp/confirm"),
    ("GET", "/admin"),
    ("GET", "/account"),
    ("GET", "/api/account"),
    ("POST", "/api/account/recovery-codes"),
    ("POST", "/api/stations/1/screenshot"),
    ("GET", "/api/screenshots"),
    ("GET", "/api/screenshots/1.png"),
    ("POST", "/api/room/lock"),
    ("POST", "/api/messages"),
    ("GET", "/api/messages"),
    ("POST", "/api/stations/wake"),
    ("POST", "/api/stations/power"),
    ("POST", "/api/stations/open-url"),
    ("GET", "/api/documents/poster.html"),
    ("GET", "/api/documents/poster.pdf"),
    ("GET", "/api/documents/gdpr.md"),
    ("GET", "/api/documents/gdpr.json"),
    ("GET", "/api/commands"),
    ("POST", "/api/commands/run"),
    ("GET", "/api/commands/runs/1"),
    ("GET", "/api/orders/1"),
    ("GET", "/api/dev/panel"),
    ("POST", "/api/dev/panel/press"),
    ("GET", "/api/mosaic"),
    ("GET", "/api/stations/1/focus"),
    ("POST", "/api/demo"),
    ("POST", "/api/demo/stop"),
];

/// Routes reachable without a session, each for a reason: the login page and its API, the
/// static assets, the room link (leads to the login) and station enrolment (authenticated
/// by its one-time code).
pub const PUBLIC_ROUTES: &[&str] = &[
    "/login",
    "/assets/{*path}",
    "/api/login",
    "/r/{token}",
    "/api/enrol",
];

pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/room") }))
        .route("/room", get(|| async { asset("room.html") }))
        .route("/admin", get(access::admin_page))
        .route("/account", get(access::account_page))
        // The simulated panel's page; its API refuses anyone but admins of a simulated box.
        .route("/dev", get(|| async { asset("dev.html") }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_page_session,
        ));
    let api = Router::new()
        .route("/api/me", get(me))
        .route("/api/room", get(room_view))
        .route("/api/logout", post(logout))
        .route("/api/accounts", get(list_accounts).post(create_account))
        .route("/api/accounts/{name}/disabled", post(disable_account))
        .route("/api/accounts/{name}/password", post(reset_password))
        .route("/api/accounts/{name}/totp/reset", post(reset_two_factor))
        .route("/api/room/link", post(regenerate_room_link))
        .route("/api/audit", get(audit_json))
        .route("/api/audit.csv", get(audit_csv))
        .route("/api/account/totp/setup", post(totp_setup))
        .route("/api/account/totp/confirm", post(totp_confirm))
        .route("/api/account", get(access::account_status))
        .route("/api/account/recovery-codes", post(new_recovery_codes))
        .route("/api/stations/{id}/screenshot", post(take_screenshot))
        .route("/api/screenshots", get(access::list_screenshots))
        .route("/api/screenshots/{file}", get(access::screenshot_png))
        .route("/api/room/lock", post(lock_room))
        .route("/api/messages", post(send_message).get(list_messages))
        .route("/api/stations/wake", post(wake_stations))
        .route("/api/stations/power", post(power_stations))
        .route("/api/stations/open-url", post(open_url))
        .route("/api/documents/poster.html", get(poster_html))
        .route("/api/documents/poster.pdf", get(poster_pdf))
        .route("/api/documents/gdpr.md", get(gdpr_markdown))
        .route("/api/documents/gdpr.json", get(gdpr_json))
        .route("/api/commands", get(list_commands))
        .route("/api/commands/run", post(run_command))
        .route("/api/commands/runs/{id}", get(command_run))
        .route("/api/orders/{id}", get(order_run))
        .route("/api/dev/panel", get(dev_panel))
        .route("/api/dev/panel/press", post(dev_panel_press))
        .route("/api/mosaic", get(mosaic_ws))
        .route("/api/stations/{id}/focus", get(focus_ws))
        .route("/api/demo", post(start_demo))
        .route("/api/demo/stop", post(stop_demo))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_session,
        ));
    let public = Router::new()
        .route("/login", get(|| async { asset("login.html") }))
        .route(
            "/assets/{*path}",
            get(|Path(p): Path<String>| async move { asset(&format!("assets/{p}")) }),
        )
        .route("/api/login", post(login))
        .route("/r/{token}", get(follow_room_link))
        .route("/api/enrol", post(enrol));
    Router::new()
        .merge(pages)
        .merge(api)
        .merge(public)
        .fallback(|| async { ApiError::NotFound("no such page".into()) })
        .layer(DefaultBodyLimit::max(32 * 1024))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves the HTTPS listener for ever, within `limits` (see [`crate::listener`]: who is
/// admitted, evicted or cut, and when). HTTP/1.1 only: WebSockets over HTTP/2 need extended
/// CONNECT, which Safari and Chrome handle differently; one protocol keeps every tablet on the
/// same path.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: crate::listener::HttpLimits,
) -> std::convert::Infallible {
    let acceptor = TlsAcceptor::from(tls);
    let t = limits.timeouts;
    crate::listener::run(
        listener,
        "HTTPS",
        limits.connections,
        move |tcp, peer, admission| {
            let acceptor = acceptor.clone();
            let app = app.clone();
            async move {
                let conn = admission.handle();
                let handshake = tokio::time::timeout(t.tls_handshake, acceptor.accept(tcp));
                let tls = tokio::select! {
                    r = handshake => match r {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            if admission.log_budget().allows() {
                                info!(%peer, "HTTPS handshake failed: {e}");
                            }
                            return;
                        }
                        Err(_) => return,
                    },
                    _ = conn.cut_off() => return,
                };
                let log = admission.log_budget();
                let io = admission.guard(tls, t.write_stall);
                let svc_conn = conn.clone();
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (mut parts, body) = req.into_parts();
                        parts.extensions.insert(ConnectInfo(peer));
                        // Counted from the end of the head: a body trickled a byte at a time
                        // is cut at the deadline, with its connection.
                        let body = crate::listener::DeadlineBody::new(
                            body,
                            t.request_body,
                            svc_conn.clone(),
                        );
                        let req = Request::from_parts(parts, Body::new(body));
                        let app = app.clone();
                        let conn = svc_conn.clone();
                        async move {
                            use tower::ServiceExt;
                            let res = app.oneshot(req).await;
                            // The router upgrades only behind a session (every WebSocket route
                            // is in SESSION_ROUTES): such a connection is trusted, never
                            // evicted for an anonymous one.
                            if matches!(&res, Ok(r) if r.status() == StatusCode::SWITCHING_PROTOCOLS)
                            {
                                conn.trust();
                            }
                            res
                        }
                    },
                );
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(t.request_head)
                    .max_buf_size(crate::listener::MAX_REQUEST_HEAD)
                    .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
                    .with_upgrades();
                tokio::select! {
                    r = served => {
                        if let Err(e) = r {
                            if log.allows() {
                                info!(%peer, "HTTPS connection ended: {e}");
                            }
                        }
                    }
                    _ = conn.cut_off() => {}
                }
            }
        },
    )
    .await
}

/// Plain HTTP: every request gets a permanent redirect to the same path over HTTPS, and
/// nothing else (no page, no API) is ever served without TLS. Within `limits` like HTTPS.
pub async fn serve_redirect(
    listener: TcpListener,
    https_port: u16,
    limits: crate::listener::HttpLimits,
) -> std::convert::Infallible {
    let t = limits.timeouts;
    crate::listener::run(
        listener,
        "HTTP redirect",
        limits.connections,
        move |tcp, peer, admission| async move {
            let conn = admission.handle();
            let log = admission.log_budget();
            let svc = hyper::service::service_fn(
                move |req: hyper::Request<hyper::body::Incoming>| async move {
                    let host = req
                        .headers()
                        .get(header::HOST)
                        .and_then(|v| v.to_str().ok())
                        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_string())
                        .filter(|h| {
                            !h.is_empty()
                                && h.len() <= 255
                                && h.chars()
                                    .all(|c| c.is_ascii_alphanumeric() || "-.[]".contains(c))
                        });
                    let res = match host {
                        Some(host) => {
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.as_str())
                                .unwrap_or("/");
                            let port = if https_port == 443 {
                                String::new()
                            } else {
                                format!(":{https_port}")
                            };
                            hyper::Response::builder()
                                .status(StatusCode::PERMANENT_REDIRECT)
                                .header(header::LOCATION, format!("https://{host}{port}{path}"))
                                .body(Body::empty())
                        }
                        None => hyper::Response::builder()
                            .status(StatusCode::BAD_REQUEST)
                            .body(Body::from("a Host header is required")),
                    };
                    Ok::<_, std::convert::Infallible>(res.expect("static response parts"))
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(t.request_head)
                .max_buf_size(crate::listener::MAX_REQUEST_HEAD)
                .serve_connection(
                    hyper_util::rt::TokioIo::new(admission.guard(tcp, t.write_stall)),
                    svc,
                );
            tokio::select! {
                r = served => {
                    if let Err(e) = r {
                        if log.allows() {
                            info!(%peer, "HTTP redirect connection ended: {e}");
                        }
                    }
                }
                _ = conn.cut_off() => {}
            }
        },
    )
    .await
}

fn asset(path: &str) -> Response {
    let Some(file) = WEB_UI.get_file(path) else {
        return ApiError::NotFound(format!("no asset {path}")).into_response();
    };
    let mime = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Bytes::from_static(file.contents()),
    )
        .into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    // Safari before 17 does not let 'self' cover wss:, so the WebSocket origin is named.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .map(str::to_string);
    let mut res = next.run(req).await;
    let connect = match host {
        Some(h) => format!("'self' wss://{h}"),
        None => "'self'".to_string(),
    };
    let csp = format!(
        "default-src 'self'; img-src 'self' data:; connect-src {connect}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    // A handler may set a stricter policy of its own (the printable notice).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn session_token(headers: &HeaderMap) -> Option<String> {
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

async fn account_of(state: &AppState, headers: &HeaderMap) -> Result<Option<Account>, ApiError> {
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
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
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

async fn require_page_session(
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
const TOTP_SETUP_ROUTES: &[&str] = &[
    "/api/me",
    "/api/account",
    "/api/logout",
    "/api/account/totp/setup",
    "/api/account/totp/confirm",
];

async fn require_api_session(
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

async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    result: &str,
    detail: &str,
) {
    let (actor, action, target, result, detail) = (
        actor.to_string(),
        action.to_string(),
        target.to_string(),
        result.to_string(),
        detail.to_string(),
    );
    let now = lanterne_wire::now_us() as i64;
    if let Err(e) = state
        .store
        .run(move |c| {
            store::audit(
                c,
                now,
                &AuditEntry {
                    actor: &actor,
                    action: &action,
                    target: &target,
                    result: &result,
                    detail: &detail,
                },
            )
        })
        .await
    {
        // An access that cannot be recorded is still logged; the operator must see it.
        error!("audit write failed: {e}");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
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
fn login_refused(status: StatusCode, reason: &str, message: &str) -> Response {
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
struct LoginReply {
    username: String,
    role: store::Role,
    totp_setup_required: bool,
}

#[derive(Serialize)]
struct Me {
    username: String,
    role: store::Role,
}

async fn login(
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
        audit(&state, &req.username, "login", "-", "locked-out", "").await;
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
        audit(
            &state,
            &req.username,
            "login",
            "-",
            "refused",
            "bad credentials",
        )
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
    let mut second_factor = "";
    if let Some(secret) = secret {
        match access::second_factor(&state, &account, &secret, last_step, &req).await? {
            Ok(how) => second_factor = how,
            Err((reason, message)) => {
                // A missing code is a question, not a failure: the password was right.
                if reason != "totp_required" {
                    state
                        .throttle
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .failed(&req.username, now);
                    audit(&state, &req.username, "login", "-", "refused", reason).await;
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
    audit(&state, &account.username, "login", "-", "ok", second_factor).await;
    let totp_setup_required = !has_totp && access::totp_required(&state, account.role);
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

fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| accounts::hash_password("not-a-real-password-1A!"))
}

async fn logout(
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
    audit(&state, &acc.username, "logout", "-", "ok", "").await;
    let cookie = format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

async fn me(Extension(acc): Extension<Account>) -> Json<Me> {
    Json(Me {
        username: acc.username,
        role: acc.role,
    })
}

async fn room_view(State(state): State<AppState>) -> Json<RoomView> {
    Json(state.room.view().borrow().clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockRequest {
    locked: bool,
    /// None: the whole room (stations enrolled later included).
    #[serde(default)]
    stations: Option<Vec<u32>>,
}

/// Locks or unlocks the whole room (the tablet's counterpart of the panel button) or some
/// stations.
async fn lock_room(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<LockRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::LockReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if acc.role == store::Role::Technician {
        return Err(ApiError::Forbidden(
            "technicians give remote help; locking the room is for teachers".into(),
        ));
    }
    state
        .room
        .set_lock(Some(req.locked), req.stations, &acc.username)
        .await
        .map(Json)
        .map_err(order_error)
}

fn refuse_technician(acc: &Account, what: &str) -> Result<(), ApiError> {
    if acc.role == store::Role::Technician {
        return Err(ApiError::Forbidden(format!(
            "technicians give remote help; {what} is for teachers"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    text: String,
    /// None: the whole room.
    stations: Option<Vec<u32>>,
}

/// Sends a text message to the whole room or to some stations.
async fn send_message(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<MessageRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    refuse_technician(&acc, "sending messages")?;
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
    use crate::room::SendError;
    state
        .room
        .send_message(req.stations, &acc.username, text)
        .await
        .map(Json)
        .map_err(|e| match e {
            SendError::UnknownStation(_) | SendError::NoTarget => {
                ApiError::BadRequest(format!("'stations': {e}"))
            }
            SendError::Internal(m) => ApiError::Internal(m),
        })
}

/// The latest messages with, per station, whether they were delivered and read.
async fn list_messages(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<Vec<store::MessageRow>>, ApiError> {
    refuse_technician(&acc, "reading the class messages")?;
    Ok(Json(
        state.store.run(|c| store::recent_messages(c, 20)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum PowerChoice {
    Shutdown,
    Restart,
    Logout,
    #[serde(rename = "open-session")]
    OpenSession,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerRequest {
    action: PowerChoice,
    /// Seconds the students see a countdown first (0 to 600).
    #[serde(default)]
    countdown_s: u32,
    stations: Option<Vec<u32>>,
}

fn order_error(e: crate::room::SendError) -> ApiError {
    use crate::room::SendError;
    match e {
        SendError::UnknownStation(_) | SendError::NoTarget => {
            ApiError::BadRequest(format!("'stations': {e}"))
        }
        SendError::Internal(m) => ApiError::Internal(m),
    }
}

/// Shuts down, restarts or logs out stations, after a countdown the students see.
async fn power_stations(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<PowerRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    refuse_technician(&acc, "powering stations off")?;
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
    audit(
        &state,
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
struct OpenUrlRequest {
    url: String,
    stations: Option<Vec<u32>>,
}

/// Opens a web page in the students' browsers.
async fn open_url(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<OpenUrlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    refuse_technician(&acc, "opening pages on stations")?;
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
    audit(
        &state,
        &acc.username,
        "open-url",
        &format!("{} station(s)", report.sent_to.len()),
        "sent",
        &req.url,
    )
    .await;
    Ok(Json(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum DemoModeChoice {
    Fullscreen,
    Windowed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoRegionBody {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoRequestBody {
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
enum DemoSourceBody {
    Station(u32),
    Named(String),
}

/// Shows one station's screen on the others (replacing a demo already running), or the
/// teacher's PC through the box's HDMI input (`"source": "hdmi"`).
async fn start_demo(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<DemoRequestBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::DemoView>, ApiError> {
    use crate::room::DemoError;
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    refuse_technician(&acc, "showing a screen to the class")?;
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
        Ok(view) => Ok(Json(view)),
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
                audit(
                    &state,
                    &acc.username,
                    "demo-start",
                    &source_label,
                    "refused",
                    "outside monitoring hours",
                )
                .await;
                ApiError::Forbidden(e.to_string())
            }
            DemoError::Internal(m) => ApiError::Internal(m),
        }),
    }
}

/// Stops the running demo on every station.
async fn stop_demo(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<crate::room::DemoEnd>, ApiError> {
    use crate::room::DemoError;
    refuse_technician(&acc, "stopping a demo")?;
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

fn documents(
    state: &AppState,
) -> Result<Arc<lanterne_privacy::documents::DocumentConfig>, ApiError> {
    state.documents.clone().map_err(ApiError::Conflict)
}

/// The printable room notice (P2), from the live configuration.
async fn poster_html(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    refuse_technician(&acc, "the room notice")?;
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
async fn poster_pdf(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    refuse_technician(&acc, "the room notice")?;
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

fn admin_only(acc: &Account, what: &str) -> Result<(), ApiError> {
    if acc.role != store::Role::Admin {
        return Err(ApiError::Forbidden(format!("{what} is for admins")));
    }
    Ok(())
}

/// The GDPR processing record (P4), Markdown.
async fn gdpr_markdown(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    admin_only(&acc, "the GDPR record")?;
    let md =
        lanterne_privacy::documents::gdpr_record(&*documents(&state)?, lanterne_privacy::Lang::Fr)
            .to_markdown();
    audit(
        &state,
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
async fn gdpr_json(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Response, ApiError> {
    admin_only(&acc, "the GDPR record")?;
    let json =
        lanterne_privacy::documents::gdpr_record(&*documents(&state)?, lanterne_privacy::Lang::Fr)
            .to_json()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    audit(
        &state,
        &acc.username,
        "export-gdpr-record",
        "room",
        "ok",
        "json",
    )
    .await;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

#[derive(Serialize)]
struct CommandView {
    name: String,
    program: String,
    args: Vec<String>,
    allowed_args: Vec<String>,
}

/// The commands a teacher may run.
async fn list_commands(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<Vec<CommandView>>, ApiError> {
    refuse_technician(&acc, "running commands")?;
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
struct RunRequest {
    name: String,
    /// Extra arguments, each from the command's `allowed_args`.
    #[serde(default)]
    args: Vec<String>,
    stations: Option<Vec<u32>>,
}

/// Runs an approved command on stations. Anything not in the box's approved list is refused.
async fn run_command(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<RunRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<crate::room::MessageReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    refuse_technician(&acc, "running commands")?;
    let Some(approved) = state.commands.iter().find(|c| c.name == req.name) else {
        audit(
            &state,
            &acc.username,
            "run-command",
            "-",
            "refused",
            "not approved",
        )
        .await;
        return Err(ApiError::BadRequest(format!(
            "'name': '{}' is not an approved command; the admin lists approved commands in the box configuration",
            req.name.chars().take(64).collect::<String>()
        )));
    };
    if let Some(bad) = req.args.iter().find(|a| !approved.allowed_args.contains(a)) {
        audit(
            &state,
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
    use crate::room::SendError;
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
        .map_err(|e| match e {
            SendError::UnknownStation(_) | SendError::NoTarget => {
                ApiError::BadRequest(format!("'stations': {e}"))
            }
            SendError::Internal(m) => ApiError::Internal(m),
        })
}

/// One run with each station's exit code and output (or why it did not run).
async fn command_run(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u64>,
) -> Result<Json<store::CommandRun>, ApiError> {
    refuse_technician(&acc, "running commands")?;
    state
        .store
        .run(move |c| store::command_run(c, id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no command run {id}")))
}

/// What the stations answered to a power or open-URL order (kept for the most recent ones).
async fn order_run(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u64>,
) -> Result<Json<crate::room::OrderRun>, ApiError> {
    refuse_technician(&acc, "following orders")?;
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
struct WakeRequest {
    /// None: every offline station.
    stations: Option<Vec<u32>>,
}

#[derive(Serialize)]
struct WakeReport {
    sent_to: Vec<String>,
    /// Stations whose MAC address is unknown (enrolled without one).
    no_mac: Vec<String>,
}

/// Powers stations on with Wake-on-LAN magic packets sent by the box.
async fn wake_stations(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<WakeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<WakeReport>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    refuse_technician(&acc, "powering stations on")?;
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
    audit(
        &state,
        &acc.username,
        "wake",
        &format!("{} station(s)", report.sent_to.len()),
        "ok",
        "",
    )
    .await;
    Ok(Json(report))
}

#[derive(Serialize)]
struct PanelView {
    lock_led: bool,
    status_led: &'static str,
}

fn simulated_panel(
    state: &AppState,
    acc: &Account,
) -> Result<Arc<lanterne_panel::SimulatedPanel>, ApiError> {
    if acc.role != store::Role::Admin {
        return Err(ApiError::Forbidden(
            "the developer panel is for admins".into(),
        ));
    }
    state
        .simulated_panel
        .clone()
        .ok_or_else(|| ApiError::NotFound("this box has a real front panel".into()))
}

/// What the simulated panel's LEDs show (for development and tests).
async fn dev_panel(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<PanelView>, ApiError> {
    let leds = simulated_panel(&state, &acc)?.leds();
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
async fn dev_panel_press(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<StatusCode, ApiError> {
    simulated_panel(&state, &acc)?.press();
    Ok(StatusCode::ACCEPTED)
}

// ---- room link (P7) ----

#[derive(Serialize)]
struct RoomLink {
    url: String,
    qr_svg: String,
}

/// Makes a new room link for the tablets (a QR code to scan); the previous link stops
/// working at once. Share it in a restricted circle; regenerate it after an incident.
async fn regenerate_room_link(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    headers: HeaderMap,
) -> Result<Json<RoomLink>, ApiError> {
    admin_only(&acc, "the room link")?;
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
    audit(
        &state,
        &acc.username,
        "regenerate-room-link",
        "room",
        "ok",
        "",
    )
    .await;
    let url = format!("https://{host}/r/{token}");
    let qr_svg =
        lanterne_privacy::totp::qr_svg(&url).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(RoomLink { url, qr_svg }))
}

/// A tablet scanned the room link: the current one leads to the login page, an old one is
/// refused with the reason.
async fn follow_room_link(
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
struct AccountView {
    username: String,
    role: store::Role,
    disabled: bool,
    totp_enabled: bool,
}

async fn list_accounts(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    admin_only(&acc, "managing accounts")?;
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
enum RoleChoice {
    Admin,
    Teacher,
    Technician,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    username: String,
    role: RoleChoice,
    password: String,
}

fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Creates a personal account (P6: no shared accounts, the school's password rule).
async fn create_account(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<NewAccount>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    admin_only(&acc, "managing accounts")?;
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
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&pw))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
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
    audit(
        &state,
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
struct DisableRequest {
    disabled: bool,
}

async fn disable_account(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(name): Path<String>,
    body: Result<Json<DisableRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    admin_only(&acc, "managing accounts")?;
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
    let what = if req.disabled {
        "disable-account"
    } else {
        "enable-account"
    };
    audit(&state, &acc.username, what, &name, "ok", "").await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    password: String,
}

/// Sets a new password (admin reset); the account's sessions end.
async fn reset_password(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(name): Path<String>,
    body: Result<Json<PasswordRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode, ApiError> {
    admin_only(&acc, "managing accounts")?;
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    accounts::check_password_rule(&req.password)
        .map_err(|rule| ApiError::BadRequest(format!("'password': {rule}")))?;
    let pw = req.password.clone();
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&pw))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let n = name.clone();
    if !state
        .store
        .run(move |c| store::set_password(c, &n, &hash))
        .await?
    {
        return Err(ApiError::NotFound(format!("no account '{name}'")));
    }
    audit(&state, &acc.username, "reset-password", &name, "ok", "").await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- audit (admin) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
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

async fn audit_rows(
    state: &AppState,
    acc: &Account,
    q: AuditQuery,
    format: &str,
) -> Result<Vec<store::AuditRow>, ApiError> {
    admin_only(acc, "the audit log")?;
    let (filter, limit) = access::audit_filter(q)?;
    let rows = state
        .store
        .run(move |c| store::audit_rows(c, &filter, limit))
        .await?;
    audit(state, &acc.username, "export-audit", "audit", "ok", format).await;
    Ok(rows)
}

/// The audit log, newest first, filtered by `actor`, `action`, `since_us`.
async fn audit_json(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    q: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<store::AuditRow>>, ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(audit_rows(&state, &acc, q, "json").await?))
}

/// The same as CSV, for the school's records.
async fn audit_csv(
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

// ---- two-factor setup ----

#[derive(Serialize)]
struct TotpSetup {
    otpauth_uri: String,
    /// The same URI as a QR code, to scan with the authenticator app.
    qr_svg: String,
}

/// Starts two-factor setup: a new secret, pending until confirmed with a code.
async fn totp_setup(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
) -> Result<Json<TotpSetup>, ApiError> {
    use lanterne_privacy::totp::{otpauth_uri, qr_svg, TotpSecret, TotpVerifier};
    let secret = TotpSecret::generate();
    let uri = otpauth_uri(&acc.username, &secret, &TotpVerifier::default());
    let qr = qr_svg(&uri).map_err(|e| ApiError::Internal(e.to_string()))?;
    let (id, b32) = (acc.id, secret.to_base32());
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
struct TotpConfirm {
    code: String,
}

/// Confirms two-factor setup with a code from the app; from then on login asks for a code.
/// Answers the account's new recovery codes, shown this once.
async fn totp_confirm(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    body: Result<Json<TotpConfirm>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<access::RecoveryCodes>, ApiError> {
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
    audit(
        &state,
        &acc.username,
        "enable-two-factor",
        &acc.username,
        "ok",
        "",
    )
    .await;
    Ok(Json(access::issue_recovery_codes(&state, &acc).await?))
}

// ---- enrolment ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub code: String,
    pub csr_pem: String,
    pub hostname: String,
    pub mac: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub struct EnrolResponse {
    pub station_id: u32,
    pub name: String,
    pub cert_pem: String,
    pub ca_pem: String,
    pub station_link_port: u16,
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn enrol(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<EnrolRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let key = format!("enrol:{}", peer.ip());
    let now = Instant::now();
    if let Err(left) = state
        .throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(&key, now)
    {
        return Err(ApiError::TooManyRequests(format!(
            "too many bad enrolment codes from {}; wait {} s",
            peer.ip(),
            left.as_secs()
        )));
    }
    let hostname: String = req
        .hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect::<String>()
        .to_ascii_lowercase();
    if hostname.is_empty() {
        return Err(ApiError::BadRequest(
            "'hostname' must contain letters or digits".into(),
        ));
    }
    let mac = match req.mac.as_deref() {
        Some(m) if valid_mac(m) => Some(m.to_ascii_lowercase()),
        Some(m) => {
            return Err(ApiError::BadRequest(format!(
                "'mac' must look like aa:bb:cc:dd:ee:ff, got '{}'",
                m.chars().take(32).collect::<String>()
            )))
        }
        None => None,
    };
    let ca = state.ca.clone();
    let now_us = lanterne_wire::now_us() as i64;
    let code = req.code.clone();
    let csr = req.csr_pem.clone();
    let outcome = state
        .store
        .run(move |c| {
            let tx = c.unchecked_transaction()?;
            let name = store::unique_station_name(&tx, &hostname)?;
            let id = store::insert_station(&tx, &name, &hostname, mac.as_deref(), now_us)?;
            match store::redeem_enrol_code(&tx, &code, now_us, id)? {
                Redeem::Ok => {}
                other => return Ok(Err(other)),
            }
            let (cert_pem, fp) = match ca.sign_station_csr(&csr, id) {
                Ok(x) => x,
                Err(e) => return Ok(Ok(Err(e.to_string()))),
            };
            store::finish_station(&tx, id, &fp)?;
            tx.commit()?;
            Ok(Ok(Ok((id, name, hostname, mac, cert_pem, fp))))
        })
        .await?;
    let (id, name, hostname, mac, cert_pem, fp) = match outcome {
        Err(redeem) => {
            state
                .throttle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .failed(&key, now);
            let why = match redeem {
                Redeem::Unknown => "unknown enrolment code",
                Redeem::Expired => "this enrolment code has expired",
                Redeem::AlreadyUsed => "this enrolment code was already used",
                Redeem::Ok => unreachable!("Ok is not an error"),
            };
            audit(
                &state,
                &format!("station@{}", peer.ip()),
                "enrol",
                &req.hostname,
                "refused",
                why,
            )
            .await;
            return Err(ApiError::Forbidden(why.into()));
        }
        Ok(Err(bad_csr)) => return Err(ApiError::BadRequest(bad_csr)),
        Ok(Ok(x)) => x,
    };
    info!(station = %name, id, %peer, "station enrolled");
    audit(
        &state,
        &format!("station@{}", peer.ip()),
        "enrol",
        &name,
        "ok",
        &fp[..16],
    )
    .await;
    state
        .room
        .enrolled(store::StationRow {
            id,
            name: name.clone(),
            hostname,
            mac,
            cert_fingerprint: fp,
        })
        .await;
    Ok(Json(EnrolResponse {
        station_id: id,
        name,
        cert_pem,
        ca_pem: state.ca.cert_pem().to_string(),
        station_link_port: state.station_link_port,
    }))
}

// ---- video WebSockets ----

/// Largest message a tablet may send us; it only sends pings and closes.
const WS_MAX_IN: usize = 4 * 1024;
/// Minimum time between keyframe requests caused by one slow viewer.
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);

pub fn video_message(
    keyframe: bool,
    seq: u64,
    capture_us: u64,
    updates: &[(u16, u64)],
    au: &[u8],
) -> Bytes {
    let mut b = BytesMut::with_capacity(20 + updates.len() * 10 + au.len());
    b.put_u8(1);
    b.put_u8(u8::from(keyframe));
    b.put_u64(seq);
    b.put_u64(capture_us);
    b.put_u16(updates.len() as u16);
    for (tile, ts) in updates {
        b.put_u16(*tile);
        b.put_u64(*ts);
    }
    b.put_slice(au);
    b.freeze()
}

/// What one viewer's decoder can take next. A browser decoder must be configured with the
/// codec (from the SPS) before its first keyframe and again when the codec changes, and after
/// a gap it can only restart at a keyframe.
struct ViewerGate {
    codec: Option<String>,
    need_key: bool,
    last_key_request: Option<Instant>,
}

enum Admit {
    Skip,
    /// Send the frame, preceded by this config message when there is one.
    Send {
        config: Option<Message>,
    },
}

impl ViewerGate {
    fn new() -> Self {
        ViewerGate {
            codec: None,
            need_key: true,
            last_key_request: None,
        }
    }

    fn admit(&mut self, keyframe: bool, au: &[u8]) -> Admit {
        if self.need_key && !keyframe {
            return Admit::Skip;
        }
        let mut config = None;
        if keyframe {
            if let Some(c) = lanterne_media::codec_string(au) {
                if self.codec.as_deref() != Some(c.as_str()) {
                    config = Some(config_message(&c));
                    self.codec = Some(c);
                }
            }
        }
        if self.codec.is_none() {
            return Admit::Skip;
        }
        self.need_key = false;
        Admit::Send { config }
    }

    /// The viewer fell behind: wait for a keyframe. True when one should be requested now
    /// (at most every [`KEYFRAME_REQUEST_GAP`]).
    fn lagged(&mut self) -> bool {
        self.need_key = true;
        let due = self
            .last_key_request
            .is_none_or(|t| t.elapsed() >= KEYFRAME_REQUEST_GAP);
        if due {
            self.last_key_request = Some(Instant::now());
        }
        due
    }
}

fn config_message(codec: &str) -> Message {
    Message::Text(
        serde_json::json!({ "type": "config", "codec": codec })
            .to_string()
            .into(),
    )
}

fn layout_message(view: &RoomView) -> Message {
    Message::Text(
        serde_json::json!({
            "type": "layout",
            "width": view.mosaic.width,
            "height": view.mosaic.height,
            "tiles": view.mosaic.tiles,
        })
        .to_string()
        .into(),
    )
}

async fn mosaic_ws(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(WS_MAX_IN)
        .on_upgrade(move |socket| mosaic_session(socket, state, acc))
}

async fn mosaic_session(socket: WebSocket, state: AppState, acc: Account) {
    audit(&state, &acc.username, "view-mosaic", "room", "started", "").await;
    let mut frames = state.mosaic.subscribe();
    state.mosaic.request_keyframe();
    let mut view = state.room.view();
    let (mut tx, mut rx) = socket.split();
    let mut gate = ViewerGate::new();
    let first = layout_message(&view.borrow_and_update());
    let mut alive = tx.send(first).await.is_ok();
    while alive {
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() { break; }
                let msg = layout_message(&view.borrow_and_update());
                alive = tx.send(msg).await.is_ok();
            }
            f = frames.recv() => match f {
                Ok(f) => {
                    let Admit::Send { config } = gate.admit(f.keyframe, &f.data) else { continue };
                    if let Some(config) = config {
                        alive = tx.send(config).await.is_ok();
                    }
                    let newest = f.updates.iter().map(|u| u.1).max().unwrap_or(0);
                    let msg = video_message(f.keyframe, f.seq, newest, &f.updates, &f.data);
                    alive = alive && tx.send(Message::Binary(msg)).await.is_ok();
                }
                Err(RecvError::Lagged(n)) => {
                    // This tablet is slower than the stream: skip to the next keyframe.
                    warn!(user = %acc.username, skipped = n, "mosaic viewer lagging; resyncing at next keyframe");
                    if gate.lagged() {
                        state.mosaic.request_keyframe();
                    }
                }
                Err(RecvError::Closed) => break,
            },
            m = rx.next() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    audit(&state, &acc.username, "view-mosaic", "room", "ended", "").await;
}

async fn focus_ws(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Path(id): Path<u32>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let sub = match state.room.open_focus(id).await {
        Ok(s) => s,
        Err(FocusError::Unknown) => return Err(ApiError::NotFound(format!("no station {id}"))),
        Err(FocusError::Offline) => {
            return Err(ApiError::Conflict(format!("station {id} is offline")))
        }
        Err(e @ FocusError::OutsideMonitoring { .. }) => {
            audit(
                &state,
                &acc.username,
                "view-station",
                &id.to_string(),
                "refused",
                "outside monitoring hours",
            )
            .await;
            return Err(ApiError::Forbidden(e.to_string()));
        }
    };
    Ok(ws
        .max_message_size(WS_MAX_IN)
        .on_upgrade(move |socket| focus_session(socket, state, acc, sub)))
}

async fn focus_session(
    socket: WebSocket,
    state: AppState,
    acc: Account,
    mut sub: crate::room::FocusSubscription,
) {
    let target = sub.station_name.clone();
    audit(
        &state,
        &acc.username,
        "view-station",
        &target,
        "started",
        "",
    )
    .await;
    let (mut tx, mut rx) = socket.split();
    let mut gate = ViewerGate::new();
    let mut alive = true;
    while alive {
        tokio::select! {
            ended = sub.ended.changed() => {
                if ended.is_err() || *sub.ended.borrow() {
                    let reason = if state.room.view().borrow().monitoring {
                        "station-offline"
                    } else {
                        "outside-monitoring-hours"
                    };
                    let msg = serde_json::json!({"type": "ended", "reason": reason});
                    let _ = tx.send(Message::Text(msg.to_string().into())).await;
                    break;
                }
            }
            f = sub.frames.recv() => match f {
                Ok(f) => {
                    let Admit::Send { config } = gate.admit(f.keyframe, &f.data) else { continue };
                    if let Some(config) = config {
                        alive = tx.send(config).await.is_ok();
                    }
                    let msg = video_message(f.keyframe, f.seq, f.capture_us, &[], &f.data);
                    alive = alive && tx.send(Message::Binary(msg)).await.is_ok();
                }
                Err(RecvError::Lagged(n)) => {
                    warn!(user = %acc.username, station = %target, skipped = n, "focus viewer lagging; resyncing at next keyframe");
                    if gate.lagged() {
                        sub.request_keyframe();
                    }
                }
                Err(RecvError::Closed) => {
                    let msg = serde_json::json!({"type": "ended", "reason": "station-offline"});
                    let _ = tx.send(Message::Text(msg.to_string().into())).await;
                    break;
                }
            },
            m = rx.next() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    audit(&state, &acc.username, "view-station", &target, "ended", "").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route added to `router` must be listed in SESSION_ROUTES or PUBLIC_ROUTES, so the
    /// unauthenticated-access scenario covers it.
    #[test]
    fn every_route_is_listed_for_the_unauthenticated_check() {
        let src = include_str!("web.rs");
        let body =
            &src[src.find("pub fn router(").unwrap()..src.find("pub async fn serve(").unwrap()];
        let (mut methods, mut lines) = (0, 0);
        for line in body
            .lines()
            .filter(|l| l.trim_start().starts_with(".route(\""))
        {
            let path = line.split('"').nth(1).unwrap();
            if PUBLIC_ROUTES.contains(&path) {
                continue;
            }
            lines += 1;
            let n = line.matches("get(").count() + line.matches("post(").count();
            assert!(n > 0, "route {path}: its methods are not on its line");
            methods += n;
            let listed = SESSION_ROUTES
                .iter()
                .filter(|(_, p)| {
                    let pattern: Vec<&str> = path.split('/').collect();
                    let example: Vec<&str> = p.split('/').collect();
                    pattern.len() == example.len()
                        && pattern
                            .iter()
                            .zip(&example)
                            .all(|(a, b)| a.starts_with('{') || a == b)
                })
                .count();
            assert_eq!(
                listed, n,
                "route {path} ({n} methods) is not fully listed in SESSION_ROUTES"
            );
        }
        assert_eq!(methods, SESSION_ROUTES.len());
        for p in PUBLIC_ROUTES {
            assert!(
                body.contains(&format!("\"{p}\"")),
                "public route {p} not in the router"
            );
        }
        assert_eq!(
            body.matches(".route(").count(),
            lines + PUBLIC_ROUTES.len(),
            "a route is neither listed as needing a session nor as public"
        );
    }

    #[test]
    fn video_message_layout_matches_the_documented_format() {
        let m = video_message(true, 7, 99, &[(3, 1234)], &[0, 0, 0, 1, 0x65]);
        assert_eq!(m[0], 1);
        assert_eq!(m[1], 1);
        assert_eq!(u64::from_be_bytes(m[2..10].try_into().unwrap()), 7);
        assert_eq!(u64::from_be_bytes(m[10..18].try_into().unwrap()), 99);
        assert_eq!(u16::from_be_bytes(m[18..20].try_into().unwrap()), 1);
        assert_eq!(u16::from_be_bytes(m[20..22].try_into().unwrap()), 3);
        assert_eq!(u64::from_be_bytes(m[22..30].try_into().unwrap()), 1234);
        assert_eq!(&m[30..], &[0, 0, 0, 1, 0x65]);
    }

    #[test]
    fn viewer_gate_starts_at_a_keyframe_and_resyncs_after_a_lag() {
        // SPS (constrained baseline, level 3.0) + IDR slice.
        let idr = [
            0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0, 0, 0, 1, 0x65, 0x88,
        ];
        let p = [0, 0, 0, 1, 0x41, 0x9a];
        let mut g = ViewerGate::new();
        assert!(matches!(g.admit(false, &p), Admit::Skip));
        match g.admit(true, &idr) {
            Admit::Send {
                config: Some(Message::Text(t)),
            } => {
                assert!(t.as_str().contains("avc1.42c01e"), "{}", t.as_str())
            }
            _ => panic!("the first keyframe comes with its config"),
        }
        assert!(matches!(g.admit(false, &p), Admit::Send { config: None }));
        assert!(g.lagged(), "first lag asks for a keyframe");
        assert!(!g.lagged(), "but not again right away");
        assert!(matches!(g.admit(false, &p), Admit::Skip));
        assert!(matches!(g.admit(true, &idr), Admit::Send { config: None }));
    }

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

    #[test]
    fn mac_validation() {
        assert!(valid_mac("aa:bb:cc:dd:ee:ff"));
        assert!(valid_mac("AA:01:cc:dd:ee:ff"));
        assert!(!valid_mac("aa:bb:cc:dd:ee"));
        assert!(!valid_mac("aa:bb:cc:dd:ee:fg"));
        assert!(!valid_mac("aabb.ccdd.eeff"));
    }
}
