//! The entry point Windows' service control manager calls: `windows-service` makes it with a
//! macro whose expansion is `unsafe`, so it lives here. The station registers its control
//! handler and reports its status with that crate's safe API.

use std::ffi::OsString;
use std::sync::OnceLock;

/// The service's body, set once by [`run_dispatcher`].
static SERVICE_MAIN: OnceLock<fn(Vec<OsString>)> = OnceLock::new();

windows_service::define_windows_service!(ffi_service_main, call_service_main);

fn call_service_main(arguments: Vec<OsString>) {
    if let Some(main) = SERVICE_MAIN.get() {
        main(arguments);
    }
}

/// Hands this process to the service control manager as service `name`, which runs `main`
/// on a thread of its own; returns when the service has stopped. Fails when the process was
/// not started by the service control manager.
pub fn run_dispatcher(name: &str, main: fn(Vec<OsString>)) -> Result<(), windows_service::Error> {
    let _ = SERVICE_MAIN.set(main);
    windows_service::service_dispatcher::start(name, ffi_service_main)
}
