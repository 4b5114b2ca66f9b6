//! The one authorization path: "may this account do this action now?", asked before every
//! handler that needs a session, and by handlers whose action depends on what they are asked
//! (a demo of a student's screen).
//!
//! The answer is `lanterne_privacy::policy::decide_in_room`: the role first, then settings
//! (screenshots), then the monitoring hours for actions that let someone see a student's
//! screen (none at all in a room without a schedule: fail closed). Every refusal is recorded
//! in the audit log and answered 403 with the reason, a French and an English sentence, and
//! when waiting helps, the next time it is allowed.

use super::*;
use lanterne_privacy::policy::{self, Clock, Decision, DenyReason, PolicyConfig};
use lanterne_privacy::schedule::Schedule;

/// What authorization decides with.
#[derive(Clone)]
pub struct Policy {
    /// None: no monitoring at all.
    pub schedule: Option<Arc<Schedule>>,
    pub config: PolicyConfig,
    /// The room's clock (a manual one in tests).
    pub clock: Arc<dyn Clock + Send + Sync>,
}

impl Policy {
    /// The decision for `role` and `action` now.
    pub fn decide(&self, role: store::Role, action: Action) -> Decision {
        policy::decide_in_room(
            policy_role(role),
            action,
            self.clock.now(),
            self.schedule.as_deref(),
            &self.config,
        )
    }
}

pub(super) fn policy_role(role: store::Role) -> policy::Role {
    match role {
        store::Role::Admin => policy::Role::Admin,
        store::Role::Teacher => policy::Role::Teacher,
        store::Role::Technician => policy::Role::Technician,
    }
}

/// Asks the policy whether `acc` may do `action` now; a refusal is audited (`target` names
/// what it was about) and comes back as the 403 to send.
pub async fn authorize(
    state: &AppState,
    acc: &Account,
    action: Action,
    target: &str,
) -> Result<(), Response> {
    let decision = state.policy.decide(acc.role, action);
    let Decision::Deny {
        reason,
        next_allowed,
    } = decision
    else {
        return Ok(());
    };
    let denied = decision.into_result().unwrap_err();
    state
        .audit
        .account(
            &acc.username,
            action.name(),
            target,
            "refused",
            &reason.to_string(),
        )
        .await;
    let mut body = serde_json::json!({
        "error": denied.to_string(),
        "reason": reason,
        "action": action,
        "explain": {
            "fr": decision.explain(lanterne_privacy::Lang::Fr),
            "en": decision.explain(lanterne_privacy::Lang::En),
        },
    });
    if let Some(t) = next_allowed {
        body["next_allowed"] =
            serde_json::Value::String(format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute()));
    }
    if reason == DenyReason::ScreenshotsDisabled {
        // The admin page reads this flag to say where the setting is.
        body["screenshots_disabled"] = serde_json::Value::Bool(true);
    }
    Err((StatusCode::FORBIDDEN, Json(body)).into_response())
}

/// The action [`ROUTES`] lists for this request's route, if any.
fn route_action(req: &Request) -> Option<Action> {
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()?
        .as_str();
    let method = req.method().as_str();
    ROUTES
        .iter()
        .find(|(m, p, _, _)| *m == method && *p == path)
        .map(|(_, _, _, a)| *a)
}

/// Route layer of the API: runs after the session layer put the [`Account`] in the request.
pub(super) async fn authorize_api(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (acc, action, method, path) = route_of(&req);
    match decide_route(&state, acc, action, &method, &path).await {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal,
    }
}

/// Route layer of the pages: a refusal is the "not for you" page, with status 403.
pub(super) async fn authorize_page(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (acc, action, method, path) = route_of(&req);
    match decide_route(&state, acc, action, &method, &path).await {
        Ok(()) => next.run(req).await,
        Err(_) => {
            let mut res = asset("forbidden.html");
            *res.status_mut() = StatusCode::FORBIDDEN;
            res
        }
    }
}

/// What the decision needs, taken out of the request first: the request body is not
/// `Sync`, so the middleware's future must not hold a reference to the request across an
/// await.
fn route_of(req: &Request) -> (Option<Account>, Option<Action>, Method, String) {
    (
        req.extensions().get::<Account>().cloned(),
        route_action(req),
        req.method().clone(),
        req.uri().path().to_string(),
    )
}

async fn decide_route(
    state: &AppState,
    acc: Option<Account>,
    action: Option<Action>,
    method: &Method,
    path: &str,
) -> Result<(), Response> {
    let Some(acc) = acc else {
        // The session layer runs first; reaching here without an account is a wiring bug.
        error!(%path, "authorization without a session");
        return Err(ApiError::Internal("authorization without a session".into()).into_response());
    };
    let Some(action) = action else {
        // Fail closed: a route missing from ROUTES is refused (a unit test prevents it).
        error!(%method, %path, "route missing from ROUTES");
        return Err(ApiError::Forbidden("this route is not open to anyone".into()).into_response());
    };
    authorize(state, &acc, action, path).await
}
