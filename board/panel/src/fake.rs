//! A fake RP2040 front panel behind a pseudo-terminal, for tests of the box side (feature
//! `fake-panel`, never in a shipped box).
//!
//! It runs the firmware's own logic (`lanterne_panel_logic::Panel`) and the real frame codec,
//! so a test talks to it exactly as the box talks to the real panel, minus the USB hardware.
//! The box opens the panel through a symlink, like the udev-made `/dev/lanterne-panel`;
//! unplugging closes the pty, replugging makes a new one and repoints the symlink.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lanterne_panel_logic::{LedPattern, Panel, PanelConfig};
use lanterne_panel_protocol::{encode, BoxToPanel, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_serial::{SerialPort, SerialStream};

/// Generous bound for anything that should happen within a few heartbeats.
pub const SOON: Duration = Duration::from_secs(5);

/// What the fake panel's LEDs display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shown {
    pub box_alive: bool,
    pub lock: LedPattern,
    pub status: LedPattern,
}

/// A plugged-in fake panel.
pub struct FakePanel {
    /// Held down while true.
    pub button: Arc<AtomicBool>,
    /// A hung firmware: input ignored, nothing sent.
    pub mute: Arc<AtomicBool>,
    /// Bytes to inject on the line (noise).
    pub noise: mpsc::UnboundedSender<Vec<u8>>,
    pub shown: watch::Receiver<Shown>,
    /// Frames from the box decoded so far.
    pub frames_seen: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// A fresh per-process directory for a test's panel symlink.
pub fn unique_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lanterne-panel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl FakePanel {
    /// "Plugs in" a panel: a fresh pty, with `link` pointing at its device node.
    pub fn plug(link: &Path, config: PanelConfig) -> Self {
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
            (master, slave),
            Controls {
                button: button.clone(),
                mute: mute.clone(),
                frames_seen: frames_seen.clone(),
            },
            noise_rx,
            shown_tx,
            config,
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
    pub async fn unplug(self, link: &Path) {
        self.task.abort();
        let _ = self.task.await;
        let _ = std::fs::remove_file(link);
    }

    pub async fn hold_button(&self, for_: Duration) {
        self.button.store(true, Ordering::SeqCst);
        tokio::time::sleep(for_).await;
        self.button.store(false, Ordering::SeqCst);
    }

    pub async fn wait_shown(&self, what: &str, pred: impl Fn(&Shown) -> bool) -> Shown {
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
/// What the test side flips and reads while the fake device runs.
struct Controls {
    button: Arc<AtomicBool>,
    mute: Arc<AtomicBool>,
    frames_seen: Arc<AtomicUsize>,
}

async fn device(
    // The slave end is held so the master never sees a hang-up while the box reconnects.
    (master, _slave): (SerialStream, SerialStream),
    Controls {
        button,
        mute,
        frames_seen,
    }: Controls,
    mut noise: mpsc::UnboundedReceiver<Vec<u8>>,
    shown: watch::Sender<Shown>,
    config: PanelConfig,
) {
    let (mut rx, mut tx) = tokio::io::split(master);
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let mut panel = Panel::new(config);
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
