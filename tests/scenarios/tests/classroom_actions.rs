//! Teacher actions besides the lock: a message reaches the stations and the box learns who
//! has read it; Wake-on-LAN packets leave the box for offline stations; bad requests are
//! refused with a message naming the problem.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanterne_media::CaptureSource;
use lanterne_scenarios::{BoxProcess, Https};
use lanterne_station::commands::AllowList;
use lanterne_station::config::StationConfig;
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::{spawn_station, spawn_station_allowing, SourceSpec};

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn messages_reach_online_stations_and_reads_come_back() {
    let b = BoxProcess::start().await.unwrap();
    let probe = lanterne_media::init().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut screens = Vec::new();
    let mut stations = Vec::new();
    let mut ids = Vec::new();
    for i in 1..=3 {
        let name = format!("poste-{i:02}");
        let dir = dirs.path().join(&name);
        ids.push(b.enrol(&dir, &name).await.unwrap().station_id);
        // Station 3 stays offline.
        if i < 3 {
            let screen = Arc::new(SimulatedScreen::default());
            stations.push(
                spawn_station(
                    &dir,
                    SourceSpec::Live(CaptureSource::Synthetic {
                        label: name.clone(),
                        rgb: [40, 70, 200],
                    }),
                    screen.clone(),
                    std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
                    &probe,
                    name,
                )
                .unwrap(),
            );
            screens.push(screen);
        }
    }
    wait_until("stations connected", Duration::from_secs(30), || {
        stations.iter().all(|s| s.status.borrow().connected)
    })
    .await;
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();

    let res = https.post_json(&cookie,
        "/api/messages",
        serde_json::json!({ "text": "Enregistrez votre travail, s'il vous plaît.", "stations": null }),
    )
    .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let report = res.json();
    let id = report["id"].as_u64().unwrap();
    assert_eq!(
        report["sent_to"],
        serde_json::json!(["poste-01", "poste-02"])
    );
    assert_eq!(
        report["offline"],
        serde_json::json!(["poste-03"]),
        "offline is reported, not skipped"
    );
    wait_until("message on both screens", Duration::from_secs(10), || {
        screens.iter().all(|s| {
            s.open_messages().iter().any(|(i, from, text)| {
                *i == id && from == "admin" && text.starts_with("Enregistrez")
            })
        })
    })
    .await;

    // Student 1 reads it; the box records it.
    assert!(screens[0].dismiss(id));
    let deadline = Instant::now() + Duration::from_secs(10);
    let targets = loop {
        let list = https
            .request("GET", "/api/messages", None, &[("cookie", &cookie)])
            .await
            .unwrap()
            .json();
        let m = list
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap();
        if m["targets"][0]["read"] == true {
            break m["targets"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the read never reached the box: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let summary: Vec<(String, bool, bool)> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["delivered"].as_bool().unwrap(),
                t["read"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("poste-01".to_string(), true, true),
            ("poste-02".to_string(), true, false),
            ("poste-03".to_string(), false, false),
        ]
    );

    // To a selection only.
    let res = https
        .post_json(
            &cookie,
            "/api/messages",
            serde_json::json!({ "text": "Poste 2 : au tableau", "stations": [ids[1]] }),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["sent_to"], serde_json::json!(["poste-02"]));

    // Bad input, each refused with the field named.
    for (body, needle) in [
        (
            serde_json::json!({ "text": "   ", "stations": null }),
            "'text'",
        ),
        (
            serde_json::json!({ "text": "x".repeat(501), "stations": null }),
            "'text'",
        ),
        (
            serde_json::json!({ "text": "x", "stations": [9999] }),
            "9999",
        ),
        (
            serde_json::json!({ "text": "x", "stations": [] }),
            "'stations'",
        ),
        (serde_json::json!({ "txt": "x" }), "txt"),
    ] {
        let res = https
            .post_json(&cookie, "/api/messages", body.clone())
            .await;
        assert_eq!(res.status, 400, "{body}");
        let msg = res.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{body} → {msg}");
    }
    for s in stations {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn wake_on_lan_packets_leave_the_box_for_offline_stations() {
    // The box sends its magic packets to a local socket instead of the subnet broadcast.
    let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Salle 12\"\n[network]\nwol_broadcast = \"{}\"\n[panel]\nbackend = \"simulated\"\n",
        rx.local_addr().unwrap()
    ))
    .await
    .unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let token = b.enrol_tokens(2).unwrap();
    lanterne_station::enrol::enrol(
        &dirs.path().join("a"),
        &b.ready.https_url,
        &token[0],
        "poste-01",
        Some("02:00:5e:00:00:2a"),
    )
    .await
    .unwrap();
    lanterne_station::enrol::enrol(
        &dirs.path().join("b"),
        &b.ready.https_url,
        &token[1],
        "poste-02",
        None,
    )
    .await
    .unwrap();

    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let res = https
        .post_json(
            &cookie,
            "/api/stations/wake",
            serde_json::json!({ "stations": null }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["sent_to"], serde_json::json!(["poste-01"]));
    assert_eq!(
        res.json()["no_mac"],
        serde_json::json!(["poste-02"]),
        "a station without MAC is reported"
    );

    let mut buf = [0u8; 256];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv_from(&mut buf))
        .await
        .expect("magic packet within 5 s")
        .unwrap();
    assert_eq!(n, 102);
    assert!(buf[..6].iter().all(|&x| x == 0xff));
    for rep in buf[6..n].chunks(6) {
        assert_eq!(rep, [0x02, 0x00, 0x5e, 0x00, 0x00, 0x2a]);
    }

    let res = https
        .post_json(
            &cookie,
            "/api/stations/wake",
            serde_json::json!({ "stations": [4242] }),
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(res.json()["error"].as_str().unwrap().contains("4242"));
}

#[tokio::test]
async fn only_approved_commands_run_and_each_station_reports_its_result() {
    let b = BoxProcess::start_with_config(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n\
         [[commands]]\nname = \"bonjour\"\nprogram = \"/bin/echo\"\nargs = [\"bonjour\"]\nallowed_args = [\"tout le monde\"]\ntimeout_s = 10\n\
         [[commands]]\nname = \"echec\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"echo raté >&2; exit 4\"]\n",
    )
    .await
    .unwrap();
    let probe = lanterne_media::init().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    let mut stations = Vec::new();
    for i in 1..=2 {
        let name = format!("poste-{i:02}");
        let dir = dirs.path().join(&name);
        ids.push(b.enrol(&dir, &name).await.unwrap().station_id);
        if i == 1 {
            // The PC's own list has both commands the box approved.
            stations.push(
                spawn_station_allowing(
                    &dir,
                    SourceSpec::Live(CaptureSource::Synthetic {
                        label: name.clone(),
                        rgb: [40, 70, 200],
                    }),
                    Arc::new(SimulatedScreen::default()),
                    std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
                    &probe,
                    name,
                    station_allow_list(
                        "[[commands]]\nprogram = \"/bin/echo\"\nargs = [\"bonjour\"]\n\
                         allowed_args = [\"tout le monde\"]\n\
                         [[commands]]\nprogram = \"/bin/sh\"\n\
                         args = [\"-c\", \"echo raté >&2; exit 4\"]\n",
                    ),
                )
                .unwrap(),
            );
        }
    }
    wait_until("station connected", Duration::from_secs(30), || {
        stations[0].status.borrow().connected
    })
    .await;
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();

    let list = https
        .request("GET", "/api/commands", None, &[("cookie", &cookie)])
        .await
        .unwrap()
        .json();
    assert_eq!(list[0]["name"], "bonjour");
    assert_eq!(list[1]["name"], "echec");

    let run = |body: serde_json::Value| https.post_json(&cookie, "/api/commands/run", body);
    let res =
        run(serde_json::json!({ "name": "bonjour", "args": ["tout le monde"], "stations": null }))
            .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let report = res.json();
    assert_eq!(report["sent_to"], serde_json::json!(["poste-01"]));
    assert_eq!(report["offline"], serde_json::json!(["poste-02"]));
    let run_id = report["id"].as_u64().unwrap();

    let result = wait_for_result(&https, &cookie, run_id).await;
    assert_eq!(result[0]["name"], "poste-01");
    assert_eq!(result[0]["exit_code"], 0);
    assert_eq!(result[0]["stdout"], "bonjour tout le monde\n");
    assert_eq!(result[1]["name"], "poste-02");
    assert_eq!(
        result[1]["delivered"], false,
        "the offline station is reported"
    );

    let res = run(serde_json::json!({ "name": "echec", "stations": [ids[0]] })).await;
    let result = wait_for_result(&https, &cookie, res.json()["id"].as_u64().unwrap()).await;
    assert_eq!(result[0]["exit_code"], 4);
    assert_eq!(result[0]["stderr"], "raté\n");

    // Anything not approved is refused, whatever the wrapping.
    for (body, needle) in [
        (
            serde_json::json!({ "name": "rm", "stations": null }),
            "not an approved command",
        ),
        (
            serde_json::json!({ "name": "bonjour", "args": ["; rm -rf /"], "stations": null }),
            "not an allowed argument",
        ),
        (
            serde_json::json!({ "name": "bonjour", "stations": [777] }),
            "777",
        ),
        (serde_json::json!({ "program": "/bin/rm" }), "program"),
    ] {
        let res = run(body.clone()).await;
        assert_eq!(res.status, 400, "{body}");
        let msg = res.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{body} → {msg}");
    }
    for s in stations {
        s.shutdown().await;
    }
}

/// A station's own allow-list, as it would read it from /etc/lanterne/station.toml.
fn station_allow_list(toml: &str) -> Arc<AllowList> {
    let path = std::path::Path::new("/etc/lanterne/station.toml");
    Arc::new(AllowList::new(
        path,
        StationConfig::parse(toml, path).unwrap().commands,
    ))
}

#[tokio::test]
async fn a_command_approved_on_the_box_but_not_on_the_station_is_refused_by_the_station() {
    let dir = tempfile::tempdir().unwrap();
    // The box approves a command that would create `marker`; the station's list only has echo.
    let marker = dir.path().join("ran");
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n\
         [[commands]]\nname = \"bonjour\"\nprogram = \"/bin/echo\"\nargs = [\"bonjour\"]\n\
         [[commands]]\nname = \"marque\"\nprogram = \"/usr/bin/touch\"\nargs = [{:?}]\n",
        marker.display().to_string()
    ))
    .await
    .unwrap();
    let probe = lanterne_media::init().unwrap();
    let station_dir = dir.path().join("poste-01");
    b.enrol(&station_dir, "poste-01").await.unwrap();
    let station = spawn_station_allowing(
        &station_dir,
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-01".into(),
            rgb: [40, 70, 200],
        }),
        Arc::new(SimulatedScreen::default()),
        Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-01".into(),
        station_allow_list("[[commands]]\nprogram = \"/bin/echo\"\nargs = [\"bonjour\"]\n"),
    )
    .unwrap();
    wait_until("station connected", Duration::from_secs(30), || {
        station.status.borrow().connected
    })
    .await;
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let run = |name: &str| {
        https.post_json(
            &cookie,
            "/api/commands/run",
            serde_json::json!({ "name": name, "stations": null }),
        )
    };

    // The box approves it and sends it; the station refuses it and says why.
    let res = run("marque").await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["sent_to"], serde_json::json!(["poste-01"]));
    let result = wait_for_result(&https, &cookie, res.json()["id"].as_u64().unwrap()).await;
    assert_eq!(result[0]["name"], "poste-01");
    assert_eq!(result[0]["exit_code"], serde_json::Value::Null, "{result}");
    assert_eq!(
        result[0]["error"],
        "'/usr/bin/touch' is not in this station's allow-list (/etc/lanterne/station.toml)",
        "{result}"
    );
    assert!(!marker.exists(), "the refused program never ran");

    // What both lists allow still runs.
    let res = run("bonjour").await;
    let result = wait_for_result(&https, &cookie, res.json()["id"].as_u64().unwrap()).await;
    assert_eq!(result[0]["exit_code"], 0, "{result}");
    assert_eq!(result[0]["stdout"], "bonjour\n");
    station.shutdown().await;
}

/// Polls a command run until every delivered station has answered; returns its results.
async fn wait_for_result(https: &Https, cookie: &str, run_id: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let res = https
            .request(
                "GET",
                &format!("/api/commands/runs/{run_id}"),
                None,
                &[("cookie", cookie)],
            )
            .await
            .unwrap();
        assert_eq!(res.status, 200);
        let run = res.json();
        let results = run["results"].clone();
        if results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["done"] == true || r["delivered"] == false)
        {
            return results;
        }
        assert!(Instant::now() < deadline, "no result in time: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn power_orders_show_a_countdown_then_act_and_urls_open() {
    let b = BoxProcess::start().await.unwrap();
    let probe = lanterne_media::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = b.enrol(dir.path(), "poste-01").await.unwrap().station_id;
    let screen = Arc::new(SimulatedScreen::default());
    let system = Arc::new(lanterne_station::system::SimulatedSystem::default());
    let station = spawn_station(
        dir.path(),
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-01".into(),
            rgb: [40, 70, 200],
        }),
        screen.clone(),
        system.clone(),
        &probe,
        "poste-01".into(),
    )
    .unwrap();
    wait_until("station connected", Duration::from_secs(30), || {
        station.status.borrow().connected
    })
    .await;
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();

    let res = https
        .post_json(
            &cookie,
            "/api/stations/power",
            serde_json::json!({ "action": "restart", "countdown_s": 1, "stations": [id] }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["sent_to"], serde_json::json!(["poste-01"]));
    // The student is warned first…
    wait_until("countdown notice shown", Duration::from_secs(5), || {
        screen
            .open_messages()
            .iter()
            .any(|(i, _, text)| *i == 0 && text.contains("redémarrer dans 1 s"))
    })
    .await;
    assert!(
        system.done().is_empty(),
        "nothing happens before the countdown ends"
    );
    // …then the station restarts.
    wait_until("restart carried out", Duration::from_secs(5), || {
        system.done() == ["restart"]
    })
    .await;

    let res = https.post_json(&cookie,
        "/api/stations/open-url",
        serde_json::json!({ "url": "https://fr.wikipedia.org/wiki/Lanterne", "stations": null }),
    )
    .await;
    assert_eq!(res.status, 200);
    wait_until("URL opened", Duration::from_secs(5), || {
        system.done().last().map(String::as_str)
            == Some("open-url https://fr.wikipedia.org/wiki/Lanterne")
    })
    .await;
    b.wait_log_line(
        &["station carried out the order", "open-url"],
        Duration::from_secs(5),
    )
    .await
    .unwrap();

    // The station's answer reaches the tablet: a refusal with its reason. This station has no
    // automatic login, so it cannot open a session.
    let res = https
        .post_json(
            &cookie,
            "/api/stations/power",
            serde_json::json!({ "action": "open-session", "stations": [id] }),
        )
        .await;
    assert_eq!(res.status, 200);
    let order = res.json()["id"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let result = loop {
        let run = https
            .request(
                "GET",
                &format!("/api/orders/{order}"),
                None,
                &[("cookie", &cookie)],
            )
            .await
            .unwrap();
        assert_eq!(run.status, 200);
        let run = run.json();
        assert_eq!(run["action"], "open-session");
        if run["results"][0]["done"] == true {
            break run["results"][0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "no answer: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(result["ok"], false);
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("not set up to open sessions"),
        "{result}"
    );
    let res = https
        .request("GET", "/api/orders/999999", None, &[("cookie", &cookie)])
        .await
        .unwrap();
    assert_eq!(res.status, 404);

    for (path, body, needle) in [
        (
            "/api/stations/open-url",
            serde_json::json!({ "url": "file:///etc/shadow", "stations": null }),
            "'url'",
        ),
        (
            "/api/stations/power",
            serde_json::json!({ "action": "explode", "stations": null }),
            "action",
        ),
        (
            "/api/stations/power",
            serde_json::json!({ "action": "shutdown", "countdown_s": 9000, "stations": null }),
            "'countdown_s'",
        ),
    ] {
        let res = https.post_json(&cookie, path, body.clone()).await;
        assert_eq!(res.status, 400, "{body}");
        let msg = res.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{body} → {msg}");
    }
    station.shutdown().await;
}
