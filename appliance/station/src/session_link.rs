//! The link between the station's system service and its session helper, over any local
//! byte stream: the Unix socket on Linux (`platform::linux::session_socket`), the named pipe
//! on Windows (`platform::windows::session_pipe`). Each platform accepts connections and
//! checks who is at the other end with what its kernel says (peer credentials, the pipe's
//! process and its access token); everything after that is here and the same everywhere:
//!
//! ```text
//!  service (root / LocalSystem)                         session helper (the student)
//!  checks the peer's account, one helper at a time   checks the service's account
//!        ◀──────────────────────────────────────────── Hello { capabilities }
//!  Welcome { station_id, name } or Refused { reason } ─▶ (refused: the helper exits with it)
//!  orders, demo access units ────────────────────────▶
//!        ◀──────────────────────────────────────────── reports, thumbnail and full video
//! ```
//!
//! One helper at a time ([`HelperPlace`]): while one is connected (or in its handshake, at
//! most [`HANDSHAKE_TIMEOUT`]), another is refused with the reason and exits; the first keeps
//! its place until it disconnects. A student who kills their helper only takes down what it
//! showed: the service tells the box nothing is shown and sends no video until a helper
//! connects again and gets the room's state.
//!
//! Frames are the station link's (`lanterne_wire::FrameCodec`: every length checked before
//! anything is buffered, fuzzed by `appliance/wire/fuzz`), so this adds no decoder. What a
//! helper sends is checked again by the link: only the reports a session may make, at a
//! bounded rate, and video only of the streams the box asked for.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lanterne_media::EncodedFrame;
use lanterne_wire::{Capabilities, Control, Frame, FrameCodec, Stream, PROTOCOL_VERSION};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::Framed;
use tracing::{info, warn};

use crate::session::{self, ServiceConn, SessionConn, VideoFrame, MEDIA_QUEUE};

/// Time a connecting peer has to say hello and be answered.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest capture or encoder name a helper may announce.
const MAX_CAPABILITY_CHARS: usize = 64;

/// A local stream the link runs over.
pub trait LocalStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> LocalStream for T {}

/// Why the handshake with the service failed (the helper's side).
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    #[error("the station service refused this helper: {0}")]
    Refused(String),
    #[error("the station service did not answer: {0}")]
    Handshake(String),
}

/// What the service tells a helper it accepts.
#[derive(Debug, Clone)]
pub struct Greeting {
    pub station_id: u32,
    pub name: String,
}

/// Who an admitted helper is, as the platform's checks found it.
#[derive(Debug, Clone)]
pub struct HelperPeer {
    /// For logs: "uid 1000, pid 4242", "PC\eleve (S-1-5-21-…), pid 4242, session 1".
    pub describe: String,
    /// What "log out" ends: the account's uid on Linux, the helper's session id on Windows.
    pub session_key: u32,
    /// Who is at the station, from the account database, as the box would show it.
    pub user: Option<String>,
}

/// The helper's place: one connection holds it from its admission until its bridge is done
/// (released before the link sees it go, so a helper that reconnects at once finds it free).
#[derive(Debug)]
pub struct HelperPlace {
    place: Arc<Semaphore>,
    holder: String,
}

impl Default for HelperPlace {
    fn default() -> Self {
        HelperPlace {
            place: Arc::new(Semaphore::new(1)),
            holder: String::new(),
        }
    }
}

impl HelperPlace {
    /// Takes the place for `peer`, or says who holds it.
    pub fn take(&mut self, peer: &str) -> Result<OwnedSemaphorePermit, String> {
        let permit = self.place.clone().try_acquire_owned().map_err(|_| {
            format!(
                "another session helper ({}) is connected to this station; it keeps its place \
                 until it disconnects",
                self.holder
            )
        })?;
        self.holder = peer.to_string();
        Ok(permit)
    }
}

/// Tells a refused peer why, then closes.
pub async fn refuse<S: LocalStream>(stream: S, reason: String) {
    let mut framed = Framed::new(stream, FrameCodec);
    let _ = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        framed.send(Frame::Control(Control::Refused { reason })),
    )
    .await;
}

/// One admitted helper: handshake, then frames both ways until either end closes. The
/// helper's [`SessionConn`] goes to the link on `sessions`.
pub async fn serve_helper<S: LocalStream>(
    stream: S,
    peer: HelperPeer,
    greeting: Greeting,
    sessions: mpsc::Sender<SessionConn>,
    place: OwnedSemaphorePermit,
) {
    let mut framed = Framed::new(stream, FrameCodec);
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.next()).await {
        Err(_) => Err("no hello in time".to_string()),
        Ok(None) => Err("closed before its hello".to_string()),
        Ok(Some(Err(e))) => Err(e.to_string()),
        Ok(Some(Ok(Frame::Control(Control::Hello {
            protocol,
            capabilities,
            ..
        })))) => check_hello(protocol, capabilities),
        Ok(Some(Ok(other))) => Err(format!("sent {} before its hello", frame_name(&other))),
    };
    let capabilities = match hello {
        Ok(c) => c,
        Err(reason) => {
            warn!(peer = %peer.describe, "session helper refused: {reason}");
            let _ = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                framed.send(Frame::Control(Control::Refused { reason })),
            )
            .await;
            return;
        }
    };
    let welcome = Frame::Control(Control::Welcome {
        protocol: PROTOCOL_VERSION,
        station_id: greeting.station_id,
        name: greeting.name,
    });
    if !matches!(
        tokio::time::timeout(HANDSHAKE_TIMEOUT, framed.send(welcome)).await,
        Ok(Ok(()))
    ) {
        return;
    }
    let (media_tx, media_rx) = mpsc::channel(MEDIA_QUEUE);
    let (mut conn, end) = session::pair(
        peer.describe.clone(),
        Some(peer.session_key),
        capabilities,
        media_rx,
    );
    // Who is at the station as the platform's account database says, never what the helper
    // says about itself.
    conn.user = peer.user;
    if sessions.send(conn).await.is_err() {
        return;
    }
    let why = bridge_to_helper(framed, end, media_tx, place).await;
    info!(peer = %peer.describe, "session helper disconnected: {why}");
}

fn check_hello(protocol: u16, c: Capabilities) -> Result<Capabilities, String> {
    if protocol != PROTOCOL_VERSION {
        return Err(format!(
            "protocol {protocol} not supported; this station service speaks {PROTOCOL_VERSION}"
        ));
    }
    let long = |s: &str| s.chars().count() > MAX_CAPABILITY_CHARS;
    if long(&c.capture) || long(&c.encoder) {
        return Err(format!(
            "capability names longer than {MAX_CAPABILITY_CHARS} characters"
        ));
    }
    Ok(c)
}

fn frame_name(f: &Frame) -> &'static str {
    match f {
        Frame::Control(_) => "a control message",
        Frame::Media { .. } => "media",
    }
}

/// The service's side of a connected helper: orders and demo frames out (orders first),
/// reports and video in. Reading and writing run side by side, so neither end can block
/// the other by writing while the other writes. Returns why it ended.
async fn bridge_to_helper<S: LocalStream>(
    framed: Framed<S, FrameCodec>,
    end: ServiceConn,
    media: mpsc::Sender<VideoFrame>,
    place: OwnedSemaphorePermit,
) -> String {
    let (mut sink, mut stream) = framed.split();
    let ServiceConn {
        mut orders,
        mut demo,
        reports,
    } = end;
    let write = async {
        loop {
            let frame = tokio::select! {
                biased;
                o = orders.recv() => match o {
                    Some(c) => Frame::Control(c),
                    None => return "the link let it go".to_string(),
                },
                d = demo.recv() => match d {
                    Some((header, data)) => Frame::Media { header, data },
                    None => return "the link let it go".to_string(),
                },
            };
            if let Err(e) = sink.send(frame).await {
                return format!("write failed: {e}");
            }
        }
    };
    let read = async {
        loop {
            match stream.next().await {
                None => return "it closed the connection".to_string(),
                Some(Err(e)) => return format!("bad frame: {e}"),
                Some(Ok(Frame::Control(c))) => {
                    if reports.send(c).await.is_err() {
                        return "the link let it go".to_string();
                    }
                }
                Some(Ok(Frame::Media { header, data })) => {
                    let Some(kind) = crate::sources::media_kind(header.stream) else {
                        return "it sent demo media, which only the box sends".to_string();
                    };
                    // Lossy like the encoder's own queue: the link resyncs at a keyframe.
                    let _ = media.try_send((
                        kind,
                        EncodedFrame {
                            data,
                            keyframe: header.keyframe,
                            capture_us: header.capture_us,
                            seq: header.seq,
                        },
                    ));
                }
            }
        }
    };
    let why = tokio::select! {
        why = write => why,
        why = read => why,
    };
    // Free the place before the link learns the helper is gone (its reports close).
    drop(place);
    drop(reports);
    why
}

/// The helper's side, once the platform has checked the service's account: says hello as
/// `who` and returns the framed connection and the service's greeting.
pub async fn say_hello<S: LocalStream>(
    stream: S,
    who: String,
    capabilities: Capabilities,
) -> Result<(Framed<S, FrameCodec>, Greeting), HelloError> {
    let mut framed = Framed::new(stream, FrameCodec);
    let hello = Frame::Control(Control::Hello {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: who,
        capabilities,
    });
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        // A refused helper may find the connection closed before its hello is written;
        // the refusal is still there to read.
        let _ = framed.send(hello).await;
        framed.next().await
    })
    .await
    .map_err(|_| HelloError::Handshake("no answer in time".into()))?;
    match answer {
        Some(Ok(Frame::Control(Control::Welcome {
            station_id, name, ..
        }))) => Ok((framed, Greeting { station_id, name })),
        Some(Ok(Frame::Control(Control::Refused { reason }))) => {
            Err(HelloError::Refused(lanterne_wire::bounded_text(&reason)))
        }
        Some(Ok(other)) => Err(HelloError::Handshake(format!(
            "answered with {}",
            frame_name(&other)
        ))),
        Some(Err(e)) => Err(HelloError::Handshake(e.to_string())),
        None => Err(HelloError::Handshake("closed the connection".into())),
    }
}

/// The helper's side of a connection: orders and demo frames in, reports and video out
/// (reports first). `conn` is the service's end of a [`session::pair`] whose other end the
/// [`session::Session`] serves. Ends when either side closes; gives the video queue back
/// for the next connection.
pub async fn bridge_to_service<S: LocalStream>(
    framed: Framed<S, FrameCodec>,
    conn: SessionConn,
) -> (String, mpsc::Receiver<VideoFrame>) {
    let SessionConn {
        orders,
        demo,
        mut reports,
        mut media,
        ..
    } = conn;
    let (mut sink, mut stream) = framed.split();
    let write = async {
        loop {
            let frame = tokio::select! {
                biased;
                r = reports.recv() => match r {
                    Some(c) => Frame::Control(c),
                    None => return "the session ended".to_string(),
                },
                m = media.recv() => match m {
                    Some((kind, f)) => Frame::Media {
                        header: lanterne_wire::MediaHeader {
                            stream: crate::sources::wire_stream(kind),
                            keyframe: f.keyframe,
                            seq: f.seq,
                            capture_us: f.capture_us,
                        },
                        data: f.data,
                    },
                    None => return "the encoder stopped".to_string(),
                },
            };
            if let Err(e) = sink.send(frame).await {
                return format!("write failed: {e}");
            }
        }
    };
    let read = async {
        loop {
            match stream.next().await {
                None => return "the service closed the connection".to_string(),
                Some(Err(e)) => return format!("bad frame from the service: {e}"),
                Some(Ok(Frame::Control(c))) => {
                    if orders.send(c).await.is_err() {
                        return "the session ended".to_string();
                    }
                }
                Some(Ok(Frame::Media { header, data })) => {
                    if header.stream != Stream::Demo {
                        return "the service sent video that is not a demo".to_string();
                    }
                    // Lossy: the player drops and resyncs at a keyframe.
                    let _ = demo.try_send((header, data));
                }
            }
        }
    };
    let why = tokio::select! {
        why = write => why,
        why = read => why,
    };
    (why, media)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(capture: &str) -> Capabilities {
        Capabilities {
            capture: capture.into(),
            encoder: "none".into(),
            screen: None,
        }
    }

    fn peer() -> HelperPeer {
        HelperPeer {
            describe: "test peer".into(),
            session_key: 1000,
            user: Some("Élise Martin".into()),
        }
    }

    fn greeting() -> Greeting {
        Greeting {
            station_id: 3,
            name: "poste-03".into(),
        }
    }

    #[tokio::test]
    async fn over_any_stream_a_helper_is_welcomed_and_known_by_what_the_platform_found() {
        let (service_side, helper_side) = tokio::io::duplex(64 * 1024);
        let (tx, mut sessions) = mpsc::channel(1);
        let mut place = HelperPlace::default();
        let permit = place.take("test peer").unwrap();
        tokio::spawn(serve_helper(service_side, peer(), greeting(), tx, permit));
        let (framed, g) = say_hello(helper_side, "helper".into(), caps("gdi"))
            .await
            .unwrap();
        assert_eq!((g.station_id, g.name.as_str()), (3, "poste-03"));
        let mut conn = sessions.recv().await.unwrap();
        assert_eq!(conn.uid, Some(1000));
        assert_eq!(conn.user.as_deref(), Some("Élise Martin"));
        assert_eq!(conn.capabilities.capture, "gdi");
        // The place is held while the helper is connected.
        let err = place.take("second").unwrap_err();
        assert!(err.contains("another session helper (test peer)"), "{err}");
        // When the helper goes, the place is free again and the link's end closes.
        drop(framed);
        assert_eq!(conn.reports.recv().await, None);
        let _second = place.take("second").unwrap();
    }

    #[tokio::test]
    async fn a_helper_with_another_protocol_or_overlong_capabilities_is_refused() {
        for (protocol, capture, expect) in [
            (PROTOCOL_VERSION + 1, "gdi".to_string(), "not supported"),
            (PROTOCOL_VERSION, "x".repeat(65), "longer than 64"),
        ] {
            let (service_side, helper_side) = tokio::io::duplex(64 * 1024);
            let (tx, _sessions) = mpsc::channel(1);
            let permit = HelperPlace::default().take("p").unwrap();
            tokio::spawn(serve_helper(service_side, peer(), greeting(), tx, permit));
            let mut framed = Framed::new(helper_side, FrameCodec);
            framed
                .send(Frame::Control(Control::Hello {
                    protocol,
                    agent_version: "0".into(),
                    hostname: "h".into(),
                    capabilities: caps(&capture),
                }))
                .await
                .unwrap();
            match framed.next().await {
                Some(Ok(Frame::Control(Control::Refused { reason }))) => {
                    assert!(reason.contains(expect), "{reason}")
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_refused_helper_learns_why() {
        let (service_side, helper_side) = tokio::io::duplex(4096);
        tokio::spawn(refuse(service_side, "pas vous".into()));
        let err = say_hello(helper_side, "h".into(), caps("gdi"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HelloError::Refused(r) if r == "pas vous"),
            "{err}"
        );
    }
}
