//! Windows' known folders, asked of the shell rather than read from the environment: a
//! service's environment may not say where they are (Wine's service manager gives its
//! services `ProgramData=C:\users\Public`, while its programs and its installer use
//! `C:\ProgramData`), and the agent's data folder must be the one its installer wrote.

use std::ffi::OsString;
use std::os::windows::ffi::OsStringExt;
use std::path::PathBuf;
use std::ptr::null_mut;

use windows_sys::Win32::System::Com::CoTaskMemFree;
use windows_sys::Win32::UI::Shell::{FOLDERID_ProgramData, SHGetKnownFolderPath, KF_FLAG_DEFAULT};

/// The folder for application data shared by every account (`C:\ProgramData` on a standard
/// installation; the MSI's `CommonAppDataFolder`).
pub fn program_data() -> Result<PathBuf, std::io::Error> {
    let mut text: windows_sys::core::PWSTR = null_mut();
    // SAFETY: the folder id is a static GUID, no token (the current one) and `text` receives
    // a string the shell allocates, freed below on every path.
    let hr = unsafe {
        SHGetKnownFolderPath(
            &FOLDERID_ProgramData,
            KF_FLAG_DEFAULT as u32,
            null_mut(),
            &mut text,
        )
    };
    let path = if hr >= 0 && !text.is_null() {
        let mut len = 0;
        // SAFETY: on success `text` is a NUL-terminated UTF-16 string.
        while unsafe { *text.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: the `len` units before the NUL are readable.
        let units = unsafe { std::slice::from_raw_parts(text, len) };
        Ok(PathBuf::from(OsString::from_wide(units)))
    } else {
        Err(std::io::Error::other(format!(
            "SHGetKnownFolderPath(ProgramData) failed (HRESULT {hr:#010x})"
        )))
    };
    // SAFETY: `text` is the shell's allocation (or null, which CoTaskMemFree accepts).
    unsafe { CoTaskMemFree(text as *const _) };
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_data_is_a_full_existing_folder() {
        let p = program_data().unwrap();
        assert!(p.is_absolute(), "{}", p.display());
        assert!(p.is_dir(), "{}", p.display());
    }
}
