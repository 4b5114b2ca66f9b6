#!/usr/bin/env bash
# Runs every Lanterne test on this machine: formatting and lints, the Rust unit and scenario
# tests (station link, enrolment, X11 capture under Xvfb, bad input), the firmware build and
# its host-side logic tests, the systemd units' exposure, the Windows station agent under
# Wine, the browser tests in headless Chromium (and WebKit), then release builds: the aarch64
# cross-build with its tests under qemu-aarch64, the four Debian packages (built, checked, the
# amd64 box installed and run), and the SD-card image (built under emulation, then booted
# under qemu-system-aarch64).
#
#   sudo scripts/test.sh
#   sudo LANTERNE_TEST_PACKAGES=0 scripts/test.sh   # without the aarch64, package and image
#                                                   # steps (a quicker run while developing)
#
# Installs what it needs first (scripts/setup.sh). Ends with "N passed, M failed" and each
# step's time, and fails if any test failed or if no test ran at all.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# The build directories of one run (debug, Windows, aarch64 release, firmware) and the SD-card
# image share one disk; a CI run once filled it at the last step. Two settings that change
# no test keep them small: no incremental compilation caches (this is one build, not an
# edit-compile loop; they were 17 GB of a developer's target/), and debug builds with line
# tables only (panics and backtraces keep their file and line; a developer's own
# `cargo build` keeps full debug information, these apply to this script only).
export CARGO_INCREMENTAL=0
export CARGO_PROFILE_DEV_DEBUG=line-tables-only

scripts/setup.sh || exit 1
setup_s=$SECONDS

LOG_DIR=$(mktemp -d)
# A run from a clean clone took about 14 GB at its fullest (the build directories, 12.6 GB,
# and the image's work files); said first, rather than as "No space left on device" at the
# end.
free_mb=$(df -Pm . | awk 'NR == 2 { print $4 }')
if [ "$free_mb" -lt 15360 ]; then
  echo "warning: $((free_mb / 1024)) GB free on this disk; a run from a clean clone needs about 15 GB" >&2
fi
PACKAGES=${LANTERNE_TEST_PACKAGES:-1}

# The SD-card image's base system (Debian's arm64 packages configured under emulation, the
# longest part of the image: about 17 minutes of one core) needs none of the builds below,
# so it starts now, in the background, at the lowest CPU priority (and the idle I/O class,
# where the I/O scheduler has one): it runs in the time the other steps leave idle and does
# not slow them down. The image step waits for it.
image_base_pid=
if [ "$PACKAGES" = 1 ]; then
  # In a session of its own, so that an interrupted run stops it with everything it started.
  # A new session is also a new scheduler autogroup, which competes with this one as an
  # equal whatever its processes' nice values (sched(7), "The autogroup feature"): the
  # group's own nice value is set too, or the job would take a whole core from the tests.
  # shellcheck disable=SC2016
  setsid bash -c '{ echo 19 > /proc/self/autogroup; } 2>/dev/null
    exec nice -n 19 ionice -c 3 scripts/build-image.sh --base-only' >"$LOG_DIR/image-base.log" 2>&1 &
  image_base_pid=$!
  trap '[ -z "$image_base_pid" ] || kill -- "-$image_base_pid" 2>/dev/null' EXIT
fi
passed=0
failed=0
problems=()

count_cargo() { # adds up the "test result:" lines of a cargo test log
  local p f
  read -r p f < <(awk '/^test result:/ { for (i = 1; i < NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
      END { print p + 0, f + 0 }' "$1")
  passed=$((passed + p))
  failed=$((failed + f))
}

# step name: prints the step's heading and notes when it started (the summary at the end
# says how long each step took, so that the README can say which parts take longest).
step_names=()
step_starts=()
step_free=()
free_gb() { df -Pm . | awk 'NR == 2 { printf "%.1f", $4 / 1024 }'; }
step() {
  step_names+=("$1")
  step_starts+=("$SECONDS")
  step_free+=("$(free_gb)")
  echo "==> $1"
}

run_step() { # name, command...
  local name=$1; shift
  step "$name"
  if ! "$@"; then
    problems+=("$name")
    return 1
  fi
}

run_step "cargo fmt --check" cargo fmt --all --check
run_step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
# The scenario tests and the browser tests start the real binaries.
run_step "cargo build" cargo build --workspace --bins

step "cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee "$LOG_DIR/cargo.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || problems+=("cargo test")
count_cargo "$LOG_DIR/cargo.log"

if [ -x scripts/test-firmware.sh ]; then
  step "firmware"
  # Host-side panel tests share this build's target directory.
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" scripts/test-firmware.sh 2>&1 | tee "$LOG_DIR/firmware.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || problems+=("firmware")
  count_cargo "$LOG_DIR/firmware.log"
fi

# counted_step name log command...: runs a script that ends with cargo-style "test result:"
# lines and adds them to the totals.
counted_step() {
  local name=$1 log=$2; shift 2
  step "$name"
  "$@" 2>&1 | tee "$LOG_DIR/$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || problems+=("$name")
  count_cargo "$LOG_DIR/$log"
}
counted_step "systemd units" units.log scripts/test-units.sh
# The Windows station agent: cross-built for Windows, its unit tests under Wine, and the Wine
# scenarios against a real box, and the MSI installed under Wine (about 10 minutes cold).
counted_step "Windows agent under Wine" windows.log scripts/test-windows.sh
if [ -f tests/e2e/package.json ]; then
  step "browser tests"
  (cd tests/e2e && node --test --test-reporter=tap) 2>&1 | tee "$LOG_DIR/e2e.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || problems+=("browser tests")
  p=$(grep -E '^# pass [0-9]+' "$LOG_DIR/e2e.log" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$LOG_DIR/e2e.log" | tail -1 | awk '{print $3}')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
fi

# Release builds, as people install them: the box and the agent for both architectures. Last,
# so that the image's base system has had as much idle time as possible.
if [ "$PACKAGES" = 1 ]; then
  # The box and the agent for aarch64 (Raspberry Pi features on), the wire, privacy and panel
  # tests under qemu-aarch64.
  counted_step "aarch64 cross-build" cross.log scripts/cross-build.sh
  counted_step "Debian packages" packages.log bash -c 'scripts/build-packages.sh && scripts/test-packages.sh'
  step "SD-card image: rest of the base system (started first, in the background)"
  wait "$image_base_pid"
  base_status=$?
  image_base_pid=
  if [ $base_status -eq 0 ]; then
    tail -n 4 "$LOG_DIR/image-base.log"
    # The image from the arm64 package just built, booted under qemu-system-aarch64 (sign-in
    # over HTTPS, a simulated station from target/debug enrolled, its tile online).
    counted_step "SD-card image" image.log bash -c 'scripts/build-image.sh && scripts/test-image.sh'
  else
    tail -n 30 "$LOG_DIR/image-base.log"
    echo "the image's base system failed to build (its log is above)"
    problems+=("SD-card image")
  fi
else
  echo "==> aarch64 cross-build, Debian packages and SD-card image: skipped (LANTERNE_TEST_PACKAGES=0)"
fi

echo
echo "time per step (and the disk space free when it started):"
printf '  %5d s  %7s  %s\n' "$setup_s" "" "setup (scripts/setup.sh)"
for i in "${!step_names[@]}"; do
  next=${step_starts[$((i + 1))]:-$SECONDS}
  printf '  %5d s  %5s GB  %s\n' "$((next - step_starts[i]))" "${step_free[i]}" "${step_names[i]}"
done
printf '  %7s  %5s GB  %s\n' "" "$(free_gb)" "at the end"
if [ ${#problems[@]} -gt 0 ]; then
  echo "failed steps: ${problems[*]}"
fi
echo "$passed passed, $failed failed"
if [ "$passed" -eq 0 ]; then
  echo "no test ran: failing" >&2
  exit 1
fi
[ "$failed" -eq 0 ] && [ ${#problems[@]} -eq 0 ]
