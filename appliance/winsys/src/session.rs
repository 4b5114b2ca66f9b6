//! Users' Windows sessions, for the station service (running as LocalSystem in session 0):
//! which session is at the console, starting the session helper in it as the logged-in user
//! (`WTSQueryUserToken`, `CreateProcessAsUserW` on `winsta0\default` with the user's own
//! environment), watching and stopping that process, and logging a session off.
//!
//! `WTSQueryUserToken` needs the `SeTcbPrivilege` that LocalSystem holds: from an
//! administrator's console these calls fail with error 1314.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Environment::{CreateEnvironmentBlock, DestroyEnvironmentBlock};
use windows_sys::Win32::System::RemoteDesktop::{
    WTSGetActiveConsoleSessionId, WTSLogoffSession, WTSQueryUserToken, WTS_CURRENT_SERVER_HANDLE,
};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, GetExitCodeProcess, TerminateProcess, WaitForSingleObject,
    CREATE_NO_WINDOW, CREATE_UNICODE_ENVIRONMENT, PROCESS_INFORMATION, STARTUPINFOW,
};

use crate::Win32Error;

/// The session attached to the physical console, None while none is (e.g. during a switch).
pub fn active_console_session() -> Option<u32> {
    // SAFETY: no arguments.
    let id = unsafe { WTSGetActiveConsoleSessionId() };
    (id != u32::MAX).then_some(id)
}

/// Logs session `id` off without waiting for it to end.
pub fn log_off(id: u32) -> Result<(), Win32Error> {
    // SAFETY: plain values; the current server's pseudo-handle needs no closing.
    if unsafe { WTSLogoffSession(WTS_CURRENT_SERVER_HANDLE, id, 0) } == 0 {
        return Err(Win32Error::last("WTSLogoffSession"));
    }
    Ok(())
}

/// A process started in a user's session, which this handle may wait for and end.
#[derive(Debug)]
pub struct SessionProcess {
    process: OwnedHandle,
    pub pid: u32,
}

impl SessionProcess {
    /// Waits up to `timeout` for the process to end: Some(exit code) when it has.
    pub fn wait(&self, timeout: Duration) -> Result<Option<u32>, Win32Error> {
        let ms = timeout.as_millis().min(u128::from(u32::MAX - 1)) as u32;
        // SAFETY: the process handle is ours and valid.
        match unsafe { WaitForSingleObject(self.process.as_raw_handle(), ms) } {
            WAIT_OBJECT_0 => {
                let mut code = 0;
                // SAFETY: as above; `code` is a valid out pointer.
                if unsafe { GetExitCodeProcess(self.process.as_raw_handle(), &mut code) } == 0 {
                    return Err(Win32Error::last("GetExitCodeProcess"));
                }
                Ok(Some(code))
            }
            WAIT_TIMEOUT => Ok(None),
            _ => Err(Win32Error::last("WaitForSingleObject")),
        }
    }

    /// Ends the process (exit code 1) if it still runs.
    pub fn kill(&self) -> Result<(), Win32Error> {
        if self.wait(Duration::ZERO)?.is_some() {
            return Ok(());
        }
        // SAFETY: the process handle is ours (opened with all access by CreateProcess).
        if unsafe { TerminateProcess(self.process.as_raw_handle(), 1) } == 0 {
            return Err(Win32Error::last("TerminateProcess"));
        }
        Ok(())
    }
}

/// The command line Windows programs parse back into `program` and `args` (the rules of
/// `CommandLineToArgvW`): each argument quoted when it has a space, a tab or a quote, with
/// backslashes doubled before a quote.
pub fn command_line(program: &Path, args: &[&str]) -> String {
    let program = program.to_string_lossy();
    let mut line = String::new();
    for (i, arg) in std::iter::once(program.as_ref())
        .chain(args.iter().copied())
        .enumerate()
    {
        if i > 0 {
            line.push(' ');
        }
        if !arg.is_empty() && !arg.contains([' ', '\t', '"']) {
            line.push_str(arg);
            continue;
        }
        line.push('"');
        let mut backslashes = 0;
        for c in arg.chars() {
            match c {
                '\\' => backslashes += 1,
                '"' => {
                    line.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                    line.push('"');
                    backslashes = 0;
                }
                c => {
                    line.extend(std::iter::repeat_n('\\', backslashes));
                    line.push(c);
                    backslashes = 0;
                }
            }
        }
        line.extend(std::iter::repeat_n('\\', backslashes * 2));
        line.push('"');
    }
    line
}

/// Starts `program args` in session `id` as the user logged in there, on their interactive
/// desktop (`winsta0\default`), with their environment and no console window.
pub fn start_as_session_user(
    id: u32,
    program: &Path,
    args: &[&str],
) -> Result<SessionProcess, Win32Error> {
    let mut token = null_mut();
    // SAFETY: `token` receives a primary token handle we then own.
    if unsafe { WTSQueryUserToken(id, &mut token) } == 0 {
        return Err(Win32Error::last("WTSQueryUserToken"));
    }
    // SAFETY: the call succeeded: the handle is ours.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    let mut environment = null_mut();
    // SAFETY: `token` is valid; `environment` receives a block freed below.
    if unsafe { CreateEnvironmentBlock(&mut environment, token.as_raw_handle(), 0) } == 0 {
        return Err(Win32Error::last("CreateEnvironmentBlock"));
    }
    let application = crate::wide::to_wide(&program.to_string_lossy());
    // CreateProcessW may write into the command line: a buffer of our own.
    let mut line = crate::wide::to_wide(&command_line(program, args));
    let mut desktop = crate::wide::to_wide(r"winsta0\default");
    let startup = STARTUPINFOW {
        cb: std::mem::size_of::<STARTUPINFOW>() as u32,
        lpDesktop: desktop.as_mut_ptr(),
        // SAFETY: STARTUPINFOW is plain data; all zero is its "nothing set" value.
        ..unsafe { std::mem::zeroed() }
    };
    // SAFETY: plain data, filled by the call.
    let mut info: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: every string ends with NUL and outlives the call; `environment` is the block
    // CreateEnvironmentBlock made (UTF-16, hence CREATE_UNICODE_ENVIRONMENT).
    let ok = unsafe {
        CreateProcessAsUserW(
            token.as_raw_handle(),
            application.as_ptr(),
            line.as_mut_ptr(),
            null(),
            null(),
            0,
            CREATE_UNICODE_ENVIRONMENT | CREATE_NO_WINDOW,
            environment,
            null(),
            &startup,
            &mut info,
        )
    };
    let failed = (ok == 0).then(|| Win32Error::last("CreateProcessAsUserW"));
    // SAFETY: the block came from CreateEnvironmentBlock and is freed once.
    unsafe { DestroyEnvironmentBlock(environment) };
    if let Some(e) = failed {
        return Err(e);
    }
    // SAFETY: CreateProcessAsUserW succeeded: both handles are ours; the thread's is not
    // needed.
    unsafe { CloseHandle(info.hThread) };
    Ok(SessionProcess {
        // SAFETY: as above.
        process: unsafe { OwnedHandle::from_raw_handle(info.hProcess) },
        pid: info.dwProcessId,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_what_windows_would_split() {
        let p = Path::new(r"C:\Program Files\Lanterne\lanterne-station.exe");
        assert_eq!(
            command_line(
                p,
                &["session", "--service-user", r"PC\élève x", "", r#"a"b\"#]
            ),
            r#""C:\Program Files\Lanterne\lanterne-station.exe" session --service-user "PC\élève x" "" "a\"b\\""#
        );
    }
}
