//! Route × role: every route that needs a session, requested by an admin, a teacher and a
//! technician, inside a monitoring window with screenshots on. A route answers 403 exactly
//! when the policy's role rule refuses its action — the same table `docs/security.md`
//! prints — and never 403 otherwise. The technician is refused on every path that shows a
//! student's screen, WebSockets included.

use lanterne_box::web::{HANDLER_CHECKS, ROUTES};
use lanterne_privacy::policy::Role;
use lanterne_scenarios::{schedule_including_now, BoxProcess};
use serde_json::json;

#[tokio::test]
async fn every_route_refuses_exactly_the_roles_the_policy_refuses() {
    let config = format!(
        "[room]\nname = \"Salle 12\"\nschool = \"Collège\"\n[privacy]\nscreenshots = true\n{}",
        schedule_including_now()
    );
    let b = BoxProcess::start_with_config(&config).await.unwrap();
    let https = b.https().unwrap();
    let origin = https.origin();
    let admin = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    for (name, role) in [("prof", "teacher"), ("tech", "technician")] {
        let res = https
            .post_json(
                &admin,
                "/api/accounts",
                json!({ "username": name, "role": role, "password": "Classe-2026!" }),
            )
            .await;
        assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    }
    let mut checked = 0;
    for (role, user) in [
        (Role::Technician, "tech"),
        (Role::Teacher, "prof"),
        (Role::Admin, "admin"),
    ] {
        let password = if user == "admin" {
            b.ready.admin_password.clone().unwrap()
        } else {
            "Classe-2026!".to_string()
        };
        let mut cookie = https.login(user, &password).await.unwrap();
        // Sign-out last: it ends the session the others use.
        let mut routes: Vec<_> = ROUTES.iter().collect();
        routes.sort_by_key(|(_, p, _, _)| *p == "/api/logout");
        let ends_own_sessions = |p: &str| user == "admin" && p.ends_with("/totp/reset");
        for (method, pattern, example, action) in routes {
            let body = (*method == "POST").then(|| json!({}));
            let res = https
                .request(
                    method,
                    example,
                    body,
                    &[("cookie", cookie.as_str()), ("origin", origin.as_str())],
                )
                .await
                .unwrap();
            let refused = res.status == 403;
            // A handler that always asks a further action narrows who gets in.
            let also = HANDLER_CHECKS
                .iter()
                .find(|(m, p, _, when)| m == method && p == pattern && when.starts_with("always"))
                .map(|(_, _, a, _)| *a);
            let permitted = role.permits(*action) && also.is_none_or(|a| role.permits(a));
            assert_eq!(
                refused,
                !permitted,
                "{role:?} {method} {pattern} ({action:?}): {} {}",
                res.status,
                String::from_utf8_lossy(&res.body)
            );
            if refused && example.starts_with("/api/") {
                let body = res.json();
                assert_eq!(body["reason"]["kind"], "role_not_permitted", "{body}");
            }
            checked += 1;
            if ends_own_sessions(pattern) && !refused {
                // Resetting the admin's own second factor ended its sessions (as it must).
                cookie = https.login(user, &password).await.unwrap();
            }
        }
    }
    let admin = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(checked, 3 * ROUTES.len());

    // The technician's refusals on the watching paths, as a browser would open them.
    let tech = https.login("tech", "Classe-2026!").await.unwrap();
    for path in ["/api/mosaic", "/api/stations/1/focus"] {
        let err = https.websocket(path, &tech).await.unwrap_err().to_string();
        assert!(err.contains("403"), "{path}: {err}");
    }
    let audit = https
        .request("GET", "/api/audit.csv", None, &[("cookie", admin.as_str())])
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&audit.body);
    assert!(
        text.lines().any(|l| l.contains("\"tech\"")
            && l.contains("\"thumbnails\"")
            && l.contains("\"refused\"")),
        "refusals are in the audit log:\n{text}"
    );
}
