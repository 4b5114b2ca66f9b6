//! The station link: what the Lanterne box and a station agent say to each other.
//!
//! One TLS 1.3 connection per station carries a sequence of frames. Each frame is
//!
//! ```text
//! +---------+----------------+------------------------+
//! | kind u8 | length u32 BE  | payload (length bytes) |
//! +---------+----------------+------------------------+
//! ```
//!
//! * kind 1, **control**: a [`Control`] message encoded with postcard, at most
//!   [`MAX_CONTROL_LEN`] bytes.
//! * kind 2, **media**: a [`MediaHeader`] (18 bytes) followed by one H.264 access unit in
//!   Annex B form, at most [`MAX_MEDIA_LEN`] bytes in all.
//!
//! The first frame each side sends is a control frame: [`Control::Hello`] from the station,
//! then [`Control::Welcome`] or [`Control::Refused`] from the box. Versions are compared there
//! (see [`PROTOCOL_VERSION`]); nothing else is accepted before it.
//!
//! This crate does no I/O. [`FrameCodec`] plugs into `tokio_util::codec::Framed`; every
//! length is checked before anything is buffered, so a peer can never make the reader hold
//! more than one maximal frame. Decoding errors are final for the connection: the caller logs
//! them and disconnects that one peer.
#![forbid(unsafe_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change of a message layout. A box accepts stations that speak
/// exactly its version; agents are upgraded together with the box image.
///
/// 2: [`Shown`] gained `indicator_available` (a station says whether it can show the
/// watched indicator at all).
/// 3: remote help with the student's consent ([`Control::HelpAsk`], [`Control::HelpState`],
/// [`Control::HelpInput`], [`Control::HelpStop`]) and [`Control::ShownToClass`]; who sits at a
/// station ([`Control::SessionUser`]) and raised hands ([`Control::HandRaised`],
/// [`Control::HandCleared`]).
pub const PROTOCOL_VERSION: u16 = 3;
/// Largest control payload. Control messages are small; anything bigger is an attack or a bug.
pub const MAX_CONTROL_LEN: usize = 64 * 1024;
/// Largest media payload: header plus one access unit. A 1080p IDR at high quality stays
/// well under 1 MiB; 4 MiB leaves room without letting a peer exhaust the box's memory.
pub const MAX_MEDIA_LEN: usize = 4 * 1024 * 1024;
/// Bytes before the payload: kind and length.
pub const FRAME_HEADER_LEN: usize = 5;
/// Bytes of [`MediaHeader`] on the wire.
pub const MEDIA_HEADER_LEN: usize = 18;

const KIND_CONTROL: u8 = 1;
const KIND_MEDIA: u8 = 2;

/// What can be wrong with bytes read from a peer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("{kind} frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("media frame of {0} bytes is shorter than its {MEDIA_HEADER_LEN}-byte header")]
    MediaTooShort(usize),
    #[error("media frame names unknown stream {0}")]
    UnknownStream(u8),
    #[error("media frame has unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    #[error("media frame carries an empty access unit")]
    EmptyAccessUnit,
    #[error("control message does not decode: {0}")]
    BadControl(String),
    #[error("control message has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("connection closed in the middle of a frame ({0} bytes pending)")]
    Truncated(usize),
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::Io(e.to_string())
    }
}

/// Which of a station's two video streams a media frame or setting belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stream {
    /// Small stream for the mosaic, sent during monitoring windows.
    Thumb,
    /// Full-size stream, sent only while someone has this station open.
    Full,
    /// Box → station only: the access units of a demo the box relays to this station (the
    /// source's own stream, forwarded untouched).
    Demo,
}

impl Stream {
    fn to_byte(self) -> u8 {
        match self {
            Stream::Thumb => 0,
            Stream::Full => 1,
            Stream::Demo => 2,
        }
    }

    fn from_byte(b: u8) -> Result<Self, WireError> {
        match b {
            0 => Ok(Stream::Thumb),
            1 => Ok(Stream::Full),
            2 => Ok(Stream::Demo),
            other => Err(WireError::UnknownStream(other)),
        }
    }
}

/// Encoding settings the box asks a station to use for one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl StreamSettings {
    /// Bounds a station applies before handing settings to its encoder, so a confused box
    /// cannot make it allocate a 100k×100k frame.
    pub fn validate(&self) -> Result<(), String> {
        if !(16..=7680).contains(&self.width) || !(16..=4320).contains(&self.height) {
            return Err(format!("size {}x{} out of range", self.width, self.height));
        }
        if self.width % 2 != 0 || self.height % 2 != 0 {
            return Err(format!("size {}x{} is not even", self.width, self.height));
        }
        if !(1..=60).contains(&self.fps) {
            return Err(format!("{} fps out of range", self.fps));
        }
        if !(50..=50_000).contains(&self.bitrate_kbps) {
            return Err(format!("{} kbit/s out of range", self.bitrate_kbps));
        }
        Ok(())
    }
}

/// What the station can do, announced in its hello.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Name of the capture path in use ("x11", "pipewire", "synthetic", "replay").
    pub capture: String,
    /// Name of the H.264 encoder in use ("x264", "vaapi", "v4l2", "openh264", "mediafoundation",
    /// "mediafoundation-hw", "replay").
    pub encoder: String,
    /// Native screen size, when known.
    pub screen: Option<(u32, u32)>,
}

/// Control messages, both directions. Variants are only ever appended, so the postcard
/// variant index of existing ones never changes within a protocol version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Station → box, first frame.
    Hello {
        protocol: u16,
        agent_version: String,
        hostname: String,
        capabilities: Capabilities,
    },
    /// Box → station, answer to a good hello.
    Welcome {
        protocol: u16,
        station_id: u32,
        name: String,
    },
    /// Box → station, answer to a hello it will not serve; the box closes after sending.
    Refused {
        reason: String,
    },
    /// Box → station: start (Some) or stop (None) one stream.
    SetStream {
        stream: Stream,
        settings: Option<StreamSettings>,
    },
    /// Box → station: send an IDR on this stream as soon as possible.
    RequestKeyframe {
        stream: Stream,
    },
    /// Either side, periodically; the other answers with [`Control::HeartbeatAck`].
    Heartbeat {
        sent_us: u64,
    },
    HeartbeatAck {
        sent_us: u64,
    },
    /// Station → box: something the box asked for failed (e.g. the encoder would not start).
    StationError {
        message: String,
    },
    /// Box → station: cover every screen with the lock overlay showing `message` and capture
    /// keyboard and mouse, until [`Control::Unlock`].
    Lock {
        message: String,
    },
    /// Box → station: remove the lock overlay.
    Unlock,
    /// Station → box: what the station shows right now. Sent after the welcome and after
    /// every change, so the box (and the teacher) see the state actually on screen, not the
    /// state requested.
    Shown(Shown),
    /// Box → station: show a teacher's message until the student dismisses it.
    ShowMessage {
        id: u64,
        from: String,
        text: String,
    },
    /// Station → box: the student dismissed (read) message `id`.
    MessageRead {
        id: u64,
    },
    /// Box → station: run one admin-approved command (the box checks the approval; the
    /// station runs exactly this program with these arguments, no shell).
    RunCommand {
        id: u64,
        program: String,
        args: Vec<String>,
        timeout_s: u32,
    },
    /// Station → box: how run `id` ended. Output is cut to [`MAX_OUTPUT_BYTES`] per stream.
    CommandResult {
        id: u64,
        exit_code: Option<i32>,
        stdout: String,
        stderr: String,
        /// Why the command did not run or did not finish (not found, timed out…).
        error: Option<String>,
    },
    /// Box → station: shut down, restart or log out after `countdown_s` seconds, during which
    /// the student sees the countdown.
    Power {
        action: PowerAction,
        countdown_s: u32,
    },
    /// Box → station: open `url` (http or https) in the student's browser.
    OpenUrl {
        url: String,
    },
    /// Station → box: how a power or open-URL order went.
    ActionResult {
        action: String,
        ok: bool,
        detail: String,
    },
    /// Box → station, after the welcome: the room's monitoring schedule (the box's
    /// `[schedule]` as JSON). The station refuses to send video outside it by its own clock
    /// and shows the hours to the student.
    Schedule {
        config_json: String,
    },
    /// Box → station: start the demo player: show the media frames of stream
    /// [`Stream::Demo`] that follow. Sent again when a station reconnects mid-demo. See
    /// [`DemoStart::validate`] for the bounds a station checks.
    DemoStart(DemoStart),
    /// Box → station: close the demo player and say why (stopped, source gone, hours over).
    DemoStop {
        reason: String,
    },
    /// Station → box, about once a second while the player runs and once when it stops.
    DemoHealth(DemoHealth),
    /// Box → station: the certificate this station connected with is due for renewal; the
    /// station answers with [`Control::CertificateRequest`].
    RenewCertificate,
    /// Station → box, only after [`Control::RenewCertificate`]: a certificate signing request
    /// (PEM, at most [`MAX_PEM_LEN`] bytes, see [`check_pem`]) for a key the station just made.
    CertificateRequest {
        csr_pem: String,
    },
    /// Box → station: the certificate (PEM, at most [`MAX_PEM_LEN`] bytes) for the key of the
    /// station's last request. The station keeps using the current one on this connection and
    /// switches at the next.
    CertificateIssued {
        cert_pem: String,
    },
    /// Box → station: someone asks to take control of this station to help. The station shows
    /// the consent prompt and answers with [`Control::HelpState`]; only the student's click on
    /// "Accepter" accepts, and no answer within `timeout_s` is a refusal. See
    /// [`HelpAsk::validate`].
    HelpAsk(HelpAsk),
    /// Station → box: where remote help `id` stands (accepted, refused, timed out, ended by
    /// the student, or impossible here).
    HelpState {
        id: u64,
        state: HelpState,
    },
    /// Box → station: pointer and keyboard input for remote help `id`. A station injects it
    /// only while the student's consent to `id` holds; see [`validate_input`].
    HelpInput {
        id: u64,
        events: Vec<InputEvent>,
    },
    /// Box → station: remote help `id` is over (the helper stopped, or withdrew the question).
    HelpStop {
        id: u64,
    },
    /// Box → station: this station's screen is shown to the class (a demo of it) from now on
    /// (`on`), or no longer. The student sees a banner for as long as it lasts.
    ShownToClass {
        on: bool,
    },
    /// Station → box: the display name of the person logged in at the station (None: nobody
    /// is). Sent when a student session starts and ends; the station's service takes it from
    /// the session's account, never from what the session says about itself. Checked with
    /// [`validate_display_name`]. Personal data: the box keeps it in memory only, for as long
    /// as the session lasts.
    SessionUser {
        display_name: Option<String>,
    },
    /// Station → box: the student raised their hand (true) or withdrew it (false). Not tied
    /// to the monitoring hours: asking for help watches nobody.
    HandRaised {
        raised: bool,
    },
    /// Box → station: the teacher has seen the raised hand and cleared it.
    HandCleared,
}

/// Longest name of the person asking for remote help, as the student reads it.
pub const MAX_HELPER_NAME_CHARS: usize = 64;
/// Bounds of the consent prompt's wait: the box asks for 30 s; a station never waits longer
/// than two minutes nor less than five seconds, whatever it is sent.
pub const HELP_TIMEOUT_S: std::ops::RangeInclusive<u32> = 5..=120;
/// Input events in one [`Control::HelpInput`].
pub const MAX_INPUT_EVENTS: usize = 32;
/// Characters of one [`InputEvent::Text`].
pub const MAX_INPUT_TEXT_CHARS: usize = 256;

/// A request for remote help, as the station's consent prompt shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpAsk {
    /// Identifies this help session on both sides (the box never reuses one).
    pub id: u64,
    /// Who asks ("Mme Martin (enseignant)").
    pub from: String,
    /// Seconds the prompt waits for the student before refusing by itself.
    pub timeout_s: u32,
}

impl HelpAsk {
    /// What a station checks before showing the prompt.
    pub fn validate(&self) -> Result<(), String> {
        if self.from.trim().is_empty() {
            return Err("the request for help does not say who asks".into());
        }
        if self.from.chars().count() > MAX_HELPER_NAME_CHARS {
            return Err(format!(
                "the helper's name is longer than {MAX_HELPER_NAME_CHARS} characters"
            ));
        }
        if self.from.chars().any(char::is_control) {
            return Err("the helper's name holds control characters".into());
        }
        if !HELP_TIMEOUT_S.contains(&self.timeout_s) {
            return Err(format!(
                "a consent prompt waits {}..={} s, not {} s",
                HELP_TIMEOUT_S.start(),
                HELP_TIMEOUT_S.end(),
                self.timeout_s
            ));
        }
        Ok(())
    }
}

/// The consent prompt's title and text, as the student reads them: one wording for the X11
/// overlay and the Windows agent.
pub fn help_consent_text(from: &str, timeout_s: u32) -> (String, String) {
    (
        "Demande de prise en main".to_string(),
        format!(
            "{from} demande à prendre la main sur cet ordinateur pour vous aider : cette \
             personne verra votre écran et pourra utiliser la souris et le clavier.\n\n\
             Vous pourrez arrêter à tout moment avec le bouton « Arrêter » ou les touches \
             Ctrl+Alt+Fin.\nSans réponse de votre part, la demande est refusée dans \
             {timeout_s} secondes."
        ),
    )
}

/// Where one remote help session stands, as the station reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelpState {
    /// The prompt is on the student's screen.
    Asking,
    /// The student clicked "Accepter": input is injected until the help ends.
    Accepted,
    /// The student clicked "Refuser".
    Refused,
    /// Nobody answered in time: refused by itself.
    TimedOut,
    /// The student ended the help ("Arrêter" or the key combination).
    EndedByStudent,
    /// The station ended it after the box's [`Control::HelpStop`].
    Ended,
    /// The station cannot ask (no display for the prompt, another help running…), or lost
    /// what it needs midway; the reason is for the helper.
    Unavailable { reason: String },
}

impl HelpState {
    /// The name both ends use in the audit log and the API.
    pub fn name(&self) -> &'static str {
        match self {
            HelpState::Asking => "asking",
            HelpState::Accepted => "accepted",
            HelpState::Refused => "refused",
            HelpState::TimedOut => "timed-out",
            HelpState::EndedByStudent => "ended-by-student",
            HelpState::Ended => "ended",
            HelpState::Unavailable { .. } => "unavailable",
        }
    }

    /// The help is over (or never started) once in this state.
    pub fn is_final(&self) -> bool {
        !matches!(self, HelpState::Asking | HelpState::Accepted)
    }
}

/// A pointer button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PointerButton {
    Left,
    Middle,
    Right,
}

/// A key the helper's special-key row sends (text goes as [`InputEvent::Text`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecialKey {
    Escape,
    Tab,
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Up,
    Down,
    Home,
    End,
    PageUp,
    PageDown,
    Control,
    Alt,
    Shift,
}

/// One input event of remote help. Pointer positions are fractions of the station's whole
/// screen in 1/65535ths, so the tablet needs no knowledge of the station's resolution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputEvent {
    PointerMove {
        x: u16,
        y: u16,
    },
    Button {
        button: PointerButton,
        pressed: bool,
    },
    /// Wheel steps: positive scrolls down.
    Scroll {
        steps: i8,
    },
    Key {
        key: SpecialKey,
        pressed: bool,
    },
    /// Text typed as it is (each character pressed and released).
    Text {
        text: String,
    },
}

/// Checks the events of one [`Control::HelpInput`]: at most [`MAX_INPUT_EVENTS`], text at
/// most [`MAX_INPUT_TEXT_CHARS`] characters without control characters (keys such as Enter go
/// as [`InputEvent::Key`]), scroll steps within ±10.
pub fn validate_input(events: &[InputEvent]) -> Result<(), String> {
    if events.is_empty() {
        return Err("no input events".into());
    }
    if events.len() > MAX_INPUT_EVENTS {
        return Err(format!(
            "{} input events in one message (at most {MAX_INPUT_EVENTS})",
            events.len()
        ));
    }
    for e in events {
        match e {
            InputEvent::Text { text } => {
                if text.is_empty() || text.chars().count() > MAX_INPUT_TEXT_CHARS {
                    return Err(format!(
                        "typed text must hold 1..={MAX_INPUT_TEXT_CHARS} characters"
                    ));
                }
                if text.chars().any(char::is_control) {
                    return Err("typed text holds control characters (send keys instead)".into());
                }
            }
            InputEvent::Scroll { steps } if !(-10..=10).contains(steps) || *steps == 0 => {
                return Err(format!("scroll of {steps} steps (1..=10 either way)"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Longest display name a station reports (characters).
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Checks a display name from a station before anyone shows it: not blank, at most
/// [`MAX_DISPLAY_NAME_CHARS`] characters, no control characters.
pub fn validate_display_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("the display name is blank");
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err("the display name is longer than 64 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("the display name contains control characters");
    }
    Ok(())
}

/// Longest label of a demo source ("poste-07", "PC enseignant (HDMI)").
pub const MAX_DEMO_LABEL_CHARS: usize = 100;

/// How a station shows a demo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DemoMode {
    /// Covers the whole screen; the student's keyboard and mouse are blocked meanwhile.
    FullScreen,
    /// A window the student can move; the rest of the desktop stays usable.
    Windowed,
}

/// A rectangle of the source picture, in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    /// Bounds: at least 16×16, inside the largest picture any stream may have (7680×4320).
    pub fn validate(&self) -> Result<(), String> {
        if self.width < 16 || self.height < 16 {
            return Err(format!(
                "region {}x{} is smaller than 16x16",
                self.width, self.height
            ));
        }
        let right = u64::from(self.x) + u64::from(self.width);
        let bottom = u64::from(self.y) + u64::from(self.height);
        if right > 7680 || bottom > 4320 {
            return Err(format!(
                "region ends at ({right},{bottom}), outside 7680x4320"
            ));
        }
        Ok(())
    }
}

/// What the box asks a station's demo player to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoStart {
    /// Whose screen it is, shown to the student on the player ("Écran de poste-07").
    pub source: String,
    pub mode: DemoMode,
    /// Show only this part of the source picture (cropped by the station's player).
    pub region: Option<Region>,
}

impl DemoStart {
    /// Checks what a station applies before building a player.
    pub fn validate(&self) -> Result<(), String> {
        if self.source.trim().is_empty() {
            return Err("the demo source has no label".into());
        }
        if self.source.chars().count() > MAX_DEMO_LABEL_CHARS {
            return Err(format!(
                "the demo source label is longer than {MAX_DEMO_LABEL_CHARS} characters"
            ));
        }
        if let Some(r) = &self.region {
            r.validate()?;
        }
        Ok(())
    }
}

/// How a station's demo player is doing. Counters are since the player started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoHealth {
    /// The player is running (false in the report sent when it stops).
    pub playing: bool,
    /// Pictures decoded.
    pub frames_decoded: u64,
    /// Access units the player threw away (queue full, waiting for a keyframe).
    pub frames_dropped: u64,
    /// Decoded pictures per second over the last report interval, times 100.
    pub fps_x100: u32,
    /// Mean colour of a small patch at the centre of the last decoded picture: proof that
    /// the station really decodes what the source shows (tests compare it with the source).
    pub centre_rgb: Option<[u8; 3]>,
}

/// Longest URL a station opens.
pub const MAX_URL_LEN: usize = 2048;

/// Checks a URL a teacher wants opened on stations: http or https, bounded, no whitespace or
/// control characters (the station passes it as one argument, never through a shell).
pub fn validate_url(url: &str) -> Result<(), &'static str> {
    if url.len() > MAX_URL_LEN {
        return Err("is longer than 2048 bytes");
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    Ok(())
}

/// What a power order does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PowerAction {
    Shutdown,
    Restart,
    /// Close the user's session (log out).
    Logout,
    /// Open the station's session (needs display-manager autologin set up on the station).
    OpenSession,
}

impl PowerAction {
    /// The name both ends use for the order in `ActionResult`, the audit log and the API.
    pub fn name(self) -> &'static str {
        match self {
            PowerAction::Shutdown => "shutdown",
            PowerAction::Restart => "restart",
            PowerAction::Logout => "logout",
            PowerAction::OpenSession => "open-session",
        }
    }
}

/// Output kept per stream of a command run: enough to read, small enough for one control
/// frame with both streams.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024;

/// The station's on-screen state, as reported to the box.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    /// The lock overlay is up and input is captured.
    pub locked: bool,
    /// The "your screen is being watched" indicator is visible.
    pub watched_indicator: bool,
    /// The station can show that indicator (its overlay runs on a display it supports). A
    /// station that cannot sends no video, and the box never asks it for any: false, the
    /// default, until the station says otherwise.
    pub indicator_available: bool,
}

/// Longest lock or message text a station accepts; longer text is cut by the sender.
pub const MAX_TEXT_CHARS: usize = 500;

/// Cuts `text` to [`MAX_TEXT_CHARS`] characters, ending with an ellipsis when cut.
pub fn bounded_text(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT_CHARS {
        return text.to_string();
    }
    let mut s: String = text.chars().take(MAX_TEXT_CHARS - 1).collect();
    s.push('…');
    s
}

/// Per-frame media metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaHeader {
    pub stream: Stream,
    pub keyframe: bool,
    /// Per-stream counter; gaps tell the receiver that frames were dropped.
    pub seq: u64,
    /// Unix-epoch microseconds at which the station captured the screen.
    pub capture_us: u64,
}

const FLAG_KEYFRAME: u8 = 0x01;

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Control(Control),
    Media {
        header: MediaHeader,
        /// Annex B access unit.
        data: Bytes,
    },
}

impl Frame {
    /// Control frames go ahead of media in a writer's queues.
    pub fn is_control(&self) -> bool {
        matches!(self, Frame::Control(_))
    }
}

/// Appends the encoding of `frame` to `dst`.
///
/// Fails only when the frame would exceed the limits the receiving side enforces, so the
/// sender learns about it instead of the peer disconnecting it.
pub fn encode(frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
    match frame {
        Frame::Control(msg) => {
            let payload = postcard::to_allocvec(msg)
                .map_err(|e| WireError::BadControl(format!("cannot encode: {e}")))?;
            if payload.len() > MAX_CONTROL_LEN {
                return Err(WireError::TooLarge {
                    kind: "control",
                    len: payload.len(),
                    max: MAX_CONTROL_LEN,
                });
            }
            dst.reserve(FRAME_HEADER_LEN + payload.len());
            dst.put_u8(KIND_CONTROL);
            dst.put_u32(payload.len() as u32);
            dst.put_slice(&payload);
        }
        Frame::Media { header, data } => {
            if data.is_empty() {
                return Err(WireError::EmptyAccessUnit);
            }
            let len = MEDIA_HEADER_LEN + data.len();
            if len > MAX_MEDIA_LEN {
                return Err(WireError::TooLarge {
                    kind: "media",
                    len,
                    max: MAX_MEDIA_LEN,
                });
            }
            dst.reserve(FRAME_HEADER_LEN + len);
            dst.put_u8(KIND_MEDIA);
            dst.put_u32(len as u32);
            dst.put_u8(header.stream.to_byte());
            dst.put_u8(if header.keyframe { FLAG_KEYFRAME } else { 0 });
            dst.put_u64(header.seq);
            dst.put_u64(header.capture_us);
            dst.put_slice(data);
        }
    }
    Ok(())
}

/// Takes one whole frame off the front of `src`, if one is there.
///
/// Returns `Ok(None)` when more bytes are needed. The length field is checked against the
/// limit of its kind before waiting for the payload.
pub fn decode(src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
    if src.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let kind = src[0];
    let len = u32::from_be_bytes([src[1], src[2], src[3], src[4]]) as usize;
    let (max, kind_name) = match kind {
        KIND_CONTROL => (MAX_CONTROL_LEN, "control"),
        KIND_MEDIA => (MAX_MEDIA_LEN, "media"),
        other => return Err(WireError::UnknownKind(other)),
    };
    if len > max {
        return Err(WireError::TooLarge {
            kind: kind_name,
            len,
            max,
        });
    }
    if src.len() < FRAME_HEADER_LEN + len {
        // Reserve once for the whole frame; bounded by the check above.
        src.reserve(FRAME_HEADER_LEN + len - src.len());
        return Ok(None);
    }
    src.advance(FRAME_HEADER_LEN);
    let payload = src.split_to(len).freeze();
    match kind {
        KIND_CONTROL => decode_control(&payload).map(|c| Some(Frame::Control(c))),
        _ => decode_media(payload).map(Some),
    }
}

fn decode_control(payload: &[u8]) -> Result<Control, WireError> {
    let (msg, rest) = postcard::take_from_bytes::<Control>(payload)
        .map_err(|e| WireError::BadControl(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes(rest.len()));
    }
    Ok(msg)
}

fn decode_media(mut payload: Bytes) -> Result<Frame, WireError> {
    if payload.len() < MEDIA_HEADER_LEN {
        return Err(WireError::MediaTooShort(payload.len()));
    }
    let stream = Stream::from_byte(payload.get_u8())?;
    let flags = payload.get_u8();
    if flags & !FLAG_KEYFRAME != 0 {
        return Err(WireError::UnknownFlags(flags));
    }
    let seq = payload.get_u64();
    let capture_us = payload.get_u64();
    if payload.is_empty() {
        return Err(WireError::EmptyAccessUnit);
    }
    Ok(Frame::Media {
        header: MediaHeader {
            stream,
            keyframe: flags & FLAG_KEYFRAME != 0,
            seq,
            capture_us,
        },
        data: payload,
    })
}

/// `tokio_util` codec over [`encode`] and [`decode`].
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec;

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Frame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        match decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(WireError::Truncated(src.len())),
        }
    }
}

impl tokio_util::codec::Encoder<Frame> for FrameCodec {
    type Error = WireError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        encode(&frame, dst)
    }
}

/// Current time as Unix-epoch microseconds, the clock of every `capture_us` and heartbeat.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The TLS server name a station asks for on the link, and the one name the box's link
/// certificate always carries: the station pins the box's station CA, so the name only has to
/// match what that CA issues, whatever address DHCP gave the box.
pub const LINK_SERVER_NAME: &str = "lanterne-box";

/// The TLS server name (SNI) a station asks for when it enrols over the box's HTTPS port. For
/// this name alone the box presents its station-link certificate, which the station checks
/// against the station CA pinned by its enrolment token, instead of the certificate tablets
/// see. Under `.invalid` (RFC 6761), so no tablet can ever reach the box by this name.
pub const ENROL_SERVER_NAME: &str = "lanterne-enrol.invalid";

/// Longest PEM text (a certificate or a certificate request) either side accepts.
pub const MAX_PEM_LEN: usize = 16 * 1024;

/// Checks PEM text received in [`Control::CertificateRequest`] or
/// [`Control::CertificateIssued`] before it goes to a parser: at most [`MAX_PEM_LEN`] bytes,
/// printable ASCII and line breaks only, and exactly one `label` block
/// (`"CERTIFICATE REQUEST"` or `"CERTIFICATE"`).
pub fn check_pem(pem: &str, label: &str) -> Result<(), String> {
    if pem.len() > MAX_PEM_LEN {
        return Err(format!(
            "PEM text of {} bytes exceeds {MAX_PEM_LEN}",
            pem.len()
        ));
    }
    if !pem
        .bytes()
        .all(|b| b == b'\n' || b == b'\r' || (b' '..=b'~').contains(&b))
    {
        return Err("PEM text holds characters other than printable ASCII".into());
    }
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    if pem.matches("-----BEGIN ").count() != 1
        || !pem.trim_start().starts_with(&begin)
        || !pem.trim_end().ends_with(&end)
    {
        return Err(format!("not one PEM {label}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::Control(Control::SessionUser {
                display_name: Some("Élise Martin".into()),
            }),
            Frame::Control(Control::SessionUser { display_name: None }),
            Frame::Control(Control::HandRaised { raised: true }),
            Frame::Control(Control::HandRaised { raised: false }),
            Frame::Control(Control::HandCleared),
            Frame::Control(Control::Hello {
                protocol: PROTOCOL_VERSION,
                agent_version: "0.1.0".into(),
                hostname: "poste-07".into(),
                capabilities: Capabilities {
                    capture: "x11".into(),
                    encoder: "x264".into(),
                    screen: Some((1920, 1080)),
                },
            }),
            Frame::Control(Control::SetStream {
                stream: Stream::Thumb,
                settings: Some(StreamSettings {
                    width: 480,
                    height: 270,
                    fps: 5,
                    bitrate_kbps: 300,
                }),
            }),
            Frame::Control(Control::SetStream {
                stream: Stream::Full,
                settings: None,
            }),
            Frame::Control(Control::Lock {
                message: "Écrans verrouillés — regardez le tableau".into(),
            }),
            Frame::Control(Control::Unlock),
            Frame::Control(Control::ShowMessage {
                id: 7,
                from: "Mme Lefèvre".into(),
                text: "Enregistrez votre travail.".into(),
            }),
            Frame::Control(Control::MessageRead { id: 7 }),
            Frame::Control(Control::Schedule {
                config_json: "{\"access\":[]}".into(),
            }),
            Frame::Control(Control::Power {
                action: PowerAction::Restart,
                countdown_s: 30,
            }),
            Frame::Control(Control::OpenUrl {
                url: "https://fr.wikipedia.org/".into(),
            }),
            Frame::Control(Control::ActionResult {
                action: "open-url".into(),
                ok: true,
                detail: String::new(),
            }),
            Frame::Control(Control::RunCommand {
                id: 3,
                program: "/usr/bin/df".into(),
                args: vec!["-h".into()],
                timeout_s: 30,
            }),
            Frame::Control(Control::CommandResult {
                id: 3,
                exit_code: Some(0),
                stdout: "Sys. de fichiers".into(),
                stderr: String::new(),
                error: None,
            }),
            Frame::Control(Control::Shown(Shown {
                locked: true,
                watched_indicator: false,
                indicator_available: true,
            })),
            Frame::Control(Control::DemoStart(DemoStart {
                source: "poste-07".into(),
                mode: DemoMode::FullScreen,
                region: Some(Region {
                    x: 0,
                    y: 0,
                    width: 960,
                    height: 540,
                }),
            })),
            Frame::Control(Control::DemoStop {
                reason: "source-gone".into(),
            }),
            Frame::Control(Control::DemoHealth(DemoHealth {
                playing: true,
                frames_decoded: 300,
                frames_dropped: 2,
                fps_x100: 2997,
                centre_rgb: Some([200, 40, 40]),
            })),
            Frame::Control(Control::RenewCertificate),
            Frame::Control(Control::CertificateRequest {
                csr_pem:
                    "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
                        .into(),
            }),
            Frame::Control(Control::CertificateIssued {
                cert_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
            }),
            Frame::Control(Control::HelpAsk(HelpAsk {
                id: 9,
                from: "Mme Martin (enseignante)".into(),
                timeout_s: 30,
            })),
            Frame::Control(Control::HelpState {
                id: 9,
                state: HelpState::Unavailable {
                    reason: "pas d'écran".into(),
                },
            }),
            Frame::Control(Control::HelpInput {
                id: 9,
                events: vec![
                    InputEvent::PointerMove { x: 0, y: 65535 },
                    InputEvent::Button {
                        button: PointerButton::Right,
                        pressed: true,
                    },
                    InputEvent::Scroll { steps: -3 },
                    InputEvent::Key {
                        key: SpecialKey::Control,
                        pressed: true,
                    },
                    InputEvent::Text {
                        text: "élève".into(),
                    },
                ],
            }),
            Frame::Control(Control::HelpStop { id: 9 }),
            Frame::Control(Control::ShownToClass { on: true }),
            Frame::Media {
                header: MediaHeader {
                    stream: Stream::Demo,
                    keyframe: false,
                    seq: 43,
                    capture_us: 1_700_000_000_156_789,
                },
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41, 0x9a]),
            },
            Frame::Media {
                header: MediaHeader {
                    stream: Stream::Full,
                    keyframe: true,
                    seq: 42,
                    capture_us: 1_700_000_000_123_456,
                },
                data: Bytes::from_static(&[0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88]),
            },
        ]
    }

    #[test]
    fn round_trip_of_every_sample_in_one_buffer() {
        let frames = sample_frames();
        let mut buf = BytesMut::new();
        for f in &frames {
            encode(f, &mut buf).unwrap();
        }
        let mut out = Vec::new();
        while let Some(f) = decode(&mut buf).unwrap() {
            out.push(f);
        }
        assert_eq!(out, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_by_byte_arrival_yields_the_same_frames() {
        let frames = sample_frames();
        let mut wire = BytesMut::new();
        for f in &frames {
            encode(f, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            if let Some(f) = decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert_eq!(out, frames);
    }

    #[test]
    fn oversized_media_length_is_rejected_before_buffering() {
        let mut buf = BytesMut::new();
        buf.put_u8(KIND_MEDIA);
        buf.put_u32((MAX_MEDIA_LEN + 1) as u32);
        assert_eq!(
            decode(&mut buf),
            Err(WireError::TooLarge {
                kind: "media",
                len: MAX_MEDIA_LEN + 1,
                max: MAX_MEDIA_LEN
            })
        );
        // Nothing was reserved for the announced payload.
        assert!(buf.capacity() < 1024 * 1024);
    }

    #[test]
    fn oversized_control_length_is_rejected() {
        let mut buf = BytesMut::new();
        buf.put_u8(KIND_CONTROL);
        buf.put_u32(u32::MAX);
        assert!(matches!(
            decode(&mut buf),
            Err(WireError::TooLarge {
                kind: "control",
                ..
            })
        ));
    }

    #[test]
    fn unknown_kind_and_bad_media_fields_are_rejected() {
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0][..]);
        assert_eq!(decode(&mut buf), Err(WireError::UnknownKind(9)));

        let media = |stream: u8, flags: u8, au: &[u8]| {
            let mut b = BytesMut::new();
            b.put_u8(KIND_MEDIA);
            b.put_u32((MEDIA_HEADER_LEN + au.len()) as u32);
            b.put_u8(stream);
            b.put_u8(flags);
            b.put_u64(1);
            b.put_u64(2);
            b.put_slice(au);
            decode(&mut b)
        };
        assert_eq!(media(7, 0, &[1]), Err(WireError::UnknownStream(7)));
        assert_eq!(media(3, 0, &[1]), Err(WireError::UnknownStream(3)));
        assert_eq!(media(0, 0x80, &[1]), Err(WireError::UnknownFlags(0x80)));
        assert_eq!(media(0, 0, &[]), Err(WireError::EmptyAccessUnit));

        let mut short = BytesMut::new();
        short.put_u8(KIND_MEDIA);
        short.put_u32(3);
        short.put_slice(&[0, 0, 0]);
        assert_eq!(decode(&mut short), Err(WireError::MediaTooShort(3)));
    }

    #[test]
    fn control_with_trailing_garbage_is_rejected() {
        let mut payload = postcard::to_allocvec(&Control::Heartbeat { sent_us: 5 }).unwrap();
        payload.push(0xAA);
        let mut buf = BytesMut::new();
        buf.put_u8(KIND_CONTROL);
        buf.put_u32(payload.len() as u32);
        buf.put_slice(&payload);
        assert_eq!(decode(&mut buf), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn truncated_stream_at_eof_is_an_error() {
        use tokio_util::codec::Decoder;
        let mut wire = BytesMut::new();
        encode(&sample_frames()[0], &mut wire).unwrap();
        wire.truncate(wire.len() - 2);
        assert!(matches!(
            FrameCodec.decode_eof(&mut wire),
            Err(WireError::Truncated(_))
        ));
    }

    #[test]
    fn encoder_refuses_what_the_decoder_would_refuse() {
        let mut buf = BytesMut::new();
        let huge = Frame::Media {
            header: MediaHeader {
                stream: Stream::Thumb,
                keyframe: false,
                seq: 0,
                capture_us: 0,
            },
            data: Bytes::from(vec![0u8; MAX_MEDIA_LEN]),
        };
        assert!(matches!(
            encode(&huge, &mut buf),
            Err(WireError::TooLarge { .. })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn urls_are_http_or_https_without_spaces() {
        assert!(validate_url("https://fr.wikipedia.org/wiki/Lanterne").is_ok());
        assert!(validate_url("http://intranet.lycee.local:8080/cours?id=3").is_ok());
        assert!(validate_url("file:///etc/shadow").is_err());
        assert!(validate_url("javascript:alert(1)").is_err());
        assert!(validate_url("https://").is_err());
        assert!(validate_url("https://a b").is_err());
        assert!(validate_url("https://a\nb").is_err());
        assert!(validate_url(&format!("https://{}", "a".repeat(3000))).is_err());
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(bounded_text("court"), "court");
        let long = "é".repeat(MAX_TEXT_CHARS + 10);
        let cut = bounded_text(&long);
        assert_eq!(cut.chars().count(), MAX_TEXT_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn stream_settings_bounds() {
        let ok = StreamSettings {
            width: 480,
            height: 270,
            fps: 5,
            bitrate_kbps: 300,
        };
        assert!(ok.validate().is_ok());
        assert!(StreamSettings { width: 0, ..ok }.validate().is_err());
        assert!(StreamSettings { height: 271, ..ok }.validate().is_err());
        assert!(StreamSettings { fps: 0, ..ok }.validate().is_err());
        assert!(StreamSettings {
            bitrate_kbps: 1_000_000,
            ..ok
        }
        .validate()
        .is_err());
    }

    #[test]
    fn demo_orders_are_bounded() {
        let ok = DemoStart {
            source: "poste-07".into(),
            mode: DemoMode::Windowed,
            region: None,
        };
        assert!(ok.validate().is_ok());
        let label = |s: &str| DemoStart {
            source: s.into(),
            ..ok.clone()
        };
        assert!(label("  ").validate().is_err());
        assert!(label(&"é".repeat(MAX_DEMO_LABEL_CHARS)).validate().is_ok());
        assert!(label(&"é".repeat(MAX_DEMO_LABEL_CHARS + 1))
            .validate()
            .is_err());
        let region = |x, y, width, height| DemoStart {
            region: Some(Region {
                x,
                y,
                width,
                height,
            }),
            ..ok.clone()
        };
        assert!(region(0, 0, 1920, 1080).validate().is_ok());
        assert!(region(5760, 3240, 1920, 1080).validate().is_ok());
        assert!(region(0, 0, 15, 100).validate().is_err());
        assert!(region(7000, 0, 1000, 100).validate().is_err());
        // No overflow on the far edge.
        assert!(region(u32::MAX, u32::MAX, u32::MAX, u32::MAX)
            .validate()
            .is_err());
    }

    #[test]
    fn pem_text_is_bounded_and_holds_one_block_of_the_right_kind() {
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
        assert!(check_pem(csr, "CERTIFICATE REQUEST").is_ok());
        assert!(check_pem(csr, "CERTIFICATE").is_err());
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert!(check_pem(cert, "CERTIFICATE").is_ok());
        assert!(check_pem(&cert.repeat(2), "CERTIFICATE").is_err());
        assert!(check_pem(&cert.replace("MIIB", "MIIB\u{0}"), "CERTIFICATE").is_err());
        assert!(check_pem(&cert.replace("MIIB", "é"), "CERTIFICATE").is_err());
        let big = cert.replace("MIIB", &"A".repeat(MAX_PEM_LEN));
        assert!(check_pem(&big, "CERTIFICATE").is_err());
        assert!(check_pem("", "CERTIFICATE").is_err());
    }

    /// The fuzz target's property, run on stable with a fixed seed: random bytes and random
    /// mutations of valid frames never panic, and whatever decodes re-encodes to a frame that
    /// decodes to the same value.
    #[test]
    fn random_and_mutated_input_never_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x4c41_4e54);
        let mut valid = BytesMut::new();
        for f in sample_frames() {
            encode(&f, &mut valid).unwrap();
        }
        for i in 0..5000 {
            let mut input: Vec<u8> = if i % 2 == 0 {
                let n = rng.random_range(0..256);
                (0..n).map(|_| rng.random()).collect()
            } else {
                let mut v = valid.to_vec();
                for _ in 0..rng.random_range(1..8) {
                    let at = rng.random_range(0..v.len());
                    v[at] = rng.random();
                }
                v.truncate(rng.random_range(0..=v.len()));
                v
            };
            if i % 3 == 0 && !input.is_empty() {
                input[0] = [KIND_CONTROL, KIND_MEDIA][rng.random_range(0..2)];
            }
            check_decode_property(&input);
        }
    }

    fn check_decode_property(input: &[u8]) {
        let mut buf = BytesMut::from(input);
        while let Ok(Some(frame)) = decode(&mut buf) {
            match &frame {
                Frame::Control(Control::DemoStart(order)) => {
                    let _ = order.validate();
                }
                Frame::Control(Control::CertificateRequest { csr_pem }) => {
                    let _ = check_pem(csr_pem, "CERTIFICATE REQUEST");
                }
                Frame::Control(Control::CertificateIssued { cert_pem }) => {
                    let _ = check_pem(cert_pem, "CERTIFICATE");
                }
                Frame::Control(Control::HelpAsk(ask)) => {
                    let _ = ask.validate();
                }
                Frame::Control(Control::HelpInput { events, .. }) => {
                    let _ = validate_input(events);
                }
                _ => {}
            }
            let mut again = BytesMut::new();
            encode(&frame, &mut again).expect("a decoded frame re-encodes");
            assert_eq!(decode(&mut again).unwrap(), Some(frame));
        }
    }

    #[test]
    fn help_requests_are_bounded_before_a_prompt_shows() {
        let ok = HelpAsk {
            id: 1,
            from: "M. Durand (technicien)".into(),
            timeout_s: 30,
        };
        assert_eq!(ok.validate(), Ok(()));
        for (bad, why) in [
            (
                HelpAsk {
                    from: "  ".into(),
                    ..ok.clone()
                },
                "does not say who asks",
            ),
            (
                HelpAsk {
                    from: "x".repeat(MAX_HELPER_NAME_CHARS + 1),
                    ..ok.clone()
                },
                "longer than",
            ),
            (
                HelpAsk {
                    from: "a\u{1b}[2J".into(),
                    ..ok.clone()
                },
                "control characters",
            ),
            (
                HelpAsk {
                    timeout_s: 0,
                    ..ok.clone()
                },
                "not 0 s",
            ),
            (
                HelpAsk {
                    timeout_s: 3600,
                    ..ok.clone()
                },
                "not 3600 s",
            ),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn help_input_is_bounded_in_count_text_and_steps() {
        let text = |t: &str| InputEvent::Text { text: t.into() };
        assert_eq!(validate_input(&[text("bonjour à tous")]), Ok(()));
        assert!(validate_input(&[]).is_err());
        assert!(validate_input(&vec![InputEvent::Scroll { steps: 1 }; MAX_INPUT_EVENTS]).is_ok());
        assert!(
            validate_input(&vec![InputEvent::Scroll { steps: 1 }; MAX_INPUT_EVENTS + 1])
                .unwrap_err()
                .contains("at most")
        );
        assert!(validate_input(&[text("")]).is_err());
        assert!(validate_input(&[text(&"é".repeat(MAX_INPUT_TEXT_CHARS))]).is_ok());
        assert!(validate_input(&[text(&"é".repeat(MAX_INPUT_TEXT_CHARS + 1))]).is_err());
        assert!(validate_input(&[text("rm -rf /\n")])
            .unwrap_err()
            .contains("control characters"));
        assert!(validate_input(&[InputEvent::Scroll { steps: 0 }]).is_err());
        assert!(validate_input(&[InputEvent::Scroll { steps: 11 }]).is_err());
        assert!(validate_input(&[InputEvent::Scroll { steps: -10 }]).is_ok());
        // The largest message the box may send fits one control frame.
        let frame = Frame::Control(Control::HelpInput {
            id: u64::MAX,
            events: vec![text(&"\u{10ffff}".repeat(MAX_INPUT_TEXT_CHARS)); MAX_INPUT_EVENTS],
        });
        let mut buf = BytesMut::new();
        encode(&frame, &mut buf).expect("the largest input message fits a control frame");
    }

    #[test]
    fn only_asking_and_accepted_help_is_still_running() {
        assert!(!HelpState::Asking.is_final());
        assert!(!HelpState::Accepted.is_final());
        for s in [
            HelpState::Refused,
            HelpState::TimedOut,
            HelpState::EndedByStudent,
            HelpState::Ended,
            HelpState::Unavailable { reason: "x".into() },
        ] {
            assert!(s.is_final(), "{s:?}");
        }
    }

    #[test]
    fn display_names_are_bounded_and_printable() {
        assert_eq!(validate_display_name("Élise Martin"), Ok(()));
        assert_eq!(validate_display_name(&"é".repeat(64)), Ok(()));
        assert!(validate_display_name(&"é".repeat(65)).is_err());
        assert!(validate_display_name("  ").is_err());
        assert!(validate_display_name("Élise\u{1b}[2J").is_err());
        assert!(validate_display_name("a\nb").is_err());
    }
}
