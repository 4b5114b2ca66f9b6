//! The live video WebSockets: the composed mosaic and one station's full stream.

use super::*;

// ---- video WebSockets ----

/// Largest message a tablet may send us: pings, closes and keyframe requests.
pub(super) const WS_MAX_IN: usize = 4 * 1024;
/// Minimum time between keyframe requests caused by one slow viewer.
pub(super) const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);

pub fn video_message(
    keyframe: bool,
    seq: u64,
    capture_us: u64,
    updates: &[(u16, u64)],
    au: &[u8],
) -> Bytes {
    let mut b = BytesMut::with_capacity(20 + updates.len() * 10 + au.len());
    b.put_u8(1);
    b.put_u8(u8::from(keyframe));
    b.put_u64(seq);
    b.put_u64(capture_us);
    b.put_u16(updates.len() as u16);
    for (tile, ts) in updates {
        b.put_u16(*tile);
        b.put_u64(*ts);
    }
    b.put_slice(au);
    b.freeze()
}

/// What one viewer's decoder can take next. A browser decoder must be configured with the
/// codec (from the SPS) before its first keyframe and again when the codec changes, and after
/// a gap it can only restart at a keyframe.
pub(super) struct ViewerGate {
    codec: Option<String>,
    need_key: bool,
    last_key_request: Option<Instant>,
}

pub(super) enum Admit {
    Skip,
    /// Send the frame, preceded by this config message when there is one.
    Send {
        config: Option<Message>,
    },
}

impl ViewerGate {
    fn new() -> Self {
        ViewerGate {
            codec: None,
            need_key: true,
            last_key_request: None,
        }
    }

    fn admit(&mut self, keyframe: bool, au: &[u8]) -> Admit {
        if self.need_key && !keyframe {
            return Admit::Skip;
        }
        let mut config = None;
        if keyframe {
            if let Some(c) = lanterne_media::codec_string(au) {
                if self.codec.as_deref() != Some(c.as_str()) {
                    config = Some(config_message(&c));
                    self.codec = Some(c);
                }
            }
        }
        if self.codec.is_none() {
            return Admit::Skip;
        }
        self.need_key = false;
        Admit::Send { config }
    }

    /// The viewer fell behind: wait for a keyframe. True when one should be requested now
    /// (at most every [`KEYFRAME_REQUEST_GAP`]).
    fn lagged(&mut self) -> bool {
        self.need_key = true;
        let due = self
            .last_key_request
            .is_none_or(|t| t.elapsed() >= KEYFRAME_REQUEST_GAP);
        if due {
            self.last_key_request = Some(Instant::now());
        }
        due
    }
}

/// Whether a message from the tablet asks for a keyframe: its decoder dropped frames (it fell
/// behind, or a frame failed to decode) and can only resume at one. A station's full stream
/// has a keyframe only every minute unless one is asked for, so without this a tablet that
/// dropped a frame would stay frozen for up to that long. Anything else a page sends is
/// ignored; requests are rate-limited by [`ViewerGate::lagged`].
pub(super) fn asks_for_keyframe(msg: &Message) -> bool {
    let Message::Text(text) = msg else {
        return false;
    };
    #[derive(serde::Deserialize)]
    struct Request<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
    }
    serde_json::from_str::<Request>(text.as_str()).is_ok_and(|r| r.kind == "keyframe")
}

pub(super) fn config_message(codec: &str) -> Message {
    Message::Text(
        serde_json::json!({ "type": "config", "codec": codec })
            .to_string()
            .into(),
    )
}

pub(super) fn layout_message(view: &RoomView) -> Message {
    Message::Text(
        serde_json::json!({
            "type": "layout",
            "width": view.mosaic.width,
            "height": view.mosaic.height,
            "tiles": view.mosaic.tiles,
        })
        .to_string()
        .into(),
    )
}

/// The live room: tile states at any hour (the tablet draws the class from them), and the
/// composed thumbnails while the policy allows this account to watch them. The role is
/// asked here (a technician is refused the socket); the hours gate every frame, and the
/// room asks stations for video only inside the windows anyway.
pub(super) async fn mosaic_ws(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Extension(live): Extension<store::LiveSession>,
    // A rejection is answered only after the role check: a refused role hears 403 whatever
    // it sent.
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let decision = state.policy.decide(acc.role, Action::Thumbnails);
    if let lanterne_privacy::policy::Decision::Deny {
        reason: lanterne_privacy::policy::DenyReason::RoleNotPermitted { .. },
        ..
    } = decision
    {
        if let Err(refusal) = authorize(&state, &acc, Action::Thumbnails, "room").await {
            return refusal;
        }
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    ws.max_message_size(WS_MAX_IN)
        .on_upgrade(move |socket| mosaic_session(socket, state, acc, live))
}

/// The message that tells a viewer why its view ended.
fn ended_message(reason: &str) -> Message {
    Message::Text(
        serde_json::json!({"type": "ended", "reason": reason})
            .to_string()
            .into(),
    )
}

pub(super) async fn mosaic_session(
    socket: WebSocket,
    state: AppState,
    acc: Account,
    live: store::LiveSession,
) {
    // Signed out, disabled, password or second factor reset, expired: the view closes.
    let over = session_over(state.clone(), live);
    tokio::pin!(over);
    // Stations send thumbnails only while a viewer like this one is open (see room.rs).
    let _viewer = state.room.mosaic_viewer().await;
    state
        .audit
        .account(&acc.username, "view-mosaic", "room", "started", "")
        .await;
    let mut frames = state.mosaic.subscribe();
    state.mosaic.request_keyframe();
    let mut view = state.room.view();
    let (mut tx, mut rx) = socket.split();
    let mut gate = ViewerGate::new();
    let first = layout_message(&view.borrow_and_update());
    let mut alive = tx.send(first).await.is_ok();
    while alive {
        tokio::select! {
            reason = &mut over => {
                let _ = tx.send(ended_message(reason)).await;
                let _ = tx.send(Message::Close(None)).await;
                break;
            }
            changed = view.changed() => {
                if changed.is_err() { break; }
                let msg = layout_message(&view.borrow_and_update());
                alive = tx.send(msg).await.is_ok();
            }
            f = frames.recv() => match f {
                Ok(f) => {
                    // Asked per frame: a window's edge can pass while the socket is open.
                    if !state.policy.decide(acc.role, Action::Thumbnails).is_allowed() {
                        gate = ViewerGate::new();
                        continue;
                    }
                    let Admit::Send { config } = gate.admit(f.keyframe, &f.data) else { continue };
                    if let Some(config) = config {
                        alive = tx.send(config).await.is_ok();
                    }
                    let newest = f.updates.iter().map(|u| u.1).max().unwrap_or(0);
                    let msg = video_message(f.keyframe, f.seq, newest, &f.updates, &f.data);
                    alive = alive && tx.send(Message::Binary(msg)).await.is_ok();
                }
                Err(RecvError::Lagged(n)) => {
                    // This tablet is slower than the stream: skip to the next keyframe.
                    warn!(user = %acc.username, skipped = n, "mosaic viewer lagging; resyncing at next keyframe");
                    if gate.lagged() {
                        state.mosaic.request_keyframe();
                    }
                }
                Err(RecvError::Closed) => break,
            },
            m = rx.next() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(m)) => {
                    if asks_for_keyframe(&m) && gate.lagged() {
                        state.mosaic.request_keyframe();
                    }
                }
            },
        }
    }
    state
        .audit
        .account(&acc.username, "view-mosaic", "room", "ended", "")
        .await;
}

pub(super) async fn focus_ws(
    State(state): State<AppState>,
    Extension(acc): Extension<Account>,
    Extension(live): Extension<store::LiveSession>,
    Path(id): Path<u32>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let sub = match state.room.open_focus(id).await {
        Ok(s) => s,
        Err(FocusError::Unknown) => return Err(ApiError::NotFound(format!("no station {id}"))),
        Err(FocusError::Offline) => {
            return Err(ApiError::Conflict(format!("station {id} is offline")))
        }
        Err(e @ FocusError::OutsideMonitoring { .. }) => {
            state
                .audit
                .account(
                    &acc.username,
                    "view-station",
                    &id.to_string(),
                    "refused",
                    &e.to_string(),
                )
                .await;
            return Err(ApiError::Forbidden(e.to_string()));
        }
    };
    Ok(ws
        .max_message_size(WS_MAX_IN)
        .on_upgrade(move |socket| focus_session(socket, state, acc, live, sub)))
}

pub(super) async fn focus_session(
    socket: WebSocket,
    state: AppState,
    acc: Account,
    live: store::LiveSession,
    mut sub: crate::room::FocusSubscription,
) {
    let over = session_over(state.clone(), live);
    tokio::pin!(over);
    let target = sub.station_name.clone();
    state
        .audit
        .account(&acc.username, "view-station", &target, "started", "")
        .await;
    let (mut tx, mut rx) = socket.split();
    let mut gate = ViewerGate::new();
    let mut alive = true;
    while alive {
        tokio::select! {
            reason = &mut over => {
                let _ = tx.send(ended_message(reason)).await;
                let _ = tx.send(Message::Close(None)).await;
                break;
            }
            ended = sub.ended.changed() => {
                if ended.is_err() || *sub.ended.borrow() {
                    // The room says why it ended the view; no reason: the station left.
                    let reason = match &*sub.cut().borrow() {
                        Some(crate::room::Unwatchable::NotConfigured) => "monitoring-not-configured",
                        Some(crate::room::Unwatchable::OutsideHours { .. }) => "outside-monitoring-hours",
                        Some(crate::room::Unwatchable::NoIndicator { .. }) => "no-indicator",
                        Some(crate::room::Unwatchable::HelpOver) => "help-ended",
                        None => "station-offline",
                    };
                    let msg = serde_json::json!({"type": "ended", "reason": reason});
                    let _ = tx.send(Message::Text(msg.to_string().into())).await;
                    break;
                }
            }
            f = sub.frames.recv() => match f {
                Ok(f) => {
                    let Admit::Send { config } = gate.admit(f.keyframe, &f.data) else { continue };
                    if let Some(config) = config {
                        alive = tx.send(config).await.is_ok();
                    }
                    let msg = video_message(f.keyframe, f.seq, f.capture_us, &[], &f.data);
                    alive = alive && tx.send(Message::Binary(msg)).await.is_ok();
                }
                Err(RecvError::Lagged(n)) => {
                    warn!(user = %acc.username, station = %target, skipped = n, "focus viewer lagging; resyncing at next keyframe");
                    if gate.lagged() {
                        sub.request_keyframe();
                    }
                }
                Err(RecvError::Closed) => {
                    let msg = serde_json::json!({"type": "ended", "reason": "station-offline"});
                    let _ = tx.send(Message::Text(msg.to_string().into())).await;
                    break;
                }
            },
            m = rx.next() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(m)) => {
                    if asks_for_keyframe(&m) && gate.lagged() {
                        sub.request_keyframe();
                    }
                }
            },
        }
    }
    state
        .audit
        .account(&acc.username, "view-station", &target, "ended", "")
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_message_layout_matches_the_documented_format() {
        let m = video_message(true, 7, 99, &[(3, 1234)], &[0, 0, 0, 1, 0x65]);
        assert_eq!(m[0], 1);
        assert_eq!(m[1], 1);
        assert_eq!(u64::from_be_bytes(m[2..10].try_into().unwrap()), 7);
        assert_eq!(u64::from_be_bytes(m[10..18].try_into().unwrap()), 99);
        assert_eq!(u16::from_be_bytes(m[18..20].try_into().unwrap()), 1);
        assert_eq!(u16::from_be_bytes(m[20..22].try_into().unwrap()), 3);
        assert_eq!(u64::from_be_bytes(m[22..30].try_into().unwrap()), 1234);
        assert_eq!(&m[30..], &[0, 0, 0, 1, 0x65]);
    }

    #[test]
    fn viewer_gate_starts_at_a_keyframe_and_resyncs_after_a_lag() {
        // SPS (constrained baseline, level 3.0) + IDR slice.
        let idr = [
            0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0, 0, 0, 1, 0x65, 0x88,
        ];
        let p = [0, 0, 0, 1, 0x41, 0x9a];
        let mut g = ViewerGate::new();
        assert!(matches!(g.admit(false, &p), Admit::Skip));
        match g.admit(true, &idr) {
            Admit::Send {
                config: Some(Message::Text(t)),
            } => {
                assert!(t.as_str().contains("avc1.42c01e"), "{}", t.as_str())
            }
            _ => panic!("the first keyframe comes with its config"),
        }
        assert!(matches!(g.admit(false, &p), Admit::Send { config: None }));
        assert!(g.lagged(), "first lag asks for a keyframe");
        assert!(!g.lagged(), "but not again right away");
        assert!(matches!(g.admit(false, &p), Admit::Skip));
        assert!(matches!(g.admit(true, &idr), Admit::Send { config: None }));
    }

    #[test]
    fn only_a_keyframe_request_asks_for_a_keyframe() {
        let text = |t: &str| Message::Text(t.to_string().into());
        assert!(asks_for_keyframe(&text(r#"{"type":"keyframe"}"#)));
        assert!(asks_for_keyframe(&text(
            r#"{"type":"keyframe","why":"decoder lagging"}"#
        )));
        assert!(!asks_for_keyframe(&text(r#"{"type":"config"}"#)));
        assert!(!asks_for_keyframe(&text("keyframe")));
        assert!(!asks_for_keyframe(&text(r#"{"kind":"keyframe"}"#)));
        assert!(!asks_for_keyframe(&Message::Binary(
            br#"{"type":"keyframe"}"#.to_vec().into()
        )));
    }
}
