//! On Windows (mingw-w64), the agent must run from its .exe alone, with no mingw DLL beside
//! it. OpenH264 is C++ and its build asks for `-lstdc++`, which the linker would resolve to
//! `libstdc++-6.dll`: this script puts a directory holding only the static `libstdc++.a` first
//! on the library search path, so the same `-lstdc++` finds the static library, and links the
//! C runtime statically too (`-static`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "windows" || env != "gnu" {
        return;
    }
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let gxx = std::env::var(format!("CXX_{}", target.replace('-', "_")))
        .unwrap_or_else(|_| format!("{}-g++", cross_prefix(&target)));
    let found = Command::new(&gxx)
        .arg("-print-file-name=libstdc++.a")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {gxx} (install mingw-w64): {e}"));
    let lib = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    assert!(
        lib.is_absolute() && lib.exists(),
        "{gxx} does not know where libstdc++.a is (got '{}')",
        lib.display()
    );
    let dir =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("static-cxx");
    std::fs::create_dir_all(&dir).expect("creating OUT_DIR/static-cxx");
    std::fs::copy(&lib, dir.join("libstdc++.a")).expect("copying libstdc++.a");
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-static");
}

/// The mingw-w64 tool prefix for a Rust Windows GNU target.
fn cross_prefix(target: &str) -> &'static str {
    if target.starts_with("i686") {
        "i686-w64-mingw32"
    } else {
        "x86_64-w64-mingw32"
    }
}
