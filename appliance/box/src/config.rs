//! The room configuration: one TOML file per box.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and every
//! semantic check names the field it is about, e.g. `'mosaic.fps' must be between 1 and 30`.
//! `images/config/lanterne.toml` is the commented sample; a test proves it parses and
//! validates.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: '{field}' {problem}")]
    Invalid {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("{path}: {source}")]
    Schedule {
        path: PathBuf,
        source: lanterne_privacy::schedule::ScheduleError,
    },
}

/// Largest config file accepted; a real one is a few KiB.
const MAX_CONFIG_BYTES: u64 = 256 * 1024;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub room: Room,
    #[serde(default)]
    pub network: Network,
    #[serde(default = "Video::mosaic_default")]
    pub mosaic: Video,
    #[serde(default = "Video::thumbnail_default")]
    pub thumbnails: Video,
    #[serde(default = "Video::focus_default")]
    pub focus: Video,
    #[serde(default)]
    pub panel: Panel,
    #[serde(default)]
    pub lock: Lock,
    /// Commands a teacher may run on stations; nothing else can be run.
    #[serde(default)]
    pub commands: Vec<ApprovedCommand>,
    #[serde(default)]
    pub privacy: Privacy,
    #[serde(default)]
    pub accounts: Accounts,
    /// When screens may be watched (P3). Without it nothing is ever watched (fail closed):
    /// the box says so in its log and on the tablet.
    pub schedule: Option<lanterne_privacy::schedule::ScheduleConfig>,
    /// The box's HDMI input, for showing the teacher's PC to the class.
    #[serde(default)]
    pub hdmi: Hdmi,
    #[serde(default)]
    pub stations: Stations,
    /// Connection caps and timeouts (see `listener.rs` for the admission rule).
    #[serde(default)]
    pub limits: Limits,
    /// Who may ask a student for remote help (always with the student's consent).
    #[serde(default)]
    pub remote_help: RemoteHelp,
    /// Prometheus metrics (counts only, nothing about a person): off unless enabled.
    #[serde(default)]
    pub metrics: Metrics,
}

/// `[metrics]`: when enabled, `GET /metrics` answers programs on the box itself (loopback)
/// without a sign-in, and `GET /api/metrics` answers admins' sessions from anywhere.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    #[serde(default)]
    pub enabled: bool,
}

/// Remote help: the school decides which roles may ask for it. The student's explicit
/// agreement on the station is needed every time, whatever is set here.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteHelp {
    /// "admin", "teacher", "technician"; empty turns remote help off (and the poster and the
    /// GDPR record no longer mention it).
    #[serde(default = "RemoteHelp::default_roles")]
    pub roles: Vec<lanterne_privacy::policy::Role>,
}

impl RemoteHelp {
    fn default_roles() -> Vec<lanterne_privacy::policy::Role> {
        use lanterne_privacy::policy::Role;
        vec![Role::Admin, Role::Teacher, Role::Technician]
    }
}

impl Default for RemoteHelp {
    fn default() -> Self {
        RemoteHelp {
            roles: RemoteHelp::default_roles(),
        }
    }
}

/// Station agents' certificates.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Stations {
    /// Days a station certificate is valid; the box renews it over the station link once
    /// half of that has passed.
    #[serde(default = "Stations::default_certificate_days")]
    pub certificate_days: u32,
}

impl Stations {
    fn default_certificate_days() -> u32 {
        crate::pki::DEFAULT_STATION_CERT_DAYS
    }
}

impl Default for Stations {
    fn default() -> Self {
        Stations {
            certificate_days: Self::default_certificate_days(),
        }
    }
}

/// Connection caps and timeouts that keep the box answering on a hostile network.
///
/// A cap left out is derived from the open-file limit (see `listener::Plan::new`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// HTTPS connections held at once.
    pub https_connections: Option<u32>,
    /// HTTPS connections from one address not yet trusted (an open WebSocket is trusted).
    #[serde(default = "Limits::default_https_per_address")]
    pub https_pending_per_address: u32,
    /// Station link connections held at once.
    pub station_link_connections: Option<u32>,
    /// Station link connections from one address not yet past their certificate check.
    #[serde(default = "Limits::default_link_per_address")]
    pub station_link_pending_per_address: u32,
    /// Plain-HTTP redirect connections held at once.
    pub http_redirect_connections: Option<u32>,
    #[serde(default = "Limits::default_redirect_per_address")]
    pub http_redirect_pending_per_address: u32,
    /// Seconds for a TLS handshake (HTTPS and the station link, with the station's hello).
    #[serde(default = "Limits::default_timeout")]
    pub tls_handshake_timeout_s: u32,
    /// Seconds from the moment a connection waits for a request (new, or kept alive after
    /// the previous response) to the end of the request's headers: also the keep-alive
    /// idle limit.
    #[serde(default = "Limits::default_timeout")]
    pub request_header_timeout_s: u32,
    /// Seconds from the end of the headers to the end of the body.
    #[serde(default = "Limits::default_timeout")]
    pub request_body_timeout_s: u32,
    /// Seconds a response may wait for a client that does not read it.
    #[serde(default = "Limits::default_write_stall")]
    pub write_stall_timeout_s: u32,
}

impl Limits {
    /// A tablet's browser opens about six connections to a host; pages, assets and API
    /// calls of one teacher stay well under this.
    fn default_https_per_address() -> u32 {
        32
    }
    /// A station holds one link; a few more cover reconnections, and stations behind one
    /// NAT address once they are trusted do not count.
    fn default_link_per_address() -> u32 {
        8
    }
    fn default_redirect_per_address() -> u32 {
        8
    }
    fn default_timeout() -> u32 {
        10
    }
    fn default_write_stall() -> u32 {
        30
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let caps = [
            (
                "https",
                self.https_connections,
                self.https_pending_per_address,
            ),
            (
                "station_link",
                self.station_link_connections,
                self.station_link_pending_per_address,
            ),
            (
                "http_redirect",
                self.http_redirect_connections,
                self.http_redirect_pending_per_address,
            ),
        ];
        for (listener, connections, per_address) in caps {
            if let Some(n) = connections {
                if !(1..=100_000).contains(&n) {
                    return Err((
                        format!("limits.{listener}_connections"),
                        "must be between 1 and 100000".into(),
                    ));
                }
            }
            if per_address == 0 || per_address > connections.unwrap_or(100_000) {
                return Err((
                    format!("limits.{listener}_pending_per_address"),
                    format!("must be between 1 and 'limits.{listener}_connections'"),
                ));
            }
        }
        for (field, value) in [
            ("tls_handshake_timeout_s", self.tls_handshake_timeout_s),
            ("request_header_timeout_s", self.request_header_timeout_s),
            ("request_body_timeout_s", self.request_body_timeout_s),
            ("write_stall_timeout_s", self.write_stall_timeout_s),
        ] {
            if !(1..=300).contains(&value) {
                return Err((
                    format!("limits.{field}"),
                    "must be between 1 and 300 seconds".into(),
                ));
            }
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            https_connections: None,
            https_pending_per_address: Self::default_https_per_address(),
            station_link_connections: None,
            station_link_pending_per_address: Self::default_link_per_address(),
            http_redirect_connections: None,
            http_redirect_pending_per_address: Self::default_redirect_per_address(),
            tls_handshake_timeout_s: Self::default_timeout(),
            request_header_timeout_s: Self::default_timeout(),
            request_body_timeout_s: Self::default_timeout(),
            write_stall_timeout_s: Self::default_write_stall(),
        }
    }
}

/// The HDMI input (a TC358743 bridge or a USB capture dongle, see docs/hardware.md).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hdmi {
    #[serde(default)]
    pub input: HdmiInput,
    /// The V4L2 node to use (default: the best one found).
    pub device: Option<std::path::PathBuf>,
    #[serde(default = "Hdmi::default_bitrate")]
    pub bitrate_kbps: u32,
}

impl Hdmi {
    fn default_bitrate() -> u32 {
        4000
    }
}

impl Default for Hdmi {
    fn default() -> Self {
        Hdmi {
            input: HdmiInput::None,
            device: None,
            bitrate_kbps: Hdmi::default_bitrate(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HdmiInput {
    /// No HDMI input: the teacher shows a station's screen instead.
    #[default]
    None,
    /// A generated colour-bar picture instead of a device (development, demos, tests).
    TestPattern,
    /// A V4L2 capture device (needs a box built with the `v4l2-capture` feature).
    Device,
}

/// Login rules (P6).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    /// Admins must set up two-factor login before doing anything else.
    #[serde(default = "Accounts::yes")]
    pub require_totp_for_admins: bool,
    /// The same for teachers (optional by policy).
    #[serde(default)]
    pub require_totp_for_teachers: bool,
    /// A session unused this long ends (a live view counts as use); its owner signs in
    /// again. The absolute limit is a school day.
    #[serde(default = "Accounts::idle_default")]
    pub idle_timeout_minutes: u32,
}

impl Accounts {
    fn yes() -> bool {
        true
    }
    fn idle_default() -> u32 {
        30
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            require_totp_for_admins: true,
            require_totp_for_teachers: false,
            idle_timeout_minutes: Accounts::idle_default(),
        }
    }
}

/// Personal-data settings (P4): who answers for the processing, and how long each kind of
/// data is kept. Every period is purged by one hourly task (`retention.rs`) and stated in
/// the GDPR record.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    /// How to reach the data controller (the school's head): postal address, phone or
    /// e-mail, as it should appear in the GDPR record.
    pub controller_contact: Option<String>,
    /// The data protection officer (for a French state school, the académie's DPD): name
    /// and how to reach them.
    pub dpo: Option<String>,
    /// Days an audit entry is kept.
    #[serde(default = "Privacy::default_audit_retention")]
    pub audit_retention_days: u32,
    /// Days a teacher's message is kept, with each station's delivery and read receipt.
    #[serde(default = "Privacy::default_message_retention")]
    pub message_retention_days: u32,
    /// Days a command run is kept, with each station's exit code and output.
    #[serde(default = "Privacy::default_command_retention")]
    pub command_retention_days: u32,
    /// Days the box remembers each station's answer to a power or open-URL order (in
    /// memory; a restart forgets them sooner). The order itself is in the audit log.
    #[serde(default = "Privacy::default_order_retention")]
    pub order_retention_days: u32,
    /// Whether teachers may take screenshots of stations (off unless the school decides
    /// otherwise and records it in its GDPR register).
    #[serde(default)]
    pub screenshots: bool,
    /// Days a screenshot is kept on the box before it is deleted.
    #[serde(default = "Privacy::default_screenshot_retention")]
    pub screenshot_retention_days: u32,
}

impl Privacy {
    fn default_audit_retention() -> u32 {
        365
    }

    /// A week: enough to see who read last lesson's message.
    fn default_message_retention() -> u32 {
        7
    }

    /// A month: enough for a technician to compare a command's output over a few weeks.
    fn default_command_retention() -> u32 {
        30
    }

    /// A day: the tablet shows whether the last orders were carried out.
    fn default_order_retention() -> u32 {
        1
    }

    fn default_screenshot_retention() -> u32 {
        7
    }

    /// Every retention period with its field name and the range it must be in.
    fn periods(&self) -> [(&'static str, u32, u32); 5] {
        [
            ("audit_retention_days", self.audit_retention_days, 3650),
            ("message_retention_days", self.message_retention_days, 365),
            ("command_retention_days", self.command_retention_days, 365),
            ("order_retention_days", self.order_retention_days, 30),
            (
                "screenshot_retention_days",
                self.screenshot_retention_days,
                365,
            ),
        ]
    }
}

impl Default for Privacy {
    fn default() -> Self {
        Privacy {
            controller_contact: None,
            dpo: None,
            audit_retention_days: Self::default_audit_retention(),
            message_retention_days: Self::default_message_retention(),
            command_retention_days: Self::default_command_retention(),
            order_retention_days: Self::default_order_retention(),
            screenshots: false,
            screenshot_retention_days: Self::default_screenshot_retention(),
        }
    }
}

/// Whether `program` may be an approved command's program: an absolute path on the
/// stations, so it runs without a shell or a PATH lookup. Either a Unix path (`/usr/bin/df`)
/// or a Windows drive path (`C:\Windows\System32\ipconfig.exe`). Windows network (`\\server\…`)
/// and device (`\\?\…`) paths are refused: a program on a share is not the PC's own, and
/// whoever controls the share would choose what runs. At most 256 bytes, no control
/// character. Each station still runs only what its own allow-list names.
pub fn program_path_ok(program: &str) -> Result<(), &'static str> {
    const WHY: &str = "must be an absolute path on the stations (no shell, no PATH lookup): \
                       /usr/bin/… for Linux, C:\\…\\program.exe for Windows";
    if program.is_empty() || program.len() > 256 {
        return Err("must be an absolute path of at most 256 bytes");
    }
    if program.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if program.starts_with("\\\\") || program.starts_with("//") {
        return Err(
            "must be a program on the station itself, not on a network share or device path",
        );
    }
    let b = program.as_bytes();
    if b[0] == b'/' {
        return Ok(());
    }
    let drive = b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\';
    if drive && !program.contains('/') {
        return Ok(());
    }
    Err(WHY)
}

/// One admin-approved command.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApprovedCommand {
    /// What the teacher picks (lower-case letters, digits and dashes).
    pub name: String,
    /// Absolute path of the program on the stations, run without a shell: a Unix path
    /// (`/usr/bin/df`) for Linux PCs, a drive path (`C:\Windows\System32\ipconfig.exe`) for
    /// Windows PCs (see [`program_path_ok`]).
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Arguments the teacher may add, each one taken from this list.
    #[serde(default)]
    pub allowed_args: Vec<String>,
    #[serde(default = "ApprovedCommand::default_timeout")]
    pub timeout_s: u32,
}

impl ApprovedCommand {
    fn default_timeout() -> u32 {
        60
    }
}

/// The box's front panel: lock button and status LEDs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    #[serde(default)]
    pub backend: PanelBackend,
    /// Serial device of the RP2040 panel (see images/udev for the stable name).
    #[serde(default = "Panel::default_device")]
    pub device: PathBuf,
}

impl Panel {
    fn default_device() -> PathBuf {
        PathBuf::from("/dev/lanterne-panel")
    }
}

impl Default for Panel {
    fn default() -> Self {
        Panel {
            backend: PanelBackend::default(),
            device: Self::default_device(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PanelBackend {
    /// The RP2040 front panel over USB serial (production).
    #[default]
    Serial,
    /// Button and LEDs wired to the Pi's GPIO (needs a box built with `rpi-gpio`).
    Gpio,
    /// An in-memory panel for development; pressed through `POST /api/dev/panel/press`.
    Simulated,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Shown on every locked screen.
    #[serde(default = "Lock::default_message")]
    pub message: String,
}

impl Lock {
    fn default_message() -> String {
        "Écrans verrouillés — regardez le tableau".to_string()
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock {
            message: Self::default_message(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Room {
    /// Shown on the tablet and the poster.
    pub name: String,
    /// The school (the data controller), named on the poster and the GDPR record.
    #[serde(default)]
    pub school: String,
    #[serde(default)]
    pub kind: RoomKind,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    #[default]
    Classroom,
    /// A library / CDI, whose poster wording differs (DESIGN P2).
    Library,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// HTTPS for tablets and enrolment.
    #[serde(default = "Network::default_https")]
    pub https: SocketAddr,
    /// Mutually authenticated TLS for station agents.
    #[serde(default = "Network::default_station_link")]
    pub station_link: SocketAddr,
    /// Extra names or addresses put in the box's server certificate (besides `lanterne-box`,
    /// `localhost`, the loopback addresses and the host name).
    #[serde(default)]
    pub server_names: Vec<String>,
    /// A certificate the school provides for HTTPS instead of the box CA's (PEM chain).
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Where Wake-on-LAN magic packets go: the stations' subnet broadcast address, port 9.
    #[serde(default = "Network::default_wol")]
    pub wol_broadcast: SocketAddr,
    /// A plain-HTTP listener (e.g. "0.0.0.0:80") that only redirects to HTTPS, so a tablet
    /// typing the box's name lands on the secure page. Nothing is served over plain HTTP.
    pub http_redirect: Option<SocketAddr>,
}

impl Network {
    fn default_https() -> SocketAddr {
        "0.0.0.0:443".parse().expect("static address")
    }
    fn default_station_link() -> SocketAddr {
        "0.0.0.0:7443".parse().expect("static address")
    }
    fn default_wol() -> SocketAddr {
        "255.255.255.255:9".parse().expect("static address")
    }
}

impl Default for Network {
    fn default() -> Self {
        Network {
            https: Self::default_https(),
            station_link: Self::default_station_link(),
            server_names: Vec::new(),
            tls_cert: None,
            tls_key: None,
            wol_broadcast: Self::default_wol(),
            http_redirect: None,
        }
    }
}

/// Size, rate and bitrate of one video stream.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Video {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

impl Video {
    fn mosaic_default() -> Self {
        Video {
            width: 1280,
            height: 720,
            fps: 10,
            bitrate_kbps: 2000,
        }
    }
    fn thumbnail_default() -> Self {
        Video {
            width: 480,
            height: 270,
            fps: 5,
            bitrate_kbps: 250,
        }
    }
    fn focus_default() -> Self {
        Video {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 3000,
        }
    }

    fn validate(&self, section: &str, max_fps: u32) -> Result<(), (String, String)> {
        let field = |name: &str| format!("{section}.{name}");
        if !(64..=3840).contains(&self.width) || self.width % 2 != 0 {
            return Err((
                field("width"),
                "must be an even number from 64 to 3840".into(),
            ));
        }
        if !(64..=2160).contains(&self.height) || self.height % 2 != 0 {
            return Err((
                field("height"),
                "must be an even number from 64 to 2160".into(),
            ));
        }
        if !(1..=max_fps).contains(&self.fps) {
            return Err((field("fps"), format!("must be between 1 and {max_fps}")));
        }
        if !(50..=20_000).contains(&self.bitrate_kbps) {
            return Err((field("bitrate_kbps"), "must be between 50 and 20000".into()));
        }
        Ok(())
    }

    pub fn stream_settings(&self) -> lanterne_wire::StreamSettings {
        lanterne_wire::StreamSettings {
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: self.bitrate_kbps,
        }
    }
}

impl Config {
    /// The validated monitoring schedule, if the room has one.
    pub fn monitoring_schedule(
        &self,
    ) -> Result<
        Option<lanterne_privacy::schedule::Schedule>,
        lanterne_privacy::schedule::ScheduleError,
    > {
        self.schedule.as_ref().map(|s| s.validate()).transpose()
    }

    /// The configuration used when no file is given: a development room on high ports.
    pub fn development(name: &str) -> Self {
        Config {
            room: Room {
                name: name.to_string(),
                school: "Établissement de démonstration".to_string(),
                kind: RoomKind::Classroom,
            },
            network: Network {
                https: "127.0.0.1:8443".parse().expect("static address"),
                station_link: "127.0.0.1:7443".parse().expect("static address"),
                ..Network::default()
            },
            mosaic: Video::mosaic_default(),
            thumbnails: Video::thumbnail_default(),
            focus: Video::focus_default(),
            panel: Panel {
                backend: PanelBackend::Simulated,
                ..Panel::default()
            },
            lock: Lock::default(),
            commands: Vec::new(),
            privacy: Privacy::default(),
            // The demo can be tried without an authenticator app.
            accounts: Accounts {
                require_totp_for_admins: false,
                require_totp_for_teachers: false,
                idle_timeout_minutes: Accounts::idle_default(),
            },
            remote_help: RemoteHelp::default(),
            metrics: Metrics::default(),
            schedule: None,
            hdmi: Hdmi::default(),
            stations: Stations::default(),
            limits: Limits::default(),
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.into(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::Parse {
                path: path.into(),
                message: format!(
                    "file is {} bytes, more than the {MAX_CONFIG_BYTES} allowed",
                    meta.len()
                ),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: describe_toml_error(&e),
        })?;
        cfg.validate()
            .map_err(|(field, problem)| ConfigError::Invalid {
                path: path.into(),
                field,
                problem,
            })?;
        cfg.monitoring_schedule()
            .map_err(|source| ConfigError::Schedule {
                path: path.into(),
                source,
            })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let name = self.room.name.trim();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(("room.name".into(), "must be 1 to 80 characters long".into()));
        }
        if self.room.name.chars().any(char::is_control) {
            return Err((
                "room.name".into(),
                "must not contain control characters".into(),
            ));
        }
        if !(5..=600).contains(&self.accounts.idle_timeout_minutes) {
            return Err((
                "accounts.idle_timeout_minutes".into(),
                "must be between 5 and 600".into(),
            ));
        }
        if self.network.https == self.network.station_link {
            return Err((
                "network.station_link".into(),
                "must differ from 'network.https'".into(),
            ));
        }
        for (i, n) in self.network.server_names.iter().enumerate() {
            // The same rule the HTTPS CA's name constraints are made with.
            let ok = n.parse::<std::net::IpAddr>().is_ok() || crate::pki::is_dns_name(n);
            if !ok {
                return Err((
                    format!("network.server_names[{i}]"),
                    format!("'{n}' is not a host name or IP address"),
                ));
            }
        }
        match (&self.network.tls_cert, &self.network.tls_key) {
            (Some(_), None) => {
                return Err((
                    "network.tls_key".into(),
                    "is required when 'network.tls_cert' is set".into(),
                ))
            }
            (None, Some(_)) => {
                return Err((
                    "network.tls_cert".into(),
                    "is required when 'network.tls_key' is set".into(),
                ))
            }
            _ => {}
        }
        if self.room.school.chars().count() > 120 || self.room.school.chars().any(char::is_control)
        {
            return Err((
                "room.school".into(),
                "must be at most 120 characters, without control characters".into(),
            ));
        }
        for (field, days, max) in self.privacy.periods() {
            if !(1..=max).contains(&days) {
                return Err((
                    format!("privacy.{field}"),
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        for (field, text) in [
            ("controller_contact", &self.privacy.controller_contact),
            ("dpo", &self.privacy.dpo),
        ] {
            if let Some(t) = text {
                if t.trim().is_empty() || t.chars().count() > 300 || t.chars().any(char::is_control)
                {
                    return Err((
                        format!("privacy.{field}"),
                        "must be 1 to 300 characters, on one line".into(),
                    ));
                }
            }
        }
        if !(30..=730).contains(&self.stations.certificate_days) {
            return Err((
                "stations.certificate_days".into(),
                "must be between 30 and 730".into(),
            ));
        }
        let msg = self.lock.message.trim();
        if msg.is_empty() || msg.chars().count() > lanterne_wire::MAX_TEXT_CHARS {
            return Err((
                "lock.message".into(),
                format!(
                    "must be 1 to {} characters long",
                    lanterne_wire::MAX_TEXT_CHARS
                ),
            ));
        }
        if self.panel.backend == PanelBackend::Gpio && !cfg!(feature = "rpi-gpio") {
            return Err((
                "panel.backend".into(),
                "\"gpio\" needs a box built with the rpi-gpio feature".into(),
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.commands.iter().enumerate() {
            let f = |name: &str| format!("commands[{i}].{name}");
            if c.name.is_empty()
                || c.name.len() > 40
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            {
                return Err((
                    f("name"),
                    "must be 1 to 40 lower-case letters, digits or dashes".into(),
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err((f("name"), format!("'{}' is used twice", c.name)));
            }
            if let Err(why) = program_path_ok(&c.program) {
                return Err((f("program"), why.into()));
            }
            for (what, list) in [("args", &c.args), ("allowed_args", &c.allowed_args)] {
                if list.len() > 32 || list.iter().any(|a| a.len() > 256 || a.contains('\0')) {
                    return Err((
                        f(what),
                        "at most 32 arguments of at most 256 bytes, without NUL".into(),
                    ));
                }
            }
            if !(1..=600).contains(&c.timeout_s) {
                return Err((f("timeout_s"), "must be between 1 and 600".into()));
            }
        }
        self.mosaic.validate("mosaic", 30)?;
        self.thumbnails.validate("thumbnails", 15)?;
        self.focus.validate("focus", 60)?;
        if !(500..=20_000).contains(&self.hdmi.bitrate_kbps) {
            return Err((
                "hdmi.bitrate_kbps".into(),
                "must be between 500 and 20000".into(),
            ));
        }
        self.limits.validate()?;
        if self.hdmi.input == HdmiInput::Device && !cfg!(feature = "v4l2-capture") {
            return Err((
                "hdmi.input".into(),
                "'device' needs a box built with the v4l2-capture feature (see docs/hardware.md)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// toml's messages already name the key (e.g. "unknown field `fsp`, expected one of …") and
/// the line; keep them but on one line, since they end up in logs and systemd status.
fn describe_toml_error(e: &toml::de::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn the_shipped_sample_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/config/lanterne.toml");
        let cfg = Config::load(&path).expect("sample config is valid");
        assert_eq!(cfg.room.kind, RoomKind::Classroom);
        assert_eq!(cfg.thumbnails.fps, 5);
        // The sample shows every privacy setting, at its default where it has one.
        let text = std::fs::read_to_string(&path).unwrap();
        for (field, days, _) in Privacy::default().periods() {
            assert!(text.contains(&format!("{field} = {days}\n")), "{field}");
        }
        assert!(cfg.privacy.controller_contact.is_some() && cfg.privacy.dpo.is_some());
    }

    #[test]
    fn screenshots_are_off_by_default_and_their_retention_is_bounded() {
        let cfg = parse("[room]\nname = \"Salle 12\"\n").unwrap();
        assert!(!cfg.privacy.screenshots);
        let cfg = parse(
            "[room]\nname = \"A\"\n[privacy]\nscreenshots = true\nscreenshot_retention_days = 30\n",
        )
        .unwrap();
        assert!(cfg.privacy.screenshots);
        assert_eq!(cfg.privacy.screenshot_retention_days, 30);
        let err = parse("[room]\nname = \"A\"\n[stations]\ncertificate_days = 3650\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'stations.certificate_days'"), "{err}");
        assert_eq!(
            parse("[room]\nname = \"A\"\n")
                .unwrap()
                .stations
                .certificate_days,
            182
        );
        let err = parse("[room]\nname = \"A\"\n[privacy]\nscreenshot_retention_days = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("privacy.screenshot_retention_days"), "{err}");
    }

    #[test]
    fn every_retention_period_has_a_school_default_and_a_named_bound() {
        let cfg = parse("[room]\nname = \"A\"\n").unwrap();
        let p = &cfg.privacy;
        assert_eq!(
            (
                p.audit_retention_days,
                p.message_retention_days,
                p.command_retention_days,
                p.order_retention_days,
                p.screenshot_retention_days
            ),
            (365, 7, 30, 1, 7)
        );
        assert_eq!(
            (p.controller_contact.as_deref(), p.dpo.as_deref()),
            (None, None)
        );
        for (field, max) in [
            ("audit_retention_days", 3650),
            ("message_retention_days", 365),
            ("command_retention_days", 365),
            ("order_retention_days", 30),
            ("screenshot_retention_days", 365),
        ] {
            for bad in [0, max + 1] {
                let err = parse(&format!(
                    "[room]\nname = \"A\"\n[privacy]\n{field} = {bad}\n"
                ))
                .unwrap_err()
                .to_string();
                assert!(
                    err.contains(&format!("'privacy.{field}' must be between 1 and {max}")),
                    "{err}"
                );
            }
            let ok = parse(&format!(
                "[room]\nname = \"A\"\n[privacy]\n{field} = {max}\n"
            ))
            .unwrap();
            assert!(ok
                .privacy
                .periods()
                .iter()
                .any(|(f, d, _)| *f == field && *d == max));
        }
        let err = parse("[room]\nname = \"A\"\n[privacy]\nmessages_days = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("messages_days"), "{err}");
    }

    #[test]
    fn the_controller_contact_and_the_dpo_are_one_line_each() {
        let cfg = parse(
            "[room]\nname = \"A\"\n[privacy]\ncontroller_contact = \"1 rue X, Lyon\"\ndpo = \"DPD, dpd@ac-lyon.fr\"\n",
        )
        .unwrap();
        assert_eq!(cfg.privacy.dpo.as_deref(), Some("DPD, dpd@ac-lyon.fr"));
        for (field, value) in [("dpo", "\"a\\nb\""), ("controller_contact", "\" \"")] {
            let err = parse(&format!(
                "[room]\nname = \"A\"\n[privacy]\n{field} = {value}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains(&format!("'privacy.{field}'")), "{err}");
        }
    }

    #[test]
    fn the_hdmi_input_is_off_by_default_and_checked() {
        let cfg = parse("[room]\nname = \"A\"\n").unwrap();
        assert_eq!(cfg.hdmi.input, HdmiInput::None);
        let cfg = parse("[room]\nname = \"A\"\n[hdmi]\ninput = \"test-pattern\"\n").unwrap();
        assert_eq!(cfg.hdmi.input, HdmiInput::TestPattern);
        let err = parse("[room]\nname = \"A\"\n[hdmi]\nbitrate_kbps = 90000\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hdmi.bitrate_kbps"), "{err}");
        let err = parse("[room]\nname = \"A\"\n[hdmi]\ninput = \"camera\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("input"), "{err}");
        if !cfg!(feature = "v4l2-capture") {
            let err = parse("[room]\nname = \"A\"\n[hdmi]\ninput = \"device\"\n")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("hdmi.input") && err.contains("v4l2-capture"),
                "{err}"
            );
        }
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let cfg = parse("[room]\nname = \"Salle 12\"\n").unwrap();
        assert_eq!(cfg.mosaic, Video::mosaic_default());
        assert_eq!(cfg.network.station_link.port(), 7443);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse("[room]\nname = \"A\"\n[mosaic]\nwidth = 1280\nheight = 720\nfsp = 10\nbitrate_kbps = 100\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fsp"), "{err}");
        assert!(err.contains("test.toml"), "{err}");
    }

    #[test]
    fn approved_commands_are_validated_by_field() {
        let ok = "[room]\nname = \"A\"\n[[commands]]\nname = \"espace-disque\"\nprogram = \"/usr/bin/df\"\nargs = [\"-h\"]\n";
        assert_eq!(parse(ok).unwrap().commands[0].timeout_s, 60);
        let err = parse(&ok.replace("/usr/bin/df", "df"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'commands[0].program'"), "{err}");
        let err = parse(&ok.replace("espace-disque", "Espace Disque"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'commands[0].name'"), "{err}");
        let twice =
            format!("{ok}[[commands]]\nname = \"espace-disque\"\nprogram = \"/bin/true\"\n");
        // A Windows program by its drive path is accepted (TOML literal string: no escapes).
        let windows = "[room]\nname = \"A\"\n[[commands]]\nname = \"ip\"\n\
                       program = 'C:\\Windows\\System32\\ipconfig.exe'\nargs = ['/all']\n";
        assert_eq!(
            parse(windows).unwrap().commands[0].program,
            "C:\\Windows\\System32\\ipconfig.exe"
        );
        for bad in [
            "ipconfig.exe",
            "\\\\server\\share\\tool.exe",
            "\\\\?\\C:\\tool.exe",
            "C:tool.exe",
            "C:/Windows/tool.exe",
            "//server/share/tool",
        ] {
            let err = parse(&windows.replace("C:\\Windows\\System32\\ipconfig.exe", bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains("'commands[0].program'"), "{bad}: {err}");
        }
        let err = parse(&twice).unwrap_err().to_string();
        assert!(err.contains("'commands[1].name'"), "{err}");
    }

    #[test]
    fn a_schedule_without_a_monitoring_free_slot_is_refused() {
        let err = parse(
            "[room]\nname = \"A\"\n[schedule]\n\
             access = [{ days = [\"mon\"], start = \"08:00\", end = \"12:00\" }]\n\
             monitoring = [{ days = [\"mon\"], start = \"08:00\", end = \"12:00\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("'schedule.monitoring'"), "{err}");
        assert!(err.contains("free"), "{err}");
        let ok = parse(
            "[room]\nname = \"A\"\n[schedule]\n\
             access = [{ days = [\"mon\"], start = \"08:00\", end = \"12:00\" }]\n\
             monitoring = [{ days = [\"mon\"], start = \"09:00\", end = \"11:00\" }]\n",
        )
        .unwrap();
        assert!(ok.monitoring_schedule().unwrap().is_some());
    }

    #[test]
    fn connection_limits_default_to_the_open_file_limit_and_are_checked_by_field() {
        let cfg = parse("[room]\nname = \"A\"\n").unwrap();
        assert_eq!(cfg.limits, Limits::default());
        assert_eq!(cfg.limits.https_connections, None);
        let cfg = parse(
            "[room]\nname = \"A\"\n[limits]\nhttps_connections = 300\nrequest_body_timeout_s = 5\n",
        )
        .unwrap();
        assert_eq!(cfg.limits.https_connections, Some(300));
        assert_eq!(cfg.limits.request_body_timeout_s, 5);
        let err = parse("[room]\nname = \"A\"\n[limits]\nhttps_connections = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'limits.https_connections'"), "{err}");
        let err = parse(
            "[room]\nname = \"A\"\n[limits]\nstation_link_connections = 4\nstation_link_pending_per_address = 5\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("'limits.station_link_pending_per_address'"),
            "{err}"
        );
        let err = parse("[room]\nname = \"A\"\n[limits]\nrequest_header_timeout_s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'limits.request_header_timeout_s'"), "{err}");
        let err = parse("[room]\nname = \"A\"\n[limits]\nidle_s = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_s"), "{err}");
    }

    #[test]
    fn garbage_file_gives_a_parse_error_not_a_panic() {
        let err = parse("\u{0}\u{1}[[[ not toml").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        let err = parse("[room]\nname = 12\n").unwrap_err().to_string();
        assert!(err.contains("name"), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let err = parse("[room]\nname = \"A\"\n[thumbnails]\nwidth = 480\nheight = 270\nfps = 0\nbitrate_kbps = 250\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'thumbnails.fps' must be between 1 and 15"),
            "{err}"
        );
        let err =
            parse("[room]\nname = \"A\"\n[network]\nserver_names = [\"ok.local\", \"bad name\"]\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("'network.server_names[1]'"), "{err}");
        let err = parse("[room]\nname = \"  \"\n").unwrap_err().to_string();
        assert!(err.contains("'room.name'"), "{err}");
        let err = parse("[room]\nname = \"A\"\n[network]\ntls_cert = \"/x.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'network.tls_key'"), "{err}");
    }
}
