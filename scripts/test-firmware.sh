#!/usr/bin/env bash
# Builds and tests the front-panel firmware and its host-side logic:
#   1. installs the thumbv6m-none-eabi Rust target if it is missing (idempotent);
#   2. builds the RP2040 firmware ELF in release mode with warnings denied, plus clippy;
#   3. converts it to UF2 with scripts/firmware-uf2.sh (which verifies the result);
#   4. runs the host tests of the no_std logic the firmware is made of
#      (lanterne-panel-protocol and lanterne-panel-logic) and checks that the protocol crate
#      builds for the thumb target on its own;
#   5. if node is installed: runs the firmware ELF in the rp2040js emulator against the box's
#      real serial backend (board/panel/tests/emulated_firmware.rs). LANTERNE_SKIP_EMULATOR=1
#      skips this step.
#
# Run from anywhere:  scripts/test-firmware.sh
# Outputs: firmware/target/thumbv6m-none-eabi/release/lanterne-panel-firmware{,.uf2}
# Host build artefacts go to $CARGO_TARGET_DIR (default: /work/target-panel if /work exists,
# else the repository's target/).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host_target_dir="${CARGO_TARGET_DIR:-}"
if [[ -z "$host_target_dir" ]]; then
    if [[ -d /work ]]; then host_target_dir=/work/target-panel; else host_target_dir="$repo/target"; fi
fi

step() { printf '\n==> %s\n' "$*"; }

step "thumbv6m-none-eabi target"
if ! rustup target list --installed | grep -qx thumbv6m-none-eabi; then
    rustup target add thumbv6m-none-eabi
fi

step "firmware release build (warnings are errors)"
(
    cd "$repo/firmware"
    # firmware/ has its own target dir; the thumb target comes from firmware/.cargo/config.toml.
    unset CARGO_TARGET_DIR
    RUSTFLAGS="-D warnings" cargo build --release --locked
    cargo clippy --release --locked -- -D warnings
    cargo fmt --check
)

step "UF2"
"$repo/scripts/firmware-uf2.sh"

step "host tests of the panel protocol and logic"
(
    cd "$repo"
    export CARGO_TARGET_DIR="$host_target_dir"
    cargo test -p lanterne-panel-protocol -p lanterne-panel-logic
    cargo build -p lanterne-panel-protocol -p lanterne-panel-logic --target thumbv6m-none-eabi
)

if [[ "${LANTERNE_SKIP_EMULATOR:-0}" == 1 ]]; then
    step "emulator: skipped (LANTERNE_SKIP_EMULATOR=1)"
elif ! command -v node >/dev/null; then
    step "emulator: skipped (node not installed)"
else
    step "firmware in the rp2040js emulator, driven by the box's serial backend"
    (cd "$repo/firmware/emulator" && npm ci --no-audit --no-fund --silent)
    (
        cd "$repo"
        export CARGO_TARGET_DIR="$host_target_dir"
        cargo test -p lanterne-panel --test emulated_firmware -- --ignored
    )
fi

step "firmware checks passed"
