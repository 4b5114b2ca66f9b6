//! Sessions end when they must, and what they hold open closes with them: a live mosaic
//! closes within a second of sign-out, of the account being disabled, of an admin resetting
//! its password or its second factor; re-enabling an account does not revive its sessions;
//! changing one's own password needs the current one. And the first admin's generated
//! password is only in a private file, never in the box's output, until the forced change
//! at the first sign-in removes it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lanterne_scenarios::{schedule_including_now, BoxProcess, Https, Ws};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Reads the socket until the box says the view ended (or closes it); answers how long
/// that took from `since` and the reason given.
async fn until_ended(ws: &mut Ws, since: Instant) -> (Duration, String) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the view ends within 10 s");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "ended" {
                    return (since.elapsed(), v["reason"].as_str().unwrap_or("").into());
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                return (since.elapsed(), "closed".into())
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn status(https: &Https, cookie: &str, path: &str) -> u16 {
    https
        .request("GET", path, None, &[("cookie", cookie)])
        .await
        .unwrap()
        .status
}

#[tokio::test]
async fn a_live_view_closes_within_a_second_when_its_session_ends() {
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Salle 3\"\n{}",
        schedule_including_now()
    ))
    .await
    .unwrap();
    let https = b.https().unwrap();
    let admin = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .post_json(
            &admin,
            "/api/accounts",
            json!({"username": "prof", "role": "teacher", "password": "Classe-2026!"}),
        )
        .await;
    assert_eq!(res.status, 201);
    let mut password = "Classe-2026!".to_string();
    for trigger in ["logout", "disable", "password-reset", "second-factor-reset"] {
        let cookie = https.login("prof", &password).await.unwrap();
        let mut ws = https.websocket("/api/mosaic", &cookie).await.unwrap();
        // The view is live: its layout comes first.
        let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(first, Message::Text(_)), "{first:?}");
        let at = Instant::now();
        let res = match trigger {
            "logout" => https.post_json(&cookie, "/api/logout", json!({})).await,
            "disable" => {
                https
                    .post_json(
                        &admin,
                        "/api/accounts/prof/disabled",
                        json!({"disabled": true}),
                    )
                    .await
            }
            "password-reset" => {
                password = "Nouveau-2026!".into();
                https
                    .post_json(
                        &admin,
                        "/api/accounts/prof/password",
                        json!({"password": password}),
                    )
                    .await
            }
            _ => {
                https
                    .post_json(&admin, "/api/accounts/prof/totp/reset", json!({}))
                    .await
            }
        };
        assert_eq!(
            res.status,
            204,
            "{trigger}: {}",
            String::from_utf8_lossy(&res.body)
        );
        let (took, reason) = until_ended(&mut ws, at).await;
        println!(
            "{trigger}: live mosaic closed {} ms after ({reason})",
            took.as_millis()
        );
        assert!(took < Duration::from_secs(1), "{trigger}: {took:?}");
        assert_eq!(status(&https, &cookie, "/api/me").await, 401, "{trigger}");
        if trigger == "disable" {
            let res = https
                .post_json(
                    &admin,
                    "/api/accounts/prof/disabled",
                    json!({"disabled": false}),
                )
                .await;
            assert_eq!(res.status, 204);
            assert_eq!(
                status(&https, &cookie, "/api/me").await,
                401,
                "re-enabling does not revive the old session"
            );
        }
    }
}

#[tokio::test]
async fn changing_ones_own_password_needs_the_current_one_and_ends_the_other_sessions() {
    let b = BoxProcess::start().await.unwrap();
    let https = b.https().unwrap();
    let pw = b.ready.admin_password.clone().unwrap();
    let tablet = https.login("admin", &pw).await.unwrap();
    let laptop = https.login("admin", &pw).await.unwrap();
    let res = https
        .post_json(
            &tablet,
            "/api/account/password",
            json!({"current_password": "not-it-1A!", "new_password": "Autre-Mot-2026!"}),
        )
        .await;
    assert_eq!(res.status, 403, "{}", String::from_utf8_lossy(&res.body));
    let res = https
        .post_json(
            &tablet,
            "/api/account/password",
            json!({"current_password": pw, "new_password": "faible"}),
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(res.json()["error"]
        .as_str()
        .unwrap()
        .contains("'new_password'"));
    let res = https
        .post_json(
            &tablet,
            "/api/account/password",
            json!({"current_password": pw, "new_password": "Autre-Mot-2026!"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", String::from_utf8_lossy(&res.body));
    let fresh = res.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(fresh.starts_with("__Host-lanterne_session="), "{fresh}");
    assert_eq!(status(&https, &laptop, "/api/me").await, 401);
    assert_eq!(status(&https, &tablet, "/api/me").await, 401);
    assert_eq!(status(&https, &fresh, "/api/me").await, 200);
    assert!(https.login("admin", &pw).await.is_err());
    https.login("admin", "Autre-Mot-2026!").await.unwrap();
}

#[tokio::test]
async fn the_first_admin_password_is_in_a_private_file_until_the_forced_change() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep-first-password"), "").unwrap();
    let b = BoxProcess::start_in(dir).await.unwrap();
    let pw = b.ready.admin_password.clone().unwrap();
    let file = b.box_dir().join("first-admin-password");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), pw);
    assert!(
        !b.log().contains(&pw),
        "the password is not in the box's log"
    );

    let https = b.https().unwrap();
    let origin = https.origin();
    let res = https
        .request(
            "POST",
            "/api/login",
            Some(json!({"username": "admin", "password": pw})),
            &[("origin", origin.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["password_change_required"], true);
    let cookie = https.login("admin", &pw).await.unwrap();
    let res = https
        .request("GET", "/api/room", None, &[("cookie", cookie.as_str())])
        .await
        .unwrap();
    assert_eq!(res.status, 403);
    assert_eq!(res.json()["password_change_required"], true);
    assert_eq!(status(&https, &cookie, "/api/account").await, 200);

    https
        .replace_first_password(&pw, "Mon-Propre-2026!")
        .await
        .unwrap();
    assert!(!file.exists(), "the file goes with the first password");
    let cookie = https.login("admin", "Mon-Propre-2026!").await.unwrap();
    assert_eq!(status(&https, &cookie, "/api/room").await, 200);
}
