//! The RP2040 front panel over USB CDC-ACM serial.
//!
//! One task owns the port. A session is: open the port, flush the panel's decoder with a lone
//! delimiter, ask for the firmware version, then every heartbeat interval send the LED state
//! and a heartbeat. Any read error, EOF, write stall or missing replies for
//! [`SerialConfig::reply_timeout`] ends the session; the task then retries opening the same
//! path every [`SerialConfig::reconnect_delay`]. A udev rule gives the panel a stable name
//! (`/dev/lanterne-panel`), so an unplugged and replugged panel comes back at the same path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lanterne_panel_protocol::{
    encode, BoxToPanel, DecodeError, EncodeError, FaultCode, FrameDecoder, PanelToBox, DELIMITER,
    PROTOCOL_VERSION,
};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant, MissedTickBehavior};
use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};
use tracing::{debug, error, info, warn};

use crate::{emit, event_channel, patterns, LedState, PanelError, PanelEvent, PanelHandle};

/// Timing of the serial link. The panel firmware declares the box lost after 3 s of silence,
/// so the heartbeat interval must stay well under that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialConfig {
    /// Line speed. CDC-ACM ignores it, but a UART-attached panel would not.
    pub baud_rate: u32,
    /// How often the box sends a heartbeat (and re-sends the LED state).
    pub heartbeat_interval: Duration,
    /// No valid frame from the panel for this long: treat it as gone and reopen the port.
    pub reply_timeout: Duration,
    /// Pause between attempts to (re)open the port.
    pub reconnect_delay: Duration,
    /// A write that cannot complete in this time (panel not reading) ends the session.
    pub write_timeout: Duration,
}

impl Default for SerialConfig {
    fn default() -> Self {
        Self {
            baud_rate: 115_200,
            heartbeat_interval: Duration::from_secs(1),
            reply_timeout: Duration::from_secs(3),
            reconnect_delay: Duration::from_millis(500),
            write_timeout: Duration::from_secs(1),
        }
    }
}

impl SerialConfig {
    fn validate(&self) -> Result<(), PanelError> {
        let zero = |name: &str| PanelError::Config(format!("'{name}' must be greater than zero"));
        if self.heartbeat_interval.is_zero() {
            return Err(zero("heartbeat_interval"));
        }
        if self.reconnect_delay.is_zero() {
            return Err(zero("reconnect_delay"));
        }
        if self.write_timeout.is_zero() {
            return Err(zero("write_timeout"));
        }
        if self.reply_timeout <= self.heartbeat_interval {
            return Err(PanelError::Config(
                "'reply_timeout' must be longer than 'heartbeat_interval'".into(),
            ));
        }
        Ok(())
    }
}

/// Why a session with the panel ended (logged, then the port is reopened).
#[derive(Debug, Error)]
enum LinkError {
    #[error("cannot open: {0}")]
    Open(#[from] tokio_serial::Error),
    #[error("read failed: {0}")]
    Read(#[source] std::io::Error),
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
    #[error("port closed (panel unplugged?)")]
    Eof,
    #[error("write stalled for {0:?}")]
    WriteStalled(Duration),
    #[error("no reply from the panel for {0:?}")]
    Silent(Duration),
    #[error("cannot encode {msg:?}: {source}")]
    Encode {
        msg: BoxToPanel,
        #[source]
        source: EncodeError,
    },
}

enum SessionEnd {
    /// Every [`PanelHandle`] was dropped: the task stops.
    HandlesDropped,
    Lost(LinkError),
}

/// Starts the serial backend for the panel at `path` (e.g. `/dev/lanterne-panel`). The port
/// need not exist yet; the task keeps trying. Must be called within a tokio runtime.
pub fn spawn_serial(
    path: PathBuf,
    cfg: SerialConfig,
) -> Result<(PanelHandle, mpsc::Receiver<PanelEvent>), PanelError> {
    cfg.validate()?;
    let (handle, requested) = PanelHandle::new();
    let (events_tx, events_rx) = event_channel();
    tokio::spawn(run(path, cfg, requested, events_tx));
    Ok((handle, events_rx))
}

async fn run(
    path: PathBuf,
    cfg: SerialConfig,
    mut requested: watch::Receiver<LedState>,
    events: mpsc::Sender<PanelEvent>,
) {
    // Log a failing open once, not every half second while the panel stays unplugged.
    let mut last_open_error: Option<String> = None;
    loop {
        let end = match open(&path, &cfg) {
            Ok(port) => {
                last_open_error = None;
                info!(path = %path.display(), "panel port opened");
                session(port, &cfg, &mut requested, &events).await
            }
            Err(e) => SessionEnd::Lost(e),
        };
        match end {
            SessionEnd::HandlesDropped => {
                info!(path = %path.display(), "panel handles dropped; closing the panel port");
                return;
            }
            SessionEnd::Lost(LinkError::Open(e)) => {
                let text = e.to_string();
                if last_open_error.as_deref() != Some(text.as_str()) {
                    warn!(path = %path.display(), error = %text, "cannot open panel port; will keep trying");
                    last_open_error = Some(text);
                }
            }
            SessionEnd::Lost(e) => warn!(path = %path.display(), error = %e, "panel link lost"),
        }
        // Wait before retrying, but stop at once if the daemon lets go of the panel. LED
        // changes meanwhile are picked up by the next session, which starts with the state.
        let retry = tokio::time::sleep(cfg.reconnect_delay);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                _ = &mut retry => break,
                changed = requested.changed() => if changed.is_err() {
                    return;
                },
            }
        }
    }
}

fn open(path: &Path, cfg: &SerialConfig) -> Result<SerialStream, LinkError> {
    let mut port = tokio_serial::new(path.to_string_lossy(), cfg.baud_rate)
        .timeout(cfg.write_timeout)
        .open_native_async()?;
    // The firmware only talks while DTR is up ("someone has the port open"). Linux raises it
    // on open already; asserting it again is for adapters that do not. Ptys refuse the ioctl.
    if let Err(e) = port.write_data_terminal_ready(true) {
        debug!(error = %e, "cannot assert DTR (fine on a pty)");
    }
    Ok(port)
}

async fn session(
    mut port: SerialStream,
    cfg: &SerialConfig,
    requested: &mut watch::Receiver<LedState>,
    events: &mpsc::Sender<PanelEvent>,
) -> SessionEnd {
    let mut link = Link {
        connected: false,
        seq: 0,
        last_heard: Instant::now(),
        bad_frames: 0,
        version_mismatch_reported: false,
    };
    let end = link.drive(&mut port, cfg, requested, events).await;
    if link.connected {
        emit(events, PanelEvent::Disconnected);
    }
    end
}

struct Link {
    /// `Connected` has been emitted for this session.
    connected: bool,
    seq: u16,
    last_heard: Instant,
    bad_frames: u64,
    version_mismatch_reported: bool,
}

impl Link {
    async fn drive(
        &mut self,
        port: &mut SerialStream,
        cfg: &SerialConfig,
        requested: &mut watch::Receiver<LedState>,
        events: &mpsc::Sender<PanelEvent>,
    ) -> SessionEnd {
        let mut decoder = FrameDecoder::<PanelToBox>::new();
        let mut buf = [0u8; 256];
        let mut heartbeat = tokio::time::interval(cfg.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);

        // A lone delimiter ends whatever partial frame the panel's decoder may hold.
        if let Err(e) = write(port, &[DELIMITER], cfg).await {
            return SessionEnd::Lost(e);
        }
        if let Err(e) = send(port, &BoxToPanel::QueryVersion, cfg).await {
            return SessionEnd::Lost(e);
        }
        loop {
            let result = tokio::select! {
                read = port.read(&mut buf) => match read {
                    Ok(0) => Err(LinkError::Eof),
                    Ok(n) => {
                        for item in decoder.feed(&buf[..n]) {
                            match item {
                                Ok(msg) => self.on_message(msg, events),
                                Err(e) => self.on_bad_frame(e),
                            }
                        }
                        Ok(())
                    }
                    Err(e) => Err(LinkError::Read(e)),
                },
                changed = requested.changed() => {
                    if changed.is_err() {
                        return SessionEnd::HandlesDropped;
                    }
                    let state = *requested.borrow_and_update();
                    send(port, &set_leds(state), cfg).await
                }
                _ = heartbeat.tick() => {
                    let state = *requested.borrow();
                    self.on_heartbeat(port, cfg, state).await
                }
            };
            if let Err(e) = result {
                return SessionEnd::Lost(e);
            }
        }
    }

    async fn on_heartbeat(
        &mut self,
        port: &mut SerialStream,
        cfg: &SerialConfig,
        state: LedState,
    ) -> Result<(), LinkError> {
        let silent = self.last_heard.elapsed();
        if silent >= cfg.reply_timeout {
            return Err(LinkError::Silent(silent));
        }
        // The LED state rides along with every heartbeat so a panel that rebooted, or missed
        // a frame, is corrected within one interval.
        send(port, &set_leds(state), cfg).await?;
        self.seq = self.seq.wrapping_add(1);
        send(port, &BoxToPanel::Heartbeat { seq: self.seq }, cfg).await?;
        if !self.connected {
            send(port, &BoxToPanel::QueryVersion, cfg).await?;
        }
        Ok(())
    }

    fn on_bad_frame(&mut self, e: DecodeError) {
        self.bad_frames += 1;
        if let DecodeError::UnsupportedVersion(theirs) = e {
            // Not line noise: the panel runs firmware for another protocol and will never be
            // understood. Say so plainly, once per session.
            if !self.version_mismatch_reported {
                self.version_mismatch_reported = true;
                error!(
                    panel_protocol = theirs,
                    box_protocol = PROTOCOL_VERSION,
                    "panel firmware speaks another protocol version; flash matching firmware (firmware/README.md)"
                );
            }
            return;
        }
        // The first one is interesting; a flood is one line per 100.
        if self.bad_frames % 100 == 1 {
            warn!(error = %e, total = self.bad_frames, "bad frame from panel");
        }
    }

    fn on_message(&mut self, msg: PanelToBox, events: &mpsc::Sender<PanelEvent>) {
        self.last_heard = Instant::now();
        match msg {
            PanelToBox::Hello { protocol, firmware } => {
                // Frames of another version never decode, so this is informational.
                debug!(protocol, expected = PROTOCOL_VERSION, %firmware, "panel hello");
                if !self.connected {
                    self.connected = true;
                    info!(%firmware, "panel connected");
                    emit(
                        events,
                        PanelEvent::Connected {
                            firmware: firmware.to_string(),
                        },
                    );
                }
            }
            PanelToBox::ButtonPressed => emit(events, PanelEvent::LockButtonPressed),
            PanelToBox::ButtonLongPressed => emit(events, PanelEvent::LockButtonLongPressed),
            PanelToBox::HeartbeatReply { seq } => debug!(seq, "panel heartbeat reply"),
            PanelToBox::Fault { code, count } => match code {
                FaultCode::HeartbeatLost => {
                    warn!(
                        count,
                        "panel reports it lost the box's heartbeat (showed the fault pattern)"
                    )
                }
                FaultCode::WatchdogReset => warn!("panel firmware was reset by its watchdog"),
                FaultCode::BadFrames => warn!(count, "panel received corrupt frames from the box"),
            },
        }
    }
}

fn set_leds(state: LedState) -> BoxToPanel {
    let (lock, status) = patterns(state);
    BoxToPanel::SetLeds { lock, status }
}

async fn send(
    port: &mut SerialStream,
    msg: &BoxToPanel,
    cfg: &SerialConfig,
) -> Result<(), LinkError> {
    let frame = encode(msg).map_err(|source| LinkError::Encode { msg: *msg, source })?;
    write(port, &frame, cfg).await
}

async fn write(port: &mut SerialStream, bytes: &[u8], cfg: &SerialConfig) -> Result<(), LinkError> {
    match timeout(cfg.write_timeout, port.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LinkError::Write(e)),
        Err(_) => Err(LinkError::WriteStalled(cfg.write_timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_field() {
        assert!(SerialConfig::default().validate().is_ok());
        let bad = SerialConfig {
            heartbeat_interval: Duration::ZERO,
            ..SerialConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("'heartbeat_interval'"), "{err}");
        let bad = SerialConfig {
            reply_timeout: Duration::from_millis(500),
            ..SerialConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("'reply_timeout'"), "{err}");
    }
}
