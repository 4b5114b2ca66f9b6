//! Who may read and write the agent's files: the folder `%ProgramData%\Lanterne` and the
//! station's key are given a protected access list (nothing inherited from
//! `%ProgramData%`, whose default lets every user read and create files) that grants full
//! control to LocalSystem (the service) and the Administrators group only; [`describe`]
//! reads a file's owner and access list back, as an SDDL string, for the agent's checks.
//!
//! SDDL (Security Descriptor Definition Language) is Windows' own text form of owners and
//! access lists; going through it keeps the unsafe part to four documented calls instead of
//! building and walking ACL structures by hand.

use std::os::windows::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{LocalFree, ERROR_SUCCESS};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW,
    SetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorDacl, ACL, DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
};

use crate::Win32Error;

/// Full control for LocalSystem and Administrators, inherited by files and folders created
/// inside (`OICI`), nothing inherited from above (`P`).
pub const ADMINS_ONLY: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// A path as a NUL-terminated UTF-16 string (paths may hold unpaired surrogates, which
/// `wide::to_wide`, for `str`, cannot carry).
fn wide_path(p: &Path) -> Vec<u16> {
    p.as_os_str().encode_wide().chain(Some(0)).collect()
}

/// A security descriptor made by `ConvertStringSecurityDescriptorToSecurityDescriptorW`,
/// freed with `LocalFree`.
struct Descriptor(PSECURITY_DESCRIPTOR);

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a call that documents LocalFree as its release.
        unsafe { LocalFree(self.0) };
    }
}

impl Descriptor {
    fn from_sddl(sddl: &str) -> Result<Self, Win32Error> {
        let text = crate::wide::to_wide(sddl);
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `text` is NUL-terminated and outlives the call; `sd` receives an allocation
        // owned by the returned Descriptor.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
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
        Ok(Descriptor(sd))
    }

    fn dacl(&self) -> Result<*mut ACL, Win32Error> {
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = null_mut();
        // SAFETY: self.0 is a valid descriptor; the ACL pointer points into it and is used
        // only while `self` lives.
        let ok =
            unsafe { GetSecurityDescriptorDacl(self.0, &mut present, &mut dacl, &mut defaulted) };
        if ok == 0 || present == 0 || dacl.is_null() {
            return Err(Win32Error::last("GetSecurityDescriptorDacl"));
        }
        Ok(dacl)
    }
}

/// Replaces the access list of `path` (a file or a folder) with `sddl`'s, protected from
/// inheritance; on a folder, Windows passes its inheritable entries on to what is inside.
pub fn set_access(path: &Path, sddl: &str) -> Result<(), Win32Error> {
    let sd = Descriptor::from_sddl(sddl)?;
    let dacl = sd.dacl()?;
    let name = wide_path(path);
    // SAFETY: `name` is NUL-terminated; `dacl` points into `sd`, alive for the call; the
    // owner and group are left alone (null).
    let status = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            dacl,
            null_mut(),
        )
    };
    if status != ERROR_SUCCESS {
        return Err(Win32Error {
            call: "SetNamedSecurityInfoW",
            code: status,
        });
    }
    Ok(())
}

/// Gives `path` the [`ADMINS_ONLY`] access list.
pub fn restrict_to_admins(path: &Path) -> Result<(), Win32Error> {
    set_access(path, ADMINS_ONLY)
}

/// The owner and access list of `path` in SDDL, e.g. `O:BAD:P(A;;FA;;;SY)(A;;FA;;;BA)`.
pub fn describe(path: &Path) -> Result<String, Win32Error> {
    let name = wide_path(path);
    let info = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    let mut sd: PSECURITY_DESCRIPTOR = null_mut();
    // SAFETY: `name` is NUL-terminated; the owner and ACL out-pointers are not asked for
    // (null); `sd` receives an allocation released by `Descriptor`'s drop.
    let status = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            info,
            null_mut(),
            null_mut(),
            null_mut(),
            null_mut(),
            &mut sd,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(Win32Error {
            call: "GetNamedSecurityInfoW",
            code: status,
        });
    }
    let sd = Descriptor(sd);
    let mut text: *mut u16 = null_mut();
    let mut len: u32 = 0;
    // SAFETY: sd.0 is the descriptor just read; `text` receives a LocalAlloc'd,
    // NUL-terminated string, freed below.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd.0,
            SDDL_REVISION_1,
            info,
            &mut text,
            &mut len,
        )
    };
    if ok == 0 || text.is_null() {
        return Err(Win32Error::last(
            "ConvertSecurityDescriptorToStringSecurityDescriptorW",
        ));
    }
    // SAFETY: the call returned a NUL-terminated string at `text`.
    let s = unsafe { crate::wide::from_wide_ptr(text) };
    // SAFETY: allocated by the call above, documented to be released with LocalFree.
    unsafe { LocalFree(text.cast()) };
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lanterne-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn restricting_a_folder_succeeds_and_its_descriptor_reads_back() {
        let dir = scratch_dir("acl-set");
        restrict_to_admins(&dir).unwrap();
        let sddl = describe(&dir).unwrap();
        assert!(
            sddl.starts_with("O:S-1-") || sddl.starts_with("O:"),
            "{sddl}"
        );
        assert!(sddl.contains("D:") && sddl.contains(";;;SY)"), "{sddl}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Wine accepts the access list but does not keep it (it answers with one made from the
    /// file's Unix mode), so what Windows does with it is checked on a real PC:
    /// `cargo test -p lanterne-winsys --target x86_64-pc-windows-gnu -- --ignored` there, as
    /// an administrator.
    #[test]
    #[ignore = "Wine does not keep files' access lists: run on a real Windows PC"]
    fn a_restricted_folder_and_what_is_made_in_it_are_for_system_and_admins_only() {
        let dir = scratch_dir("acl-real");
        let before = describe(&dir).unwrap();
        restrict_to_admins(&dir).unwrap();
        let after = describe(&dir).unwrap();
        assert_ne!(before, after);
        assert!(after.contains("D:P"), "not protected: {after}");
        assert!(
            after.contains(";;;SY)") && after.contains(";;;BA)"),
            "{after}"
        );
        // No entry for users, everyone or authenticated users.
        for sid in [";BU)", ";WD)", ";AU)", ";S-1-5-32-545)"] {
            assert!(!after.contains(sid), "{sid} in {after}");
        }
        let file = dir.join("station.key.pem");
        std::fs::write(&file, b"secret").unwrap();
        let inherited = describe(&file).unwrap();
        assert!(
            inherited.contains(";;;SY)") && inherited.contains(";;;BA)"),
            "{inherited}"
        );
        assert!(!inherited.contains(";BU)"), "{inherited}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_call() {
        let e = describe(Path::new(r"C:\no\such\lanterne\file")).unwrap_err();
        assert_eq!(e.call, "GetNamedSecurityInfoW");
        assert!(set_access(Path::new(r"C:\"), "not sddl").is_err());
    }
}
