//! The focus view's recovery, with the real box binary and an in-process station: a tablet
//! whose decoder dropped frames (it fell behind, or a frame failed to decode) can resume only
//! at a keyframe, and a station's full stream carries one only every minute unless asked.
//! The page asks the box over the view's WebSocket; the box passes the request on to the
//! station.
//!
//! Regression: WebKit's focus-view test sometimes decoded a few frames and then nothing for
//! 30 s. The page had dropped delta frames while its decoder's queue was full and waited for
//! a keyframe that, since the stations' rate control made the keyframe interval a minute,
//! came too late.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use lanterne_media::CaptureSource;
use lanterne_scenarios::{next_item, BoxProcess, WsItem};
use lanterne_station::screen::{Screen, SimulatedScreen};
use lanterne_station::system::SimulatedSystem;
use lanterne_station::{spawn_station, SourceSpec};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::Message;

/// Well under the station's keyframe interval (`lanterne_media`'s one-minute safety GOP), so
/// a keyframe inside it can only be the one asked for.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_focus_viewer_that_dropped_frames_gets_a_keyframe_when_it_asks() {
    let b = BoxProcess::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let probe = lanterne_media::init().unwrap();
    let id = b.enrol(dir.path(), "poste-01").await.unwrap().station_id;
    let screen: Arc<dyn Screen> = Arc::new(SimulatedScreen::default());
    let station = spawn_station(
        dir.path(),
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-01".into(),
            rgb: [40, 120, 200],
        }),
        screen,
        Arc::new(SimulatedSystem::default()),
        &probe,
        "poste-01".into(),
    )
    .unwrap();
    let mut status = station.status.clone();
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| s.connected))
        .await
        .expect("the station connects")
        .unwrap();

    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let mut ws = https
        .websocket(&format!("/api/stations/{id}/focus"), &cookie)
        .await
        .expect("the focus view opens inside the window");

    // The view starts at a keyframe; then the stream goes on with delta frames only. The
    // first seconds may hold a second keyframe (the one the box asked for at the switch
    // crossing the stream's own first one): let them pass.
    let start = Instant::now();
    let mut first_key = None;
    let mut deltas_after_settling = 0;
    while deltas_after_settling < 5 {
        match next_item(&mut ws, Duration::from_secs(30)).await.unwrap() {
            WsItem::Video(v) if v.keyframe => {
                first_key.get_or_insert(start.elapsed());
                deltas_after_settling = 0;
            }
            WsItem::Video(_) if first_key.is_some() && start.elapsed() > Duration::from_secs(3) => {
                deltas_after_settling += 1;
            }
            WsItem::Video(_) => {}
            WsItem::Json(j) => assert_ne!(j["type"], "ended", "the view ended: {j}"),
        }
    }
    assert!(first_key.is_some(), "the view started at a keyframe");

    // The page's decoder fell behind and dropped frames: it asks for a keyframe.
    ws.send(Message::Text(r#"{"type":"keyframe"}"#.into()))
        .await
        .unwrap();
    let asked = Instant::now();
    loop {
        let left = ANSWER_WITHIN
            .checked_sub(asked.elapsed())
            .unwrap_or_else(|| panic!("no keyframe within {ANSWER_WITHIN:?} of asking"));
        match next_item(&mut ws, left).await {
            Ok(WsItem::Video(v)) if v.keyframe => break,
            Ok(WsItem::Json(j)) => assert_ne!(j["type"], "ended", "the view ended: {j}"),
            Ok(_) => {}
            Err(e) => panic!("no keyframe within {ANSWER_WITHIN:?} of asking: {e}"),
        }
    }

    // Anything else a page sends is ignored: the view stays open and keeps streaming.
    ws.send(Message::Text(r#"{"type":"something-else"}"#.into()))
        .await
        .unwrap();
    ws.send(Message::Text("not json".into())).await.unwrap();
    for _ in 0..3 {
        match next_item(&mut ws, Duration::from_secs(10)).await.unwrap() {
            WsItem::Json(j) => assert_ne!(j["type"], "ended", "the view ended: {j}"),
            WsItem::Video(_) => {}
        }
    }
    drop(ws);
    station.shutdown().await;
}
