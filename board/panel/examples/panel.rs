//! Bench tool for the front panel: drive the LEDs from the keyboard and print button events.
//! Useful for bringing up a new panel or checking the wiring.
//!
//! ```text
//! cargo run -p lanterne-panel --example panel -- serial /dev/lanterne-panel
//! cargo run -p lanterne-panel --example panel -- simulated
//! cargo run -p lanterne-panel --features rpi-gpio --example panel -- gpio
//! ```
//!
//! Commands (one per line on stdin): `lock on`, `lock off`,
//! `status off|watching|remote|fault`, `show`, `quit`; with the simulated panel also
//! `press`, `long`, `unplug`, `plug`. Set `RUST_LOG=lanterne_panel=debug` for link details.

use std::path::PathBuf;

use anyhow::{bail, Context};
use lanterne_panel::{PanelEvent, SimulatedPanel, StatusLed};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "lanterne_panel=info".into()),
        )
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sim: Option<SimulatedPanel> = None;
    let (panel, mut events) = match args.first().map(String::as_str) {
        Some("serial") => {
            let path = args.get(1).context("usage: panel serial <device>")?;
            lanterne_panel::spawn_serial(PathBuf::from(path), Default::default())?
        }
        Some("simulated") => {
            let (panel, events, s) = lanterne_panel::spawn_simulated();
            sim = Some(s);
            (panel, events)
        }
        #[cfg(feature = "rpi-gpio")]
        Some("gpio") => lanterne_panel::spawn_gpio(lanterne_panel::board::LANTERNE_BOX)?,
        _ => bail!("usage: panel serial <device> | simulated | gpio (with --features rpi-gpio)"),
    };

    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                PanelEvent::Connected { firmware } => {
                    println!("event: connected, firmware {firmware}")
                }
                other => println!("event: {other:?}"),
            }
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut state = panel.leds();
        match words.as_slice() {
            [] => continue,
            ["quit"] => break,
            ["show"] => {
                println!("requested: {:?}", panel.leds());
                if let Some(sim) = &sim {
                    println!("shown:     {:?}", sim.leds());
                }
                continue;
            }
            ["lock", "on"] => state.lock = true,
            ["lock", "off"] => state.lock = false,
            ["status", s] => {
                state.status = match *s {
                    "off" => StatusLed::Off,
                    "watching" => StatusLed::Watching,
                    "remote" => StatusLed::RemoteControl,
                    "fault" => StatusLed::Fault,
                    other => {
                        eprintln!("unknown status {other:?}");
                        continue;
                    }
                }
            }
            [cmd @ ("press" | "long" | "unplug" | "plug")] => {
                match (&sim, *cmd) {
                    (Some(sim), "press") => sim.press(),
                    (Some(sim), "long") => sim.long_press(),
                    (Some(sim), "unplug") => sim.unplug(),
                    (Some(sim), _) => sim.plug(),
                    (None, _) => eprintln!("{cmd}: only for the simulated panel"),
                }
                continue;
            }
            _ => {
                eprintln!("commands: lock on|off, status off|watching|remote|fault, show, press, long, unplug, plug, quit");
                continue;
            }
        }
        panel.set_leds(state);
        println!("requested: {state:?}");
    }
    Ok(())
}
