//! The box end of the station link: a TLS 1.3 listener that requires a client certificate
//! signed by the box CA and still listed in the database, then one task pair per station.
//!
//! Per connection: the reader task decodes frames (bounded by `lanterne-wire`) and pushes
//! thumbnails into the mosaic and full frames to focus viewers without waiting on anyone;
//! the writer task sends control messages and heartbeats, and demo frames from this
//! station's fan-out queue, always control first. Any protocol violation — bad frame,
//! oversized frame, media before the hello — disconnects that station alone, with a log line
//! naming it; every other station keeps streaming.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lanterne_media::{EncodedFrame, Mosaic};
use lanterne_wire::{Control, Frame, FrameCodec, MediaHeader, Stream, WireError, PROTOCOL_VERSION};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::room::{FullFrame, LinkChannels, RoomHandle};
use crate::store::{self, StationRow, Store};

/// Bytes the kernel may hold for a station before writes wait (Linux doubles it for its own
/// bookkeeping).
const LINK_SEND_BUFFER: usize = 256 * 1024;

const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Silence (no frame at all) after which a station is considered gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake timed out")]
    HandshakeTimeout,
    #[error("peer presented no client certificate")]
    NoCertificate,
    #[error("certificate {0} is not an enrolled station (revoked or unknown)")]
    NotEnrolled(String),
    #[error("station sent no hello within {0:?}")]
    NoHello(Duration),
    #[error("expected a hello, got {0}")]
    NotHello(&'static str),
    #[error("station speaks protocol {theirs}, the box speaks {PROTOCOL_VERSION}")]
    Version { theirs: u16 },
    #[error("protocol error: {0}")]
    Wire(#[from] WireError),
    #[error("station silent for {0:?}")]
    Silent(Duration),
    #[error("box database: {0}")]
    Store(#[from] store::StoreError),
    #[error("station sent a box-only message: {0}")]
    WrongDirection(&'static str),
    #[error("evicted for a newcomer before the station was identified")]
    Evicted,
}

/// Everything a station connection needs from the box.
#[derive(Clone)]
pub struct LinkContext {
    pub tls: TlsAcceptor,
    pub store: Store,
    pub room: RoomHandle,
    pub mosaic: Arc<Mosaic>,
}

/// Accepts stations for ever, within `limits` (see [`crate::listener`]): a connection is
/// pending, and evictable for a newcomer, until its certificate is checked and its hello
/// read; then it is trusted. `handshake_timeout` bounds the TLS handshake and, again, the
/// wait for the hello.
pub async fn serve(
    listener: TcpListener,
    ctx: LinkContext,
    limits: crate::listener::Limits,
    handshake_timeout: Duration,
) -> std::convert::Infallible {
    crate::listener::run(
        listener,
        "station link",
        limits,
        move |tcp, peer, admission| {
            let ctx = ctx.clone();
            async move {
                let conn = admission.handle();
                // Dropping `handle` is safe only before the station is trusted (nothing is
                // registered with the room yet), and only then can it be evicted.
                let result = tokio::select! {
                    r = handle(tcp, peer, ctx, &conn, handshake_timeout) => r,
                    _ = conn.cut_off() => Err(LinkError::Evicted),
                };
                let log = admission.log_budget();
                match result {
                    Ok(()) => {}
                    Err(e @ (LinkError::Handshake(_) | LinkError::HandshakeTimeout)) => {
                        if log.allows() {
                            warn!(%peer, "station link refused: {e}")
                        }
                    }
                    Err(e @ (LinkError::NoCertificate | LinkError::NotEnrolled(_))) => {
                        if log.allows() {
                            warn!(%peer, "station link refused: {e}")
                        }
                    }
                    Err(e @ LinkError::Evicted) => {
                        if log.allows() {
                            info!(%peer, "station link closed: {e}")
                        }
                    }
                    // A station's own link always gets its line; before the hello, anyone's
                    // connection only within the listener's log budget.
                    Err(e) if conn.is_trusted() || log.allows() => {
                        warn!(%peer, "station link closed: {e}")
                    }
                    Err(_) => {}
                }
            }
        },
    )
    .await
}

fn control_name(c: &Control) -> &'static str {
    match c {
        Control::Hello { .. } => "hello",
        Control::Welcome { .. } => "welcome",
        Control::Refused { .. } => "refused",
        Control::SetStream { .. } => "set-stream",
        Control::RequestKeyframe { .. } => "request-keyframe",
        Control::Heartbeat { .. } => "heartbeat",
        Control::HeartbeatAck { .. } => "heartbeat-ack",
        Control::StationError { .. } => "station-error",
        Control::Lock { .. } => "lock",
        Control::Unlock => "unlock",
        Control::Shown(_) => "shown",
        Control::ShowMessage { .. } => "show-message",
        Control::MessageRead { .. } => "message-read",
        Control::RunCommand { .. } => "run-command",
        Control::CommandResult { .. } => "command-result",
        Control::Power { .. } => "power",
        Control::OpenUrl { .. } => "open-url",
        Control::ActionResult { .. } => "action-result",
        Control::Schedule { .. } => "schedule",
        Control::DemoStart(_) => "demo-start",
        Control::DemoStop { .. } => "demo-stop",
        Control::DemoHealth(_) => "demo-health",
    }
}

async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: LinkContext,
    conn: &crate::listener::ConnHandle,
    handshake_timeout: Duration,
) -> Result<(), LinkError> {
    let _ = tcp.set_nodelay(true);
    // Left alone, the kernel grows the send buffer to megabytes: many seconds of demo video
    // queued for a slow station before the relay's own bounded queue (which drops to the next
    // keyframe) notices anything. Fixed at about half a second of a 4 Mbit/s demo.
    if let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(LINK_SEND_BUFFER) {
        warn!(%peer, "cannot bound the link's send buffer: {e}");
    }
    let tls = tokio::time::timeout(handshake_timeout, ctx.tls.accept(tcp))
        .await
        .map_err(|_| LinkError::HandshakeTimeout)?
        .map_err(LinkError::Handshake)?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or(LinkError::NoCertificate)?;
    let fp = crate::pki::fingerprint(cert);
    let lookup = fp.clone();
    let station: StationRow = ctx
        .store
        .run(move |c| store::station_by_fingerprint(c, &lookup))
        .await?
        .ok_or_else(|| LinkError::NotEnrolled(fp[..16].to_string()))?;

    let mut framed = Framed::new(tls, FrameCodec);
    let hello = tokio::time::timeout(handshake_timeout, framed.next())
        .await
        .map_err(|_| LinkError::NoHello(handshake_timeout))?;
    let (agent_version, hostname, caps) = match hello {
        None => return Err(LinkError::NoHello(handshake_timeout)),
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(Frame::Media { .. })) => return Err(LinkError::NotHello("media")),
        Some(Ok(Frame::Control(Control::Hello {
            protocol,
            agent_version,
            hostname,
            capabilities,
        }))) => {
            if protocol != PROTOCOL_VERSION {
                let _ = framed
                    .send(Frame::Control(Control::Refused {
                        reason: format!(
                            "protocol {protocol} not supported; this box speaks {PROTOCOL_VERSION}"
                        ),
                    }))
                    .await;
                return Err(LinkError::Version { theirs: protocol });
            }
            (agent_version, hostname, capabilities)
        }
        Some(Ok(Frame::Control(other))) => return Err(LinkError::NotHello(control_name(&other))),
    };
    // An enrolled station that said hello: from now on its link is never evicted for a
    // newcomer (and must not be: the room is about to know it).
    if !conn.trust() {
        return Err(LinkError::Evicted);
    }
    framed
        .send(Frame::Control(Control::Welcome {
            protocol: PROTOCOL_VERSION,
            station_id: station.id,
            name: station.name.clone(),
        }))
        .await?;
    info!(
        station = %station.name, id = station.id, %peer, %hostname, %agent_version,
        capture = %caps.capture, encoder = %caps.encoder, "station online"
    );

    let (control_tx, control_rx) = mpsc::channel::<Control>(64);
    let (demo_tx, demo_rx) = mpsc::channel::<FullFrame>(crate::fanout::DEMO_QUEUE);
    let channels = LinkChannels {
        control: control_tx.clone(),
        demo: demo_tx,
    };
    let Some(reg) = ctx.room.online(station.clone(), channels).await else {
        return Ok(()); // the box is shutting down
    };
    let (sink, mut stream) = framed.split();
    let writer = tokio::spawn(write_loop(sink, control_rx, demo_rx));

    let result = async {
        let mut gaps = GapCheck::default();
        loop {
            let frame = match tokio::time::timeout(SILENCE_LIMIT, stream.next()).await {
                Err(_) => return Err(LinkError::Silent(SILENCE_LIMIT)),
                Ok(None) => return Ok(()),
                Ok(Some(f)) => f?,
            };
            match frame {
                Frame::Media { header, data } => {
                    let frame = EncodedFrame {
                        data,
                        keyframe: header.keyframe,
                        capture_us: header.capture_us,
                        seq: header.seq,
                    };
                    if gaps.missed(header.stream, header.seq) {
                        debug!(station = %station.name, ?header.stream, "gap in station sequence");
                    }
                    match header.stream {
                        Stream::Thumb => ctx.mosaic.push(station.id, frame),
                        // No receivers is normal between focus views; not an error.
                        Stream::Full => {
                            let _ = reg.full_tx.send(Arc::new(frame));
                        }
                        Stream::Demo => return Err(LinkError::WrongDirection("demo media")),
                    }
                }
                Frame::Control(Control::Heartbeat { sent_us }) => {
                    let _ = control_tx.try_send(Control::HeartbeatAck { sent_us });
                }
                Frame::Control(Control::HeartbeatAck { .. }) => {}
                Frame::Control(Control::StationError { message }) => {
                    warn!(station = %station.name, "station reports: {message}");
                }
                Frame::Control(Control::Shown(shown)) => {
                    ctx.room.shown(station.id, reg.conn, shown).await;
                }
                Frame::Control(Control::ActionResult { action, ok, detail }) => {
                    let (actor, result) = (format!("station:{}", station.name), if ok { "ok" } else { "failed" });
                    if ok {
                        info!(station = %station.name, %action, "station carried out the order");
                    } else {
                        warn!(station = %station.name, %action, "station could not carry out the order: {detail}");
                    }
                    let now = lanterne_wire::now_us() as i64;
                    let detail: String = detail.chars().take(500).collect();
                    let action: String = action.chars().take(40).collect();
                    ctx.room
                        .action_result(station.id, reg.conn, action.clone(), ok, detail.clone())
                        .await;
                    let _ = ctx
                        .store
                        .run(move |c| {
                            store::audit(
                                c,
                                now,
                                &store::AuditEntry {
                                    actor: &actor,
                                    action: &action,
                                    target: "self",
                                    result,
                                    detail: &detail,
                                },
                            )
                        })
                        .await;
                }
                Frame::Control(Control::DemoHealth(health)) => {
                    ctx.room.demo_health(station.id, reg.conn, health);
                }
                Frame::Control(Control::MessageRead { id }) => {
                    ctx.room.message_read(station.id, reg.conn, id).await;
                }
                Frame::Control(Control::CommandResult {
                    id,
                    exit_code,
                    stdout,
                    stderr,
                    error,
                }) => {
                    ctx.room
                        .command_result(
                            station.id,
                            reg.conn,
                            id,
                            (exit_code, stdout, stderr, error),
                        )
                        .await;
                }
                Frame::Control(
                    other @ (Control::Hello { .. }
                    | Control::Welcome { .. }
                    | Control::Refused { .. }
                    | Control::SetStream { .. }
                    | Control::RequestKeyframe { .. }
                    | Control::Lock { .. }
                    | Control::Unlock
                    | Control::ShowMessage { .. }
                    | Control::RunCommand { .. }
                    | Control::Power { .. }
                    | Control::OpenUrl { .. }
                    | Control::Schedule { .. }
                    | Control::DemoStart(_)
                    | Control::DemoStop { .. }),
                ) => {
                    return Err(LinkError::WrongDirection(control_name(&other)));
                }
            }
        }
    }
    .await;

    writer.abort();
    ctx.room.offline(station.id, reg.conn).await;
    ctx.mosaic.set_online(station.id, false);
    match &result {
        Ok(()) => info!(station = %station.name, "station offline (closed the link)"),
        Err(e) => warn!(station = %station.name, "station disconnected: {e}"),
    }
    result.map(|_| ())
}

/// Sends queued control messages, a heartbeat every few seconds, and demo frames. Control
/// always goes first (`biased`), so an order waits behind at most the one frame being
/// written; a station slow to read fills only its own demo queue, which the relay answers
/// by dropping to the next keyframe.
async fn write_loop<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Control>,
    mut demo: mpsc::Receiver<FullFrame>,
) where
    S: futures_util::Sink<Frame, Error = WireError> + Unpin,
{
    let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        let frame = tokio::select! {
            biased;
            m = rx.recv() => match m { Some(m) => Frame::Control(m), None => return },
            _ = beat.tick() => Frame::Control(Control::Heartbeat { sent_us: lanterne_wire::now_us() }),
            f = demo.recv() => match f {
                Some(f) => {
                    // The source's numbering, passed through: frames the relay dropped for
                    // this station (or the source's link lost) show as a gap, which the
                    // player answers by waiting for a keyframe and counts as dropped.
                    Frame::Media {
                        header: MediaHeader {
                            stream: Stream::Demo,
                            keyframe: f.keyframe,
                            seq: f.seq,
                            capture_us: f.capture_us,
                        },
                        data: f.data.clone(),
                    }
                }
                None => return,
            },
        };
        if let Err(e) = sink.send(frame).await {
            debug!("station link write failed: {e}");
            return;
        }
    }
}

/// Tracks per-stream sequence numbers to count frames a station dropped.
#[derive(Default)]
struct GapCheck {
    last: [Option<u64>; 2],
}

impl GapCheck {
    fn missed(&mut self, stream: Stream, seq: u64) -> bool {
        let i = match stream {
            Stream::Thumb => 0,
            Stream::Full => 1,
            // Stations never send it (refused above); counted with nothing else.
            Stream::Demo => return false,
        };
        let gap = self.last[i].is_some_and(|l| seq != l.wrapping_add(1));
        self.last[i] = Some(seq);
        gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use lanterne_media::EncodedFrame;

    fn demo_frame(seq: u64, keyframe: bool) -> FullFrame {
        Arc::new(EncodedFrame {
            data: bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            keyframe,
            capture_us: 1,
            seq,
        })
    }

    /// Regression: the writer numbered demo frames per connection, so frames the relay
    /// dropped for a slow station never showed as a gap, to the player or to benchmarks.
    #[tokio::test]
    async fn demo_frames_keep_the_source_numbering_so_relay_drops_show_as_gaps() {
        let (sink_tx, sink_rx) = futures_channel_sink();
        let (_ctl_tx, ctl_rx) = mpsc::channel(4);
        let (demo_tx, demo_rx) = mpsc::channel(8);
        for (seq, key) in [(10, true), (11, false), (20, true)] {
            demo_tx.send(demo_frame(seq, key)).await.unwrap();
        }
        drop(demo_tx);
        let writer = tokio::spawn(write_loop(sink_tx, ctl_rx, demo_rx));
        let seqs: Vec<u64> = sink_rx
            .filter_map(|f| async move {
                match f {
                    Frame::Media { header, .. } => Some(header.seq),
                    Frame::Control(_) => None,
                }
            })
            .take(3)
            .collect()
            .await;
        assert_eq!(seqs, [10, 11, 20]);
        writer.abort();
    }

    /// A sink of frames backed by a channel, and the stream of what was written.
    fn futures_channel_sink() -> (
        impl futures_util::Sink<Frame, Error = WireError> + Unpin,
        impl futures_util::Stream<Item = Frame> + Unpin,
    ) {
        let (tx, rx) = mpsc::unbounded_channel::<Frame>();
        let mut rx = rx;
        let sink = futures_util::sink::unfold(tx, |tx, f: Frame| async move {
            tx.send(f).expect("the test reads until the end");
            Ok::<_, WireError>(tx)
        });
        let written = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        (Box::pin(sink), Box::pin(written))
    }
}
