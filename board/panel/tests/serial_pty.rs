//! The serial backend against a fake RP2040 panel behind a pseudo-terminal.
//!
//! The fake runs the firmware's own logic (`lanterne_panel_logic::Panel`) and the real frame
//! codec, so these tests are the box ↔ firmware conversation minus the USB hardware. The box
//! opens the panel through a symlink, like the udev-made `/dev/lanterne-panel`; unplugging
//! closes the pty, replugging makes a new one and repoints the symlink.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lanterne_panel::{spawn_serial, LedState, PanelEvent, PanelHandle, SerialConfig, StatusLed};
use lanterne_panel_logic::{LedPattern, Panel, PanelConfig};
use lanterne_panel_protocol::{encode, BoxToPanel, FirmwareVersion, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_serial::{SerialPort, SerialStream};

const FW: FirmwareVersion = FirmwareVersion {
    major: 0,
    minor: 3,
    patch: 7,
};

/// Generous bound for anything that should happen within a few heartbeats.
const SOON: Duration = Duration::from_secs(5);

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

/// What the fake panel's LEDs display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shown {
    box_alive: bool,
    lock: LedPattern,
    status: LedPattern,
}

/// A plugged-in fake panel.
struct FakePanel {
    button: Arc<AtomicBool>,
    mute: Arc<AtomicBool>,
    noise: mpsc::UnboundedSender<Vec<u8>>,
    shown: watch::Receiver<Shown>,
    frames_seen: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

fn unique_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lanterne-panel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl FakePanel {
    /// "Plugs in" a panel: a fresh pty, with `link` pointing at its device node.
    fn plug(link: &Path) -> Self {
        // A raw-mode pty pair: `master` is the panel's end, the slave node is what the box opens.
        let (master, slave) = SerialStream::pair().expect("pty pair");
        let node = slave.name().expect("pty slave has a path");
        let tmp = link.with_extension("new");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&node, &tmp).unwrap();
        std::fs::rename(&tmp, link).unwrap();

        let button = Arc::new(AtomicBool::new(false));
        let mute = Arc::new(AtomicBool::new(false));
        let frames_seen = Arc::new(AtomicUsize::new(0));
        let (noise, noise_rx) = mpsc::unbounded_channel();
        let (shown_tx, shown) = watch::channel(Shown {
            box_alive: false,
            lock: LedPattern::Off,
            status: LedPattern::Fault,
        });
        let task = tokio::spawn(device(
            master,
            slave,
            button.clone(),
            mute.clone(),
            noise_rx,
            shown_tx,
            frames_seen.clone(),
        ));
        Self {
            button,
            mute,
            noise,
            shown,
            frames_seen,
            task,
        }
    }

    /// Pulls the cable: the pty disappears, the box's reads fail.
    async fn unplug(self, link: &Path) {
        self.task.abort();
        let _ = self.task.await;
        let _ = std::fs::remove_file(link);
    }

    async fn hold_button(&self, for_: Duration) {
        self.button.store(true, Ordering::SeqCst);
        tokio::time::sleep(for_).await;
        self.button.store(false, Ordering::SeqCst);
    }

    async fn wait_shown(&self, what: &str, pred: impl Fn(&Shown) -> bool) -> Shown {
        let mut rx = self.shown.clone();
        let reached = match timeout(SOON, rx.wait_for(|s| pred(s))).await {
            Ok(Ok(s)) => Some(*s),
            _ => None,
        };
        reached.unwrap_or_else(|| {
            panic!(
                "panel never showed {what}; last: {:?}",
                *self.shown.borrow()
            )
        })
    }
}

/// The fake device: the firmware main loop, with a pty master where the USB endpoint would be.
async fn device(
    master: SerialStream,
    _slave: SerialStream, // held so the master never sees a hang-up while the box reconnects
    button: Arc<AtomicBool>,
    mute: Arc<AtomicBool>,
    mut noise: mpsc::UnboundedReceiver<Vec<u8>>,
    shown: watch::Sender<Shown>,
    frames_seen: Arc<AtomicUsize>,
) {
    let (mut rx, mut tx) = tokio::io::split(master);
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let mut panel = Panel::new(panel_config());
    let mut decoder = FrameDecoder::<BoxToPanel>::new();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            read = rx.read(&mut buf) => {
                let n = read.expect("pty master read");
                if !mute.load(Ordering::SeqCst) {
                    for frame in decoder.feed(&buf[..n]) {
                        frames_seen.fetch_add(1, Ordering::SeqCst);
                        panel.on_frame(now(), frame);
                    }
                }
                // Muted: a hung firmware, input ignored.
            }
            _ = tick.tick() => {
                let t = now();
                panel.on_button(t, button.load(Ordering::SeqCst));
                panel.tick(t);
                shown.send_replace(Shown {
                    box_alive: panel.box_alive(t),
                    lock: panel.requested_lock(),
                    status: panel.displayed_status(t),
                });
                if let Ok(bytes) = noise.try_recv() {
                    tx.write_all(&bytes).await.expect("pty master write");
                }
                if mute.load(Ordering::SeqCst) {
                    panel.discard_outgoing();
                }
                while let Some(msg) = panel.pop_outgoing() {
                    tx.write_all(&encode(&msg).unwrap()).await.expect("pty master write");
                }
            }
        }
    }
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
    let fake = FakePanel::plug(&link);
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
    let fake = FakePanel::plug(&link);
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
    let fake = FakePanel::plug(&link);
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

    let fake = FakePanel::plug(&link);
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
    let fake = FakePanel::plug(&link);
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
    let fake = FakePanel::plug(&link);
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
    let fake = FakePanel::plug(&link);
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
    let fake = FakePanel::plug(&link);
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
    let fake = FakePanel::plug(&link);
    assert_eq!(next_event(&mut events).await, connected());
    fake.wait_shown("requested state", |s| {
        s.lock == LedPattern::Steady && matches!(s.status, LedPattern::Blink { .. })
    })
    .await;
    fake.unplug(&link).await;
}
