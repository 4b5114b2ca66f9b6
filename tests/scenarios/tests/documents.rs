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

/// Issue 11: every claim the poster and the GDPR record make about remote help is checked
/// against the code that makes it true; with remote help turned off, no document says a word
/// about it and the box refuses it.
#[tokio::test]
async fn the_documents_claim_remote_help_exactly_as_built_and_enabled() {
    use lanterne_panel::{patterns, LedState, StatusLed};
    use lanterne_panel_protocol::LedPattern;
    use lanterne_privacy::policy::{decide, Action, PolicyConfig, Role};

    let text = |res: &lanterne_scenarios::Response| {
        String::from_utf8(res.body.to_vec())
            .unwrap()
            .replace("&nbsp;", " ")
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace(['\u{a0}', '\u{202f}'], " ")
    };
    // On (the default: every role that may help).
    let b = BoxProcess::start_with_config(CONFIG).await.unwrap();
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let auth = [("cookie", cookie.as_str())];
    let poster = text(
        &https
            .request("GET", "/api/documents/poster.html", None, &auth)
            .await
            .unwrap(),
    );
    assert!(poster.contains("Aide à distance"), "a remote-help section");
    // "only a click on Accepter allows it; refused after 30 seconds without an answer":
    // the prompt's own text and the room's timeout.
    assert!(poster.contains("seul un clic sur « Accepter » l'autorise"));
    assert!(poster.contains("refusée au bout de 30 secondes"));
    assert_eq!(lanterne_box::room::HELP_ANSWER_S, 30);
    let (_, prompt) = lanterne_overlay::consent_text("x", lanterne_box::room::HELP_ANSWER_S);
    assert!(prompt.contains("30 secondes"), "{prompt}");
    // "the Arrêter button or Ctrl+Alt+Fin ends it": what the prompt tells the student, and
    // what the overlay grabs (appliance/overlay/tests/help.rs presses both).
    assert!(poster.contains("« Arrêter »") && poster.contains("Ctrl+Alt+Fin"));
    assert!(prompt.contains("« Arrêter »") && prompt.contains("Ctrl+Alt+Fin"));
    // "the light blinks while remote help runs": the panel's pattern for it.
    assert!(poster.contains("clignote"));
    let (_, status) = patterns(LedState {
        lock: false,
        status: StatusLed::RemoteControl,
    });
    assert!(matches!(status, LedPattern::Blink { .. }), "{status:?}");
    // "possible at any hour, even outside the monitoring hours": the policy.
    assert!(poster.contains("à toute heure"));
    let schedule = CONFIG
        .split_once("[schedule]\n")
        .map(|(_, s)| toml_schedule(s))
        .unwrap();
    let saturday = time::macros::datetime!(2026-11-28 10:00);
    assert!(!schedule.is_monitoring_at(saturday));
    assert!(decide(
        Role::Technician,
        Action::RemoteHelp,
        saturday,
        &schedule,
        &PolicyConfig::default()
    )
    .is_allowed());
    let gdpr = text(
        &https
            .request("GET", "/api/documents/gdpr.json", None, &auth)
            .await
            .unwrap(),
    );
    assert!(gdpr.contains("après son accord explicite"), "{gdpr}");
    drop(b);

    // Off: nothing in any document, and the box refuses to ask.
    let off = CONFIG.replace("[schedule]", "[remote_help]\nroles = []\n[schedule]");
    let b = BoxProcess::start_with_config(&off).await.unwrap();
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let auth = [("cookie", cookie.as_str())];
    for path in [
        "/api/documents/poster.html",
        "/api/documents/gdpr.json",
        "/api/documents/gdpr.md",
    ] {
        let doc = text(&https.request("GET", path, None, &auth).await.unwrap());
        for claim in [
            "Aide à distance",
            "aide à distance",
            "Accepter",
            "prise en main à distance",
            "Prise en main à distance",
            "clignote",
        ] {
            assert!(
                !doc.contains(claim),
                "{path} says {claim:?} with remote help off"
            );
        }
    }
    let res = https
        .post_json(&cookie, "/api/stations/1/help", serde_json::json!({}))
        .await;
    assert_eq!(res.status, 403);
    assert!(text(&res).contains("remote_help.roles"), "{}", text(&res));
}

fn toml_schedule(s: &str) -> lanterne_privacy::schedule::Schedule {
    let c: lanterne_privacy::schedule::ScheduleConfig = toml::from_str(s).unwrap();
    c.validate().unwrap()
}
