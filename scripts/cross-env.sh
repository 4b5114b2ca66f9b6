# Sourced, not run: points cargo, pkg-config, the C compiler and bindgen at the Debian 12
# arm64 sysroot (scripts/cross-sysroot.sh), and makes `cargo test --target
# aarch64-unknown-linux-gnu` run the test binaries under qemu-aarch64 (there is no
# binfmt_misc here, so they cannot be executed directly).
#
#   . scripts/cross-env.sh    # sets CROSS_SYSROOT and the variables below
CROSS_SYSROOT=$("$(dirname "${BASH_SOURCE[0]}")/cross-sysroot.sh" | tail -1)
export CROSS_SYSROOT
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_SYSROOT_DIR=$CROSS_SYSROOT
export PKG_CONFIG_LIBDIR=$CROSS_SYSROOT/usr/lib/aarch64-linux-gnu/pkgconfig:$CROSS_SYSROOT/usr/share/pkgconfig
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# The linker looks for GStreamer, GLib and libc in the sysroot (their own dependencies too).
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=$CROSS_SYSROOT"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $CROSS_SYSROOT"
# Bundled C code (SQLite) is compiled by the cross compiler against its own libc headers.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
# The v4l crate's bindings are generated from the arm64 kernel headers of the sysroot.
export BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--target=aarch64-linux-gnu --sysroot=$CROSS_SYSROOT -I$CROSS_SYSROOT/usr/include/aarch64-linux-gnu"
