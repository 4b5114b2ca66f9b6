//! The box end of the station link: a TLS 1.3 listener that requires a client certificate
//! signed by the box CA and still listed in the database, then one task pair per station.
//!
//! Per connection: the reader task decodes frames (bounded by `lanterne-wire`) and pushes
//! thumbnails into the mosaic and full frames to focus viewers without waiting on anyone;
//! the writer task sends control messages and heartbeats, and demo frames from this
//! station's fan-out queue, always control first. Any protocol violation — bad frame,
//! oversized frame, media before the hello — disconnects that station alone, with a log line
//! naming it; every other station keeps streaming.
//!
//! A certificate must still be in the database, not revoked, when its link starts; the room
//! cuts a live link when its station is revoked or deleted, or when a newer link with the
//! same certificate replaces it ([`crate::room::Registered::cut`]). What a station says
//! reaches the log and the audit table only through [`StationLines`]: rate-limited per
//! station, every text cut short and stripped of control characters. Answers to orders are
//! recorded only when the room confirms the order is outstanding for that station.
//!
//! Station certificates are renewed over the link: when the certificate a station connected
//! with is due ([`crate::pki::StationCa::renewal_due_in`]), the box offers a renewal, the
//! station sends a request for a new key, and the box answers with the certificate, which the
//! station uses from its next connection on (see [`Renewal`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use lanterne_media::{EncodedFrame, Mosaic, TileFeedback};
use lanterne_wire::{Control, Frame, FrameCodec, MediaHeader, Stream, WireError, PROTOCOL_VERSION};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use crate::room::{FullFrame, LinkChannels, OnlineError, RoomHandle};
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
    #[error("the box closed the link (station revoked or deleted, or connected again)")]
    Cut,
    #[error("station sent {0} the box did not ask for")]
    Unrequested(&'static str),
    #[error("evicted for a newcomer before the station was identified")]
    Evicted,
}

/// Lines one station may cause in a burst, then one more every [`LINE_EVERY`].
const LINE_BURST: f64 = 30.0;
const LINE_EVERY: Duration = Duration::from_secs(2);
/// Longest station text (error message, order detail, host name…) written to a log or the
/// audit table.
const MAX_STATION_TEXT: usize = 200;

/// The log and audit lines stations cause, budgeted per station id so that reconnecting
/// does not refill the budget: [`LINE_BURST`] lines, then one every [`LINE_EVERY`]. Lines
/// over the budget are dropped and counted; the next one let through carries the count.
/// Only stations past the certificate check have an entry, so the map is as small as the
/// room. A plain mutex: held for a few instructions, never across an await.
#[derive(Default)]
pub struct StationLines {
    budgets: Mutex<HashMap<u32, LineBudget>>,
}

struct LineBudget {
    tokens: f64,
    at: Instant,
    dropped: u64,
}

impl StationLines {
    /// May station `id` write one more line now? `Some(dropped)` with the number of lines
    /// dropped since the last one allowed; `None`: drop this one.
    pub fn allow(&self, id: u32) -> Option<u64> {
        self.allow_at(id, Instant::now())
    }

    fn allow_at(&self, id: u32, now: Instant) -> Option<u64> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let b = budgets.entry(id).or_insert(LineBudget {
            tokens: LINE_BURST,
            at: now,
            dropped: 0,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() / LINE_EVERY.as_secs_f64();
        b.tokens = (b.tokens + refill).min(LINE_BURST);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Some(std::mem::take(&mut b.dropped))
        } else {
            b.dropped += 1;
            None
        }
    }
}

/// A station's text as it may appear in a log line or the audit table: control characters
/// (newlines that would forge log lines, terminal escapes) become spaces, and it is cut to
/// `max` characters, marked with '…'.
pub fn clip(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Everything a station connection needs from the box.
#[derive(Clone)]
pub struct LinkContext {
    pub tls: TlsAcceptor,
    /// Signs renewed station certificates.
    pub ca: Arc<crate::pki::StationCa>,
    pub store: Store,
    pub room: RoomHandle,
    pub mosaic: Arc<Mosaic>,
    /// Station-originated audit lines go through the one writer, rate-limited per station.
    pub audit: crate::audit::AuditLog,
    /// The budget of log and audit lines per station.
    pub lines: Arc<StationLines>,
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
        Control::RenewCertificate => "renew-certificate",
        Control::CertificateRequest { .. } => "certificate-request",
        Control::CertificateIssued { .. } => "certificate-issued",
        Control::HelpAsk(_) => "help-ask",
        Control::HelpState { .. } => "help-state",
        Control::HelpInput { .. } => "help-input",
        Control::HelpStop { .. } => "help-stop",
        Control::ShownToClass { .. } => "shown-to-class",
        Control::SessionUser { .. } => "session-user",
        Control::HandRaised { .. } => "hand-raised",
        Control::HandCleared => "hand-cleared",
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
    let renewal_due_in = ctx.ca.renewal_due_in(cert);
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
    let lines = ctx.lines.clone();
    if let Some(dropped) = lines.allow(station.id) {
        info!(
            station = %station.name, id = station.id, %peer,
            hostname = %clip(&hostname, 64), agent_version = %clip(&agent_version, 40),
            capture = %clip(&caps.capture, 40), encoder = %clip(&caps.encoder, 40),
            dropped_lines = dropped, "station online"
        );
    }

    let (control_tx, control_rx) = mpsc::channel::<Control>(64);
    let (demo_tx, demo_rx) = mpsc::channel::<FullFrame>(crate::fanout::DEMO_QUEUE);
    let channels = LinkChannels {
        control: control_tx.clone(),
        demo: demo_tx,
    };
    let reg = match ctx.room.online(station.clone(), channels).await {
        Ok(reg) => reg,
        // Revoked or deleted while this link was being checked.
        Err(OnlineError::Removed) => return Err(LinkError::NotEnrolled(fp[..16].to_string())),
        Err(OnlineError::Stopped) => return Ok(()), // the box is shutting down
    };
    if reg.replaced {
        if let Some(dropped) = lines.allow(station.id) {
            info!(station = %station.name, dropped_lines = dropped, "station connected again; its previous link is closed");
        }
    }
    let (sink, mut stream) = framed.split();
    let writer = tokio::spawn(write_loop(sink, control_rx, demo_rx));
    let mut renewal = Renewal::start(renewal_due_in, control_tx.clone());

    let result = async {
        let mut gaps = GapCheck::default();
        loop {
            let next = tokio::select! {
                _ = reg.cut.cancelled() => return Err(LinkError::Cut),
                next = tokio::time::timeout(SILENCE_LIMIT, stream.next()) => next,
            };
            let frame = match next {
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
                        Stream::Thumb => {
                            // Stations make keyframes only when asked (a still screen sends
                            // none): a tile that lost its place asks through this link.
                            if ctx.mosaic.push(station.id, frame) == TileFeedback::WantKeyframe {
                                let _ = control_tx.try_send(Control::RequestKeyframe {
                                    stream: Stream::Thumb,
                                });
                            }
                        }
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
                    if let Some(dropped) = lines.allow(station.id) {
                        warn!(
                            station = %station.name, dropped_lines = dropped,
                            "station reports: {}", clip(&message, MAX_STATION_TEXT)
                        );
                    }
                }
                Frame::Control(Control::Shown(shown)) => {
                    ctx.room.shown(station.id, reg.conn, shown).await;
                }
                Frame::Control(Control::SessionUser { display_name }) => {
                    // Shown to teachers: a name that is not a plain, bounded one is dropped.
                    let name = match display_name {
                        Some(n) => match lanterne_wire::validate_display_name(&n) {
                            Ok(()) => Some(n),
                            Err(why) => {
                                if let Some(dropped) = lines.allow(station.id) {
                                    warn!(station = %station.name, dropped_lines = dropped, "ignored a display name: {why}");
                                }
                                continue;
                            }
                        },
                        None => None,
                    };
                    ctx.room.session_user(station.id, reg.conn, name).await;
                }
                Frame::Control(Control::HandRaised { raised }) => {
                    ctx.room.hand(station.id, reg.conn, raised).await;
                }
                Frame::Control(Control::ActionResult { action, ok, detail }) => {
                    let action = clip(&action, 40);
                    let detail = clip(&detail, MAX_STATION_TEXT);
                    let accepted = ctx
                        .room
                        .action_result(station.id, reg.conn, action.clone(), ok, detail.clone())
                        .await;
                    let Some(dropped) = lines.allow(station.id) else {
                        continue;
                    };
                    if !accepted {
                        // Not an answer to anything this station was asked: nothing is
                        // recorded, so a station cannot write the audit log at will.
                        warn!(
                            station = %station.name, %action, dropped_lines = dropped,
                            "ignored an answer to no outstanding order"
                        );
                        continue;
                    }
                    if ok {
                        info!(station = %station.name, %action, dropped_lines = dropped, "station carried out the order");
                    } else {
                        warn!(station = %station.name, %action, dropped_lines = dropped, "station could not carry out the order: {detail}");
                    }
                    let (actor, result) = (
                        format!("station:{}", station.name),
                        if ok { "ok" } else { "failed" },
                    );
                    // Through the one writer, rate-limited per station as well.
                    ctx.audit
                        .record(
                            crate::audit::Source::Station(station.id),
                            crate::audit::Entry {
                                actor: &actor,
                                action: &action,
                                target: "self",
                                result,
                                detail: &detail,
                            },
                        )
                        .await;
                }
                Frame::Control(Control::DemoHealth(health)) => {
                    ctx.room.demo_health(station.id, reg.conn, health);
                }
                Frame::Control(Control::HelpState { id, state }) => {
                    // The room audits what it accepts; anything else is not a help it asked.
                    if !ctx.room.help_state(station.id, reg.conn, id, state).await {
                        if let Some(dropped) = lines.allow(station.id) {
                            warn!(station = %station.name, id, dropped_lines = dropped, "ignored a remote-help answer for no help asked of this station");
                        }
                    }
                }
                Frame::Control(Control::CertificateRequest { csr_pem }) => {
                    renewal.on_request(&ctx, &station, &csr_pem, &control_tx).await?;
                }
                Frame::Control(Control::MessageRead { id }) => {
                    if !ctx.room.message_read(station.id, reg.conn, id).await {
                        if let Some(dropped) = lines.allow(station.id) {
                            warn!(station = %station.name, id, dropped_lines = dropped, "ignored a read receipt for a message this station was not sent");
                        }
                    }
                }
                Frame::Control(Control::CommandResult {
                    id,
                    exit_code,
                    stdout,
                    stderr,
                    error,
                }) => {
                    let recorded = ctx
                        .room
                        .command_result(
                            station.id,
                            reg.conn,
                            id,
                            (exit_code, stdout, stderr, error),
                        )
                        .await;
                    if !recorded {
                        if let Some(dropped) = lines.allow(station.id) {
                            warn!(station = %station.name, id, dropped_lines = dropped, "ignored a result for a command run not outstanding on this station");
                        }
                    }
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
                    | Control::DemoStop { .. }
                    | Control::RenewCertificate
                    | Control::CertificateIssued { .. }
                    | Control::HelpAsk(_)
                    | Control::HelpInput { .. }
                    | Control::HelpStop { .. }
                    | Control::ShownToClass { .. }
                    | Control::HandCleared),
                ) => {
                    return Err(LinkError::WrongDirection(control_name(&other)));
                }
            }
        }
    }
    .await;

    writer.abort();
    // The room greys the tile, unless a newer link of this station already replaced this one.
    ctx.room.offline(station.id, reg.conn).await;
    if let Some(dropped) = lines.allow(station.id) {
        match &result {
            Ok(()) => {
                info!(station = %station.name, dropped_lines = dropped, "station offline (closed the link)")
            }
            Err(e) => {
                warn!(station = %station.name, dropped_lines = dropped, "station disconnected: {e}")
            }
        }
    }
    // Logged here, within the station's budget; the listener must not log it again.
    Ok(())
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

/// Certificate renewal on one connection: the offer goes out when the certificate the station
/// connected with is due, and the box answers one request, only once it made the offer.
struct Renewal {
    due_at: Option<tokio::time::Instant>,
    offer: Option<tokio::task::JoinHandle<()>>,
    answered: bool,
}

impl Renewal {
    /// `due_in`: from [`crate::pki::StationCa::renewal_due_in`]; `None` never offers.
    fn start(due_in: Option<Duration>, control: mpsc::Sender<Control>) -> Self {
        let due_at = due_in.map(|d| tokio::time::Instant::now() + d);
        // A timer to the due instant, not a periodic check: a station may stay connected for
        // weeks, and most connections end long before their certificate is due.
        let offer = due_at.map(|at| {
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let _ = control.send(Control::RenewCertificate).await;
            })
        });
        Renewal {
            due_at,
            offer,
            answered: false,
        }
    }

    /// Signs the station's request and sends back the certificate. The new certificate is
    /// recorded as the station's next one: the current one keeps working until the station
    /// connects with the new one (so a station that fails to store it loses nothing).
    async fn on_request(
        &mut self,
        ctx: &LinkContext,
        station: &StationRow,
        csr_pem: &str,
        control: &mpsc::Sender<Control>,
    ) -> Result<(), LinkError> {
        let offered = self
            .due_at
            .is_some_and(|at| tokio::time::Instant::now() >= at);
        if !offered || self.answered {
            return Err(LinkError::Unrequested("a certificate request"));
        }
        self.answered = true;
        let signed = lanterne_wire::check_pem(csr_pem, "CERTIFICATE REQUEST").and_then(|_| {
            ctx.ca
                .sign_station_csr(csr_pem, station.id)
                .map_err(|e| e.to_string())
        });
        let (cert_pem, fp) = match signed {
            Ok(x) => x,
            Err(e) => {
                // Offered again at the next connection; this one carries on.
                warn!(station = %station.name, "unusable certificate request: {e}");
                return Ok(());
            }
        };
        let (id, next) = (station.id, fp.clone());
        let now = lanterne_wire::now_us() as i64;
        let actor = format!("station:{}", station.name);
        let detail = fp[..16].to_string();
        let recorded = ctx
            .store
            .run(move |c| {
                if !store::set_next_certificate(c, id, &next)? {
                    return Ok(false);
                }
                crate::audit::write(
                    c,
                    now,
                    &crate::audit::Entry {
                        actor: &actor,
                        action: "renew-certificate",
                        target: "self",
                        result: "ok",
                        detail: &detail,
                    },
                )?;
                Ok(true)
            })
            .await?;
        if !recorded {
            return Err(LinkError::NotEnrolled(fp[..16].to_string()));
        }
        info!(
            station = %station.name,
            days = ctx.ca.station_cert_lifetime().as_secs() / 86_400,
            "renewed the station's certificate"
        );
        if control
            .try_send(Control::CertificateIssued { cert_pem })
            .is_err()
        {
            warn!(station = %station.name, "cannot send the renewed certificate now; offered again at the next connection");
        }
        Ok(())
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        if let Some(offer) = &self.offer {
            offer.abort();
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

    #[test]
    fn a_station_gets_a_burst_of_lines_then_one_every_few_seconds() {
        let lines = StationLines::default();
        let t0 = Instant::now();
        for _ in 0..LINE_BURST as usize {
            assert_eq!(lines.allow_at(7, t0), Some(0));
        }
        for _ in 0..5 {
            assert_eq!(lines.allow_at(7, t0), None, "over the burst: dropped");
        }
        assert_eq!(
            lines.allow_at(8, t0),
            Some(0),
            "another station has its own budget"
        );
        let later = t0 + LINE_EVERY;
        assert_eq!(
            lines.allow_at(7, later),
            Some(5),
            "the next line says how many were dropped"
        );
        assert_eq!(lines.allow_at(7, later), None);
        // A long quiet spell refills to the burst, no more.
        let much_later = later + LINE_EVERY * 1000;
        let allowed = (0..100)
            .filter(|_| lines.allow_at(7, much_later).is_some())
            .count();
        assert_eq!(allowed, LINE_BURST as usize);
    }

    #[test]
    fn station_text_is_cut_and_cannot_forge_log_lines() {
        assert_eq!(clip("disk full", 200), "disk full");
        assert_eq!(
            clip("ok\n2026-01-01 INFO forged line\u{1b}[31m", 200),
            "ok 2026-01-01 INFO forged line [31m"
        );
        let long = "é".repeat(500);
        let c = clip(&long, MAX_STATION_TEXT);
        assert_eq!(c.chars().count(), MAX_STATION_TEXT + 1);
        assert!(c.ends_with('…'));
    }

    /// The offer goes out when the certificate is due, months after the connection opened,
    /// and not a moment before; a certificate that cannot be read is never offered renewal.
    #[tokio::test(start_paused = true)]
    async fn renewal_is_offered_when_due_and_not_before() {
        let day = Duration::from_secs(86_400);
        let (tx, mut rx) = mpsc::channel(4);
        let _renewal = Renewal::start(Some(91 * day), tx);
        tokio::time::sleep(91 * day - Duration::from_secs(1)).await;
        assert!(rx.try_recv().is_err(), "offered early");
        tokio::time::sleep(Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
        assert_eq!(rx.try_recv().unwrap(), Control::RenewCertificate);

        let (tx, mut rx) = mpsc::channel(4);
        let _never = Renewal::start(None, tx);
        tokio::time::sleep(3650 * day).await;
        assert!(rx.try_recv().is_err());
    }

    /// A connection that ends before the certificate is due leaves no timer behind.
    #[tokio::test(start_paused = true)]
    async fn a_closed_connection_cancels_its_renewal_offer() {
        let (tx, mut rx) = mpsc::channel(4);
        drop(Renewal::start(Some(Duration::from_secs(60)), tx));
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
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
