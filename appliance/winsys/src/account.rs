//! Who runs a process: the account (SID, `DOMAIN\name`) and the groups of its access token,
//! and the Windows session it belongs to. The station's service and its session helper use
//! these to check the process at the other end of their named pipe
//! ([`crate::pipe`]), never what that process says about itself.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{LocalFree, ERROR_INSUFFICIENT_BUFFER};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{
    GetTokenInformation, LookupAccountNameW, LookupAccountSidW, TokenGroups, TokenUser, PSID,
    TOKEN_GROUPS, TOKEN_INFORMATION_CLASS, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::RemoteDesktop::ProcessIdToSessionId;
use windows_sys::Win32::System::SystemServices::{SE_GROUP_ENABLED, SE_GROUP_USE_FOR_DENY_ONLY};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcessId, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

use crate::Win32Error;

/// LocalSystem, the account Windows services run as by default.
pub const LOCAL_SYSTEM_SID: &str = "S-1-5-18";
/// LocalService.
pub const LOCAL_SERVICE_SID: &str = "S-1-5-19";
/// NetworkService.
pub const NETWORK_SERVICE_SID: &str = "S-1-5-20";
/// The local Administrators group.
pub const ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// Longest SID in bytes (`SECURITY_MAX_SID_SIZE`).
const MAX_SID_BYTES: usize = 68;
/// Account and domain names are at most 256 characters (`UNLEN`, `DNLEN` are smaller).
const MAX_NAME_CHARS: u32 = 257;

/// A SID and, when Windows can name it, its `DOMAIN\name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The SID in string form, `S-1-5-21-…-1001`.
    pub sid: String,
    /// `DOMAIN\name` (`NT AUTHORITY\SYSTEM`, `PC-12\eleve`), None when the SID has no name
    /// this PC can look up.
    pub name: Option<String>,
}

/// The account of a process's access token and the groups that count for access checks
/// (enabled, not deny-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: Principal,
    pub groups: Vec<Principal>,
}

/// The account running process `pid` (needs the right to query it: the service, as
/// LocalSystem, may query any; a user may query their own processes).
pub fn of_process(pid: u32) -> Result<Account, Win32Error> {
    // SAFETY: OpenProcess takes plain values; a non-null result is a handle we now own.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(Win32Error::last("OpenProcess"));
    }
    // SAFETY: `process` is a valid handle that nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(process) };
    let mut token = null_mut();
    // SAFETY: `process` is valid for the call; `token` receives a handle we then own.
    if unsafe { OpenProcessToken(process.as_raw_handle(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(Win32Error::last("OpenProcessToken"));
    }
    // SAFETY: OpenProcessToken succeeded: `token` is a handle nothing else owns.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    of_token(&token)
}

/// The account running this process.
pub fn of_current_process() -> Result<Account, Win32Error> {
    // SAFETY: no arguments; reads this process's id.
    of_process(unsafe { GetCurrentProcessId() })
}

/// The Windows session (0 for services, 1 and up for users' sessions) of process `pid`.
pub fn session_of_process(pid: u32) -> Result<u32, Win32Error> {
    let mut session = 0u32;
    // SAFETY: `session` is a valid out pointer for the call.
    if unsafe { ProcessIdToSessionId(pid, &mut session) } == 0 {
        return Err(Win32Error::last("ProcessIdToSessionId"));
    }
    Ok(session)
}

/// The SID (string form) of the account called `name` (`eleve`, `PC-12\eleve`, `SYSTEM`).
pub fn sid_of_name(name: &str) -> Result<String, Win32Error> {
    let wide = crate::wide::to_wide(name);
    let mut sid = [0u64; MAX_SID_BYTES.div_ceil(8)];
    let mut sid_len = MAX_SID_BYTES as u32;
    let mut domain = [0u16; MAX_NAME_CHARS as usize];
    let mut domain_len = MAX_NAME_CHARS;
    let mut kind = 0;
    // SAFETY: every buffer is valid for the length passed with it; `wide` ends with NUL.
    let ok = unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            wide.as_ptr(),
            sid.as_mut_ptr().cast(),
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return Err(Win32Error::last("LookupAccountNameW"));
    }
    sid_string(sid.as_mut_ptr().cast())
}

/// The user and groups of an access token opened with `TOKEN_QUERY`.
pub(crate) fn of_token(token: &OwnedHandle) -> Result<Account, Win32Error> {
    let user_info = token_information(token, TokenUser)?;
    // SAFETY: GetTokenInformation(TokenUser) filled the buffer with a TOKEN_USER whose SID
    // points into the same buffer, aligned for it (the buffer is of u64).
    let user_sid = unsafe { (*user_info.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let user = principal(user_sid)?;
    let groups_info = token_information(token, TokenGroups)?;
    let groups_ptr = groups_info.as_ptr().cast::<TOKEN_GROUPS>();
    // SAFETY: the buffer holds a TOKEN_GROUPS with GroupCount entries following its header,
    // all inside the buffer Windows filled.
    let entries = unsafe {
        std::slice::from_raw_parts(
            std::ptr::addr_of!((*groups_ptr).Groups)
                .cast::<windows_sys::Win32::Security::SID_AND_ATTRIBUTES>(),
            (*groups_ptr).GroupCount as usize,
        )
    };
    let mut groups = Vec::new();
    for g in entries {
        let enabled = g.Attributes & SE_GROUP_ENABLED as u32 != 0;
        if enabled && g.Attributes & SE_GROUP_USE_FOR_DENY_ONLY as u32 == 0 {
            groups.push(principal(g.Sid)?);
        }
    }
    Ok(Account { user, groups })
}

/// One class of token information, in a buffer aligned for any of its structures.
fn token_information(
    token: &OwnedHandle,
    class: TOKEN_INFORMATION_CLASS,
) -> Result<Vec<u64>, Win32Error> {
    let mut len = 0u32;
    // SAFETY: a null buffer of length 0 asks only for the length needed.
    let ok = unsafe { GetTokenInformation(token.as_raw_handle(), class, null_mut(), 0, &mut len) };
    if ok == 0 {
        let e = Win32Error::last("GetTokenInformation");
        if e.code != ERROR_INSUFFICIENT_BUFFER {
            return Err(e);
        }
    }
    let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
    let size = (buf.len() * 8) as u32;
    // SAFETY: `buf` is valid for `size` bytes.
    let ok = unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            class,
            buf.as_mut_ptr().cast(),
            size,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(Win32Error::last("GetTokenInformation"));
    }
    Ok(buf)
}

/// The string form and name of a valid SID.
fn principal(sid: PSID) -> Result<Principal, Win32Error> {
    Ok(Principal {
        sid: sid_string(sid)?,
        name: account_name(sid),
    })
}

pub(crate) fn sid_string(sid: PSID) -> Result<String, Win32Error> {
    let mut text = null_mut();
    // SAFETY: `sid` is a valid SID; `text` receives a LocalAlloc'd NUL-terminated string.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(Win32Error::last("ConvertSidToStringSidW"));
    }
    // SAFETY: `text` is NUL-terminated; it is freed once, after being copied.
    let s = unsafe { crate::wide::from_wide_ptr(text) };
    // SAFETY: `text` came from LocalAlloc inside ConvertSidToStringSidW.
    unsafe { LocalFree(text.cast()) };
    Ok(s)
}

/// `DOMAIN\name` of a SID (just `name` when it has no domain), None when unknown here.
fn account_name(sid: PSID) -> Option<String> {
    let mut name = [0u16; MAX_NAME_CHARS as usize];
    let mut name_len = MAX_NAME_CHARS;
    let mut domain = [0u16; MAX_NAME_CHARS as usize];
    let mut domain_len = MAX_NAME_CHARS;
    let mut kind = 0;
    // SAFETY: both buffers are valid for the lengths passed with them.
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            sid,
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return None;
    }
    let name = String::from_utf16_lossy(&name[..name_len as usize]);
    let domain = String::from_utf16_lossy(&domain[..domain_len as usize]);
    Some(if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_an_account_with_a_sid_and_its_session() {
        let me = of_current_process().unwrap();
        assert!(me.user.sid.starts_with("S-1-"), "{me:?}");
        // SAFETY: no arguments.
        let pid = unsafe { GetCurrentProcessId() };
        session_of_process(pid).unwrap();
        // The name Windows gives this account leads back to its SID.
        if let Some(name) = &me.user.name {
            assert_eq!(sid_of_name(name).unwrap(), me.user.sid);
        }
    }

    #[test]
    fn well_known_accounts_are_found_by_name_and_unknown_ones_are_errors() {
        assert_eq!(sid_of_name("SYSTEM").unwrap(), LOCAL_SYSTEM_SID);
        assert!(sid_of_name("personne-de-ce-nom-ici").is_err());
        assert!(of_process(u32::MAX - 3).is_err(), "no such process");
    }
}
