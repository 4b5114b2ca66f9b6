//! Personal accounts managed by an admin (P6), role limits, and the audit log export (P4).

use lanterne_scenarios::BoxProcess;

#[tokio::test]
async fn admins_manage_accounts_and_teachers_cannot_reach_admin_functions() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let admin = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();

    // The school's password rule.
    let res = https.post_json(&admin,
        "/api/accounts",
        serde_json::json!({ "username": "mme.lefevre", "role": "teacher", "password": "faible" }),
    )
    .await;
    assert_eq!(res.status, 400);
    assert!(res.json()["error"].as_str().unwrap().contains("'password'"));
    let res = https.post_json(&admin, "/api/accounts", serde_json::json!({ "username": "mme.lefevre", "role": "teacher", "password": "Tableau-2026" })).await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    let res = https.post_json(&admin, "/api/accounts", serde_json::json!({ "username": "mme.lefevre", "role": "teacher", "password": "Tableau-2026" })).await;
    assert_eq!(res.status, 409, "no duplicate accounts");

    let teacher = https.login("mme.lefevre", "Tableau-2026").await.unwrap();
    // A teacher uses the room…
    let res = https
        .request("GET", "/api/room", None, &[("cookie", &teacher)])
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    // …but not the admin functions.
    for path in [
        "/api/accounts",
        "/api/audit",
        "/api/audit.csv",
        "/api/documents/gdpr.json",
        "/api/dev/panel",
    ] {
        let res = https
            .request("GET", path, None, &[("cookie", &teacher)])
            .await
            .unwrap();
        assert_eq!(res.status, 403, "{path}");
    }
    let res = https
        .post_json(
            &teacher,
            "/api/accounts",
            serde_json::json!({ "username": "x", "role": "admin", "password": "Tableau-2026" }),
        )
        .await;
    assert_eq!(res.status, 403);

    // Disabling ends the teacher's session at once.
    let res = https
        .post_json(
            &admin,
            "/api/accounts/mme.lefevre/disabled",
            serde_json::json!({ "disabled": true }),
        )
        .await;
    assert_eq!(res.status, 204);
    let res = https
        .request("GET", "/api/room", None, &[("cookie", &teacher)])
        .await
        .unwrap();
    assert_eq!(res.status, 401);
    assert!(https.login("mme.lefevre", "Tableau-2026").await.is_err());
    https
        .post_json(
            &admin,
            "/api/accounts/mme.lefevre/disabled",
            serde_json::json!({ "disabled": false }),
        )
        .await;
    let res = https
        .post_json(
            &admin,
            "/api/accounts/mme.lefevre/password",
            serde_json::json!({ "password": "Nouveau-Mot-2026" }),
        )
        .await;
    assert_eq!(res.status, 204);
    assert!(https.login("mme.lefevre", "Tableau-2026").await.is_err());
    https
        .login("mme.lefevre", "Nouveau-Mot-2026")
        .await
        .unwrap();

    // Everything above is in the audit log, filterable and exportable.
    let rows = https
        .request(
            "GET",
            "/api/audit?actor=admin&action=create-account",
            None,
            &[("cookie", &admin)],
        )
        .await
        .unwrap()
        .json();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["target"], "mme.lefevre");
    let res = https
        .request("GET", "/api/audit.csv", None, &[("cookie", &admin)])
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    let csv = String::from_utf8(res.body.to_vec()).unwrap();
    assert!(csv.starts_with("id,at_us,actor,action,target,result,detail\n"));
    assert!(csv.contains("\"disable-account\",\"mme.lefevre\""), "{csv}");
    assert!(csv.contains("\"login\""));
    let res = https
        .request(
            "GET",
            "/api/audit?limit=notanumber",
            None,
            &[("cookie", &admin)],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 400);
}
