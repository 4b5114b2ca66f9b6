//! The station's Windows service: what `lanterne-station run` does on Linux (the identity,
//! the link to the box, power and log off, commands from the PC's allow-list), with the
//! session helper behind the named pipe ([`super::session_pipe`]). Two ways to run it:
//!
//! * `lanterne-station.exe run`: in a console, as an administrator, until Ctrl+C. The session
//!   helper is started by hand (`lanterne-station.exe session --service-user <account>`).
//! * `lanterne-station.exe service`: under the service control manager, installed as
//!   [`SERVICE_NAME`] running as LocalSystem. It also keeps the helper running in the
//!   session at the PC's console, as the user logged in there ([`HelperSupervisor`]): started
//!   when a user logs on (the console session is polled every [`POLL`]), started again with
//!   a growing delay when it exits, ended when another session takes the console and when
//!   the service stops.
//!
//! The helper the service starts is told to trust the service's own account (LocalSystem on
//! a real PC), so the two always agree on who the service is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use lanterne_winsys::session::{self as wts, SessionProcess};
use tracing::{info, warn};
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};

use super::session_pipe::{self, HelperPolicy};
use super::system::WindowsSystem;
use crate::commands::AllowList;
use crate::config::StationConfig;
use crate::identity::Identity;

/// The service's name for the service control manager (`sc start LanterneStation`).
pub const SERVICE_NAME: &str = "LanterneStation";
/// The name shown in the Services console.
pub const DISPLAY_NAME: &str = "Lanterne station";
/// How often the supervisor looks at the console session and its helper.
pub const POLL: Duration = Duration::from_millis(500);
/// Delays before starting the helper again after it exited: doubling up to the last.
const FIRST_RESTART: Duration = Duration::from_secs(1);
const LAST_RESTART: Duration = Duration::from_secs(60);
/// A helper that ran this long exited for a reason of its own: the delay starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// What the station service runs with.
#[derive(Debug, Clone)]
pub struct ServiceSetup {
    pub data_dir: PathBuf,
    pub config: PathBuf,
    /// Start the session helper in the console session (the service); `run` does not.
    pub start_helpers: bool,
}

/// The station service until the link ends or `stop` completes.
pub async fn run(
    setup: &ServiceSetup,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let station_config = StationConfig::load(&setup.config)?;
    let commands = Arc::new(AllowList::new(
        &setup.config,
        station_config.commands.clone(),
    ));
    info!(
        count = station_config.commands.len(),
        "commands the box may run here are listed in {}",
        setup.config.display()
    );
    let identity = Arc::new(Identity::load(&setup.data_dir)?);
    let helper = &station_config.session;
    let pipe = helper.socket.clone().into_os_string();
    let sessions = session_pipe::listen(
        &pipe,
        HelperPolicy::new(helper.users.clone(), helper.groups.clone()),
        session_pipe::Greeting {
            station_id: identity.enrolment.station_id,
            name: identity.enrolment.name.clone(),
        },
    )?;
    let st = crate::spawn_service(
        identity,
        Arc::new(WindowsSystem),
        sessions,
        super::hostname(),
        commands,
    );
    info!(name = %st.name, "station service running");
    let supervisor = if setup.start_helpers {
        let me = lanterne_winsys::account::of_current_process()
            .context("reading the service's own account")?;
        let program = std::env::current_exe().context("finding lanterne-station.exe")?;
        Some(HelperSupervisor::start(program, pipe, me.user.sid))
    } else {
        None
    };
    let result = tokio::select! {
        r = st.task => r.context("station link task"),
        _ = stop => Ok(()),
    };
    if let Some(s) = supervisor {
        tokio::task::spawn_blocking(move || s.stop()).await?;
    }
    result
}

/// Keeps one session helper running in the console session, on a thread of its own.
#[derive(Debug)]
pub struct HelperSupervisor {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl HelperSupervisor {
    /// Starts supervising: `program session --socket <pipe> --service-user <service_sid>`.
    pub fn start(program: PathBuf, pipe: OsString, service_sid: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            supervise(&program, &pipe.to_string_lossy(), &service_sid, &flag)
        });
        HelperSupervisor { stop, thread }
    }

    /// Ends the helper and the supervision.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

fn supervise(program: &Path, pipe: &str, service_sid: &str, stop: &AtomicBool) {
    let args = ["session", "--socket", pipe, "--service-user", service_sid];
    let mut running: Option<(SessionProcess, u32, Instant)> = None;
    let mut delay = FIRST_RESTART;
    let mut not_before = Instant::now();
    let mut last_error = String::new();
    while !stop.load(Ordering::SeqCst) {
        let console = wts::active_console_session();
        if let Some((helper, session, started)) = &running {
            match helper.wait(POLL) {
                Ok(None) if console == Some(*session) => continue,
                Ok(None) => {
                    info!(
                        session,
                        "the console moved to another session: ending its helper"
                    );
                    let _ = helper.kill();
                }
                Ok(Some(code)) => {
                    delay = if started.elapsed() >= HEALTHY_RUN {
                        FIRST_RESTART
                    } else {
                        (delay * 2).min(LAST_RESTART)
                    };
                    not_before = Instant::now() + delay;
                    info!(
                        session,
                        code,
                        "the session helper exited; starting it again in {} s",
                        delay.as_secs()
                    );
                }
                Err(e) => warn!("cannot watch the session helper: {e}"),
            }
            running = None;
            continue;
        }
        // Session 0 is the services': no one logs in there.
        match console.filter(|&s| s != 0) {
            Some(session) if Instant::now() >= not_before => {
                match wts::start_as_session_user(session, program, &args) {
                    Ok(p) => {
                        info!(session, pid = p.pid, "session helper started");
                        last_error.clear();
                        running = Some((p, session, Instant::now()));
                    }
                    Err(e) => {
                        // No user logged in yet (error 1008) is the usual one: said once.
                        let why = e.to_string();
                        if why != last_error {
                            info!(session, "cannot start the session helper yet: {why}");
                            last_error = why;
                        }
                        std::thread::sleep(POLL);
                    }
                }
            }
            _ => std::thread::sleep(POLL),
        }
    }
    if let Some((helper, _, _)) = running {
        if let Err(e) = helper.kill() {
            warn!("cannot end the session helper: {e}");
        }
    }
}

/// What the service control manager's thread runs with.
static SETUP: OnceLock<ServiceSetup> = OnceLock::new();

/// Runs the station as the Windows service [`SERVICE_NAME`]; returns once it has stopped.
/// Fails at once when not started by the service control manager.
pub fn run_under_service_manager(setup: ServiceSetup) -> anyhow::Result<()> {
    let _ = SETUP.set(setup);
    lanterne_winsys::service::run_dispatcher(SERVICE_NAME, service_main).context(
        "not started by the service control manager (use `run` in a console, or install the \
         service: sc create LanterneStation binPath= \"...\\lanterne-station.exe service\")",
    )
}

fn service_main(_arguments: Vec<OsString>) {
    if let Err(e) = service_body() {
        tracing::error!("the station service failed: {e:#}");
    }
}

fn service_body() -> anyhow::Result<()> {
    let setup = SETUP.get().context("no service setup")?.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stop_tx = Some(stop_tx);
    let status = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            if let Some(tx) = stop_tx.take() {
                let _ = tx.send(());
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })?;
    let report = |state, accept, code| {
        status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code: ServiceExitCode::Win32(code),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        })
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
    )?;
    let result = tokio::runtime::Runtime::new()
        .context("starting the runtime")
        .and_then(|rt| {
            rt.block_on(run(&setup, async {
                let _ = stop_rx.await;
            }))
        });
    if let Err(e) = &result {
        tracing::error!("the station service stops: {e:#}");
    }
    // ERROR_SERVICE_SPECIFIC_ERROR would need a code of our own; a generic failure (1) is
    // what the Services console shows, with the reason in the log.
    report(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        u32::from(result.is_err()),
    )?;
    Ok(())
}
