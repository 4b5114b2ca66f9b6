//! A station's and an account's life after enrolment, against a real box process: revoking a
//! station cuts its link within a second (measured, from the admin API and from the command
//! line) and its reconnection is refused; a second link with the same certificate replaces
//! the first; a station's answer to an order it was not given is ignored; deleting a station
//! or an account erases it from the database and leaves only a pseudonym in the audit log.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lanterne_scenarios::{bin, BoxProcess, Https};
use lanterne_station::identity::{Identity, BOX_SERVER_NAME};
use lanterne_wire::{Capabilities, Control, Frame, FrameCodec, PROTOCOL_VERSION};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

type Link = Framed<tokio_rustls::client::TlsStream<TcpStream>, FrameCodec>;

/// Connects with the station identity in `dir` and says hello. The welcome, or why not.
async fn connect(dir: &Path) -> anyhow::Result<Link> {
    let id = Identity::load(dir)?;
    let tcp = TcpStream::connect(id.enrolment.link.as_str()).await?;
    let tls = tokio_rustls::TlsConnector::from(id.link_tls()?)
        .connect(ServerName::try_from(BOX_SERVER_NAME)?, tcp)
        .await?;
    let mut link = Framed::new(tls, FrameCodec);
    link.send(Frame::Control(Control::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: "test".into(),
        hostname: "raw".into(),
        capabilities: Capabilities::default(),
    }))
    .await?;
    match tokio::time::timeout(Duration::from_secs(10), link.next()).await {
        Ok(Some(Ok(Frame::Control(Control::Welcome { .. })))) => Ok(link),
        Ok(Some(Ok(other))) => anyhow::bail!("expected a welcome, got {other:?}"),
        Ok(Some(Err(e))) => anyhow::bail!("link error: {e}"),
        Ok(None) => anyhow::bail!("the box closed the link"),
        Err(_) => anyhow::bail!("no answer from the box"),
    }
}

/// Reads the link until the box closes it; resolves to when that happened.
fn closed_at(mut link: Link) -> tokio::task::JoinHandle<Instant> {
    tokio::spawn(async move {
        loop {
            match link.next().await {
                // Control frames (schedule, stream orders, heartbeats) until the cut.
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Instant::now(),
            }
        }
    })
}

/// Waits for a control message matching `want`, skipping others.
async fn next_control(link: &mut Link, want: impl Fn(&Control) -> bool) -> Control {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), link.next()).await {
            Ok(Some(Ok(Frame::Control(c)))) if want(&c) => return c,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no such control message: {other:?}"),
        }
    }
}

async fn admin(b: &BoxProcess) -> (Https, String) {
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    (https, cookie)
}

async fn get(https: &Https, cookie: &str, path: &str) -> serde_json::Value {
    let res = https
        .request("GET", path, None, &[("cookie", cookie)])
        .await
        .unwrap();
    assert_eq!(
        res.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&res.body)
    );
    res.json()
}

async fn delete(https: &Https, cookie: &str, path: &str) -> u16 {
    let origin = https.origin();
    https
        .request(
            "DELETE",
            path,
            None,
            &[("cookie", cookie), ("origin", &origin)],
        )
        .await
        .unwrap()
        .status
}

/// Every audit line, oldest first.
async fn audit(https: &Https, cookie: &str) -> Vec<serde_json::Value> {
    let mut rows = get(https, cookie, "/api/audit?limit=100000")
        .await
        .as_array()
        .unwrap()
        .clone();
    rows.reverse();
    rows
}

/// Every text value in every table of the box database that contains `needle`, as
/// "table.column: value". The box keeps running; SQLite (WAL) lets this second reader in.
fn database_mentions(b: &BoxProcess, needle: &str) -> Vec<String> {
    let store = lanterne_box::store::Store::open(&b.box_dir().join("box.sqlite")).unwrap();
    store
        .with(|c| {
            let tables: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut found = Vec::new();
            for t in tables {
                let columns: Vec<String> = c
                    .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for col in columns {
                    let mut st = c.prepare(&format!(
                        "SELECT CAST(\"{col}\" AS TEXT) FROM \"{t}\" WHERE instr(CAST(\"{col}\" AS TEXT), ?1) > 0"
                    ))?;
                    for v in st.query_map([needle], |r| r.get::<_, String>(0))? {
                        found.push(format!("{t}.{col}: {}", v?));
                    }
                }
            }
            Ok(found)
        })
        .unwrap()
}

#[tokio::test]
async fn a_revoked_station_is_cut_within_a_second_and_cannot_reconnect() {
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let (web_dir, cli_dir, other_dir) = (
        dirs.path().join("web"),
        dirs.path().join("cli"),
        dirs.path().join("other"),
    );
    let web = b.enrol(&web_dir, "poste-web").await.unwrap();
    let cli = b.enrol(&cli_dir, "poste-cli").await.unwrap();
    b.enrol(&other_dir, "poste-reste").await.unwrap();
    let (https, cookie) = admin(&b).await;

    // From the admin API.
    let closed = closed_at(connect(&web_dir).await.unwrap());
    let other = connect(&other_dir).await.unwrap();
    let t0 = Instant::now();
    let res = https
        .post_json(
            &cookie,
            &format!("/api/stations/{}/revoke", web.station_id),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", String::from_utf8_lossy(&res.body));
    let cut = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the link is cut")
        .unwrap();
    let took = cut.saturating_duration_since(t0);
    println!(
        "revoked from the admin API: link cut {} ms after the request",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "cut after {took:?}");
    let refused = connect(&web_dir).await;
    assert!(refused.is_err(), "a revoked station connected again");
    b.wait_log_line(
        &["station link refused", "not an enrolled station"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();

    // From the command line, while the box runs.
    let closed = closed_at(connect(&cli_dir).await.unwrap());
    let t0 = Instant::now();
    let out = std::process::Command::new(bin("lanterne-box"))
        .args(["revoke-station", "--data-dir"])
        .arg(b.box_dir())
        .arg("poste-cli")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cut = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("the link is cut")
        .unwrap();
    let took = cut.saturating_duration_since(t0);
    println!(
        "revoked from the command line: link cut {} ms after the command started",
        took.as_millis()
    );
    assert!(took < Duration::from_secs(1), "cut after {took:?}");
    assert!(connect(&cli_dir).await.is_err());

    // The third station never noticed; the list and the audit log say what happened.
    let still = closed_at(other);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), still)
            .await
            .is_err(),
        "the other station keeps its link"
    );
    let stations = get(&https, &cookie, "/api/stations").await;
    let state = |id: u32| {
        stations
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["revoked"].as_bool().unwrap())
    };
    assert_eq!(state(web.station_id), Some(true));
    assert_eq!(state(cli.station_id), Some(true));
    let tiles = get(&https, &cookie, "/api/room").await["mosaic"]["tiles"].clone();
    let names: Vec<&str> = tiles
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["poste-reste"], "revoked stations leave the room");
    let lines = audit(&https, &cookie).await;
    let revocations: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["action"] == "revoke-station")
        .map(|l| (l["actor"].as_str().unwrap(), l["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        revocations,
        [("admin", "poste-web"), ("command-line", "poste-cli")]
    );

    // A teacher may not revoke.
    https
        .post_json(&cookie, "/api/accounts", serde_json::json!({ "username": "prof", "role": "teacher", "password": "Tableau-2026" }))
        .await;
    let teacher = https.login("prof", "Tableau-2026").await.unwrap();
    let res = https
        .post_json(&teacher, "/api/stations/3/revoke", serde_json::json!({}))
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(delete(&https, &teacher, "/api/stations/3").await, 403);
    let res = https
        .post_json(&cookie, "/api/stations/999/revoke", serde_json::json!({}))
        .await;
    assert_eq!(res.status, 404);
}

/// One live link per certificate: the newest replaces the older, which the box closes (a
/// copied certificate cannot hold a second link beside the genuine station).
#[tokio::test]
async fn a_second_link_with_the_same_certificate_replaces_the_first() {
    let b = BoxProcess::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    b.enrol(dir.path(), "poste-double").await.unwrap();
    let first = closed_at(connect(dir.path()).await.unwrap());
    let t0 = Instant::now();
    let mut second = connect(dir.path()).await.unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("the first link is closed")
        .unwrap();
    println!(
        "first link closed {} ms after the second connected",
        cut.saturating_duration_since(t0).as_millis()
    );
    b.wait_log_line(
        &["poste-double", "previous link is closed"],
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    // The second stays: it still gets the box's heartbeats.
    next_control(&mut second, |c| matches!(c, Control::Heartbeat { .. })).await;
    let (https, cookie) = admin(&b).await;
    let tiles = get(&https, &cookie, "/api/room").await["mosaic"]["tiles"].clone();
    assert_eq!(tiles[0]["online"], true);
}

/// An answer to an order is recorded only when that order is outstanding for that station:
/// a station cannot write the audit log, or fill in another station's result, at will.
#[tokio::test]
async fn a_forged_answer_to_no_outstanding_order_is_ignored() {
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let one = b.enrol(&dirs.path().join("one"), "poste-un").await.unwrap();
    b.enrol(&dirs.path().join("two"), "poste-deux")
        .await
        .unwrap();
    let mut link_one = connect(&dirs.path().join("one")).await.unwrap();
    let mut link_two = connect(&dirs.path().join("two")).await.unwrap();
    let (https, cookie) = admin(&b).await;
    let answer = |action: &str| {
        Frame::Control(Control::ActionResult {
            action: action.into(),
            ok: true,
            detail: "forged\nINFO fake line".into(),
        })
    };
    let station_lines = |lines: &[serde_json::Value]| {
        lines
            .iter()
            .filter(|l| l["actor"].as_str().unwrap().starts_with("station:"))
            .map(|l| {
                (
                    l["actor"].as_str().unwrap().to_string(),
                    l["action"].as_str().unwrap().to_string(),
                )
            })
            .collect::<Vec<_>>()
    };

    // Nothing was ordered: both answers are ignored.
    link_one.send(answer("shutdown")).await.unwrap();
    link_one.send(answer("open-url")).await.unwrap();
    // A result for a command run never sent, and a read receipt for no message.
    link_one
        .send(Frame::Control(Control::CommandResult {
            id: 77,
            exit_code: Some(0),
            stdout: "forged".into(),
            stderr: String::new(),
            error: None,
        }))
        .await
        .unwrap();
    link_one
        .send(Frame::Control(Control::MessageRead { id: 5 }))
        .await
        .unwrap();
    b.wait_log_line(
        &["poste-un", "ignored an answer to no outstanding order"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    b.wait_log_line(
        &["poste-un", "ignored a result for a command run"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    b.wait_log_line(
        &["poste-un", "ignored a read receipt"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(station_lines(&audit(&https, &cookie).await).is_empty());
    assert!(
        !b.log().contains("\nINFO fake line"),
        "a station cannot start a log line"
    );

    // A real order to station one only.
    let res = https
        .post_json(
            &cookie,
            "/api/stations/open-url",
            serde_json::json!({ "url": "https://fr.wikipedia.org/", "stations": [one.station_id] }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let order = res.json()["id"].as_u64().unwrap();
    next_control(&mut link_one, |c| matches!(c, Control::OpenUrl { .. })).await;
    // Station two was not sent it: its answer is ignored and fills in nothing.
    link_two.send(answer("open-url")).await.unwrap();
    b.wait_log_line(
        &["poste-deux", "ignored an answer"],
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let run = get(&https, &cookie, &format!("/api/orders/{order}")).await;
    assert_eq!(run["results"][0]["done"], false);
    // Station one's first answer counts; a second one is ignored.
    link_one.send(answer("open-url")).await.unwrap();
    link_one.send(answer("open-url")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let run = get(&https, &cookie, &format!("/api/orders/{order}")).await;
        if run["results"][0]["done"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the real answer was not taken: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Wait for the second answer to be handled (it is logged as ignored), then count.
    let ignored = |log: &str| {
        log.lines()
            .filter(|l| l.contains("poste-un") && l.contains("ignored an answer"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ignored(&b.log()) < 3 {
        assert!(
            Instant::now() < deadline,
            "the second answer was not refused:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = audit(&https, &cookie).await;
    assert_eq!(
        station_lines(&lines),
        [("station:poste-un".to_string(), "open-url".to_string())],
        "one audit line, for the one real answer"
    );
    let detail = lines
        .iter()
        .find(|l| l["actor"] == "station:poste-un")
        .unwrap()["detail"]
        .clone();
    assert_eq!(
        detail, "forged INFO fake line",
        "control characters cleared"
    );
}

#[tokio::test]
async fn deleting_a_station_erases_it_and_leaves_a_pseudonym_in_the_audit_log() {
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let token = b.enrol_tokens(1).unwrap().remove(0);
    let gone = lanterne_station::enrol::enrol(
        &dirs.path().join("gone"),
        &b.ready.https_url,
        &token,
        "poste-efface",
        Some("02:11:22:33:44:55"),
    )
    .await
    .unwrap();
    let kept = b
        .enrol(&dirs.path().join("kept"), "poste-garde")
        .await
        .unwrap();
    let mut link = connect(&dirs.path().join("gone")).await.unwrap();
    let (https, cookie) = admin(&b).await;

    // Leave traces: a message it reads, one to both stations, a lock of it.
    let msg = https
        .post_json(
            &cookie,
            "/api/messages",
            serde_json::json!({ "text": "Pour toi seul", "stations": [gone.station_id] }),
        )
        .await;
    assert_eq!(msg.status, 200, "{}", String::from_utf8_lossy(&msg.body));
    let id = match next_control(&mut link, |c| matches!(c, Control::ShowMessage { .. })).await {
        Control::ShowMessage { id, .. } => id,
        _ => unreachable!(),
    };
    link.send(Frame::Control(Control::MessageRead { id }))
        .await
        .unwrap();
    let both = https
        .post_json(&cookie, "/api/messages", serde_json::json!({ "text": "Pour tous", "stations": [gone.station_id, kept.station_id] }))
        .await;
    assert_eq!(both.status, 200);
    let res = https
        .post_json(
            &cookie,
            "/api/room/lock",
            serde_json::json!({ "locked": true, "stations": [gone.station_id, kept.station_id] }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert!(!database_mentions(&b, "poste-efface").is_empty());

    let closed = closed_at(link);
    assert_eq!(
        delete(
            &https,
            &cookie,
            &format!("/api/stations/{}", gone.station_id)
        )
        .await,
        204
    );
    tokio::time::timeout(Duration::from_secs(1), closed)
        .await
        .expect("a deleted station's link is cut at once")
        .unwrap();
    assert!(connect(&dirs.path().join("gone")).await.is_err());

    // Nothing names it any more: not its name, host name or MAC address, anywhere.
    for needle in ["poste-efface", "02:11:22:33:44:55", "Pour toi seul"] {
        assert_eq!(
            database_mentions(&b, needle),
            Vec::<String>::new(),
            "{needle}"
        );
    }
    let pseudonym = format!("station#{}", gone.station_id);
    let lines = audit(&https, &cookie).await;
    let about: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l.to_string().contains(&pseudonym))
        .map(|l| (l["action"].as_str().unwrap(), l["target"].as_str().unwrap()))
        .collect();
    let lock_target = format!("poste-garde, {pseudonym}");
    let lock_target_rev = format!("{pseudonym}, poste-garde");
    assert!(about.contains(&("enrol", pseudonym.as_str())), "{about:?}");
    assert!(
        about.contains(&("delete-station", pseudonym.as_str())),
        "{about:?}"
    );
    assert!(
        about
            .iter()
            .any(|(a, t)| *a == "lock" && (*t == lock_target || *t == lock_target_rev)),
        "{about:?}"
    );
    // What other stations got keeps its text, without the deleted one's part.
    let messages = get(&https, &cookie, "/api/messages").await;
    let texts: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Pour tous"]);
    assert_eq!(messages[0]["targets"].as_array().unwrap().len(), 1);
    let stations = get(&https, &cookie, "/api/stations").await;
    assert_eq!(stations.as_array().unwrap().len(), 1);
    assert_eq!(
        delete(
            &https,
            &cookie,
            &format!("/api/stations/{}", gone.station_id)
        )
        .await,
        404
    );
    // A station enrolled next never gets the deleted one's id.
    let next = b
        .enrol(&dirs.path().join("next"), "poste-nouveau")
        .await
        .unwrap();
    assert!(next.station_id > gone.station_id);
}

#[tokio::test]
async fn deleting_an_account_erases_it_and_leaves_a_pseudonym_in_the_audit_log() {
    let b = BoxProcess::start().await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let st = b.enrol(&dirs.path().join("s"), "poste-01").await.unwrap();
    let _link = connect(&dirs.path().join("s")).await.unwrap();
    let (https, admin_cookie) = admin(&b).await;
    let res = https
        .post_json(&admin_cookie, "/api/accounts", serde_json::json!({ "username": "m.dupont", "role": "teacher", "password": "Tableau-2026" }))
        .await;
    assert_eq!(res.status, 201);
    let teacher = https.login("m.dupont", "Tableau-2026").await.unwrap();
    let res = https
        .post_json(
            &teacher,
            "/api/messages",
            serde_json::json!({ "text": "Bonjour", "stations": [st.station_id] }),
        )
        .await;
    assert_eq!(res.status, 200);
    // A teacher cannot delete accounts, nor an admin their own.
    assert_eq!(delete(&https, &teacher, "/api/accounts/admin").await, 403);
    assert_eq!(
        delete(&https, &admin_cookie, "/api/accounts/admin").await,
        400
    );
    assert!(!database_mentions(&b, "m.dupont").is_empty());

    assert_eq!(
        delete(&https, &admin_cookie, "/api/accounts/m.dupont").await,
        204
    );
    let res = https
        .request("GET", "/api/room", None, &[("cookie", &teacher)])
        .await
        .unwrap();
    assert_eq!(res.status, 401, "its session is gone");
    assert_eq!(database_mentions(&b, "m.dupont"), Vec::<String>::new());
    assert_eq!(
        delete(&https, &admin_cookie, "/api/accounts/m.dupont").await,
        404
    );
    let accounts = get(&https, &admin_cookie, "/api/accounts").await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    let lines = audit(&https, &admin_cookie).await;
    let pseudonym = lines
        .iter()
        .find(|l| l["action"] == "delete-account")
        .unwrap()["target"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pseudonym.starts_with("account#"), "{pseudonym}");
    let actions: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["actor"] == pseudonym.as_str() || l["target"] == pseudonym.as_str())
        .map(|l| (l["actor"].as_str().unwrap(), l["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin", "create-account"),
            (pseudonym.as_str(), "login"),
            (pseudonym.as_str(), "message"),
            // The refused attempt to delete an account, recorded by the authorization path.
            (pseudonym.as_str(), "manage_accounts"),
            ("admin", "delete-account"),
        ]
    );
    let messages = get(&https, &admin_cookie, "/api/messages").await;
    assert_eq!(messages[0]["from"], pseudonym.as_str());
    // The name is free again, under a new id: old lines do not become the new account's.
    let res = https
        .post_json(&admin_cookie, "/api/accounts", serde_json::json!({ "username": "m.dupont", "role": "teacher", "password": "Tableau-2026" }))
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    https.login("m.dupont", "Tableau-2026").await.unwrap();
    let lines = audit(&https, &admin_cookie).await;
    let named: Vec<&str> = lines
        .iter()
        .filter(|l| l["actor"] == "m.dupont" || l["target"] == "m.dupont")
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        named,
        ["create-account", "login"],
        "only the new account's lines"
    );
}
