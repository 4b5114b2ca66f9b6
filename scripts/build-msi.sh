#!/usr/bin/env bash
# Builds the Windows installer of the station agent with wixl (Debian's msitools):
#
#   scripts/build-msi.sh               # -> target/packages/lanterne-station_<version>_x64.msi
#   scripts/build-msi.sh --no-build    # package an agent built before
#
# The agent is cross-built here (x86_64-pc-windows-gnu, release, warnings as errors); it
# needs no DLL beyond Windows' own (OpenH264 and the C++ runtime are linked in). The
# installer's source is images/windows/lanterne-station.wxs; what wixl 0.101 cannot say in
# it is set afterwards in the MSI's tables with msibuild, each change checked below:
#   * the allow-list station.toml is Permanent and NeverOverwrite (an upgrade or an uninstall
#     keeps the school's file);
#   * the enrolment custom action hides its command line from the installer's log
#     (msidbCustomActionTypeHideTarget): it carries the one-time enrolment code;
#   * BOX and ENROL are secure properties, so they reach the elevated part of the install
#     when an administrator or a deployment tool passes them.
# See docs/operations.md, "Install on Windows PCs".
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
TARGET=x86_64-pc-windows-gnu
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
OUT=target/packages
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MSI=$OUT/lanterne-station_${VERSION}_x64.msi

for tool in wixl msibuild msiinfo x86_64-w64-mingw32-strip; do
  command -v "$tool" >/dev/null || { echo "build-msi: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
if [ "${1:-}" != "--no-build" ]; then
  RUSTFLAGS="-D warnings" cargo build --release -p lanterne-station --target "$TARGET"
fi
exe=$target_dir/$TARGET/release/lanterne-station.exe
[ -f "$exe" ] || { echo "build-msi: $exe is missing (build it, or drop --no-build)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
x86_64-w64-mingw32-strip --strip-unneeded -o "$stage/lanterne-station.exe" "$exe"
cp images/windows/station.toml "$stage/station.toml"
# wixl takes file sources relative to the .wxs (absolute ones are refused).
sed -e "s|@VERSION@|$VERSION|" -e "s|@EXE@|lanterne-station.exe|" -e "s|@CONFIG@|station.toml|" \
  images/windows/lanterne-station.wxs > "$stage/lanterne-station.wxs"
mkdir -p "$OUT"
rm -f "$MSI"
(cd "$stage" && wixl --arch x64 -o lanterne-station.msi lanterne-station.wxs)
msi=$stage/lanterne-station.msi

row() { # table, key: the table's row for key (tab-separated), or nothing
  msiinfo export "$msi" "$1" | awk -F'\t' -v k="$2" 'NR > 3 && $1 == k'
}
set_field() { # table, key column, key, SQL assignment, expected row pattern
  msibuild "$msi" -q "UPDATE $1 SET $4 WHERE $2 = '$3'"
  row "$1" "$3" | grep -qE "$5" || { echo "build-msi: could not set $4 in $1 ($3)" >&2; exit 1; }
}
# Component attributes: 0x100 64-bit (from wixl), + 0x10 permanent + 0x80 never overwrite.
set_field Component Component Config "Attributes = 400" $'\t400\t'
# Custom action type: 18 (run an installed file) + 0x400 deferred + 0x800 not impersonated
# (from wixl), + 0x2000 hide the target from the log.
set_field CustomAction Action Enrol "Type = 11282" $'^Enrol\t11282\t'
secure=$(row Property SecureCustomProperties | cut -f2)
set_field Property Property SecureCustomProperties "Value = 'BOX;ENROL${secure:+;$secure}'" $'\tBOX;ENROL'

mv "$msi" "$MSI"
echo "$MSI"
