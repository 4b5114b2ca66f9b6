//! The station service's named pipe: created with a security descriptor that keeps it to
//! the service and the PC's interactive users, and the process at the other end of a
//! connected pipe, as Windows knows it.
//!
//! The pipe's DACL ([`SERVICE_PIPE_SDDL`]): LocalSystem and the Administrators full control;
//! interactive users (`IU`, whoever is logged in at the PC) read and write, but not
//! `FILE_CREATE_PIPE_INSTANCE`, so a student's program cannot open its own instance of the
//! pipe and pose as the service. `first_pipe_instance` makes creating the first instance fail
//! when the name is already taken, and remote clients are rejected.

use std::ffi::{c_void, OsStr};
use std::os::windows::io::{AsHandle, AsRawHandle};
use std::ptr::null_mut;

use tokio::net::windows::named_pipe::{NamedPipeServer, PipeMode, ServerOptions};
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetSecurityInfo, SDDL_REVISION_1,
    SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES,
};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};

use crate::Win32Error;

/// Protected DACL: SYSTEM and Administrators all access; interactive users
/// `FILE_GENERIC_READ | FILE_GENERIC_WRITE` without `FILE_CREATE_PIPE_INSTANCE` (0x4).
pub const SERVICE_PIPE_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12019b;;;IU)";

/// A security descriptor made from SDDL, freed when dropped.
struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

impl SecurityDescriptor {
    fn from_sddl(sddl: &str) -> Result<Self, Win32Error> {
        let wide = crate::wide::to_wide(sddl);
        let mut sd = null_mut();
        // SAFETY: `wide` ends with NUL; `sd` receives a LocalAlloc'd descriptor we own.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                null_mut(),
            )
        };
        if ok == 0 {
            return Err(Win32Error::last(
                "ConvertStringSecurityDescriptorToSecurityDescriptorW",
            ));
        }
        Ok(SecurityDescriptor(sd))
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: the descriptor was LocalAlloc'd by the conversion and is freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// Creates one instance of the service's pipe `name` (`\\.\pipe\…`) with
/// [`SERVICE_PIPE_SDDL`], in byte mode, rejecting remote clients. `first`: fail if any
/// instance of that name exists already (another service, or a squatter). Needs a tokio
/// runtime.
pub fn create_service_pipe(name: &OsStr, first: bool) -> std::io::Result<NamedPipeServer> {
    let sd = SecurityDescriptor::from_sddl(SERVICE_PIPE_SDDL)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.0,
        bInheritHandle: 0,
    };
    let mut options = ServerOptions::new();
    options
        .first_pipe_instance(first)
        .reject_remote_clients(true)
        .pipe_mode(PipeMode::Byte)
        .access_inbound(true)
        .access_outbound(true);
    // SAFETY: `attributes` is a valid SECURITY_ATTRIBUTES whose descriptor lives until the
    // call returns (Windows copies it into the pipe object).
    unsafe {
        options.create_with_security_attributes_raw(
            name,
            std::ptr::addr_of_mut!(attributes).cast::<c_void>(),
        )
    }
}

/// The process id of the client connected to this end of a pipe (server side).
pub fn client_process_id(pipe: &impl AsHandle) -> Result<u32, Win32Error> {
    let mut pid = 0;
    // SAFETY: the handle is valid while borrowed; `pid` is a valid out pointer. On a handle
    // that is not a pipe the call fails.
    let ok = unsafe { GetNamedPipeClientProcessId(pipe.as_handle().as_raw_handle(), &mut pid) };
    if ok == 0 {
        return Err(Win32Error::last("GetNamedPipeClientProcessId"));
    }
    Ok(pid)
}

/// The process id of the server at the other end of a pipe (client side).
pub fn server_process_id(pipe: &impl AsHandle) -> Result<u32, Win32Error> {
    let mut pid = 0;
    // SAFETY: as in `client_process_id`.
    let ok = unsafe { GetNamedPipeServerProcessId(pipe.as_handle().as_raw_handle(), &mut pid) };
    if ok == 0 {
        return Err(Win32Error::last("GetNamedPipeServerProcessId"));
    }
    Ok(pid)
}

/// The SID (string form) of the owner of the pipe object: the account whose process created
/// it (for LocalSystem, SYSTEM or the Administrators group, by Windows' default-owner
/// policy). Readable with the `READ_CONTROL` that [`SERVICE_PIPE_SDDL`] gives interactive
/// users, where the service's process token may not be.
pub fn owner_sid(pipe: &impl AsHandle) -> Result<String, Win32Error> {
    let mut owner = null_mut();
    let mut sd = null_mut();
    // SAFETY: the handle is valid while borrowed; `owner` points into `sd`, which Windows
    // LocalAlloc'd and we free once, after reading the owner.
    let code = unsafe {
        GetSecurityInfo(
            pipe.as_handle().as_raw_handle(),
            SE_KERNEL_OBJECT,
            OWNER_SECURITY_INFORMATION,
            &mut owner,
            null_mut(),
            null_mut(),
            null_mut(),
            &mut sd,
        )
    };
    if code != 0 {
        return Err(Win32Error {
            call: "GetSecurityInfo",
            code,
        });
    }
    let sd = SecurityDescriptor(sd);
    let sid = crate::account::sid_string(owner);
    drop(sd);
    sid
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::windows::named_pipe::ClientOptions;

    #[test]
    fn the_pipe_sddl_is_valid_and_bad_sddl_is_an_error() {
        SecurityDescriptor::from_sddl(SERVICE_PIPE_SDDL).unwrap();
        assert!(SecurityDescriptor::from_sddl("D:(pas du SDDL").is_err());
    }

    #[tokio::test]
    async fn each_end_knows_the_other_process_and_the_name_is_taken_once() {
        let name = format!(r"\\.\pipe\lanterne-winsys-test-{}", std::process::id());
        let server = create_service_pipe(OsStr::new(&name), true).unwrap();
        // A second "first" instance of the same name is refused (by Windows: Wine 8.0 does
        // not enforce it).
        if !crate::wine::detected() {
            assert!(create_service_pipe(OsStr::new(&name), true).is_err());
        }
        let client = ClientOptions::new().open(&name).unwrap();
        server.connect().await.unwrap();
        let me = std::process::id();
        assert_eq!(client_process_id(&server).unwrap(), me);
        assert_eq!(server_process_id(&client).unwrap(), me);
        assert!(owner_sid(&client).unwrap().starts_with("S-1-"));
        // A file is not a pipe.
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        assert!(client_process_id(&file).is_err());
    }
}
