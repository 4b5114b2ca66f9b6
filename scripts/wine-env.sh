# Sourced, not run: what scripts/test-windows.sh and scripts/bench-windows.sh share to run
# the Windows agent on this Linux machine: the tool check, a private Xvfb display and a fresh
# Wine prefix under the cargo target directory, both torn down on exit.
#
#   . scripts/wine-env.sh     # needs `name` (for messages) and CARGO_TARGET_DIR set
#   wine_check                # mingw-w64, wine, Xvfb and the rustup target are there
#   wine_display              # exports DISPLAY (1280x720x24), killed on exit
#   wine_prefix               # exports WINEPREFIX, WINEARCH, WINEDEBUG, WINEDLLOVERRIDES
#                             # (the prefix: $LANTERNE_WINEPREFIX if set, for runs side by side)
#
# Rust's standard library imports ProcessPrng, which Wine 8.0 lacks: the prefix gets a
# test-only bcryptprimitives.dll built from tests/windows/ (never shipped).
WINDOWS_TARGET=x86_64-pc-windows-gnu
wine_work=$(mktemp -d)
wine_xvfb_pid=
wine_cleanup() {
  if [ -n "${WINEPREFIX:-}" ] && [ -d "${WINEPREFIX:-}" ]; then wineserver -k 2>/dev/null || true; fi
  if [ -n "$wine_xvfb_pid" ]; then kill "$wine_xvfb_pid" 2>/dev/null || true; wait "$wine_xvfb_pid" 2>/dev/null || true; fi
  rm -rf "$wine_work"
}
trap wine_cleanup EXIT

wine_check() {
  local tool
  for tool in x86_64-w64-mingw32-gcc wine Xvfb; do
    command -v "$tool" >/dev/null || { echo "$name: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
  done
  rustup target list --installed 2>/dev/null | grep -qx "$WINDOWS_TARGET" \
    || { echo "$name: rustup target $WINDOWS_TARGET is missing" >&2; exit 1; }
}

# A display of its own: -displayfd prints its number once the server accepts connections.
wine_display() {
  Xvfb -displayfd 3 -screen 0 1280x720x24 -nolisten tcp -noreset 3>"$wine_work/display" 2>/dev/null &
  wine_xvfb_pid=$!
  for _ in $(seq 100); do [ -s "$wine_work/display" ] && break; sleep 0.1; done
  [ -s "$wine_work/display" ] || { echo "$name: Xvfb did not start" >&2; exit 1; }
  DISPLAY=":$(head -1 "$wine_work/display")"
  export DISPLAY
}

wine_prefix() {
  export WINEPREFIX=${LANTERNE_WINEPREFIX:-$CARGO_TARGET_DIR/wine-prefix}
  export WINEARCH=win64 WINEDEBUG=-all
  # Neither Mono nor Gecko (they would be downloaded): the agent needs neither.
  export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"
  rm -rf "$WINEPREFIX"
  wineboot --init >/dev/null 2>&1
  wineserver -w
  x86_64-w64-mingw32-gcc -O2 -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    tests/windows/processprng.c tests/windows/processprng.def -lbcrypt
}
