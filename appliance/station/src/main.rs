//! `lanterne-station`: the station agent.
//!
//! ```text
//! lanterne-station enrol --box https://box:443 --token CODE@FINGERPRINT   # once, as admin
//! lanterne-station run [--config /etc/lanterne/station.toml]   # the system service (root)
//! lanterne-station session [--display :0]                       # in each session, as the student
//! lanterne-station classroom --box https://127.0.0.1:8443 --tokens t.txt --count 8 \
//!     [--station-config station.toml]
//! lanterne-station record --out thumb.lrp --frames 150                     # replay file
//! lanterne-station record --display :5 --seconds 30 --out t.lrp --full-out f.lrp  # an X11 screen
//! lanterne-station.exe run                         # Windows: the service, in an admin console
//! lanterne-station.exe service                     # Windows: the same, as the LanterneStation service
//! lanterne-station.exe session                     # Windows: the session helper
//! lanterne-station.exe desktop                     # Windows: the whole station, in the session
//! ```
//! On Windows `classroom` and `record` do not exist (see `platform::windows`).
//! `RUST_LOG` sets the log filter (default `info`).

use std::path::PathBuf;
#[cfg(unix)]
use std::sync::Arc;

#[cfg(unix)]
use anyhow::bail;
use anyhow::Context;
#[cfg(unix)]
use clap::ValueEnum;
use clap::{Parser, Subcommand};
#[cfg(unix)]
use lanterne_media::{CaptureSource, StreamParams};
#[cfg(unix)]
use lanterne_station::classroom::{self, SimulatedStation};
use lanterne_station::commands::AllowList;
use lanterne_station::config::StationConfig;
use lanterne_station::enrol::Token;
#[cfg(unix)]
use lanterne_station::identity::Identity;
use lanterne_station::platform::{default_config_path, default_data_dir, hostname};
#[cfg(unix)]
use lanterne_station::screen::{NoScreen, Screen, SimulatedScreen, X11Screen};
#[cfg(unix)]
use lanterne_station::session_socket::{self, HelperPolicy};
#[cfg(unix)]
use lanterne_station::system::{LinuxSystem, SimulatedSystem, XdgOpener};
#[cfg(unix)]
use lanterne_station::{spawn_service, spawn_station_allowing, SourceSpec, PALETTE};

#[derive(Parser)]
#[command(version, about = "Lanterne station agent")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[cfg(unix)]
#[derive(Clone, Copy, ValueEnum)]
enum Source {
    /// The X11 display in $DISPLAY (or --display).
    X11,
    /// The Wayland screen through the ScreenCast portal.
    Pipewire,
    /// A moving test pattern with the station's name and colour.
    Synthetic,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enrol this station with a box, using a one-time token from the box's admin.
    Enrol {
        #[arg(long, default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
        /// The box's HTTPS address, e.g. https://lanterne-salle12.lycee.local
        #[arg(long = "box")]
        box_url: String,
        #[arg(long)]
        token: Token,
        /// Name to ask for (default: this machine's host name).
        #[arg(long)]
        hostname: Option<String>,
    },
    #[cfg(unix)]
    /// Run the system service (as root): the link to the box, power, log out, open a
    /// session, commands from this PC's allow-list. What the student sees and uses is done by
    /// the session helper (`session`), which connects to it.
    Run {
        #[arg(long, default_value = "/var/lib/lanterne-station")]
        data_dir: PathBuf,
        /// This PC's own configuration: the commands the box may run here (none without it)
        /// and the session helper's socket.
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
        /// The user whose session "log out" ends (default: the session helper's account).
        #[arg(long)]
        session_user: Option<String>,
        /// The account the display manager logs in automatically; enables "open a session".
        #[arg(long)]
        autologin_user: Option<String>,
    },
    #[cfg(unix)]
    /// Run the session helper in the student's session, as the student: screen capture, the
    /// lock, message and watched overlay, the demo player, opening links. It connects to the
    /// system service's socket and serves it until the service goes, then waits for it.
    Session {
        /// The service's socket (`[session] socket` in its configuration).
        #[arg(long, default_value = lanterne_station::session_socket::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// The account the service runs as (name or uid); the helper talks to nobody else.
        #[arg(long, default_value = "root")]
        service_user: String,
        #[arg(long, value_enum, default_value_t = Source::X11)]
        source: Source,
        /// X11 display (default: $DISPLAY).
        #[arg(long)]
        display: Option<String>,
        /// Label and colour of the synthetic source.
        #[arg(long, default_value = "station")]
        label: String,
        #[arg(long, default_value = "3c64c8", value_parser = parse_rgb)]
        rgb: [u8; 3],
        /// The program that opens a web page for the student.
        #[arg(long, default_value = "/usr/bin/xdg-open")]
        opener: PathBuf,
    },
    #[cfg(unix)]
    /// Run a simulated classroom: many stations in this one process, each enrolled with one
    /// token from --tokens on first start.
    Classroom {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long = "box")]
        box_url: String,
        /// File with one enrolment token per line (needed for stations not yet enrolled).
        #[arg(long)]
        tokens: Option<PathBuf>,
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Replay this file on every station instead of encoding a test pattern live; with
        /// several (comma-separated), station i plays file i modulo their number.
        #[arg(long, value_delimiter = ',')]
        replay: Vec<PathBuf>,
        /// Write the stations (id, name, colour) as JSON here once they are started.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Keep what each station shows (lock, messages, system actions) as JSON here.
        /// Standard input takes the students' actions: `dismiss STATION ID`, `unplug STATION`.
        #[arg(long)]
        status: Option<PathBuf>,
        /// Stations (by name, comma-separated) set up to open a session on order, as with a
        /// display-manager autologin account; the others refuse, as real stations would.
        #[arg(long, value_delimiter = ',')]
        autologin: Vec<String>,
        /// Every station's own configuration (as /etc/lanterne/station.toml on a real PC):
        /// the commands the box may run on them. Without it they run none.
        #[arg(long)]
        station_config: Option<PathBuf>,
    },
    #[cfg(unix)]
    /// Record a synthetic thumbnail stream to a replay file, or (--display) an X11 screen's
    /// thumbnail and full streams through the station's own capture, encoder and rate control.
    Record {
        #[arg(long)]
        out: PathBuf,
        /// Capture this X11 display instead of the synthetic picture.
        #[arg(long)]
        display: Option<String>,
        /// Record for this long (instead of --frames): a still screen makes few frames.
        #[arg(long)]
        seconds: Option<u32>,
        /// Also record the full stream to this file (with --seconds).
        #[arg(long)]
        full_out: Option<PathBuf>,
        #[arg(long, default_value_t = 1280)]
        full_width: u32,
        #[arg(long, default_value_t = 720)]
        full_height: u32,
        #[arg(long, default_value_t = 30)]
        full_fps: u32,
        #[arg(long, default_value_t = 2500)]
        full_bitrate_kbps: u32,
        #[arg(long, default_value_t = 150)]
        frames: u32,
        #[arg(long, default_value = "replay")]
        label: String,
        #[arg(long, default_value = "3c64c8", value_parser = parse_rgb)]
        rgb: [u8; 3],
        #[arg(long, default_value_t = 480)]
        width: u32,
        #[arg(long, default_value_t = 270)]
        height: u32,
        #[arg(long, default_value_t = 5)]
        fps: u32,
        #[arg(long, default_value_t = 250)]
        bitrate_kbps: u32,
    },
    /// Run the whole station in this process, in the user's Windows session: the link to the
    /// box, capture and encoding, the watched badge, system actions (log off ends this
    /// session). For trying the agent without installing the service; a PC runs `service`.
    #[cfg(windows)]
    Desktop {
        #[arg(long, default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
        /// This PC's own configuration: the commands the box may run here (none without it).
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
    },
    /// Run the station service in this console (as an administrator) until Ctrl+C: the link
    /// to the box, power, log off, commands from this PC's allow-list. What the student sees
    /// is done by the session helper (`session`), which connects to its named pipe.
    #[cfg(windows)]
    Run {
        #[arg(long, default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
        /// This PC's own configuration: the commands the box may run here (none without it)
        /// and the session helper's pipe.
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
    },
    /// What `run` does, as the Windows service LanterneStation (started by the service
    /// control manager only), which also starts the session helper in the console session
    /// as the user logged in there. Its log is `service.log` in the data folder.
    #[cfg(windows)]
    Service {
        #[arg(long, default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
    },
    /// Run the session helper in the user's session, as the user: screen capture, the lock,
    /// messages and the watched badge, opening links. It connects to the service's named pipe
    /// and serves it until the service goes, then waits for it.
    #[cfg(windows)]
    Session {
        /// The service's pipe (`[session] socket` in its configuration).
        #[arg(long, default_value = lanterne_station::platform::DEFAULT_SESSION_SOCKET)]
        socket: PathBuf,
        /// The account the service runs as (name or SID); the helper talks to nobody else.
        #[arg(long, default_value = "SYSTEM")]
        service_user: String,
    },
}

#[cfg(unix)]
fn parse_rgb(s: &str) -> Result<[u8; 3], String> {
    let s = s.trim_start_matches('#');
    if s.len() != 6 {
        return Err("colour must be 6 hex digits, e.g. c83214".into());
    }
    let v = u32::from_str_radix(s, 16).map_err(|e| e.to_string())?;
    Ok([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Under the service control manager there is no console: the log goes to a file.
    #[cfg(windows)]
    let service_log = match &cli.cmd {
        Cmd::Service { data_dir, .. } => {
            // The log goes in the data folder: made and kept from other accounts first.
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("making {}", data_dir.display()))?;
            lanterne_station::platform::secure_dir(data_dir)
                .with_context(|| format!("securing {}", data_dir.display()))?;
            Some(data_dir.join("service.log"))
        }
        _ => None,
    };
    #[cfg(not(windows))]
    let service_log: Option<PathBuf> = None;
    init_logs(service_log.as_deref())?;
    match cli.cmd {
        Cmd::Enrol {
            data_dir,
            box_url,
            token,
            hostname: name,
        } => {
            let name = name.unwrap_or_else(hostname);
            let mac = lanterne_station::primary_mac();
            let e =
                lanterne_station::enrol::enrol(&data_dir, &box_url, &token, &name, mac.as_deref())
                    .await?;
            println!(
                "Enrolled as '{}' (station {}); box link {}",
                e.name, e.station_id, e.link
            );
            Ok(())
        }
        #[cfg(unix)]
        Cmd::Run {
            data_dir,
            config,
            session_user,
            autologin_user,
        } => {
            let station_config = StationConfig::load(&config)?;
            let commands = Arc::new(allow_list(&config, &station_config));
            let identity = Arc::new(Identity::load(&data_dir)?);
            let helper = &station_config.session;
            let sessions = session_socket::listen(
                &helper.socket,
                HelperPolicy::new(helper.users.clone(), helper.groups.clone()),
                session_socket::Greeting {
                    station_id: identity.enrolment.station_id,
                    name: identity.enrolment.name.clone(),
                },
            )?;
            let st = spawn_service(
                identity,
                Arc::new(LinuxSystem {
                    session_user,
                    autologin_user,
                }),
                sessions,
                hostname(),
                commands,
            );
            tracing::info!(name = %st.name, "station service running");
            tokio::select! {
                r = st.task => r.context("station link task")?,
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(())
        }
        #[cfg(unix)]
        Cmd::Session {
            socket,
            service_user,
            source,
            display,
            label,
            rgb,
            opener,
        } => {
            let service_uid = account_uid(&service_user)?;
            let capture = match source {
                Source::X11 => CaptureSource::X11 {
                    display: display.clone(),
                },
                Source::Pipewire => CaptureSource::PipeWire,
                Source::Synthetic => CaptureSource::Synthetic { label, rgb },
            };
            tokio::select! {
                r = session_helper(&socket, service_uid, capture, display, opener) => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        #[cfg(unix)]
        Cmd::Classroom {
            data_dir,
            box_url,
            tokens,
            count,
            replay,
            manifest,
            status,
            autologin,
            station_config,
        } => {
            let commands = Arc::new(match &station_config {
                Some(path) => allow_list(path, &StationConfig::load(path)?),
                None => AllowList::default(),
            });
            let outputs = ClassroomOutputs { manifest, status };
            let setup = ClassroomSetup {
                autologin,
                commands,
            };
            classroom(data_dir, box_url, tokens, count, replay, outputs, setup).await
        }
        #[cfg(unix)]
        Cmd::Record {
            out,
            display,
            seconds,
            full_out,
            full_width,
            full_height,
            full_fps,
            full_bitrate_kbps,
            frames,
            label,
            rgb,
            width,
            height,
            fps,
            bitrate_kbps,
        } => {
            let probe = lanterne_station::platform::init()?;
            let source = match display {
                Some(d) => CaptureSource::X11 { display: Some(d) },
                None => CaptureSource::Synthetic { label, rgb },
            };
            let thumb = StreamParams {
                width,
                height,
                fps,
                bitrate_kbps,
            };
            let Some(seconds) = seconds else {
                if full_out.is_some() {
                    bail!("--full-out needs --seconds");
                }
                lanterne_media::replay::record(source, &probe, thumb, frames, &out)?;
                println!("wrote {}", out.display());
                return Ok(());
            };
            use lanterne_media::replay::RecordTarget;
            use lanterne_media::StreamKind;
            let mut targets = vec![RecordTarget {
                kind: StreamKind::Thumb,
                params: thumb,
                path: out,
            }];
            if let Some(path) = full_out {
                targets.push(RecordTarget {
                    kind: StreamKind::Full,
                    params: StreamParams {
                        width: full_width,
                        height: full_height,
                        fps: full_fps,
                        bitrate_kbps: full_bitrate_kbps,
                    },
                    path,
                });
            }
            let length = std::time::Duration::from_secs(seconds.into());
            let summaries = lanterne_media::replay::record_for(source, &probe, &targets, length)?;
            for (t, s) in targets.iter().zip(summaries) {
                println!(
                    "wrote {}: {} frames ({} keyframes), {} bytes over {seconds} s",
                    t.path.display(),
                    s.frames,
                    s.keyframes,
                    s.bytes
                );
            }
            Ok(())
        }
        #[cfg(windows)]
        Cmd::Desktop { data_dir, config } => desktop(&data_dir, &config).await,
        #[cfg(windows)]
        Cmd::Run { data_dir, config } => {
            use lanterne_station::platform::service::{self, ServiceSetup};
            let setup = ServiceSetup {
                data_dir,
                config,
                start_helpers: false,
            };
            service::run(&setup, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        }
        #[cfg(windows)]
        Cmd::Service { data_dir, config } => {
            use lanterne_station::platform::service::{self, ServiceSetup};
            let setup = ServiceSetup {
                data_dir,
                config,
                start_helpers: true,
            };
            tokio::task::spawn_blocking(move || service::run_under_service_manager(setup)).await?
        }
        #[cfg(windows)]
        Cmd::Session {
            socket,
            service_user,
        } => {
            let sid = lanterne_station::platform::session_pipe::service_sid(&service_user)
                .map_err(anyhow::Error::msg)?;
            tokio::select! {
                r = windows_session_helper(socket.into_os_string(), sid) => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
    }
}

/// Logs go to standard error (journald under systemd), or to `file` (appended) for the
/// Windows service; standard output is for what a person asked for (the first-start
/// password, enrolment tokens).
fn init_logs(file: Option<&std::path::Path>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open the log {}: {e}", path.display()))?;
            builder
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .init();
        }
        None => builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
    }
    Ok(())
}

/// The Windows session helper: starts what the student sees and uses, then serves the
/// station service, connecting again (with backoff) whenever it is not there. Ends with an
/// error when the service refuses this helper or is not the expected account.
#[cfg(windows)]
async fn windows_session_helper(
    pipe: std::ffi::OsString,
    service_sid: String,
) -> anyhow::Result<()> {
    use lanterne_station::platform::screen::WindowsScreen;
    use lanterne_station::platform::session_pipe::{self, PipeError};
    use lanterne_station::platform::CaptureSource;
    use lanterne_station::session::{self, Session, MEDIA_QUEUE};
    use lanterne_station::system::ShellOpener;
    use lanterne_station::SourceSpec;
    use std::sync::Arc;
    use std::time::Duration;

    let probe = lanterne_station::platform::init()?;
    let (tx, mut media) = tokio::sync::mpsc::channel(MEDIA_QUEUE);
    let source = SourceSpec::Live(CaptureSource::Desktop).start(&probe, tx)?;
    let mut session = Session::new(
        source,
        Arc::new(WindowsScreen::new()),
        Arc::new(ShellOpener::default()),
        probe,
    );
    let mut backoff = Duration::from_millis(200);
    loop {
        match session_pipe::connect(&pipe, &service_sid, session.capabilities()).await {
            Ok((framed, greeting)) => {
                tracing::info!(station = %greeting.name, "connected to the station service");
                backoff = Duration::from_millis(200);
                let (conn, end) = session::pair(
                    "station service".into(),
                    None,
                    session.capabilities(),
                    media,
                );
                let (_, (why, back)) = tokio::join!(
                    session.serve(end),
                    session_pipe::bridge_to_service(framed, conn)
                );
                tracing::info!("disconnected from the station service: {why}");
                media = back;
            }
            Err(
                e
                @ (PipeError::Refused(_) | PipeError::WrongService { .. } | PipeError::BadName(_)),
            ) => return Err(e.into()),
            Err(e) => {
                tracing::info!("{e}; trying again in {} ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The whole Windows station in this process, until the link ends or Ctrl+C.
#[cfg(windows)]
async fn desktop(data_dir: &std::path::Path, config: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use lanterne_station::platform::screen::WindowsScreen;
    use lanterne_station::platform::CaptureSource;
    use lanterne_station::system::WindowsSystem;
    use lanterne_station::{spawn_station_allowing, SourceSpec};
    use std::sync::Arc;

    let station_config = StationConfig::load(config)?;
    let commands = Arc::new(allow_list(config, &station_config));
    let probe = lanterne_station::platform::init()?;
    let st = spawn_station_allowing(
        data_dir,
        SourceSpec::Live(CaptureSource::Desktop),
        Arc::new(WindowsScreen::new()),
        Arc::new(WindowsSystem),
        &probe,
        hostname(),
        commands,
    )?;
    tracing::info!(name = %st.name, "station running in this session");
    tokio::select! {
        r = st.task => r.context("station link task")?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

#[cfg(unix)]
#[derive(serde::Serialize)]
struct ManifestEntry {
    id: u32,
    name: String,
    rgb: [u8; 3],
}

#[cfg(unix)]
/// Files the simulated classroom keeps up to date for the tests that drive it.
struct ClassroomOutputs {
    manifest: Option<PathBuf>,
    status: Option<PathBuf>,
}

#[cfg(unix)]
/// How the simulated PCs are set up, as an admin would set real ones.
struct ClassroomSetup {
    /// Stations (by name) whose display manager opens a session on order.
    autologin: Vec<String>,
    /// Every station's command allow-list.
    commands: Arc<AllowList>,
}

/// The allow-list of `config`, read from `path`.
fn allow_list(path: &std::path::Path, config: &StationConfig) -> AllowList {
    if config.commands.is_empty() {
        tracing::info!(
            "no command in {}: this station runs no command the box orders",
            path.display()
        );
    } else {
        tracing::info!(
            count = config.commands.len(),
            "commands the box may run here are listed in {}",
            path.display()
        );
    }
    AllowList::new(path, config.commands.clone())
}

#[cfg(unix)]
/// The uid of an account given by name or number.
fn account_uid(account: &str) -> anyhow::Result<u32> {
    if let Ok(uid) = account.parse() {
        return Ok(uid);
    }
    match nix::unistd::User::from_name(account)? {
        Some(u) => Ok(u.uid.as_raw()),
        None => bail!("no account named '{account}' on this PC"),
    }
}

#[cfg(unix)]
/// The session helper: starts what the student sees and uses, then serves the station
/// service, connecting again (with backoff) whenever it is not there. Ends with an error
/// when the service refuses this helper or is not the expected account.
async fn session_helper(
    socket: &std::path::Path,
    service_uid: u32,
    capture: CaptureSource,
    display: Option<String>,
    opener: PathBuf,
) -> anyhow::Result<()> {
    use lanterne_station::session::{self, Session, MEDIA_QUEUE};
    use lanterne_station::session_socket::SocketError;
    use std::time::Duration;

    let probe = lanterne_station::platform::init()?;
    let screen: Arc<dyn Screen> = match X11Screen::connect(display.as_deref()) {
        Ok(s) => Arc::new(s),
        Err(reason) => {
            tracing::warn!("no lock overlay or watched indicator in this session: {reason}");
            Arc::new(NoScreen::new(reason))
        }
    };
    let (tx, mut media) = tokio::sync::mpsc::channel(MEDIA_QUEUE);
    let source = SourceSpec::Live(capture).start(&probe, tx)?;
    let mut session = Session::new(
        source,
        screen,
        Arc::new(XdgOpener { program: opener }),
        probe,
    );
    let mut backoff = Duration::from_millis(200);
    loop {
        match session_socket::connect(socket, service_uid, session.capabilities()).await {
            Ok((framed, greeting)) => {
                tracing::info!(station = %greeting.name, "connected to the station service");
                backoff = Duration::from_millis(200);
                let (conn, end) = session::pair(
                    "station service".into(),
                    None,
                    session.capabilities(),
                    media,
                );
                let (_, (why, back)) = tokio::join!(
                    session.serve(end),
                    session_socket::bridge_to_service(framed, conn)
                );
                tracing::info!("disconnected from the station service: {why}");
                media = back;
            }
            Err(e @ (SocketError::Refused(_) | SocketError::WrongService { .. })) => {
                return Err(e.into())
            }
            Err(e) => {
                tracing::info!("{e}; trying again in {} ms", backoff.as_millis());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[cfg(unix)]
async fn classroom(
    data_dir: PathBuf,
    box_url: String,
    tokens: Option<PathBuf>,
    count: usize,
    replay: Vec<PathBuf>,
    outputs: ClassroomOutputs,
    setup: ClassroomSetup,
) -> anyhow::Result<()> {
    let ClassroomOutputs { manifest, status } = outputs;
    let ClassroomSetup {
        autologin,
        commands,
    } = setup;
    if count == 0 || count > 200 {
        bail!("--count must be between 1 and 200");
    }
    let tokens: Vec<Token> = match &tokens {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.parse())
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let probe = lanterne_station::platform::init()?;
    let replay = replay
        .iter()
        .map(|p| {
            lanterne_media::replay::ReplayFile::open(p)
                .map(Arc::new)
                .with_context(|| format!("opening replay file {}", p.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut tokens = tokens.into_iter();
    let mut running = Vec::new();
    let mut entries = Vec::new();
    for i in 0..count {
        let dir = data_dir.join(format!("station-{:02}", i + 1));
        let host = format!("poste-{:02}", i + 1);
        let rgb = PALETTE[i % PALETTE.len()];
        if !Identity::is_enrolled(&dir) {
            let token = tokens
                .next()
                .with_context(|| format!("{host} is not enrolled and no token is left for it"))?;
            let mac = format!("02:00:00:00:00:{:02x}", i + 1);
            lanterne_station::enrol::enrol(&dir, &box_url, &token, &host, Some(&mac))
                .await
                .with_context(|| format!("enrolling {host}"))?;
        }
        let spec = match replay.get(i % replay.len().max(1)) {
            // Stations sharing a file start spread over its length, as a real room's
            // screens never change in step.
            Some(f) if replay.len() > 1 => {
                let same = count.div_ceil(replay.len()) as u32;
                let nth = (i / replay.len()) as u32;
                SourceSpec::ReplayDelayed {
                    file: f.clone(),
                    delay: f.duration() * nth / same.max(1),
                }
            }
            Some(f) => SourceSpec::Replay(f.clone()),
            None => SourceSpec::Live(CaptureSource::Synthetic {
                label: host.clone(),
                rgb,
            }),
        };
        // Simulated stations have no display: their screen state is kept in memory.
        let screen = Arc::new(SimulatedScreen::default());
        let system = Arc::new(if autologin.contains(&host) {
            SimulatedSystem::with_autologin()
        } else {
            SimulatedSystem::default()
        });
        let st = spawn_station_allowing(
            &dir,
            spec,
            screen.clone(),
            system.clone(),
            &probe,
            host,
            commands.clone(),
        )?;
        entries.push(ManifestEntry {
            id: st.station_id,
            name: st.name.clone(),
            rgb,
        });
        running.push(SimulatedStation {
            running: st,
            screen,
            system,
        });
    }
    let running = Arc::new(tokio::sync::Mutex::new(running));
    if let Some(path) = status {
        tokio::spawn(classroom::publish_status(path, running.clone()));
    }
    tokio::spawn(classroom::follow_orders(
        tokio::io::BufReader::new(tokio::io::stdin()),
        running.clone(),
    ));
    if let Some(path) = manifest {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&entries)?)?;
        std::fs::rename(&tmp, &path)?;
    }
    tracing::info!(count, "simulated classroom running");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
