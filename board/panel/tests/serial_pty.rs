//! The serial backend against a fake RP2040 panel behind a pseudo-terminal.
//!
//! The fake runs the firmware's own logic (`lanterne_panel_logic::Panel`) and the real frame
//! codec, so these tests are the box ↔ firmware conversation minus the USB hardware. The box
//! opens the panel through a symlink, like the udev-made `/dev/lanterne-panel`; unplugging
//! closes the pty, replugging makes a new one and repoints the symlink.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lanterne_panel::fake::{unique_dir, FakePanel, SOON};
use lanterne_panel::{spawn_serial, LedState, PanelEvent, PanelHandle, SerialConfig, StatusLed};
use lanterne_panel_logic::{LedPattern, PanelConfig};
use lanterne_panel_protocol::{encode, FirmwareVersion};
use tokio::sync::mpsc;
use tokio::time::timeout;

const FW: FirmwareVersion = FirmwareVersion {
    major: 0,
    minor: 3,
    patch: 7,
};

fn box_config() -> SerialConfig {
    SerialConfig {
        heartbeat_interval: Duration::from_millis(100),
        reply_timeout: Duration::from_millis(600),
        reconnect_delay: Duration::from_millis(100),
        write_timeout: Duration::from_millis(500),
        ..SerialConfig::default()
    }
}

fn panel_config() -> PanelConfig {
    let mut cfg = PanelConfig::new(FW);
    cfg.heartbeat_timeout_ms = 500;
    cfg.button.long_press_ms = 400;
    cfg
}

async fn next_event(events: &mut mpsc::Receiver<PanelEvent>) -> PanelEvent {
    timeout(SOON, events.recv())
        .await
        .expect("panel event in time")
        .expect("event channel open")
}

fn connected() -> PanelEvent {
    PanelEvent::Connected {
        firmware: "0.3.7".into(),
    }
}

fn start(link: &Path) -> (PanelHandle, mpsc::Receiver<PanelEvent>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("lanterne_panel=debug")
        .with_test_writer()
        .try_init();
    spawn_serial(link.to_path_buf(), box_config()).expect("valid config")
}

#[tokio::test]
async fn connects_reports_firmware_and_mirrors_leds() {
    let dir = unique_dir("mirror");
    let link = dir.join("panel");
    let fake = FakePanel::plug(&link, panel_config());
    let (panel, mut events) = start(&link);
    assert_eq!(next_event(&mut events).await, connected());

    // Before the daemon says anything the panel must not claim "nobody is watching".
    let s = fake.wait_shown("box alive", |s| s.box_alive).await;
    assert_eq!(s.status, LedPattern::Fault);

    panel.set_leds(LedState {
        lock: true,
        status: StatusLed::Watching,
    });
    fake.wait_shown("lock + watching", |s| {
        s.lock == LedPattern::Steady && s.status == LedPattern::Steady
    })
    .await;
    panel.set_leds(LedState {
        lock: false,
        status: StatusLed::RemoteControl,
    });
    fake.wait_shown("remote control", |s| {
        s.lock == LedPattern::Off && matches!(s.status, LedPattern::Blink { .. })
    })
    .await;
    panel.set_leds(LedState {
        lock: false,
        status: StatusLed::Off,
    });
    fake.wait_shown("nobody watching", |s| s.status == LedPattern::Off)
        .await;
    fake.unplug(&link).await;
}

#[tokio::test]
async fn short_and_long_presses_arrive_as_events() {
    let dir = unique_dir("presses");
    let link = dir.join("panel");
    let fake = FakePanel::plug(&link, panel_config());
    let (_panel, mut events) = start(&link);
    assert_eq!(next_event(&mut events).await, connected());
    fake.wait_shown("box alive", |s| s.box_alive).await;

    fake.hold_button(Duration::from_millis(100)).await;
    assert_eq!(next_event(&mut events).await, PanelEvent::LockButtonPressed);
    fake.hold_button(Duration::from_millis(700)).await;
    assert_eq!(
        next_event(&mut events).await,
        PanelEvent::LockButtonLongPressed
    );
    // The long press is not followed by a short one on release.
    assert!(
        timeout(Duration::from_millis(300), events.recv())
            .await
            .is_err(),
        "extra event after a long press"
    );
    fake.unplug(&link).await;
}

#[tokio::test]
async fn survives_unplug_and_replug() {
    let dir = unique_dir("replug");
    let link = dir.join("panel");
    let fake = FakePanel::plug(&link, panel_config());
    let (panel, mut events) = start(&link);
    assert_eq!(next_event(&mut events).await, connected());

    for round in 0..3 {
        fake_cycle_check(&panel, &mut events, round).await;
    }
    fake.unplug(&link).await;
    assert_eq!(next_event(&mut events).await, PanelEvent::Disconnected);

    // The daemon changes state while the panel is away; the new panel must show it.
    let want = LedState {
        lock: true,
        status: StatusLed::Watching,
    };
    panel.set_leds(want);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let fake = FakePanel::plug(&link, panel_config());
    assert_eq!(next_event(&mut events).await, connected());
    fake.wait_shown("state set while unplugged", |s| {
        s.box_alive && s.lock == LedPattern::Steady && s.status == LedPattern::Steady
    })
    .await;
    fake.hold_button(Duration::from_millis(100)).await;
    assert_eq!(next_event(&mut events).await, PanelEvent::LockButtonPressed);

    // And once more, quickly, to be sure nothing leaks across sessions.
    fake.unplug(&link).await;
    assert_eq!(next_event(&mut events).await, PanelEvent::Disconnected);
    let fake = FakePanel::plug(&link, panel_config());
    assert_eq!(next_event(&mut events).await, connected());
    fake.wait_shown("state after second replug", |s| {
        s.box_alive && s.status == LedPattern::Steady
    })
    .await;
    fake.unplug(&link).await;
}

/// Keeps the link busy between replugs: LED changes go through every time.
async fn fake_cycle_check(panel: &PanelHandle, events: &mut mpsc::Receiver<PanelEvent>, round: u8) {
    panel.set_leds(LedState {
        lock: round % 2 == 0,
        status: StatusLed::Off,
    });
    assert!(
        timeout(Duration::from_millis(200), events.recv())
            .await
            .is_err(),
        "unexpected event in round {round}"
    );
}

#[tokio::test]
async fn panel_shows_fault_when_the_box_software_stops() {
    let dir = unique_dir("boxdies");
    let link = dir.join("panel");
    let fake = FakePanel::plug(&link, panel_config());
    let (panel, mut events) = start(&link);
    assert_eq!(next_event(&mut events).await, connected());
    panel.set_leds(LedState {
        lock: false,
        status: StatusLed::Off,
    });
    fake.wait_shown("nobody watching", |s| {
        s.box_alive && s.status == LedPattern::Off
    })
    .await;

    // The daemon goes away (crash, kill, shutdown): the port closes, heartbeats stop.
    drop(panel);
    let s = fake
        .wait_shown("fault after the box died", |s| !s.box_alive)
        .await;
    assert_eq!(
        s.status,
        LedPattern::Fault,
        "a silent box must never read as 'nobody watching'"
    );
    assert_eq!(next_event(&mut events).await, PanelEvent::Disconnected);
    fake.unplug(&link).await;
}

#[tokio::test]
async fn line_noise_does_not_break_the_link() {
    let dir = unique_dir("noise");
    let link = dir.join("panel");
    let fake = FakePanel::plug(&link, panel_config());
    let (_panel, mut events) = start(&link);
    assert_eq!(next_event(&mut events).await, connected());

    // Random junk, an oversized run, and half a frame, then a real press.
    let mut junk: Vec<u8> = (0u32..300)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    junk.extend(std::iter::repeat_n(0x42, 500));
    let half = encode(&lanterne_panel_protocol::PanelToBox::ButtonLongPressed).unwrap();
    junk.extend_from_slice(&half[..half.len() / 2]);
    fake.noise.send(junk).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    fake.hold_button(Duration::from_millis(100)).await;
    assert_eq!(next_event(&mut events).await, PanelEvent::LockButtonPressed);
    // The half frame was not taken for a long press, and the link did not drop.
    assert!(timeout(Duration::from_millis(800), events.recv())
        .await
        .is_err());
    fake.unplug(&link).await;
}

#[tokio::test]
async fn hung_panel_is_dropped_and_picked_up_again() {
    let dir = unique_dir("hung");
    let link = dir.join("panel");
    let fake = FakePanel::plug(&link, panel_config());
    let (_panel, mut events) = start(&link);
    assert_eq!(next_event(&mut events).await, connected());

    fake.mute.store(true, Ordering::SeqCst);
    assert_eq!(next_event(&mut events).await, PanelEvent::Disconnected);
    fake.mute.store(false, Ordering::SeqCst);
    // The box reopens the same device and finds the panel answering again.
    assert_eq!(next_event(&mut events).await, connected());
    let before = fake.frames_seen.load(Ordering::SeqCst);
    fake.wait_shown("box alive again", |s| s.box_alive).await;
    assert!(fake.frames_seen.load(Ordering::SeqCst) >= before);
    fake.unplug(&link).await;
}

#[tokio::test]
async fn box_started_before_the_panel_is_plugged_in() {
    let dir = unique_dir("late");
    let link = dir.join("panel");
    let (panel, mut events) = start(&link);
    panel.set_leds(LedState {
        lock: true,
        status: StatusLed::RemoteControl,
    });
    assert!(timeout(Duration::from_millis(400), events.recv())
        .await
        .is_err());
    let fake = FakePanel::plug(&link, panel_config());
    assert_eq!(next_event(&mut events).await, connected());
    fake.wait_shown("requested state", |s| {
        s.lock == LedPattern::Steady && matches!(s.status, LedPattern::Blink { .. })
    })
    .await;
    fake.unplug(&link).await;
}
