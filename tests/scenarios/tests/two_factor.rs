//! Two-factor login (TOTP, RFC 6238): an account sets it up with a QR code and a first code;
//! from then on the password alone is not enough, wrong and replayed codes are refused.

use lanterne_privacy::totp::{TotpSecret, TotpVerifier};
use lanterne_scenarios::BoxProcess;

#[tokio::test]
async fn totp_setup_then_login_needs_a_fresh_code() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let origin = https.origin();
    let password = b.ready.admin_password.clone().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    let post = |path: &'static str, body: serde_json::Value, cookie: Option<String>| {
        let origin = origin.clone();
        let https = &https;
        async move {
            let mut headers = vec![("origin", origin.clone())];
            if let Some(c) = cookie {
                headers.push(("cookie", c));
            }
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            https.request("POST", path, Some(body), &h).await.unwrap()
        }
    };

    let res = post(
        "/api/account/totp/setup",
        serde_json::json!({}),
        Some(cookie.clone()),
    )
    .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let setup = res.json();
    let uri = setup["otpauth_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("otpauth://totp/Lanterne:admin?"), "{uri}");
    assert!(setup["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let secret_b32 = uri
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap()
        .to_string();
    let secret = TotpSecret::from_base32(&secret_b32).unwrap();
    let verifier = TotpVerifier::default();
    let now = || lanterne_wire::now_us() / 1_000_000;

    // A wrong code does not enable it.
    let res = post(
        "/api/account/totp/confirm",
        serde_json::json!({ "code": "000000" }),
        Some(cookie.clone()),
    )
    .await;
    if verifier.code_at(&secret, now()) != "000000" {
        assert_eq!(res.status, 400);
    }
    // The code from the app does.
    let code = verifier.code_at(&secret, now());
    let res = post(
        "/api/account/totp/confirm",
        serde_json::json!({ "code": code }),
        Some(cookie.clone()),
    )
    .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(
        res.json()["recovery_codes"].as_array().unwrap().len(),
        10,
        "confirmation hands out the recovery codes, once"
    );

    // Password alone: asked for the code.
    let res = post(
        "/api/login",
        serde_json::json!({ "username": "admin", "password": password }),
        None,
    )
    .await;
    assert_eq!(res.status, 401);
    assert_eq!(res.json()["totp_required"], true);
    assert_eq!(res.json()["reason"], "totp_required");
    assert!(
        res.headers.get("set-cookie").is_none(),
        "no session without the second factor"
    );

    // Wrong code: refused.
    let wrong = if verifier.code_at(&secret, now()) == "123456" {
        "654321"
    } else {
        "123456"
    };
    let res = post(
        "/api/login",
        serde_json::json!({ "username": "admin", "password": password, "code": wrong }),
        None,
    )
    .await;
    assert_eq!(res.status, 401);
    assert_eq!(res.json()["reason"], "bad_code");

    // The current code works once; the confirmation already used this time step, so wait for
    // the next one if needed (at most 30 s).
    let mut step_code = verifier.code_at(&secret, now());
    let mut res = post(
        "/api/login",
        serde_json::json!({ "username": "admin", "password": password, "code": step_code }),
        None,
    )
    .await;
    if res.status != 200 {
        let step = verifier.step_at(now());
        while verifier.step_at(now()) == step {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        step_code = verifier.code_at(&secret, now());
        res = post(
            "/api/login",
            serde_json::json!({ "username": "admin", "password": password, "code": step_code }),
            None,
        )
        .await;
    }
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert!(res.headers.get("set-cookie").is_some());

    // The same code again (a replay): refused.
    let res = post(
        "/api/login",
        serde_json::json!({ "username": "admin", "password": password, "code": step_code }),
        None,
    )
    .await;
    assert_eq!(res.status, 401, "a code is accepted once");
}

#[tokio::test]
async fn an_admin_without_two_factor_can_only_set_it_up() {
    let b = BoxProcess::start_with_config(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n[accounts]\nrequire_totp_for_admins = true\n",
    )
    .await
    .unwrap();
    let https = b.https().unwrap();
    let origin = https.origin();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .request("GET", "/api/room", None, &[("cookie", &cookie)])
        .await
        .unwrap();
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["totp_setup_required"], true);
    assert_eq!(
        https
            .request("GET", "/api/me", None, &[("cookie", &cookie)])
            .await
            .unwrap()
            .status,
        200
    );

    let setup = https
        .request(
            "POST",
            "/api/account/totp/setup",
            None,
            &[("cookie", &cookie), ("origin", &origin)],
        )
        .await
        .unwrap()
        .json();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    let secret = TotpSecret::from_base32(
        uri.split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("secret="))
            .unwrap(),
    )
    .unwrap();
    let code = TotpVerifier::default().code_at(&secret, lanterne_wire::now_us() / 1_000_000);
    let res = https
        .request(
            "POST",
            "/api/account/totp/confirm",
            Some(serde_json::json!({ "code": code })),
            &[("cookie", &cookie), ("origin", &origin)],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(
        https
            .request("GET", "/api/room", None, &[("cookie", &cookie)])
            .await
            .unwrap()
            .status,
        200,
        "with two-factor set up, the admin gets on with the day"
    );
}

/// Sets up two-factor login for the logged-in admin; returns the recovery codes.
async fn enable_totp(https: &lanterne_scenarios::Https, cookie: &str) -> Vec<String> {
    let setup = https
        .post_json(cookie, "/api/account/totp/setup", serde_json::json!({}))
        .await
        .json();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    let secret = TotpSecret::from_base32(
        uri.split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("secret="))
            .unwrap(),
    )
    .unwrap();
    let code = TotpVerifier::default().code_at(&secret, lanterne_wire::now_us() / 1_000_000);
    let res = https
        .post_json(
            cookie,
            "/api/account/totp/confirm",
            serde_json::json!({ "code": code }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_recovery_code_replaces_the_authenticator_once_and_is_audited() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let password = b.ready.admin_password.clone().unwrap();
    let cookie = https.login("admin", &password).await.unwrap();
    let codes = enable_totp(&https, &cookie).await;
    assert_eq!(codes.len(), 10);
    let status = https
        .request("GET", "/api/account", None, &[("cookie", &cookie)])
        .await
        .unwrap()
        .json();
    assert_eq!(status["totp_enabled"], true);
    assert_eq!(status["recovery_codes_left"], 10);

    let login = |recovery: String| {
        let https = &https;
        let password = password.clone();
        async move {
            https
                .post_json(
                    "",
                    "/api/login",
                    serde_json::json!({
                        "username": "admin", "password": password, "recovery_code": recovery
                    }),
                )
                .await
        }
    };
    // Typed in lower case with spaces: still the code.
    let typed = codes[3].to_lowercase().replace('-', " ");
    let res = login(typed.clone()).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let res = login(typed).await;
    assert_eq!(res.status, 401, "a recovery code works once");
    assert_eq!(res.json()["reason"], "bad_recovery_code");
    assert_eq!(
        login("not a code".into()).await.json()["reason"],
        "bad_recovery_code"
    );

    let audit = https
        .request(
            "GET",
            "/api/audit?action=use-recovery-code",
            None,
            &[("cookie", &cookie)],
        )
        .await
        .unwrap()
        .json();
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert_eq!(rows[0]["actor"], "admin");
    assert_eq!(rows[0]["detail"], "9 left");

    // Regenerating asks for the password again, and voids every earlier code.
    let res = https
        .post_json(
            &cookie,
            "/api/account/recovery-codes",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 401, "{}", String::from_utf8_lossy(&res.body));
    let res = https
        .post_json(
            &cookie,
            "/api/account/recovery-codes",
            serde_json::json!({"password": "Pas-le-bon-1!"}),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = https
        .post_json(
            &cookie,
            "/api/account/recovery-codes",
            serde_json::json!({"password": b.ready.admin_password.as_deref().unwrap()}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let fresh = res.json()["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(fresh.len(), 10);
    assert_eq!(login(codes[5].clone()).await.status, 401, "old set voided");
    assert_eq!(
        login(fresh[0].as_str().unwrap().to_string()).await.status,
        200
    );
}

#[tokio::test]
async fn recovery_codes_need_two_factor_first() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .post_json(
            &cookie,
            "/api/account/recovery-codes",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 409);
    assert!(res.json()["error"].as_str().unwrap().contains("two-factor"));
}

#[tokio::test]
async fn lock_out_says_how_long_to_wait() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let bad = serde_json::json!({ "username": "admin", "password": "Wrong-passw0rd" });
    for _ in 0..lanterne_box::login_gate::NAME_MAX_FAILURES {
        let res = https.post_json("", "/api/login", bad.clone()).await;
        assert_eq!(res.status, 401);
        assert_eq!(res.json()["reason"], "bad_credentials");
    }
    let res = https
        .post_json(
            "",
            "/api/login",
            serde_json::json!({
                "username": "admin", "password": b.ready.admin_password.as_deref().unwrap()
            }),
        )
        .await;
    assert_eq!(res.status, 429, "even the right password waits");
    let body = res.json();
    assert_eq!(body["reason"], "locked_out");
    let wait = body["retry_after_s"].as_u64().unwrap();
    assert!(
        wait > 0 && wait <= lanterne_box::login_gate::NAME_LOCKOUT.as_secs(),
        "{body}"
    );
    assert_eq!(res.headers["retry-after"], wait.to_string());
}

#[tokio::test]
async fn an_admin_resets_a_lost_second_factor() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let admin = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .post_json(
            &admin,
            "/api/accounts",
            serde_json::json!({ "username": "prof", "role": "teacher", "password": "Tableau-noir-3" }),
        )
        .await;
    assert_eq!(res.status, 201);
    let prof = https.login("prof", "Tableau-noir-3").await.unwrap();
    enable_totp(&https, &prof).await;
    assert!(
        https.login("prof", "Tableau-noir-3").await.is_err(),
        "the password alone no longer does"
    );
    // A teacher cannot reset anyone's second factor, not even their own.
    let res = https
        .post_json(
            &prof,
            "/api/accounts/prof/totp/reset",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 403);

    let res = https
        .post_json(
            &admin,
            "/api/accounts/prof/totp/reset",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(
        https
            .request("GET", "/api/me", None, &[("cookie", &prof)])
            .await
            .unwrap()
            .status,
        401,
        "the account's sessions ended"
    );
    let prof = https.login("prof", "Tableau-noir-3").await.unwrap();
    let status = https
        .request("GET", "/api/account", None, &[("cookie", &prof)])
        .await
        .unwrap()
        .json();
    assert_eq!(status["totp_enabled"], false);
    assert_eq!(status["recovery_codes_left"], 0);
    let audit = https
        .request(
            "GET",
            "/api/audit?action=reset-two-factor",
            None,
            &[("cookie", &admin)],
        )
        .await
        .unwrap()
        .json();
    assert_eq!(audit[0]["target"], "prof");
    assert_eq!(
        https
            .post_json(
                &admin,
                "/api/accounts/nobody/totp/reset",
                serde_json::json!({})
            )
            .await
            .status,
        404
    );
}
