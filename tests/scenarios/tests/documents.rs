//! The room notice (P2) and the GDPR record (P4) served by the box from its live
//! configuration, and refused with the reason when the configuration cannot support them.

use lanterne_scenarios::BoxProcess;

const CONFIG: &str = "[room]\nname = \"CDI\"\nschool = \"Lycée Jean Moulin\"\nkind = \"library\"\n\
    [panel]\nbackend = \"simulated\"\n[privacy]\naudit_retention_days = 200\n[schedule]\n\
    access = [{ days = [\"mon\", \"tue\", \"thu\", \"fri\"], start = \"08:00\", end = \"18:00\" }]\n\
    monitoring = [{ days = [\"mon\", \"tue\", \"thu\", \"fri\"], start = \"09:15\", end = \"11:45\" }]\n";

#[tokio::test]
async fn notice_and_gdpr_record_come_from_the_live_configuration() {
    let b = BoxProcess::start_with_config(CONFIG).await.unwrap();
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let auth = [("cookie", cookie.as_str())];
    let get = |path: &'static str| https.request("GET", path, None, &auth);

    let res = get("/api/documents/poster.html").await.unwrap();
    assert_eq!(res.status, 200);
    // Times are written with non-breaking spaces ("9 h 15" never splits across lines).
    let html = String::from_utf8(res.body.to_vec())
        .unwrap()
        .replace("&nbsp;", " ")
        .replace(['\u{a0}', '\u{202f}'], " ");
    assert!(
        // (the apostrophes are HTML-escaped)
        html.contains("contrôle visuel de leur utilisation sur les plages horaires suivantes"),
        "library wording"
    );
    assert!(
        html.contains("9 h 15") && html.contains("11 h 45"),
        "the configured hours"
    );
    assert!(html.contains("Lycée Jean Moulin") && html.contains("CDI"));
    let csp = res.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    let res = get("/api/documents/poster.pdf").await.unwrap();
    assert_eq!(res.status, 200);
    assert!(res.body.starts_with(b"%PDF-"), "a PDF");
    assert!(res.body.len() > 10_000);

    let res = get("/api/documents/gdpr.json").await.unwrap();
    assert_eq!(res.status, 200);
    let text = String::from_utf8(res.body.to_vec()).unwrap();
    assert!(
        text.contains("200"),
        "the configured audit retention is stated"
    );
    assert!(text.contains("Lycée Jean Moulin"));
    let res = get("/api/documents/gdpr.md").await.unwrap();
    assert_eq!(res.status, 200);
    assert!(String::from_utf8(res.body.to_vec())
        .unwrap()
        .contains("Aucun destinataire"));

    // Without a session, nothing.
    let res = https
        .request("GET", "/api/documents/gdpr.json", None, &[])
        .await
        .unwrap();
    assert_eq!(res.status, 401);
}

#[tokio::test]
async fn without_a_schedule_the_documents_say_what_is_missing() {
    let b = BoxProcess::start_unscheduled().await.unwrap();
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .request(
            "GET",
            "/api/documents/poster.html",
            None,
            &[("cookie", &cookie)],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 409);
    assert!(res.json()["error"].as_str().unwrap().contains("[schedule]"));
}
