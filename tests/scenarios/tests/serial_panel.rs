//! The box with its production panel backend (USB serial) talking to a fake RP2040 panel on a
//! pseudo-terminal that runs the firmware's own logic: a button press locks the room, the
//! status LED follows "is any screen watched" (a station streaming to an open mosaic), and
//! unplugging and replugging the panel is survived.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanterne_media::CaptureSource;
use lanterne_panel::fake::{unique_dir, FakePanel};
use lanterne_panel_logic::{LedPattern, PanelConfig};
use lanterne_panel_protocol::FirmwareVersion;
use lanterne_scenarios::BoxProcess;
use lanterne_station::screen::{Screen, SimulatedScreen};
use lanterne_station::{spawn_station, SourceSpec};

fn panel_config() -> PanelConfig {
    PanelConfig::new(FirmwareVersion {
        major: 1,
        minor: 0,
        patch: 0,
    })
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn serial_panel_button_locks_the_room_and_the_status_led_follows_monitoring() {
    let dir = unique_dir("box-serial");
    let link = dir.join("lanterne-panel");
    let fake = FakePanel::plug(&link, panel_config());
    let b = BoxProcess::start_with_config(&format!(
        "[room]\nname = \"Salle 12\"\n[panel]\nbackend = \"serial\"\ndevice = \"{}\"\n{}",
        link.display(),
        lanterne_scenarios::schedule_including_now()
    ))
    .await
    .unwrap();

    // No station yet: nobody is watched, the box is alive, the room unlocked.
    let s = fake
        .wait_shown("box alive, nobody watched", |s| {
            s.box_alive && s.status == LedPattern::Off && s.lock == LedPattern::Off
        })
        .await;
    assert!(s.box_alive);

    // A station connects and a teacher opens the class: it streams thumbnails, the status
    // LED lights.
    let https = b.https().unwrap();
    let cookie = https
        .login("admin", b.ready.admin_password.as_deref().unwrap())
        .await
        .unwrap();
    let _mosaic = https.websocket("/api/mosaic", &cookie).await.unwrap();
    let probe = lanterne_media::init().unwrap();
    let sdir = tempfile::tempdir().unwrap();
    b.enrol(sdir.path(), "poste-01").await.unwrap();
    let screen = Arc::new(SimulatedScreen::default());
    let station = spawn_station(
        sdir.path(),
        SourceSpec::Live(CaptureSource::Synthetic {
            label: "poste-01".into(),
            rgb: [200, 40, 40],
        }),
        screen.clone(),
        std::sync::Arc::new(lanterne_station::system::SimulatedSystem::default()),
        &probe,
        "poste-01".into(),
    )
    .unwrap();
    fake.wait_shown("watched while the station streams", |s| {
        s.status == LedPattern::Steady
    })
    .await;

    // The physical button locks the room: the station shows the lock, the lock LED lights.
    fake.hold_button(Duration::from_millis(100)).await;
    wait_until(
        "station locked by the button",
        Duration::from_secs(10),
        || screen.shown().locked,
    )
    .await;
    fake.wait_shown("lock LED on", |s| s.lock == LedPattern::Steady)
        .await;

    // Unplug and replug the panel: the box reopens it and shows the current state again.
    fake.unplug(&link).await;
    let fake = FakePanel::plug(&link, panel_config());
    fake.wait_shown("state restored after replug", |s| {
        s.box_alive && s.lock == LedPattern::Steady && s.status == LedPattern::Steady
    })
    .await;
    // And the button still works: press again to unlock.
    fake.hold_button(Duration::from_millis(100)).await;
    wait_until(
        "station unlocked by the button",
        Duration::from_secs(10),
        || !screen.shown().locked,
    )
    .await;
    fake.wait_shown("lock LED off", |s| s.lock == LedPattern::Off)
        .await;

    // The station leaves: nobody is watched any more, and the LED says so.
    station.task.abort();
    drop(station);
    fake.wait_shown("not watched once the station is gone", |s| {
        s.status == LedPattern::Off
    })
    .await;
    b.wait_log_line(&["front panel connected"], Duration::from_secs(1))
        .await
        .unwrap();
    fake.unplug(&link).await;
}
