//! The real firmware binary, running in the rp2040js RP2040 emulator, driven by the real serial
//! backend: USB enumeration, the protocol, button debounce, PWM patterns and the heartbeat
//! fault, all as built for the chip.
//!
//! Needs node, `npm install` in firmware/emulator and a release build of the firmware, so it is
//! ignored by default. `scripts/test-firmware.sh` prepares all three and runs it:
//!
//! ```text
//! cargo test -p lanterne-panel --test emulated_firmware -- --ignored
//! ```

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanterne_panel::{spawn_serial, LedState, PanelEvent, SerialConfig, StatusLed};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_serial::{SerialPort, SerialStream};

/// PWM levels from firmware/src/main.rs and panel-logic's pattern module.
const FULL: u16 = 1000;
const GLOW: u16 = 60;

/// LED duty levels the emulator reported, with when.
#[derive(Clone, Default)]
struct Leds(Arc<Mutex<Vec<(Instant, u16, u16)>>>);

impl Leds {
    fn push(&self, lock: u16, status: u16) {
        self.0.lock().unwrap().push((Instant::now(), lock, status));
    }

    fn current(&self) -> Option<(u16, u16)> {
        self.0.lock().unwrap().last().map(|&(_, l, s)| (l, s))
    }

    /// Status levels seen in `[from, now]`, including the level in force at `from`.
    fn status_since(&self, from: Instant) -> Vec<u16> {
        let h = self.0.lock().unwrap();
        let before = h
            .iter()
            .rev()
            .find(|(t, _, _)| *t <= from)
            .map(|&(_, _, s)| s);
        before
            .into_iter()
            .chain(h.iter().filter(|(t, _, _)| *t > from).map(|&(_, _, s)| s))
            .collect()
    }

    async fn wait(&self, what: &str, within: Duration, pred: impl Fn(u16, u16) -> bool) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.current().is_some_and(|(l, s)| pred(l, s)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("LEDs never showed {what}; last: {:?}", self.current());
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn next_event(events: &mut mpsc::Receiver<PanelEvent>, within: Duration) -> PanelEvent {
    timeout(within, events.recv())
        .await
        .expect("panel event in time")
        .expect("event channel open")
}

async fn button(control: &mut UnixStream, held: Duration) {
    control.write_all(b"button down\n").await.unwrap();
    tokio::time::sleep(held).await;
    control.write_all(b"button up\n").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node + firmware/emulator/node_modules + a firmware release build (scripts/test-firmware.sh)"]
async fn real_firmware_in_the_emulator() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("lanterne_panel=debug")
        .with_test_writer()
        .try_init();
    let elf = repo().join("firmware/target/thumbv6m-none-eabi/release/lanterne-panel-firmware");
    let harness = repo().join("firmware/emulator/run-panel.mjs");
    // Boot the UF2 (the artefact that gets flashed), using the ELF only for symbols.
    let uf2 = elf.with_extension("uf2");
    assert!(elf.exists(), "build the firmware first: {}", elf.display());
    assert!(uf2.exists(), "make the UF2 first: scripts/firmware-uf2.sh");

    let dir = std::env::temp_dir().join(format!("lanterne-panel-emu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let control_path = dir.join("control.sock");
    let link = dir.join("panel");

    // The emulated panel's USB serial appears on a pty, like /dev/lanterne-panel.
    let (master, slave) = SerialStream::pair().expect("pty pair");
    std::os::unix::fs::symlink(slave.name().unwrap(), &link).unwrap();

    let mut child = Command::new("node")
        .arg(&harness)
        .arg(&elf)
        .arg("--uf2")
        .arg(&uf2)
        .arg("--control")
        .arg(&control_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut to_emu = child.stdin.take().unwrap();
    let mut from_emu = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();

    let leds = Leds::default();
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(1);
    {
        let leds = leds.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("pwm ") {
                    let mut lock = None;
                    let mut status = None;
                    for kv in rest.split_whitespace() {
                        match kv.split_once('=') {
                            Some(("lock", v)) => lock = v.parse().ok(),
                            Some(("status", v)) => status = v.parse().ok(),
                            _ => {}
                        }
                    }
                    leds.push(lock.unwrap(), status.unwrap());
                } else if line == "control ready" {
                    let _ = ready_tx.try_send(());
                } else if !line.contains("Unimplemented") && !line.starts_with("rtt ") {
                    eprintln!("emulator: {line}");
                }
            }
        });
    }
    // Bridge emulator stdio <-> pty master.
    let (mut pty_rx, mut pty_tx) = tokio::io::split(master);
    tokio::spawn(async move {
        let mut buf = [0u8; 256];
        while let Ok(n) = from_emu.read(&mut buf).await {
            if n == 0 || pty_tx.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = [0u8; 256];
        while let Ok(n) = pty_rx.read(&mut buf).await {
            if n == 0 || to_emu.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    timeout(Duration::from_secs(20), ready_rx.recv())
        .await
        .expect("emulator started");
    let mut control = UnixStream::connect(&control_path).await.unwrap();

    // Boot: the firmware shows the fault pattern until the box speaks.
    leds.wait("fault glow at boot", Duration::from_secs(10), |_, s| {
        s == GLOW
    })
    .await;

    let (panel, mut events) = spawn_serial(link.clone(), SerialConfig::default()).unwrap();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(20)).await,
        PanelEvent::Connected {
            firmware: "0.1.0".into()
        }
    );

    panel.set_leds(LedState {
        lock: true,
        status: StatusLed::Watching,
    });
    leds.wait("lock on, watching", Duration::from_secs(5), |l, s| {
        l == FULL && s == FULL
    })
    .await;
    let since = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(leds.status_since(since), [FULL], "watching must be steady");

    panel.set_leds(LedState {
        lock: false,
        status: StatusLed::RemoteControl,
    });
    leds.wait("lock off", Duration::from_secs(5), |l, _| l == 0)
        .await;
    let since = Instant::now();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let seen = leds.status_since(since);
    assert!(
        seen.contains(&0) && seen.contains(&FULL) && seen.iter().all(|&s| s == 0 || s == FULL),
        "remote control should blink: {seen:?}"
    );

    panel.set_leds(LedState {
        lock: false,
        status: StatusLed::Off,
    });
    leds.wait("nobody watching", Duration::from_secs(5), |_, s| s == 0)
        .await;

    // Buttons, through the firmware's debounce and press classification.
    button(&mut control, Duration::from_millis(200)).await;
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        PanelEvent::LockButtonPressed
    );
    button(&mut control, Duration::from_millis(2000)).await;
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        PanelEvent::LockButtonLongPressed
    );

    // A wedged firmware: the CPU stops while PWM and the watchdog run on. The watchdog must
    // reboot the chip, which comes back in the fault pattern and then follows the box again.
    // The box had said "nobody watching" (dark), and a frozen CPU leaves the PWM dark; only the
    // rebooted firmware's fault pattern lights it (it may last just until the box's next frame).
    control.write_all(b"freeze\n").await.unwrap();
    leds.wait(
        "fault pattern after the watchdog reset",
        Duration::from_secs(6),
        |_, s| s == GLOW || s == FULL,
    )
    .await;
    leds.wait(
        "the box back in control after the reboot",
        Duration::from_secs(6),
        |_, s| s == 0,
    )
    .await;
    // Depending on timing the box may have declared the link lost and found it again; either
    // way the button must work end to end afterwards.
    button(&mut control, Duration::from_millis(200)).await;
    loop {
        match next_event(&mut events, Duration::from_secs(5)).await {
            PanelEvent::LockButtonPressed => break,
            PanelEvent::Connected { .. } | PanelEvent::Disconnected => {}
            other => panic!("unexpected event after the watchdog reset: {other:?}"),
        }
    }

    // The box software goes away while the LED says "nobody watching": the firmware must
    // switch to the fault pattern by itself, and never stay dark.
    drop(panel);
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        PanelEvent::Disconnected
    );
    leds.wait(
        "fault pattern after the box died",
        Duration::from_secs(6),
        |_, s| s == GLOW,
    )
    .await;
    let since = Instant::now();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let seen = leds.status_since(since);
    assert!(
        seen.contains(&FULL) && seen.iter().all(|&s| s >= GLOW),
        "fault pattern must flash and never go dark: {seen:?}"
    );

    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
