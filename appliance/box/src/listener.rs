//! The box's listening sockets under load: which connection gets in, which one makes room,
//! how long each may take, and what an accept error does. Used by the HTTPS server, the
//! plain-HTTP redirect and the station link.
//!
//! A student PC on the classroom network can open thousands of connections and send each
//! half a request. Every open connection costs the box a file descriptor; at the service's
//! 1024-descriptor limit, accepting them all would end in `EMFILE`, and refusing newcomers
//! once full would lock the teacher out as surely. So each listener owns a table of its
//! connections (one task, [`run`], owns it; connections tell it when they close or become
//! trusted) and admits by this rule:
//!
//! ```text
//!  trusted  = an authenticated, long-lived connection: a WebSocket the router granted
//!             (only behind a session) or a station link past its certificate check and hello.
//!             Never evicted; not counted against its address.
//!  pending  = every other connection: TLS handshake, request on its way, idle keep-alive.
//!
//!  newcomer from address A, holding p(A) pending connections:
//!    p(A) ≥ pending_per_address            → refused (closed at once, no TLS work spent)
//!    listener below its connection cap     → admitted
//!    else H = the address with the most pending connections (ties: the one holding the oldest)
//!      p(H) > p(A)                          → H's oldest pending connection is closed, A admitted
//!      otherwise                            → refused
//! ```
//!
//! An attacker therefore holds at most `pending_per_address` connections per address it
//! controls, and the connections it holds are the first to go when someone with fewer comes:
//! a teacher's tablet, holding one or two, displaces an attacker's connection instead of
//! waiting behind it. Only an attacker with more addresses than the cap has connections
//! (each address then holding one) makes eviction plain oldest-first, and the teacher's
//! connection, the newest, is the last to go. Trusted connections count towards the cap (they
//! hold descriptors) but are never displaced by anonymous ones; an authenticated account can
//! still fill the cap with WebSockets, which is for the session layer to bound.
//!
//! Addresses are compared whole (IPv4-mapped IPv6 as IPv4): on a classroom LAN every tablet
//! and PC has its own address, and the hosts of a LAN share one IPv6 /64, so grouping by
//! prefix would put the teacher with the students.
//!
//! The caps default to shares of the open-file limit ([`Plan::new`]), which [`raise_open_file_limit`]
//! first raises to the hard limit. As a backstop for descriptors used elsewhere (the mosaic's
//! GStreamer decoders take about seven per enrolled station), a listener also counts itself
//! full while fewer than [`FD_HEADROOM`] descriptors are left.
//!
//! Time limits, each closing the connection: the TLS handshake; the request head (hyper's
//! `header_read_timeout`, which in hyper 1.x starts when the connection begins waiting for a
//! request, on a new connection or after the previous response on a kept-alive one, so it is
//! also the idle keep-alive limit); the request body ([`DeadlineBody`], a total deadline: a
//! body trickled a byte at a time is cut); and a write that makes no progress ([`GuardedIo`],
//! a client that stops reading its response). Trusted connections are exempt from the last.
//!
//! Accept errors (`EMFILE`, `ENFILE`, `ENOBUFS`, `ECONNABORTED`…) never stop a listener: the
//! ones that mean the box is short of descriptors or memory pause accepting for
//! [`SHORTAGE_PAUSE`], and all are summed up in one log line per [`REPORT_EVERY`], with the
//! connections refused and evicted.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Descriptors a listener leaves free for everything else (database, GStreamer, outgoing
/// connections, files); below that it counts itself full.
pub const FD_HEADROOM: u64 = 64;
/// Descriptors kept out of the listeners' shares in the default plan: the box's own (about
/// 20) and the mosaic's, about seven per enrolled station, for a room of 24; rooms with more
/// stations are covered by [`FD_HEADROOM`] and the per-listener shares not all being full.
pub const RESERVED_FDS: u64 = 192;
/// How long accepting pauses after an error saying the box is short of descriptors or memory.
pub const SHORTAGE_PAUSE: Duration = Duration::from_millis(100);
/// How long accepting pauses after an error of an unknown kind.
const UNKNOWN_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// At most one summary line per listener per this period.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Per-connection log lines (handshake failures, timeouts…) a listener writes per
/// [`REPORT_EVERY`]; the rest are only counted, so an attack cannot flood the journal.
const CONNECTION_LINES_PER_REPORT: u32 = 20;
/// Largest request head (request line and headers) an HTTP server reads into memory; hyper
/// answers 431 beyond it. A real one, cookie included, is well under 4 KiB.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How often the open-descriptor count is read again (between readings it is estimated).
const FD_READ_EVERY: Duration = Duration::from_millis(100);

/// The caps of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections held at once, trusted and pending.
    pub connections: usize,
    /// Pending (not yet trusted) connections held at once from one address.
    pub pending_per_address: usize,
}

/// How long each step of a connection may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tls_handshake: Duration,
    /// From the moment the connection waits for a request (new, or kept alive after a
    /// response) to the end of its head.
    pub request_head: Duration,
    /// From the end of the request head to the end of its body.
    pub request_body: Duration,
    /// A write (response or TLS record) that makes no progress for this long fails.
    pub write_stall: Duration,
}

/// What the HTTP servers need: their caps and the timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub connections: Limits,
    pub timeouts: Timeouts,
}

/// Every listener's caps and the timeouts, from the configuration and the open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub open_files: u64,
    pub https: Limits,
    pub station_link: Limits,
    pub http_redirect: Limits,
    pub timeouts: Timeouts,
}

impl Plan {
    /// Fills in the caps the configuration leaves out: of the descriptors left after
    /// [`RESERVED_FDS`], half for HTTPS, a quarter for the station link and a sixteenth for
    /// the redirect, each within bounds that also keep memory in check when the limit is
    /// large (each pending TLS connection costs some tens of KiB).
    pub fn new(cfg: &crate::config::Limits, open_files: u64) -> Plan {
        let budget = open_files.saturating_sub(RESERVED_FDS).max(64);
        let share = |configured: Option<u32>, divisor: u64, min: u64, max: u64| {
            configured.map_or_else(
                || (budget / divisor).clamp(min, max) as usize,
                |n| n as usize,
            )
        };
        let limits = |connections: usize, per_address: u32| Limits {
            connections,
            pending_per_address: (per_address as usize).min(connections),
        };
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Plan {
            open_files,
            https: limits(
                share(cfg.https_connections, 2, 16, 4096),
                cfg.https_pending_per_address,
            ),
            station_link: limits(
                share(cfg.station_link_connections, 4, 16, 1024),
                cfg.station_link_pending_per_address,
            ),
            http_redirect: limits(
                share(cfg.http_redirect_connections, 16, 4, 256),
                cfg.http_redirect_pending_per_address,
            ),
            timeouts: Timeouts {
                tls_handshake: secs(cfg.tls_handshake_timeout_s),
                request_head: secs(cfg.request_header_timeout_s),
                request_body: secs(cfg.request_body_timeout_s),
                write_stall: secs(cfg.write_stall_timeout_s),
            },
        }
    }

    /// Descriptors the listeners may hold together, when every one is at its cap.
    pub fn descriptors_at_caps(&self) -> u64 {
        (self.https.connections + self.station_link.connections + self.http_redirect.connections)
            as u64
    }

    pub fn https(&self) -> HttpLimits {
        HttpLimits {
            connections: self.https,
            timeouts: self.timeouts,
        }
    }

    pub fn http_redirect(&self) -> HttpLimits {
        HttpLimits {
            connections: self.http_redirect,
            timeouts: self.timeouts,
        }
    }
}

/// Raises the soft open-file limit to the hard one (a systemd service starts at 1024 soft)
/// and returns the limit now in force. A failure is logged, not fatal: the box then plans
/// with the limit it has.
pub fn raise_open_file_limit() -> u64 {
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            warn!("cannot read the open-file limit ({e}); planning for 1024");
            return 1024;
        }
    };
    match rlimit::increase_nofile_limit(hard) {
        Ok(now) => {
            if now > soft {
                info!(
                    from = soft,
                    to = now,
                    "raised the open-file limit to the hard limit"
                );
            }
            now
        }
        Err(e) => {
            warn!(soft, hard, "cannot raise the open-file limit: {e}");
            soft
        }
    }
}

/// Where connections come from: a TCP listener, or a stand-in in tests.
pub trait Acceptor: Send {
    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send;
}

impl Acceptor for TcpListener {
    fn accept(&mut self) -> impl Future<Output = io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// Accepts connections for ever, admitting each by the rule above and handing it to `serve`
/// (in its own task) with its [`Admission`]. Never returns: no accept error is fatal.
pub async fn run<A, F, Fut>(
    mut acceptor: A,
    name: &'static str,
    limits: Limits,
    mut serve: F,
) -> Infallible
where
    A: Acceptor,
    F: FnMut(TcpStream, SocketAddr, Admission) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let stats = Arc::new(ListenerStats {
        name,
        connection_lines: AtomicU32::new(0),
    });
    let mut table = Table::new(limits, events_tx);
    let mut report = Report::default();
    let mut fds = FdGauge::new();
    let mut report_tick = tokio::time::interval_at(Instant::now() + REPORT_EVERY, REPORT_EVERY);
    report_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut paused_until: Option<Instant> = None;
    loop {
        tokio::select! {
            // Closes and trusts first, so the counts are current before the next decision.
            biased;
            Some(event) = events.recv() => table.apply(event),
            _ = report_tick.tick() => report.log(name, &table, &stats),
            _ = sleep_until_some(paused_until), if paused_until.is_some() => paused_until = None,
            accepted = acceptor.accept(), if paused_until.is_none() => match accepted {
                Ok((tcp, peer)) => {
                    let short_of_fds = fds.near_limit();
                    match table.admit(peer.ip(), short_of_fds) {
                        Decision::Refuse(why) => {
                            report.refused(why);
                            drop(tcp);
                        }
                        Decision::Admit { shared, evicted } => {
                            if evicted.is_some() {
                                report.evicted += 1;
                            }
                            fds.opened();
                            let admission = Admission {
                                conn: ConnHandle(shared),
                                stats: stats.clone(),
                            };
                            tokio::spawn(serve(tcp, peer, admission));
                        }
                    }
                }
                Err(e) => {
                    let kind = AcceptErrorKind::of(&e);
                    if report.accept_error(kind) {
                        warn!(
                            listener = name,
                            "accept failed: {e} ({}); further errors are summed up every {}s",
                            kind.what(),
                            REPORT_EVERY.as_secs()
                        );
                    }
                    if let Some(pause) = kind.pause() {
                        paused_until = Some(Instant::now() + pause);
                    }
                }
            },
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A connection's ticket: while it lives, the listener counts the connection. Dropped when
/// the connection ends (wherever its socket went, e.g. into a WebSocket task).
pub struct Admission {
    conn: ConnHandle,
    stats: Arc<ListenerStats>,
}

impl Admission {
    /// A handle to trust or cut this connection, or to wait for it being cut.
    pub fn handle(&self) -> ConnHandle {
        self.conn.clone()
    }

    /// Decides whether this connection's log lines may be written.
    pub fn log_budget(&self) -> LogBudget {
        LogBudget(self.stats.clone())
    }

    /// Wraps the connection's stream so that the admission lives as long as the stream and
    /// stalled writes fail (see [`GuardedIo`]).
    pub fn guard<T>(self, io: T, write_stall: Duration) -> GuardedIo<T> {
        GuardedIo {
            inner: io,
            admission: self,
            write_stall,
            stalled: None,
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        // The listener may be gone (the box is stopping): nothing to count then.
        let _ = self.conn.0.events.send(Event::Closed(self.conn.0.id));
    }
}

/// A listener's allowance of per-connection log lines: at most
/// [`CONNECTION_LINES_PER_REPORT`] per [`REPORT_EVERY`]; the rest are counted and summed up
/// in the listener's report, so an attack cannot flood the journal.
#[derive(Clone)]
pub struct LogBudget(Arc<ListenerStats>);

impl LogBudget {
    /// Whether one more line may be written now; call it only when about to write one.
    pub fn allows(&self) -> bool {
        self.0.connection_lines.fetch_add(1, Ordering::Relaxed) < CONNECTION_LINES_PER_REPORT
    }
}

/// Trusts, cuts, or waits for the cutting of one admitted connection.
#[derive(Clone)]
pub struct ConnHandle(Arc<Shared>);

impl ConnHandle {
    /// Marks the connection trusted (authenticated and long-lived): never evicted from now
    /// on. False if it was evicted first; the connection is being closed then.
    pub fn trust(&self) -> bool {
        let won = self
            .0
            .state
            .compare_exchange(PENDING, TRUSTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            let _ = self.0.events.send(Event::Trusted(self.0.id));
        }
        won || self.is_trusted()
    }

    pub fn is_trusted(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == TRUSTED
    }

    /// Asks whoever serves the connection to close it (e.g. its body deadline passed).
    pub fn cut(&self) {
        self.0.cut.cancel();
    }

    /// Resolves when the connection was evicted or cut.
    pub async fn cut_off(&self) {
        self.0.cut.cancelled().await
    }
}

const PENDING: u8 = 0;
const TRUSTED: u8 = 1;
const EVICTED: u8 = 2;

#[derive(Debug)]
struct Shared {
    id: u64,
    state: AtomicU8,
    cut: CancellationToken,
    events: mpsc::UnboundedSender<Event>,
}

impl Shared {
    /// Pending → evicted; fails if the connection became trusted meanwhile.
    fn try_evict(&self) -> bool {
        self.state
            .compare_exchange(PENDING, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

struct ListenerStats {
    name: &'static str,
    connection_lines: AtomicU32,
}

#[derive(Debug)]
enum Event {
    Trusted(u64),
    Closed(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The address holds its share of pending connections.
    Address,
    /// The listener is full and no address holds more pending connections than this one.
    Full,
}

enum Decision {
    Admit {
        shared: Arc<Shared>,
        evicted: Option<Arc<Shared>>,
    },
    Refuse(Refusal),
}

/// The connections of one listener, owned by its [`run`] task.
struct Table {
    limits: Limits,
    next_id: u64,
    events: mpsc::UnboundedSender<Event>,
    /// Every admitted connection still open: its address, and whether it is pending.
    live: HashMap<u64, (IpAddr, bool)>,
    /// Pending connections per address, oldest (lowest id) first.
    pending: HashMap<IpAddr, BTreeMap<u64, Arc<Shared>>>,
}

impl Table {
    fn new(limits: Limits, events: mpsc::UnboundedSender<Event>) -> Self {
        Table {
            limits,
            next_id: 0,
            events,
            live: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    fn pending_of(&self, addr: &IpAddr) -> usize {
        self.pending.get(addr).map_or(0, BTreeMap::len)
    }

    fn trusted_count(&self) -> usize {
        self.live.values().filter(|(_, pending)| !pending).count()
    }

    /// Applies the rule of the module comment. `short_of_fds` counts the listener as full
    /// whatever its cap.
    fn admit(&mut self, addr: IpAddr, short_of_fds: bool) -> Decision {
        let addr = addr.to_canonical();
        let mine = self.pending_of(&addr);
        if mine >= self.limits.pending_per_address {
            return Decision::Refuse(Refusal::Address);
        }
        let mut evicted = None;
        if short_of_fds || self.live.len() >= self.limits.connections {
            loop {
                let Some((heaviest, count)) = self.heaviest() else {
                    return Decision::Refuse(Refusal::Full);
                };
                if count <= mine {
                    return Decision::Refuse(Refusal::Full);
                }
                let (id, victim) = self.take_oldest_pending(heaviest);
                if victim.try_evict() {
                    victim.cut.cancel();
                    self.live.remove(&id);
                    evicted = Some(victim);
                    break;
                }
                // It became trusted since; it stays, as trusted (its event is on its way).
                if let Some(entry) = self.live.get_mut(&id) {
                    entry.1 = false;
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let shared = Arc::new(Shared {
            id,
            state: AtomicU8::new(PENDING),
            cut: CancellationToken::new(),
            events: self.events.clone(),
        });
        self.live.insert(id, (addr, true));
        self.pending
            .entry(addr)
            .or_default()
            .insert(id, shared.clone());
        Decision::Admit { shared, evicted }
    }

    /// The address holding the most pending connections (ties: the one holding the oldest).
    fn heaviest(&self) -> Option<(IpAddr, usize)> {
        self.pending
            .iter()
            .filter_map(|(addr, conns)| {
                let oldest = *conns.keys().next()?;
                Some((conns.len(), std::cmp::Reverse(oldest), *addr))
            })
            .max()
            .map(|(count, _, addr)| (addr, count))
    }

    fn take_oldest_pending(&mut self, addr: IpAddr) -> (u64, Arc<Shared>) {
        let conns = self
            .pending
            .get_mut(&addr)
            .expect("heaviest address exists");
        let oldest = conns
            .pop_first()
            .expect("heaviest address holds connections");
        if conns.is_empty() {
            self.pending.remove(&addr);
        }
        oldest
    }

    fn forget_pending(&mut self, addr: IpAddr, id: u64) {
        if let Some(conns) = self.pending.get_mut(&addr) {
            conns.remove(&id);
            if conns.is_empty() {
                self.pending.remove(&addr);
            }
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Trusted(id) => {
                if let Some(entry) = self.live.get_mut(&id) {
                    if entry.1 {
                        entry.1 = false;
                        let addr = entry.0;
                        self.forget_pending(addr, id);
                    }
                }
            }
            Event::Closed(id) => {
                // Evicted connections were forgotten when they were evicted.
                if let Some((addr, pending)) = self.live.remove(&id) {
                    if pending {
                        self.forget_pending(addr, id);
                    }
                }
            }
        }
    }
}

/// The open-descriptor count of this process, read from /proc at most every
/// [`FD_READ_EVERY`] and estimated in between (each admitted connection adds one, so the
/// estimate errs towards full). Elsewhere than Linux it never reports a shortage.
struct FdGauge {
    limit: Option<u64>,
    open: u64,
    read_at: Option<Instant>,
}

impl FdGauge {
    fn new() -> Self {
        let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft);
        FdGauge {
            limit,
            open: 0,
            read_at: None,
        }
    }

    fn near_limit(&mut self) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let now = Instant::now();
        if self
            .read_at
            .is_none_or(|t| now.duration_since(t) >= FD_READ_EVERY)
        {
            match std::fs::read_dir("/proc/self/fd") {
                Ok(dir) => self.open = dir.count() as u64,
                Err(_) => {
                    // Without /proc there is nothing to measure: rely on the caps alone.
                    self.limit = None;
                    return false;
                }
            }
            self.read_at = Some(now);
        }
        self.open + FD_HEADROOM >= limit
    }

    fn opened(&mut self) {
        self.open += 1;
    }
}

/// Accept errors by what they say about the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum AcceptErrorKind {
    /// EMFILE, ENFILE: the process or the system is out of descriptors.
    OutOfDescriptors,
    /// ENOBUFS, ENOMEM: the kernel is short of memory.
    OutOfMemory,
    /// ECONNABORTED, EPROTO, EPERM, ECONNRESET, EINTR…: about one connection only.
    Connection,
    Other,
}

impl AcceptErrorKind {
    fn of(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => Self::OutOfDescriptors,
            Some(libc::ENOBUFS | libc::ENOMEM) => Self::OutOfMemory,
            Some(
                libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EPROTO
                | libc::EPERM
                | libc::EINTR
                | libc::EAGAIN
                | libc::ETIMEDOUT
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH,
            ) => Self::Connection,
            _ => match e.kind() {
                io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
                | io::ErrorKind::WouldBlock => Self::Connection,
                io::ErrorKind::OutOfMemory => Self::OutOfMemory,
                _ => Self::Other,
            },
        }
    }

    /// How long to stop accepting: waiting lets connections close and descriptors come
    /// back; retrying at once would spin on the same error.
    fn pause(self) -> Option<Duration> {
        match self {
            Self::OutOfDescriptors | Self::OutOfMemory => Some(SHORTAGE_PAUSE),
            Self::Connection => None,
            Self::Other => Some(UNKNOWN_ERROR_PAUSE),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::OutOfDescriptors => "out of file descriptors",
            Self::OutOfMemory => "out of kernel memory",
            Self::Connection => "one connection failed",
            Self::Other => "unexpected",
        }
    }
}

/// What a listener saw since its last summary line.
#[derive(Default)]
struct Report {
    accept_errors: BTreeMap<AcceptErrorKind, u64>,
    refused_address: u64,
    refused_full: u64,
    evicted: u64,
    /// Whether an accept error was logged in full during the current period.
    error_logged: bool,
}

impl Report {
    /// Counts an accept error; true when it should be logged in full (the first of a period).
    fn accept_error(&mut self, kind: AcceptErrorKind) -> bool {
        *self.accept_errors.entry(kind).or_default() += 1;
        !std::mem::replace(&mut self.error_logged, true)
    }

    fn refused(&mut self, why: Refusal) {
        match why {
            Refusal::Address => self.refused_address += 1,
            Refusal::Full => self.refused_full += 1,
        }
    }

    /// Writes the period's summary, if anything happened, and starts a new period.
    fn log(&mut self, name: &'static str, table: &Table, stats: &ListenerStats) {
        let lines = stats.connection_lines.swap(0, Ordering::Relaxed);
        let unlogged = lines.saturating_sub(CONNECTION_LINES_PER_REPORT);
        let errors: u64 = self.accept_errors.values().sum();
        if errors + self.refused_address + self.refused_full + self.evicted + u64::from(unlogged)
            > 0
        {
            let error_kinds = self
                .accept_errors
                .iter()
                .map(|(k, n)| format!("{}: {n}", k.what()))
                .collect::<Vec<_>>()
                .join(", ");
            warn!(
                listener = stats.name,
                open = table.live.len(),
                trusted = table.trusted_count(),
                refused_per_address = self.refused_address,
                refused_full = self.refused_full,
                evicted = self.evicted,
                accept_errors = errors,
                unlogged_connection_messages = unlogged,
                "{name} under pressure in the last {}s{}",
                REPORT_EVERY.as_secs(),
                if error_kinds.is_empty() {
                    String::new()
                } else {
                    format!(" (accept errors: {error_kinds})")
                }
            );
        }
        *self = Report::default();
    }
}

/// A connection's stream that keeps its [`Admission`] alive as long as itself, and fails a
/// write that makes no progress for `write_stall` (a client that sends a request and never
/// reads the answer), unless the connection is trusted.
pub struct GuardedIo<T> {
    inner: T,
    admission: Admission,
    write_stall: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> GuardedIo<T> {
    /// Called when a write or flush is pending: fails once it has been pending too long.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.admission.conn.is_trusted() {
            self.stalled = None;
            return Poll::Pending;
        }
        let limit = self.write_stall;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer read nothing for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<R>(&mut self, r: Poll<io::Result<R>>, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match r {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => match self.check_stall(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Why a request body was not read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body did not arrive within {0:?}")]
    TooSlow(Duration),
    #[error("reading the request body: {0}")]
    Read(Box<dyn std::error::Error + Send + Sync>),
}

/// A request body that must arrive whole before a deadline, however it is trickled: past
/// it, reading fails and the connection is cut.
pub struct DeadlineBody<B> {
    inner: B,
    limit: Duration,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
    conn: ConnHandle,
}

impl<B> DeadlineBody<B> {
    /// The deadline runs from now (the end of the request head).
    pub fn new(inner: B, limit: Duration, conn: ConnHandle) -> Self {
        DeadlineBody {
            inner,
            limit,
            deadline: Instant::now() + limit,
            timer: None,
            conn,
        }
    }
}

impl<B> hyper::body::Body for DeadlineBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                Poll::Ready(frame.map(|f| f.map_err(|e| BodyError::Read(Box::new(e)))))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.conn.cut();
                        Poll::Ready(Some(Err(BodyError::TooSlow(this.limit))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(connections: usize, pending_per_address: usize) -> Limits {
        Limits {
            connections,
            pending_per_address,
        }
    }

    fn table(connections: usize, per_address: usize) -> (Table, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Table::new(limits(connections, per_address), tx), rx)
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    /// Admits and returns the new connection and the one evicted for it, or the refusal.
    fn admit(t: &mut Table, addr: IpAddr) -> Result<(Arc<Shared>, Option<u64>), Refusal> {
        match t.admit(addr, false) {
            Decision::Admit { shared, evicted } => Ok((shared, evicted.map(|v| v.id))),
            Decision::Refuse(r) => Err(r),
        }
    }

    #[test]
    fn an_address_at_its_share_is_refused_without_evicting_anyone() {
        let (mut t, _rx) = table(100, 3);
        for _ in 0..3 {
            admit(&mut t, ip(1)).unwrap();
        }
        assert_eq!(admit(&mut t, ip(1)).unwrap_err(), Refusal::Address);
        // Another address is not affected.
        admit(&mut t, ip(2)).unwrap();
        assert_eq!(t.live.len(), 4);
    }

    #[test]
    fn when_full_the_newcomer_displaces_the_oldest_connection_of_the_heaviest_address() {
        let (mut t, _rx) = table(6, 4);
        // Address 1 holds four (ids 0..4), address 2 two (ids 4, 5): full.
        let mut first = Vec::new();
        for _ in 0..4 {
            first.push(admit(&mut t, ip(1)).unwrap().0);
        }
        for _ in 0..2 {
            admit(&mut t, ip(2)).unwrap();
        }
        // The teacher (no connection yet) gets in; address 1's oldest goes.
        let (_, evicted) = admit(&mut t, ip(9)).unwrap();
        assert_eq!(evicted, Some(first[0].id));
        assert!(first[0].cut.is_cancelled());
        assert_eq!(first[0].state.load(Ordering::Acquire), EVICTED);
        assert_eq!(t.live.len(), 6);
        assert_eq!(t.pending_of(&ip(1)), 3);
        // Address 2 (two) may still displace address 1 (three)…
        let (_, evicted) = admit(&mut t, ip(2)).unwrap();
        assert_eq!(evicted, Some(first[1].id));
        // …but now holds the most (three): its next newcomer is refused, not swapped in.
        assert_eq!(admit(&mut t, ip(2)).unwrap_err(), Refusal::Full);
        assert_eq!(t.pending_of(&ip(2)), 3);
        assert_eq!(t.live.len(), 6);
    }

    #[test]
    fn between_equally_heavy_addresses_the_one_holding_the_oldest_connection_loses_it() {
        let (mut t, _rx) = table(4, 4);
        let (oldest_of_2, _) = admit(&mut t, ip(2)).unwrap();
        admit(&mut t, ip(1)).unwrap();
        admit(&mut t, ip(1)).unwrap();
        admit(&mut t, ip(2)).unwrap();
        let (_, evicted) = admit(&mut t, ip(3)).unwrap();
        assert_eq!(evicted, Some(oldest_of_2.id));
    }

    #[test]
    fn trusted_connections_are_never_evicted_and_do_not_count_against_their_address() {
        let (mut t, mut rx) = table(3, 2);
        let stations: Vec<_> = (0..2).map(|_| admit(&mut t, ip(1)).unwrap().0).collect();
        for s in &stations {
            assert!(ConnHandle(s.clone()).trust());
        }
        while let Ok(e) = rx.try_recv() {
            t.apply(e);
        }
        // Both trusted: the address may open new pending connections (a NAT'd room).
        let (pending, _) = admit(&mut t, ip(1)).unwrap();
        // Full: the newcomer may displace only the pending one, from an address holding more.
        assert_eq!(admit(&mut t, ip(1)).unwrap_err(), Refusal::Full);
        let (_, evicted) = admit(&mut t, ip(2)).unwrap();
        assert_eq!(evicted, Some(pending.id));
        // Now address 2 holds the only pending one and a newcomer from 3 holds none.
        let (_, evicted) = admit(&mut t, ip(3)).unwrap();
        assert!(evicted.is_some());
        assert!(stations.iter().all(|s| !s.cut.is_cancelled()));
        // Only trusted and one pending from 3 left; 3 cannot displace itself.
        assert_eq!(admit(&mut t, ip(3)).unwrap_err(), Refusal::Full);
    }

    #[test]
    fn a_connection_trusted_while_it_is_being_chosen_stays() {
        let (mut t, _rx) = table(2, 5);
        let (a, _) = admit(&mut t, ip(1)).unwrap();
        let (b, _) = admit(&mut t, ip(1)).unwrap();
        // a is trusted, but its event has not reached the table yet.
        assert!(ConnHandle(a.clone()).trust());
        let (_, evicted) = admit(&mut t, ip(2)).unwrap();
        assert_eq!(evicted, Some(b.id), "the trusted one is skipped");
        assert!(!a.cut.is_cancelled());
        // And an evicted connection cannot become trusted.
        assert!(!ConnHandle(b).trust());
    }

    #[test]
    fn with_only_trusted_connections_a_full_listener_refuses() {
        let (mut t, mut rx) = table(2, 5);
        for _ in 0..2 {
            let (s, _) = admit(&mut t, ip(1)).unwrap();
            ConnHandle(s).trust();
        }
        while let Ok(e) = rx.try_recv() {
            t.apply(e);
        }
        assert_eq!(admit(&mut t, ip(7)).unwrap_err(), Refusal::Full);
    }

    #[test]
    fn closing_frees_the_slot_and_the_address_share() {
        let (mut t, _rx) = table(2, 1);
        let (a, _) = admit(&mut t, ip(1)).unwrap();
        assert_eq!(admit(&mut t, ip(1)).unwrap_err(), Refusal::Address);
        t.apply(Event::Closed(a.id));
        assert!(t.pending.is_empty());
        admit(&mut t, ip(1)).unwrap();
        // A Closed event for an evicted connection (forgotten already) changes nothing.
        t.apply(Event::Closed(a.id));
        assert_eq!(t.live.len(), 1);
    }

    #[test]
    fn short_of_descriptors_counts_as_full() {
        let (mut t, _rx) = table(100, 10);
        admit(&mut t, ip(1)).unwrap();
        admit(&mut t, ip(1)).unwrap();
        // Far below its cap, but short of descriptors: a swap, never one more connection.
        match t.admit(ip(2), true) {
            Decision::Admit { evicted, .. } => assert!(evicted.is_some()),
            Decision::Refuse(r) => panic!("refused: {r:?}"),
        }
        assert_eq!(t.live.len(), 2);
        // Addresses 1 and 2 now hold one each: neither may displace the other.
        assert!(matches!(
            t.admit(ip(2), true),
            Decision::Refuse(Refusal::Full)
        ));
        assert!(matches!(
            t.admit(ip(2), false),
            Decision::Admit { evicted: None, .. }
        ));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_their_ipv4_address() {
        let (mut t, _rx) = table(10, 1);
        admit(&mut t, ip(1)).unwrap();
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(admit(&mut t, mapped).unwrap_err(), Refusal::Address);
    }

    #[test]
    fn accept_errors_are_classified_and_paused_on_shortage() {
        let of = |code| AcceptErrorKind::of(&io::Error::from_raw_os_error(code));
        assert_eq!(of(libc::EMFILE), AcceptErrorKind::OutOfDescriptors);
        assert_eq!(of(libc::ENFILE), AcceptErrorKind::OutOfDescriptors);
        assert_eq!(of(libc::ENOBUFS), AcceptErrorKind::OutOfMemory);
        assert_eq!(of(libc::ECONNABORTED), AcceptErrorKind::Connection);
        assert_eq!(of(libc::EMFILE).pause(), Some(SHORTAGE_PAUSE));
        assert_eq!(of(libc::ECONNABORTED).pause(), None);
        assert!(of(libc::EINVAL).pause().is_some());
    }

    #[test]
    fn the_default_plan_fits_the_open_file_limit() {
        let cfg = crate::config::Limits::default();
        let plan = Plan::new(&cfg, 1024);
        assert_eq!(plan.https.connections, 416);
        assert_eq!(plan.station_link.connections, 208);
        assert_eq!(plan.http_redirect.connections, 52);
        assert!(plan.descriptors_at_caps() + RESERVED_FDS <= 1024);
        assert_eq!(plan.https.pending_per_address, 32);
        // A large hard limit does not turn into unbounded memory.
        let big = Plan::new(&cfg, 524_288);
        assert_eq!(big.https.connections, 4096);
        assert_eq!(big.station_link.connections, 1024);
        // Configured caps win; a per-address share never exceeds the listener's cap.
        let cfg = crate::config::Limits {
            https_connections: Some(10),
            https_pending_per_address: 50,
            ..Default::default()
        };
        let plan = Plan::new(&cfg, 1024);
        assert_eq!(plan.https, limits(10, 10));
    }

    /// Stands in for a listener: hands out queued errors first, then real connections.
    struct Flaky {
        errors: Vec<i32>,
        real: TcpListener,
    }

    impl Acceptor for Flaky {
        async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
            match self.errors.pop() {
                Some(code) => Err(io::Error::from_raw_os_error(code)),
                None => self.real.accept().await,
            }
        }
    }

    #[tokio::test]
    async fn accept_errors_pause_the_listener_but_never_stop_it() {
        let real = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = real.local_addr().unwrap();
        let errors = [libc::EMFILE; 20]
            .into_iter()
            .chain([libc::ECONNABORTED; 5])
            .collect();
        let (served_tx, mut served) = mpsc::unbounded_channel();
        let started = std::time::Instant::now();
        tokio::spawn(run(
            Flaky { errors, real },
            "test",
            limits(10, 10),
            move |_tcp, peer, _admission| {
                let tx = served_tx.clone();
                async move {
                    let _ = tx.send(peer);
                }
            },
        ));
        let client = TcpStream::connect(addr).await.unwrap();
        let peer = tokio::time::timeout(Duration::from_secs(10), served.recv())
            .await
            .expect("the listener survived its errors")
            .unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // Twenty descriptor shortages, each followed by a pause.
        assert!(
            started.elapsed() >= SHORTAGE_PAUSE * 20,
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_full_listener_evicts_a_pending_connection_for_a_newcomer_and_refuses_at_the_address_cap(
    ) {
        let real = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = real.local_addr().unwrap();
        let (served_tx, mut served) = mpsc::unbounded_channel();
        tokio::spawn(run(
            real,
            "test",
            limits(2, 2),
            move |mut tcp, _peer, admission| {
                let tx = served_tx.clone();
                async move {
                    let handle = admission.handle();
                    let _ = tx.send(());
                    // Holds the connection until evicted, then closes it.
                    let mut buf = [0u8; 1];
                    tokio::select! {
                        _ = handle.cut_off() => {}
                        _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf) => {}
                    }
                }
            },
        ));
        let connect_from = |last: u8| async move {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind(SocketAddr::from(([127, 0, 0, last], 0))).unwrap();
            s.connect(addr).await.unwrap()
        };
        let mut a1 = connect_from(2).await;
        served.recv().await.unwrap();
        let _a2 = connect_from(2).await;
        served.recv().await.unwrap();
        // A third from the same address: refused (closed without being served).
        let mut a3 = connect_from(2).await;
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut a3, &mut [0u8; 1]),
        )
        .await
        .expect("refused at once");
        assert!(matches!(n, Ok(0) | Err(_)));
        // From another address: admitted, and the oldest of address 2 is closed for it.
        let _b = connect_from(3).await;
        served.recv().await.unwrap();
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read(&mut a1, &mut [0u8; 1]),
        )
        .await
        .expect("evicted at once");
        assert!(matches!(n, Ok(0) | Err(_)));
    }

    /// A body that never sends anything, as a client trickling nothing.
    struct Silent;

    impl hyper::body::Body for Silent {
        type Data = Bytes;
        type Error = io::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
            Poll::Pending
        }
    }

    fn detached_handle() -> ConnHandle {
        let (tx, _rx) = mpsc::unbounded_channel();
        ConnHandle(Arc::new(Shared {
            id: 0,
            state: AtomicU8::new(PENDING),
            cut: CancellationToken::new(),
            events: tx,
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_does_not_arrive_in_time_fails_and_cuts_the_connection() {
        use http_body_util::BodyExt;
        let conn = detached_handle();
        let body = DeadlineBody::new(Silent, Duration::from_secs(10), conn.clone());
        let started = Instant::now();
        let err = body.collect().await.unwrap_err();
        assert!(matches!(err, BodyError::TooSlow(_)), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(conn.0.cut.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_arrives_in_time_is_passed_through() {
        use http_body_util::BodyExt;
        let conn = detached_handle();
        let body = DeadlineBody::new(
            http_body_util::Full::new(Bytes::from_static(b"{}")),
            Duration::from_secs(10),
            conn.clone(),
        );
        assert_eq!(body.collect().await.unwrap().to_bytes(), "{}");
        assert!(!conn.0.cut.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_unless_the_connection_is_trusted() {
        use tokio::io::AsyncWriteExt;
        let (tx, _rx) = mpsc::unbounded_channel();
        let admission = |trusted: bool| Admission {
            conn: ConnHandle(Arc::new(Shared {
                id: 0,
                state: AtomicU8::new(if trusted { TRUSTED } else { PENDING }),
                cut: CancellationToken::new(),
                events: tx.clone(),
            })),
            stats: Arc::new(ListenerStats {
                name: "test",
                connection_lines: AtomicU32::new(0),
            }),
        };
        // A 1 KiB pipe whose other end never reads.
        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut io = admission(false).guard(ours, Duration::from_secs(30));
        let started = Instant::now();
        let err = io.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));

        let (ours, _theirs) = tokio::io::duplex(1024);
        let mut io = admission(true).guard(ours, Duration::from_secs(30));
        let r = tokio::time::timeout(Duration::from_secs(120), io.write_all(&[0u8; 4096])).await;
        assert!(r.is_err(), "a trusted connection's write waits");
    }
}
