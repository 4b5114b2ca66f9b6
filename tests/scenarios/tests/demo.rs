//! The demo (fan-out) against a real box process: one station's screen relayed to the others,
//! and the faults the relay must survive — a receiver that stops reading, a receiver that
//! leaves and comes back, the source leaving — plus the policy (monitoring hours) and bad
//! requests.
//!
//! Receivers are either real station agents (they decode, and report the colour at the
//! centre of what they decoded) or raw protocol clients (to control exactly what a receiver
//! reads, and see the frames the box sends it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lanterne_media::CaptureSource;
use lanterne_scenarios::{close_to, BoxProcess, Https};
use lanterne_station::identity::{Identity, BOX_SERVER_NAME};
use lanterne_station::link::LinkStatus;
use lanterne_station::screen::SimulatedScreen;
use lanterne_station::system::SimulatedSystem;
use lanterne_station::{spawn_station, RunningStation, SourceSpec, PALETTE};
use lanterne_wire::{Capabilities, Control, Frame, FrameCodec, Stream, PROTOCOL_VERSION};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio_util::codec::Framed;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A small full stream keeps four decoders per test affordable on a shared machine.
const CONFIG: &str = "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"simulated\"\n\
                      [focus]\nwidth = 640\nheight = 360\nfps = 15\nbitrate_kbps = 800\n";

struct Class {
    b: BoxProcess,
    https: Https,
    cookie: String,
    dirs: tempfile::TempDir,
}

impl Class {
    /// A room with `config`; one without its own `[schedule]` gets one that includes now
    /// (showing a student's screen is watching it).
    async fn start(config: &str) -> Class {
        let config = if config.contains("[schedule]") {
            config.to_string()
        } else {
            format!("{config}{}", lanterne_scenarios::schedule_including_now())
        };
        let b = BoxProcess::start_with_config(&config).await.unwrap();
        let https = b.https().unwrap();
        let cookie = https
            .login("admin", b.ready.admin_password.as_deref().unwrap())
            .await
            .unwrap();
        Class {
            b,
            https,
            cookie,
            dirs: tempfile::tempdir().unwrap(),
        }
    }

    async fn enrol(&self, name: &str) -> u32 {
        let dir = self.dirs.path().join(name);
        self.b.enrol(&dir, name).await.unwrap().station_id
    }

    /// Starts the enrolled station `name` showing the synthetic picture in `rgb`.
    fn run(&self, name: &str, rgb: [u8; 3]) -> RunningStation {
        self.run_with_screen(name, rgb).0
    }

    /// Like [`Class::run`], keeping the station's simulated screen to look at.
    fn run_with_screen(&self, name: &str, rgb: [u8; 3]) -> (RunningStation, Arc<SimulatedScreen>) {
        let probe = lanterne_media::init().unwrap();
        let screen = Arc::new(SimulatedScreen::default());
        let running = spawn_station(
            &self.dirs.path().join(name),
            SourceSpec::Live(CaptureSource::Synthetic {
                label: name.into(),
                rgb,
            }),
            screen.clone(),
            Arc::new(SimulatedSystem::default()),
            &probe,
            name.into(),
        )
        .unwrap();
        (running, screen)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self.https.post_json(&self.cookie, path, body).await;
        let v = serde_json::from_slice(&res.body).unwrap_or(Value::Null);
        (res.status, v)
    }

    /// The audit log as the admin reads it.
    async fn audit_text(&self) -> String {
        let res = self
            .https
            .request("GET", "/api/audit", None, &[("cookie", &self.cookie)])
            .await
            .unwrap();
        String::from_utf8_lossy(&res.body).into_owned()
    }

    async fn room(&self) -> Value {
        self.https
            .request("GET", "/api/room", None, &[("cookie", &self.cookie)])
            .await
            .unwrap()
            .json()
    }

    /// Polls `/api/room` (the box refreshes the demo part every second) until `cond` holds.
    async fn room_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let room = self.room().await;
            if cond(&room) {
                return room;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {room:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Connects to the box as the enrolled station `name`, with a small receive buffer, and
    /// returns once welcomed.
    async fn raw(&self, name: &str) -> Framed<Tls, FrameCodec> {
        let id = Identity::load(&self.dirs.path().join(name)).unwrap();
        let addr: std::net::SocketAddr = id.enrolment.link.parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // So that a receiver that stops reading backs up into the box quickly.
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(id.link_tls().unwrap())
            .connect(ServerName::try_from(BOX_SERVER_NAME).unwrap(), tcp)
            .await
            .unwrap();
        let mut framed = Framed::new(tls, FrameCodec);
        framed
            .send(Frame::Control(Control::Hello {
                protocol: PROTOCOL_VERSION,
                agent_version: "test".into(),
                hostname: name.into(),
                capabilities: Capabilities::default(),
            }))
            .await
            .unwrap();
        match framed.next().await {
            Some(Ok(Frame::Control(Control::Welcome { .. }))) => framed,
            other => panic!("expected a welcome, got {other:?}"),
        }
    }
}

/// Waits until a station's status satisfies `cond`.
async fn status_until(
    st: &RunningStation,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&LinkStatus) -> bool,
) -> LinkStatus {
    let mut rx = st.status.clone();
    let found = tokio::time::timeout(timeout, rx.wait_for(|s| cond(s)))
        .await
        .ok()
        .and_then(|r| r.ok().map(|s| s.clone()));
    match found {
        Some(s) => s,
        None => panic!(
            "{}: timed out waiting for {what}: {:?}",
            st.name,
            *st.status.borrow()
        ),
    }
}

/// The station decodes the demo and its picture centre has the source's colour.
async fn decodes_colour(st: &RunningStation, rgb: [u8; 3]) -> LinkStatus {
    status_until(
        st,
        "the demo decoded in the source colour",
        Duration::from_secs(30),
        |s| {
            s.demo.is_some_and(|h| {
                h.playing
                    && h.frames_decoded >= 10
                    && h.centre_rgb.is_some_and(|c| close_to(c, rgb, 40))
            })
        },
    )
    .await
}

#[tokio::test]
async fn a_demo_reaches_every_other_station_and_stop_ends_it_everywhere() {
    let c = Class::start(CONFIG).await;
    let names = ["poste-01", "poste-02", "poste-03"];
    let mut ids = Vec::new();
    for n in names {
        ids.push(c.enrol(n).await);
    }
    let stations: Vec<RunningStation> = names
        .iter()
        .enumerate()
        .map(|(i, n)| c.run(n, PALETTE[i]))
        .collect();
    for st in &stations {
        status_until(st, "connected", Duration::from_secs(30), |s| s.connected).await;
    }

    // Bad requests are refused with a message naming the problem; nothing starts.
    let (code, body) = c.post("/api/demo/stop", json!({})).await;
    assert_eq!(
        (code, body["error"].as_str()),
        (409, Some("no demo is running"))
    );
    let bad = [
        (
            json!({"source": 999, "targets": null, "mode": "windowed"}),
            "'source'",
        ),
        (
            json!({"source": ids[0], "targets": [ids[0], ids[1]], "mode": "windowed"}),
            "cannot also be a target",
        ),
        (
            json!({"source": ids[0], "targets": [], "mode": "windowed"}),
            "empty",
        ),
        (
            json!({"source": ids[0], "targets": [999], "mode": "windowed"}),
            "'targets'",
        ),
        (
            json!({"source": ids[0], "targets": null, "mode": "sideways"}),
            "mode",
        ),
        (
            json!({"source": ids[0], "targets": null, "mode": "windowed",
                "region": {"x": 0, "y": 0, "width": 8, "height": 8}}),
            "'region'",
        ),
    ];
    for (req, needle) in bad {
        let (code, body) = c.post("/api/demo", req.clone()).await;
        assert_eq!(code, 400, "{req} → {body}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{req} → {body}"
        );
    }

    for mode in ["fullscreen", "windowed"] {
        let (code, view) = c
            .post(
                "/api/demo",
                json!({"source": ids[0], "targets": null, "mode": mode}),
            )
            .await;
        assert_eq!(code, 200, "{view}");
        assert_eq!(view["source_name"], "poste-01");
        assert_eq!(view["mode"], mode);
        let receivers: Vec<&str> = view["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(receivers, ["poste-02", "poste-03"]);

        // Every receiver decodes the source's picture, not its own.
        for st in &stations[1..] {
            decodes_colour(st, PALETTE[0]).await;
        }
        assert!(
            stations[0].status.borrow().demo.is_none(),
            "the source does not play its own demo"
        );
        // The tablet sees each receiver's health, and the screen shown counts as watched.
        let room = c
            .room_until("health of both receivers", Duration::from_secs(10), |r| {
                r["demo"]["receivers"].as_array().is_some_and(|rs| {
                    rs.iter()
                        .all(|x| x["health"]["frames_decoded"].as_u64() > Some(0))
                })
            })
            .await;
        assert_eq!(room["watched"], true);
        assert_eq!(room["demo"]["mode"], mode);

        let (code, end) = c.post("/api/demo/stop", json!({})).await;
        assert_eq!(code, 200, "{end}");
        assert_eq!(end["reason"], "stopped");
        for st in &stations[1..] {
            let s = status_until(st, "the player closed", Duration::from_secs(10), |s| {
                s.demo.is_some_and(|h| !h.playing)
            })
            .await;
            assert_eq!(
                s.demo_end_reason.as_deref(),
                Some("La démonstration est terminée.")
            );
        }
        let room = c.room().await;
        assert!(room["demo"].is_null(), "{room:#}");
        assert_eq!(room["last_demo_end"]["reason"], "stopped");
    }

    let text = c.audit_text().await;
    assert_eq!(text.matches("demo-start").count(), 2, "{text}");
    assert_eq!(text.matches("demo-stop").count(), 2, "{text}");
    assert!(
        text.contains("mode fullscreen") && text.contains("mode windowed"),
        "{text}"
    );
}

#[tokio::test]
async fn the_source_leaving_ends_the_demo_everywhere_with_a_message() {
    let c = Class::start(CONFIG).await;
    let mut ids = Vec::new();
    for n in ["poste-01", "poste-02", "poste-03"] {
        ids.push(c.enrol(n).await);
    }
    let source = c.run("poste-01", PALETTE[0]);
    let receivers = [c.run("poste-02", PALETTE[1]), c.run("poste-03", PALETTE[2])];
    status_until(&source, "connected", Duration::from_secs(30), |s| {
        s.connected
    })
    .await;
    let (code, view) = c
        .post(
            "/api/demo",
            json!({"source": ids[0], "targets": null, "mode": "windowed"}),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    for st in &receivers {
        decodes_colour(st, PALETTE[0]).await;
    }

    source.shutdown().await;
    for st in &receivers {
        let s = status_until(st, "the demo ended", Duration::from_secs(30), |s| {
            s.demo.is_some_and(|h| !h.playing)
        })
        .await;
        let reason = s.demo_end_reason.unwrap_or_default();
        assert!(reason.contains("n'est plus disponible"), "{reason}");
    }
    let room = c
        .room_until("the demo gone", Duration::from_secs(10), |r| {
            r["demo"].is_null()
        })
        .await;
    assert_eq!(room["last_demo_end"]["reason"], "source-gone");
    assert_eq!(room["last_demo_end"]["source_name"], "poste-01");
}

/// Reads frames until the first demo media frame; returns it and the time from the demo
/// order to it.
async fn first_demo_frame(framed: &mut Framed<Tls, FrameCodec>) -> (bool, Duration) {
    let mut ordered: Option<Instant> = None;
    loop {
        let f = tokio::time::timeout(Duration::from_secs(10), framed.next())
            .await
            .expect("a frame within 10 s")
            .expect("link open")
            .expect("valid frame");
        match f {
            Frame::Control(Control::DemoStart(order)) => {
                assert_eq!(order.source, "poste-01");
                ordered = Some(Instant::now());
            }
            Frame::Media { header, .. } => {
                assert_eq!(header.stream, Stream::Demo);
                let at = ordered.expect("the demo order comes before its frames");
                return (header.keyframe, at.elapsed());
            }
            Frame::Control(_) => {}
        }
    }
}

#[tokio::test]
async fn a_receiver_that_leaves_and_returns_resumes_at_a_keyframe_within_a_second() {
    let c = Class::start(CONFIG).await;
    let source_id = c.enrol("poste-01").await;
    let receiver_id = c.enrol("poste-02").await;
    let source = c.run("poste-01", PALETTE[0]);
    status_until(&source, "connected", Duration::from_secs(30), |s| {
        s.connected
    })
    .await;
    let mut raw = c.raw("poste-02").await;
    let (code, view) = c
        .post(
            "/api/demo",
            json!({"source": source_id, "targets": [receiver_id], "mode": "fullscreen"}),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    let (keyframe, _) = first_demo_frame(&mut raw).await;
    assert!(keyframe, "the first frame a receiver gets is a keyframe");

    for round in 0..3 {
        drop(raw);
        // Wait until the box has noticed, so the next connection is a return, not a race.
        c.room_until("the receiver offline", Duration::from_secs(20), |r| {
            r["demo"]["receivers"][0]["online"] == false
        })
        .await;
        raw = c.raw("poste-02").await;
        let (keyframe, after) = first_demo_frame(&mut raw).await;
        assert!(keyframe, "round {round}: resumed on a delta frame");
        assert!(
            after < Duration::from_secs(1),
            "round {round}: first frame after {after:?}"
        );
    }
    let room = c.room().await;
    assert_eq!(
        room["demo"]["source_name"], "poste-01",
        "the demo went on: {room:#}"
    );
}

#[tokio::test]
async fn a_receiver_that_stops_reading_does_not_change_the_others_delivery() {
    let c = Class::start(CONFIG).await;
    let source_id = c.enrol("poste-01").await;
    let healthy_id = c.enrol("poste-02").await;
    let stalled_id = c.enrol("poste-03").await;
    let source = c.run("poste-01", PALETTE[0]);
    let healthy = c.run("poste-02", PALETTE[1]);
    for st in [&source, &healthy] {
        status_until(st, "connected", Duration::from_secs(30), |s| s.connected).await;
    }
    // Connected, then never reads again: its socket fills, then its queue in the box. It
    // keeps sending heartbeats, as a live but overloaded station would, so the box has no
    // reason to drop it.
    let (mut sink, _unread) = c.raw("poste-03").await.split();
    let _beats = tokio::spawn(async move {
        loop {
            let beat = Control::Heartbeat {
                sent_us: lanterne_wire::now_us(),
            };
            if sink.send(Frame::Control(beat)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    });
    let (code, view) = c
        .post(
            "/api/demo",
            json!({"source": source_id, "targets": null, "mode": "windowed"}),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    decodes_colour(&healthy, PALETTE[0]).await;

    let receiver = |room: &Value, id: u32| {
        room["demo"]["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["station_id"] == id)
            .cloned()
            .unwrap()
    };
    let room = c
        // The box bounds its send buffer per station (about half a second of a 4 Mbit/s
        // demo), but this mostly flat test picture is far smaller, so filling it and then the
        // relay's queue takes several seconds.
        .room_until(
            "the stalled receiver dropping",
            Duration::from_secs(90),
            |r| {
                !r["demo"].is_null()
                    && receiver(r, stalled_id)["relay"]["dropped"].as_u64() > Some(0)
            },
        )
        .await;
    let stalled = receiver(&room, stalled_id);
    assert_eq!(stalled["relay"]["waiting_for_key"], true, "{stalled}");

    // Meanwhile the healthy receiver lost nothing: the relay never skipped a frame for it,
    // and its player never saw a gap. It keeps receiving after the other one stalled.
    let before = receiver(&room, healthy_id)["relay"]["delivered"]
        .as_u64()
        .unwrap();
    let room = c
        .room_until(
            "more frames for the healthy receiver",
            Duration::from_secs(10),
            |r| {
                receiver(r, healthy_id)["relay"]["delivered"]
                    .as_u64()
                    .unwrap()
                    > before + 15
            },
        )
        .await;
    let h = receiver(&room, healthy_id);
    assert_eq!(h["relay"]["dropped"], 0, "{h}");
    let s = healthy.status.borrow().clone();
    let health = s.demo.unwrap();
    assert!(health.playing);
    assert_eq!(health.frames_dropped, 0, "{health:?}");
    assert!(close_to(health.centre_rgb.unwrap(), PALETTE[0], 40));
}

#[tokio::test]
async fn technicians_may_not_start_or_stop_a_demo() {
    let c = Class::start(CONFIG).await;
    let source = c.enrol("poste-01").await;
    let (code, body) = c
        .post(
            "/api/accounts",
            json!({"username": "tech", "role": "technician", "password": "Depannage-2026"}),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let tech = c.https.login("tech", "Depannage-2026").await.unwrap();
    for (path, body) in [
        (
            "/api/demo",
            json!({"source": source, "targets": null, "mode": "windowed"}),
        ),
        ("/api/demo/stop", json!({})),
    ] {
        let res = c.https.post_json(&tech, path, body).await;
        assert_eq!(res.status, 403, "{path}");
        let msg = res.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains("the technician role may not"), "{path}: {msg}");
        assert_eq!(res.json()["reason"]["kind"], "role_not_permitted", "{path}");
    }
}

/// A `[schedule]` section whose only monitoring window is on another day than today: the
/// stations may be used all day, nobody may be watched now.
fn schedule_not_today() -> String {
    let out = std::process::Command::new("date")
        .arg("+%u")
        .output()
        .unwrap();
    let today: usize = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let other = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][today % 7];
    format!(
        "[schedule]\n\
         access = [{{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"], start = \"00:00\", end = \"24:00\" }}]\n\
         monitoring = [{{ days = [\"{other}\"], start = \"09:00\", end = \"10:00\" }}]\n"
    )
}

#[tokio::test]
async fn a_demo_is_refused_outside_monitoring_hours() {
    let config = format!("{CONFIG}{}", schedule_not_today());
    let c = Class::start(&config).await;
    let source = c.enrol("poste-01").await;
    c.enrol("poste-02").await;
    let (code, body) = c
        .post(
            "/api/demo",
            json!({"source": source, "targets": null, "mode": "windowed"}),
        )
        .await;
    assert_eq!(code, 403, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("outside the monitoring hours"), "{msg}");
    assert!(msg.contains("next allowed"), "{msg}");
    assert!(body["next_allowed"].is_string(), "{body}");
    let text = c.audit_text().await;
    assert!(
        text.contains("demo_of_student") && text.contains("refused"),
        "{text}"
    );
}

/// The teacher's PC through the box's HDMI input (here its colour-bar stand-in) reaches every
/// station, outside the monitoring hours too: showing the teacher's own screen watches no
/// student, so it is not refused and the status LED stays off.
#[tokio::test]
async fn the_teachers_pc_through_hdmi_reaches_every_station_at_any_hour() {
    let config = format!(
        "{CONFIG}[hdmi]\ninput = \"test-pattern\"\nbitrate_kbps = 2000\n{}",
        schedule_not_today()
    );
    let c = Class::start(&config).await;
    c.enrol("poste-01").await;
    c.enrol("poste-02").await;
    let stations = [c.run("poste-01", PALETTE[0]), c.run("poste-02", PALETTE[1])];
    for st in &stations {
        status_until(st, "connected", Duration::from_secs(30), |s| s.connected).await;
    }
    assert_eq!(c.room().await["hdmi_available"], true);

    let (code, body) = c
        .post(
            "/api/demo",
            json!({"source": "camera", "targets": null, "mode": "windowed"}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("'source'"),
        "{body}"
    );

    let (code, view) = c
        .post(
            "/api/demo",
            json!({"source": "hdmi", "targets": null, "mode": "fullscreen"}),
        )
        .await;
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["source"]["kind"], "hdmi");
    assert_eq!(view["receivers"].as_array().unwrap().len(), 2);
    // The stand-in shows still SMPTE colour bars; the players' centre sample falls on the
    // cyan bar, a colour neither station has of its own.
    assert!(PALETTE[..2]
        .iter()
        .all(|c| !close_to(*c, [0, 255, 255], 40)));
    for st in &stations {
        decodes_colour(st, [0, 255, 255]).await;
    }
    let room = c.room().await;
    assert_eq!(room["watched"], false, "nobody is watched: {room}");
    let panel = c
        .https
        .request("GET", "/api/dev/panel", None, &[("cookie", &c.cookie)])
        .await
        .unwrap()
        .json();
    assert_eq!(panel["status_led"], "off");

    let (code, body) = c.post("/api/demo/stop", json!({})).await;
    assert_eq!(code, 200, "{body}");
    for st in &stations {
        status_until(st, "the player closed", Duration::from_secs(10), |s| {
            s.demo_end_reason.is_some() && s.demo.is_none_or(|h| !h.playing)
        })
        .await;
    }
    let text = c.audit_text().await;
    assert!(
        text.contains("demo-start") && text.contains("HDMI"),
        "{text}"
    );
}

#[tokio::test]
async fn an_hdmi_demo_is_refused_clearly_without_an_hdmi_input() {
    let c = Class::start(CONFIG).await;
    c.enrol("poste-01").await;
    assert_eq!(c.room().await["hdmi_available"], false);
    let (code, body) = c
        .post(
            "/api/demo",
            json!({"source": "hdmi", "targets": null, "mode": "windowed"}),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("[hdmi]"), "{body}");
}

/// Full screen takes the receiving students' input; a demo that replaces it in a window gives
/// it back, and a full-screen one again takes it (never left blocked by a race between the
/// two changes); stopping gives it back.
#[tokio::test]
async fn full_screen_blocks_the_receivers_input_until_the_demo_changes_or_stops() {
    let c = Class::start(CONFIG).await;
    let source_id = c.enrol("poste-01").await;
    c.enrol("poste-02").await;
    let source = c.run("poste-01", PALETTE[0]);
    let (receiver, screen) = c.run_with_screen("poste-02", PALETTE[1]);
    for st in [&source, &receiver] {
        status_until(st, "connected", Duration::from_secs(30), |s| s.connected).await;
    }
    let blocked_becomes = |want: bool| {
        let screen = screen.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while screen.input_blocked() != want {
                assert!(Instant::now() < deadline, "input blocked should be {want}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    for (mode, blocked) in [
        ("fullscreen", true),
        ("windowed", false),
        ("fullscreen", true),
    ] {
        let (code, body) = c
            .post(
                "/api/demo",
                json!({"source": source_id, "targets": null, "mode": mode}),
            )
            .await;
        assert_eq!(code, 200, "{body}");
        decodes_colour(&receiver, PALETTE[0]).await;
        blocked_becomes(blocked).await;
    }
    let (code, _) = c.post("/api/demo/stop", json!({})).await;
    assert_eq!(code, 200);
    blocked_becomes(false).await;
}
