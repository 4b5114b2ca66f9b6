//! The box's HTTPS server: the teacher's web UI, its JSON API, the live video WebSockets and
//! station enrolment.
//!
//! Split by what each part owns:
//!
//! | module | owns |
//! |---|---|
//! | `server` | the listeners, TLS, security headers, static assets |
//! | `session` | the session cookie, the Origin check, sign-in and sign-out |
//! | `authz` | the one authorization path: every route and WebSocket asks it |
//! | `orders` | the room view and the classroom controls (lock, messages, power, commands) |
//! | `demo` | showing a screen to the class |
//! | `help` | remote help with the student's consent |
//! | `video` | the mosaic and focus WebSockets |
//! | `screenshots` | taking and reading screenshots |
//! | `enrol` | station enrolment |
//! | `account` | "my account": two-factor, recovery codes |
//! | `admin` | accounts, audit export, documents, room link, developer panel |
//! | `metrics` | `/healthz` and the Prometheus metrics |
//!
//! **Authorization.** [`ROUTES`] lists every route with what it needs: public (with the
//! reason), or a session plus one [`Action`] of the policy module. A route layer looks the
//! matched route up there and asks [`authz::authorize`] — role, monitoring hours, settings,
//! all answered by `lanterne_privacy::policy` — before any handler runs; no handler checks a
//! role itself. A handler whose action depends on its body (a demo of a student's screen
//! rather than of the teacher's PC) asks the same function for that action. Unit tests keep
//! the table complete and `docs/security.md`'s route × role table identical to it.
//!
//! Video messages on the WebSockets (big endian): version u8 = 1, flags u8 (bit 0 keyframe),
//! seq u64, capture_us u64, n u16, n × (tile u16, capture_us u64), then one H.264 access unit
//! in Annex B form. A text message `{"type":"config","codec":…}` precedes the first keyframe
//! and any codec change; `{"type":"layout",…}` describes the tiles; `{"type":"ended",…}` tells
//! a focus viewer that the station left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
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

use crate::accounts;
use crate::login_gate::{self, LoginGate};
use crate::pki::BoxCa;
use crate::room::{FocusError, RoomHandle, RoomView};
use crate::store::{self, Account, Redeem, Store};

mod account;
mod admin;
pub mod authz;
mod demo;
mod enrol;
mod help;
pub mod metrics;
mod orders;
mod screenshots;
mod server;
mod session;
mod stations;
mod video;

use account::*;
use admin::*;
use authz::authorize;
use demo::*;
use enrol::enrol;
pub use enrol::{EnrolRequest, EnrolResponse};
use help::*;
use metrics::{healthz, metrics_admin, metrics_local};
use orders::*;
use screenshots::*;
use server::*;
pub use server::{serve, serve_redirect};
use session::*;
pub use session::{SessionEnd, SessionEvents};
use stations::{delete_station, list_stations, revoke_station};
pub use video::video_message;
use video::*;

use lanterne_privacy::policy::Action;

static WEB_UI: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web-ui");

/// `__Host-`: the browser keeps it only if set over HTTPS, for this host alone, path `/`.
pub const SESSION_COOKIE: &str = "__Host-lanterne_session";
/// A teacher's session lasts a school day; they log in again the next morning.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(10 * 3600);
/// Enrolment codes are valid for a day.
pub const ENROL_CODE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub room: RoomHandle,
    pub mosaic: Arc<Mosaic>,
    pub ca: Arc<BoxCa>,
    pub station_link_port: u16,
    /// Sign-in and enrolment throttles, and the bound on argon2 runs.
    pub login_gate: LoginGate,
    /// Live sessions' end events (the video WebSockets close on them).
    pub sessions: session::SessionEvents,
    /// A session unused this long ends ([accounts] idle_timeout_minutes).
    pub idle_timeout: Duration,
    /// Where the first admin's generated password was written (removed when it is changed).
    pub first_password_file: Option<std::path::PathBuf>,
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
    /// The one audit writer.
    pub audit: crate::audit::AuditLog,
    /// What the authorization path decides with: the schedule, the policy settings, the clock.
    pub policy: authz::Policy,
    /// `[metrics]` and the counters only the web side sees.
    pub metrics: Arc<metrics::Metrics>,
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

/// Every route that needs a session: (method, route pattern, example path, action). The
/// action is what [`authz::authorize`] is asked before the handler runs. Pages answer 303 →
/// /login without a session, API routes 401; the scenario `tests/scenarios/tests/
/// unauthenticated.rs` requests each example, and `route_matrix.rs` each one with each role.
/// A unit test below checks that every `.route(` of [`router`] is listed here or in
/// [`PUBLIC_ROUTES`], so a new route cannot skip either check.
pub const ROUTES: &[(&str, &str, &str, Action)] = &[
    ("GET", "/", "/", Action::ViewRoom),
    ("GET", "/room", "/room", Action::ViewRoom),
    ("GET", "/dev", "/dev", Action::AdminConfig),
    ("GET", "/admin", "/admin", Action::AdminConfig),
    ("GET", "/account", "/account", Action::OwnAccount),
    ("GET", "/api/me", "/api/me", Action::OwnAccount),
    ("GET", "/api/room", "/api/room", Action::ViewRoom),
    ("GET", "/api/metrics", "/api/metrics", Action::AdminConfig),
    ("POST", "/api/logout", "/api/logout", Action::OwnAccount),
    (
        "DELETE",
        "/api/accounts/{name}",
        "/api/accounts/admin",
        Action::ManageAccounts,
    ),
    (
        "GET",
        "/api/stations",
        "/api/stations",
        Action::ManageStations,
    ),
    (
        "POST",
        "/api/stations/{id}/revoke",
        "/api/stations/1/revoke",
        Action::ManageStations,
    ),
    (
        "DELETE",
        "/api/stations/{id}",
        "/api/stations/1",
        Action::ManageStations,
    ),
    (
        "GET",
        "/api/accounts",
        "/api/accounts",
        Action::ManageAccounts,
    ),
    (
        "POST",
        "/api/accounts",
        "/api/accounts",
        Action::ManageAccounts,
    ),
    (
        "POST",
        "/api/accounts/{name}/disabled",
        "/api/accounts/admin/disabled",
        Action::ManageAccounts,
    ),
    (
        "POST",
        "/api/accounts/{name}/password",
        "/api/accounts/admin/password",
        Action::ManageAccounts,
    ),
    (
        "POST",
        "/api/accounts/{name}/totp/reset",
        "/api/accounts/admin/totp/reset",
        Action::ManageAccounts,
    ),
    (
        "POST",
        "/api/room/link",
        "/api/room/link",
        Action::AdminConfig,
    ),
    ("GET", "/api/audit", "/api/audit", Action::AuditExport),
    (
        "GET",
        "/api/audit.csv",
        "/api/audit.csv",
        Action::AuditExport,
    ),
    (
        "POST",
        "/api/account/totp/setup",
        "/api/account/totp/setup",
        Action::OwnAccount,
    ),
    (
        "POST",
        "/api/account/totp/confirm",
        "/api/account/totp/confirm",
        Action::OwnAccount,
    ),
    ("GET", "/api/account", "/api/account", Action::OwnAccount),
    (
        "POST",
        "/api/account/recovery-codes",
        "/api/account/recovery-codes",
        Action::OwnAccount,
    ),
    (
        "POST",
        "/api/account/password",
        "/api/account/password",
        Action::OwnAccount,
    ),
    (
        "POST",
        "/api/stations/{id}/screenshot",
        "/api/stations/1/screenshot",
        Action::Screenshot,
    ),
    (
        "GET",
        "/api/screenshots",
        "/api/screenshots",
        Action::ReadScreenshots,
    ),
    (
        "GET",
        "/api/screenshots/{file}",
        "/api/screenshots/1.png",
        Action::ReadScreenshots,
    ),
    ("POST", "/api/room/lock", "/api/room/lock", Action::Lock),
    (
        "POST",
        "/api/stations/{id}/hand/clear",
        "/api/stations/1/hand/clear",
        Action::ClearHand,
    ),
    ("POST", "/api/messages", "/api/messages", Action::Message),
    ("GET", "/api/messages", "/api/messages", Action::Message),
    (
        "POST",
        "/api/stations/wake",
        "/api/stations/wake",
        Action::Power,
    ),
    (
        "POST",
        "/api/stations/power",
        "/api/stations/power",
        Action::Power,
    ),
    (
        "POST",
        "/api/stations/open-url",
        "/api/stations/open-url",
        Action::OpenUrl,
    ),
    (
        "GET",
        "/api/documents/poster.html",
        "/api/documents/poster.html",
        Action::ReadNotice,
    ),
    (
        "GET",
        "/api/documents/poster.pdf",
        "/api/documents/poster.pdf",
        Action::ReadNotice,
    ),
    (
        "GET",
        "/api/documents/gdpr.md",
        "/api/documents/gdpr.md",
        Action::AuditExport,
    ),
    (
        "GET",
        "/api/documents/gdpr.json",
        "/api/documents/gdpr.json",
        Action::AuditExport,
    ),
    ("GET", "/api/commands", "/api/commands", Action::RunCommand),
    (
        "POST",
        "/api/commands/run",
        "/api/commands/run",
        Action::RunCommand,
    ),
    (
        "GET",
        "/api/commands/runs/{id}",
        "/api/commands/runs/1",
        Action::RunCommand,
    ),
    // Results of power and open-URL orders: the same teachers' controls.
    ("GET", "/api/orders/{id}", "/api/orders/1", Action::Power),
    (
        "GET",
        "/api/dev/panel",
        "/api/dev/panel",
        Action::AdminConfig,
    ),
    (
        "POST",
        "/api/dev/panel/press",
        "/api/dev/panel/press",
        Action::AdminConfig,
    ),
    // Tile states at any hour; the handler also asks `Thumbnails` (see HANDLER_CHECKS).
    ("GET", "/api/mosaic", "/api/mosaic", Action::ViewRoom),
    (
        "GET",
        "/api/stations/{id}/focus",
        "/api/stations/1/focus",
        Action::Focus,
    ),
    // Remote help: at any hour; the room checks the student's consent and the helper.
    (
        "GET",
        "/api/stations/{id}/help",
        "/api/stations/1/help",
        Action::RemoteHelp,
    ),
    (
        "POST",
        "/api/stations/{id}/help",
        "/api/stations/1/help",
        Action::RemoteHelp,
    ),
    (
        "POST",
        "/api/stations/{id}/help/input",
        "/api/stations/1/help/input",
        Action::RemoteHelp,
    ),
    (
        "POST",
        "/api/stations/{id}/help/stop",
        "/api/stations/1/help/stop",
        Action::RemoteHelp,
    ),
    (
        "GET",
        "/api/stations/{id}/help/video",
        "/api/stations/1/help/video",
        Action::RemoteHelp,
    ),
    // A student's screen as the source also needs `DemoOfStudent` (asked by the handler).
    ("POST", "/api/demo", "/api/demo", Action::DemoOfTeacher),
    (
        "POST",
        "/api/demo/stop",
        "/api/demo/stop",
        Action::DemoOfTeacher,
    ),
];

/// Actions some handlers ask the same authorization function for, beyond their route's:
/// (method, route pattern, action, when).
pub const HANDLER_CHECKS: &[(&str, &str, Action, &str)] = &[
    (
        "GET",
        "/api/mosaic",
        Action::Thumbnails,
        "always: the role decides whether the socket opens, the hours whether video flows",
    ),
    (
        "POST",
        "/api/demo",
        Action::DemoOfStudent,
        "when the source is a student's station",
    ),
];

/// The route × role table of `docs/security.md`, made from [`ROUTES`] and the policy's role
/// rule (a unit test keeps the document identical to it).
pub fn route_role_table() -> String {
    use lanterne_privacy::policy::Role;
    let mark = |role: Role, action: Action| {
        if role.permits(action) {
            "yes"
        } else {
            "**no**"
        }
    };
    let mut t = String::from(
        "| method | route | action | admin | teacher | technician |\n|---|---|---|---|---|---|\n",
    );
    for (method, pattern, _, action) in ROUTES {
        let extra = HANDLER_CHECKS
            .iter()
            .find(|(m, p, _, _)| m == method && p == pattern);
        let name = match extra {
            Some((_, _, a, when)) => format!("{}, and {} ({when})", action.name(), a.name()),
            None => action.name().to_string(),
        };
        // An unconditional handler check narrows who gets in.
        let mark = |role: Role| match extra {
            Some((_, _, a, w)) if w.starts_with("always") => {
                if role.permits(*action) && role.permits(*a) {
                    "yes"
                } else {
                    "**no**"
                }
            }
            _ => mark(role, *action),
        };
        t.push_str(&format!(
            "| {method} | `{pattern}` | {name} | {} | {} | {} |\n",
            mark(Role::Admin),
            mark(Role::Teacher),
            mark(Role::Technician),
        ));
    }
    t
}

/// Every route that needs a session, as (method, example path): [`ROUTES`] without the
/// patterns, for the scenario tests.
pub fn session_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    ROUTES.iter().map(|(m, _, example, _)| (*m, *example))
}

/// Routes reachable without a session, each for a reason: the login page and its API, the
/// static assets, the room link (leads to the login), station enrolment (authenticated
/// by its one-time code), the health check (answers "ok" and nothing else) and the metrics
/// for programs on the box itself (off by default; refused to any peer but loopback:
/// [`metrics::local_access`]).
pub const PUBLIC_ROUTES: &[&str] = &[
    "/login",
    "/assets/{*path}",
    "/api/login",
    "/r/{token}",
    "/api/enrol",
    "/healthz",
    "/metrics",
];

pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/room") }))
        .route("/room", get(|| async { asset("room.html") }))
        .route("/admin", get(admin_page))
        .route("/account", get(account_page))
        // The simulated panel's page; its API refuses anyone but admins of a simulated box.
        .route("/dev", get(|| async { asset("dev.html") }))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            authz::authorize_page,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_page_session,
        ));
    let api = Router::new()
        .route("/api/me", get(me))
        .route("/api/room", get(room_view))
        .route("/api/metrics", get(metrics_admin))
        .route("/api/logout", post(logout))
        .route("/api/accounts", get(list_accounts).post(create_account))
        .route("/api/accounts/{name}/disabled", post(disable_account))
        .route("/api/accounts/{name}/password", post(reset_password))
        .route("/api/accounts/{name}/totp/reset", post(reset_two_factor))
        .route("/api/accounts/{name}", delete(delete_account))
        .route("/api/stations", get(list_stations))
        .route("/api/stations/{id}/revoke", post(revoke_station))
        .route("/api/stations/{id}", delete(delete_station))
        .route("/api/room/link", post(regenerate_room_link))
        .route("/api/audit", get(audit_json))
        .route("/api/audit.csv", get(audit_csv))
        .route("/api/account/totp/setup", post(totp_setup))
        .route("/api/account/totp/confirm", post(totp_confirm))
        .route("/api/account", get(account_status))
        .route("/api/account/recovery-codes", post(new_recovery_codes))
        .route("/api/account/password", post(change_own_password))
        .route("/api/stations/{id}/screenshot", post(take_screenshot))
        .route("/api/screenshots", get(list_screenshots))
        .route("/api/screenshots/{file}", get(screenshot_png))
        .route("/api/room/lock", post(lock_room))
        .route("/api/stations/{id}/hand/clear", post(clear_hand))
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
        .route("/api/stations/{id}/help", get(help_status).post(ask_help))
        .route("/api/stations/{id}/help/input", post(help_input))
        .route("/api/stations/{id}/help/stop", post(stop_help))
        .route("/api/stations/{id}/help/video", get(help_video_ws))
        .route("/api/demo", post(start_demo))
        .route("/api/demo/stop", post(stop_demo))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            authz::authorize_api,
        ))
        .route_layer(middleware::from_fn_with_state(
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
        .route("/api/enrol", post(enrol))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_local));
    Router::new()
        .merge(pages)
        .merge(api)
        .merge(public)
        .fallback(|| async { ApiError::NotFound("no such page".into()) })
        .layer(DefaultBodyLimit::max(32 * 1024))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route added to `router` must be listed in ROUTES or PUBLIC_ROUTES, so the
    /// unauthenticated-access scenario covers it.
    /// `docs/security.md` shows exactly what the code enforces.
    #[test]
    fn the_security_doc_route_table_matches_the_code() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/security.md"
        ))
        .expect("docs/security.md");
        let start = doc
            .find("<!-- route-table:start -->\n")
            .expect("route table start marker")
            + "<!-- route-table:start -->\n".len();
        let end = doc.find("<!-- route-table:end -->").expect("end marker");
        let expected = route_role_table();
        assert!(
            doc[start..end] == expected,
            "docs/security.md's route table is out of date; replace it with:\n{expected}"
        );
    }

    #[test]
    fn every_route_is_listed_for_the_unauthenticated_check() {
        let src = include_str!("web.rs");
        let body = &src[src.find("pub fn router(").unwrap()..src.find("#[cfg(test)]").unwrap()];
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
            let on_line: Vec<&str> = [("get(", "GET"), ("post(", "POST"), ("delete(", "DELETE")]
                .into_iter()
                .filter(|(call, _)| line.contains(call))
                .map(|(_, method)| method)
                .collect();
            let n = on_line.len();
            assert!(n > 0, "route {path}: its methods are not on its line");
            methods += n;
            let listed = ROUTES
                .iter()
                .filter(|(m, p, _, _)| *p == path && on_line.contains(m))
                .count();
            assert_eq!(
                listed, n,
                "route {path} ({n} methods) is not fully listed in ROUTES"
            );
        }
        assert_eq!(methods, ROUTES.len());
        // Each example path is an instance of its pattern (the scenario tests request it).
        for (_, pattern, example, _) in ROUTES {
            let p: Vec<&str> = pattern.split('/').collect();
            let e: Vec<&str> = example.split('/').collect();
            assert!(
                p.len() == e.len() && p.iter().zip(&e).all(|(a, b)| a.starts_with('{') || a == b),
                "{example} is not an instance of {pattern}"
            );
        }
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
}
