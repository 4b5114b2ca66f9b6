//! The Lanterne box daemon: the classroom appliance that stations stream to and teachers
//! watch from their tablets.
//!
//! `run` wires the parts together: the database ([`store`]), the station and HTTPS CAs ([`pki`]), the room
//! state task ([`room`]), the demo relay ([`fanout`]), the station link listener ([`station_link`]), the mosaic
//! (`lanterne-media`) and the HTTPS server ([`web`]). Each part owns its state; they talk
//! through channels. The three listening sockets admit connections through [`listener`],
//! which bounds them and keeps the box answering on a hostile network.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod audit;
pub mod config;
pub mod fanout;
pub mod hdmi;
pub mod listener;
pub mod login_gate;
pub mod pki;
pub mod retention;
pub mod room;
pub mod screenshots;
pub mod service;
pub mod station_link;
pub mod stations;
pub mod store;
pub mod web;
pub mod wol;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

pub use config::Config;

/// Start-up options that come from the command line rather than the room config.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    pub config: Config,
    /// When set, a JSON file written once the box accepts connections: addresses actually
    /// bound (useful with port 0), the HTTPS CA (what a tablet trusts) and the station CA
    /// (what enrolment tokens pin) with their fingerprints and, on first start only, the
    /// admin password. Mode 0600. For scripts and tests that start the box.
    pub ready_file: Option<PathBuf>,
}

#[derive(serde::Serialize)]
struct Ready<'a> {
    https_url: String,
    http_redirect: Option<SocketAddr>,
    station_link: SocketAddr,
    /// The HTTPS CA certificate (used unless `network.tls_cert` is set).
    ca_cert: PathBuf,
    ca_fingerprint: String,
    station_ca_cert: PathBuf,
    station_ca_fingerprint: String,
    admin_password: Option<&'a str>,
    codec: String,
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let cfg = &opts.config;
    // Read first: a malformed NOTIFY_SOCKET is a start-up error, not a silent never-ready box.
    let notifier = service::Notifier::from_env()?;
    let open_files = listener::raise_open_file_limit();
    let limits = listener::Plan::new(&cfg.limits, open_files);
    info!(
        open_files,
        https = limits.https.connections,
        https_per_address = limits.https.pending_per_address,
        station_link = limits.station_link.connections,
        station_link_per_address = limits.station_link.pending_per_address,
        http_redirect = limits.http_redirect.connections,
        "connection limits"
    );
    if limits.descriptors_at_caps() + listener::FD_HEADROOM > open_files {
        tracing::warn!(
            open_files,
            at_caps = limits.descriptors_at_caps(),
            "the connection caps in [limits] add up to more than the open-file limit allows: \
             listeners will count themselves full before their caps"
        );
    }
    create_private_dir(&opts.data_dir)?;
    let store = store::Store::open(&opts.data_dir.join("box.sqlite"))
        .with_context(|| format!("opening the database in {}", opts.data_dir.display()))?;
    let audit = audit::AuditLog::new(store.clone());
    let first_password = accounts::ensure_first_admin(&store)?;
    let first_password_file = opts.data_dir.join("first-admin-password");
    if let Some(pw) = &first_password {
        // A secret: never printed or logged. Only the box's user can read the file; the
        // first sign-in must replace the password, which removes the file.
        write_private_file(&first_password_file, format!("{pw}\n").as_bytes())?;
        info!(
            file = %first_password_file.display(),
            "first start: created the account 'admin'; its password is in this file (replace it at the first sign-in)"
        );
    }
    let ca = Arc::new(
        pki::StationCa::load_or_create(&opts.data_dir, &cfg.room.name)?
            .with_station_cert_days(cfg.stations.certificate_days),
    );
    let names = https_names(cfg);
    let https_ca = pki::HttpsCa::load_or_create(&opts.data_dir, &cfg.room.name, &names)?;
    let link_identity = ca.issue_link_cert()?;
    let https_identity = match (&cfg.network.tls_cert, &cfg.network.tls_key) {
        (Some(c), Some(k)) => pki::ServerIdentity::from_pem_files(c, k)?,
        _ => https_ca.issue_server_cert(&names)?,
    };

    let probe = lanterne_media::init().context("starting GStreamer")?;
    let (mosaic, _first_rx) = lanterne_media::Mosaic::start(
        lanterne_media::MosaicConfig {
            width: cfg.mosaic.width,
            height: cfg.mosaic.height,
            fps: cfg.mosaic.fps,
            bitrate_kbps: cfg.mosaic.bitrate_kbps,
        },
        &probe,
    )
    .context("starting the mosaic")?;
    let mosaic = Arc::new(mosaic);

    let schedule = cfg.monitoring_schedule()?;
    match &schedule {
        Some(s) => info!(
            hours = %s.monitoring_summary(lanterne_privacy::Lang::En),
            "monitoring only inside the configured windows"
        ),
        None => tracing::warn!(
            "no [schedule] in the configuration: monitoring is off (no thumbnails, focus \
             view, screenshot or demo of a student's screen, ever); locking, messages, power, \
             commands and the HDMI demo work. Set the monitoring hours in [schedule] (policy P3)"
        ),
    }
    let schedule_for_documents = schedule.clone();
    let clock: Arc<dyn lanterne_privacy::policy::Clock + Send + Sync> =
        Arc::new(lanterne_privacy::policy::SystemClock::new());
    let policy = web::authz::Policy {
        schedule: schedule.clone().map(Arc::new),
        config: lanterne_privacy::policy::PolicyConfig {
            screenshots_enabled: cfg.privacy.screenshots,
            remote_help_roles: cfg.remote_help.roles.clone(),
        },
        clock: clock.clone(),
    };
    let (panel, panel_events, simulated_panel) = start_panel(&cfg.panel)?;
    let screenshot_settings = screenshots::Settings {
        enabled: cfg.privacy.screenshots,
        retention_days: cfg.privacy.screenshot_retention_days,
        dir: opts.data_dir.join("screenshots"),
    };
    let stations = store.with(store::stations)?;
    info!(count = stations.len(), "enrolled stations");
    let room = room::spawn(
        room::RoomSettings {
            name: cfg.room.name.clone(),
            plan: room::StreamPlan {
                thumbnail: cfg.thumbnails.stream_settings(),
                focus: cfg.focus.stream_settings(),
            },
            lock: room::LockSettings {
                message: cfg.lock.message.clone(),
            },
            schedule,
            schedule_json: cfg
                .schedule
                .as_ref()
                .map(|s| serde_json::to_string(s).expect("schedule config serialises")),
            clock: clock.clone(),
            hdmi: (cfg.hdmi.input != config::HdmiInput::None).then(|| (cfg.hdmi.clone(), probe)),
        },
        stations,
        mosaic.clone(),
        store.clone(),
        panel,
    )?;
    tokio::spawn(forward_panel_events(panel_events, room.clone()));
    // Everything with a retention period, screenshots included (also while they are turned
    // off: pictures taken before still expire on time).
    tokio::spawn(retention::run(
        store.clone(),
        room.clone(),
        retention::Retention::new(&cfg.privacy, screenshot_settings.clone()),
    ));
    // Revocations and deletions made with the command line while the box runs.
    tokio::spawn(stations::watch_database(store.clone(), room.clone()));

    let link_listener = TcpListener::bind(cfg.network.station_link)
        .await
        .with_context(|| format!("binding the station link on {}", cfg.network.station_link))?;
    let https_listener = TcpListener::bind(cfg.network.https)
        .await
        .with_context(|| format!("binding HTTPS on {}", cfg.network.https))?;
    let link_addr = link_listener.local_addr()?;
    let https_addr = https_listener.local_addr()?;
    let redirect_listener = match cfg.network.http_redirect {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the HTTP redirect on {addr}"))?,
        ),
        None => None,
    };
    let redirect_addr = match &redirect_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };

    let link_ctx = station_link::LinkContext {
        tls: tokio_rustls::TlsAcceptor::from(pki::station_link_config(&ca, &link_identity)?),
        ca: ca.clone(),
        store: store.clone(),
        room: room.clone(),
        mosaic: mosaic.clone(),
        audit: audit.clone(),
        lines: Arc::new(station_link::StationLines::default()),
    };
    let app = web::router(web::AppState {
        store: store.clone(),
        room,
        mosaic,
        ca: ca.clone(),
        station_link_port: link_addr.port(),
        login_gate: login_gate::LoginGate::new(),
        sessions: web::SessionEvents::new(),
        idle_timeout: std::time::Duration::from_secs(
            u64::from(cfg.accounts.idle_timeout_minutes) * 60,
        ),
        first_password_file: Some(first_password_file.clone()),
        simulated_panel: simulated_panel.map(Arc::new),
        wol_target: cfg.network.wol_broadcast,
        commands: Arc::new(cfg.commands.clone()),
        account_rules: cfg.accounts.clone(),
        documents: document_config(cfg, schedule_for_documents),
        screenshots: Arc::new(screenshot_settings),
        audit: audit.clone(),
        policy,
        metrics: Arc::new(web::metrics::Metrics {
            enabled: cfg.metrics.enabled,
            ..Default::default()
        }),
    });
    let https_cfg = pki::https_config(&https_identity, &link_identity)?;

    let url_host = if https_addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        https_addr.ip().to_string()
    };
    let https_url = format!("https://{url_host}:{}", https_addr.port());
    info!(%https_url, station_link = %link_addr, encoder = ?probe.encoder, decoder = ?probe.decoder, "box ready");
    let status = format!("serving {https_url}");
    if let Some(path) = &opts.ready_file {
        let ready = Ready {
            https_url,
            http_redirect: redirect_addr,
            station_link: link_addr,
            ca_cert: pki::HttpsCa::cert_path(&opts.data_dir),
            ca_fingerprint: https_ca.fingerprint(),
            station_ca_cert: pki::StationCa::cert_path(&opts.data_dir),
            station_ca_fingerprint: ca.fingerprint(),
            admin_password: first_password.as_deref(),
            codec: format!("{:?}/{:?}", probe.encoder, probe.decoder),
        };
        write_private_file(path, serde_json::to_string_pretty(&ready)?.as_bytes())?;
    }
    // A service manager that cannot be told will time the start out and say so; the box
    // itself serves either way.
    if let Err(e) = notifier.ready(&status) {
        tracing::error!("telling the service manager the box is ready: {e}");
    }
    tokio::spawn(notifier.clone().feed_watchdog());

    let redirect = async move {
        match redirect_listener {
            Some(l) => web::serve_redirect(l, https_addr.port(), limits.http_redirect()).await,
            None => std::future::pending().await,
        }
    };
    // The listeners never return: no accept error is fatal (see `listener`).
    tokio::select! {
        never = redirect => match never {},
        never = station_link::serve(
            link_listener,
            link_ctx,
            limits.station_link,
            limits.timeouts.tls_handshake,
        ) => match never {},
        never = web::serve(https_listener, https_cfg, app, limits.https()) => match never {},
        _ = shutdown_signal() => info!("shutting down"),
    }
    if let Err(e) = notifier.stopping() {
        tracing::warn!("{e}");
    }
    Ok(())
}

/// The names and addresses the box's HTTPS certificate carries and its HTTPS CA is
/// constrained to: the fixed name, loopback, the host name and `network.server_names`.
fn https_names(cfg: &Config) -> Vec<String> {
    let mut names: Vec<String> = [
        lanterne_wire::LINK_SERVER_NAME,
        "localhost",
        "127.0.0.1",
        "::1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    // The configured names are checked when the configuration loads; the host name is not.
    let host = (!host.is_empty() && pki::is_dns_name(host)).then_some(host);
    for n in host
        .into_iter()
        .chain(cfg.network.server_names.iter().map(|s| s.as_str()))
    {
        let n = n.to_ascii_lowercase();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// What the room notice and GDPR record are made from, or why they cannot be made yet.
fn document_config(
    cfg: &Config,
    schedule: Option<lanterne_privacy::schedule::Schedule>,
) -> Result<Arc<lanterne_privacy::documents::DocumentConfig>, String> {
    let schedule = schedule.ok_or_else(|| {
        "the room has no monitoring schedule: set [schedule] in the configuration first".to_string()
    })?;
    if cfg.room.school.trim().is_empty() {
        return Err("set room.school (the data controller) in the configuration first".into());
    }
    Ok(Arc::new(lanterne_privacy::documents::DocumentConfig {
        school_name: cfg.room.school.clone(),
        room_name: cfg.room.name.clone(),
        room_kind: match cfg.room.kind {
            config::RoomKind::Classroom => lanterne_privacy::documents::RoomKind::Classroom,
            config::RoomKind::Library => lanterne_privacy::documents::RoomKind::Library,
        },
        schedule,
        audit_retention_days: cfg.privacy.audit_retention_days,
        screenshot_retention_days: if cfg.privacy.screenshots {
            cfg.privacy.screenshot_retention_days
        } else {
            0
        },
        screenshots_enabled: cfg.privacy.screenshots,
        controller_contact: cfg.privacy.controller_contact.clone(),
        dpo: cfg.privacy.dpo.clone(),
        message_retention_days: cfg.privacy.message_retention_days,
        command_retention_days: cfg.privacy.command_retention_days,
        order_retention_days: cfg.privacy.order_retention_days,
        session_hours: web::SESSION_TTL.as_secs().div_ceil(3600) as u32,
        hdmi_input: cfg.hdmi.input != config::HdmiInput::None,
        remote_help_roles: cfg.remote_help.roles.clone(),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
    }))
}

type PanelParts = (
    lanterne_panel::PanelHandle,
    tokio::sync::mpsc::Receiver<lanterne_panel::PanelEvent>,
    Option<lanterne_panel::SimulatedPanel>,
);

fn start_panel(cfg: &config::Panel) -> anyhow::Result<PanelParts> {
    Ok(match cfg.backend {
        config::PanelBackend::Simulated => {
            let (h, rx, sim) = lanterne_panel::spawn_simulated();
            info!("front panel: simulated");
            (h, rx, Some(sim))
        }
        config::PanelBackend::Serial => {
            let (h, rx) = lanterne_panel::spawn_serial(
                cfg.device.clone(),
                lanterne_panel::SerialConfig::default(),
            )?;
            info!(device = %cfg.device.display(), "front panel: USB serial");
            (h, rx, None)
        }
        config::PanelBackend::Gpio => {
            #[cfg(feature = "rpi-gpio")]
            {
                let (h, rx) =
                    lanterne_panel::spawn_gpio(lanterne_panel::board::GpioPins::default())?;
                info!("front panel: Raspberry Pi GPIO");
                (h, rx, None)
            }
            #[cfg(not(feature = "rpi-gpio"))]
            anyhow::bail!("panel.backend = \"gpio\" needs a box built with the rpi-gpio feature")
        }
    })
}

/// The lock button toggles the room lock, exactly like the tablet's lock button.
async fn forward_panel_events(
    mut events: tokio::sync::mpsc::Receiver<lanterne_panel::PanelEvent>,
    room: room::RoomHandle,
) {
    use lanterne_panel::PanelEvent;
    while let Some(ev) = events.recv().await {
        match ev {
            PanelEvent::LockButtonPressed => {
                if let Err(e) = room.set_lock(None, None, "panel-button").await {
                    tracing::error!("lock button: {e}");
                }
            }
            PanelEvent::LockButtonLongPressed => {
                // Reserved (e.g. "identify" or a future action); a long press never unlocks
                // by surprise.
                info!("lock button long press (no action)");
            }
            PanelEvent::Connected { firmware } => info!(%firmware, "front panel connected"),
            PanelEvent::Disconnected => tracing::warn!("front panel disconnected"),
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Generates `count` one-time enrolment codes and returns them as `CODE@CA-FINGERPRINT`
/// tokens: the code authorises one enrolment, the fingerprint (of the station CA) lets the
/// station pin it before it trusts anything the box says.
pub fn create_enrol_codes(
    data_dir: &Path,
    room_name: &str,
    count: u32,
    ttl: std::time::Duration,
) -> anyhow::Result<Vec<String>> {
    create_private_dir(data_dir)?;
    let store = store::Store::open(&data_dir.join("box.sqlite"))?;
    let ca = pki::StationCa::load_or_create(data_dir, room_name)?;
    let now = lanterne_wire::now_us() as i64;
    let mut out = Vec::new();
    for _ in 0..count {
        let code = random_code();
        store.with(|c| store::insert_enrol_code(c, &code, now, ttl.as_micros() as i64))?;
        out.push(format!("{code}@{}", ca.fingerprint()));
    }
    Ok(out)
}

/// 12 characters from an alphabet without look-alikes (60 bits), grouped by four.
fn random_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    Ok(())
}

fn write_private_file(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    // Rename so a reader never sees half a file.
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_have_the_documented_shape() {
        let c = super::random_code();
        assert_eq!(c.len(), 14);
        assert_eq!(c.matches('-').count(), 2);
        assert!(c
            .chars()
            .all(|ch| ch == '-' || ch.is_ascii_uppercase() || ch.is_ascii_digit()));
        assert_ne!(c, super::random_code());
    }
}
