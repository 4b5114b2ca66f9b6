//! Whether this program runs under Wine, for tests that check what Wine does not enforce
//! (Wine 8.0 lets a second "first instance" of a named pipe be created).

use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

/// True under Wine: its ntdll exports `wine_get_version`, Windows' does not.
pub fn detected() -> bool {
    let ntdll = crate::wide::to_wide("ntdll.dll");
    // SAFETY: the name ends with NUL; ntdll is loaded in every process and never unloaded.
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return false;
    }
    // SAFETY: `module` is ntdll's handle; the symbol name ends with NUL.
    unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }.is_some()
}
