//! Every route that needs a session refuses a request without one: pages redirect to the
//! login, API routes answer 401 — including with a forged or expired cookie. The list comes
//! from the box itself (`ROUTES`), which a unit test keeps complete.

use lanterne_box::web::session_routes;
use lanterne_scenarios::BoxProcess;

#[tokio::test]
async fn every_session_route_refuses_unauthenticated_requests() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let origin = https.origin();
    for cookie in [
        None,
        Some("__Host-lanterne_session=forged-or-expired-token"),
    ] {
        for (method, path) in session_routes() {
            let mut headers = vec![("origin", origin.as_str())];
            if let Some(c) = cookie {
                headers.push(("cookie", c));
            }
            let body = (method == "POST").then(|| serde_json::json!({}));
            let res = https.request(method, path, body, &headers).await.unwrap();
            if path.starts_with("/api/") {
                assert_eq!(res.status, 401, "{method} {path} with {cookie:?}");
            } else {
                assert_eq!(res.status, 303, "{method} {path} with {cookie:?}");
                assert_eq!(res.headers["location"], "/login");
            }
        }
    }
    // The public ones stay reachable (the login page and its assets).
    assert_eq!(
        https
            .request("GET", "/login", None, &[])
            .await
            .unwrap()
            .status,
        200
    );
}
