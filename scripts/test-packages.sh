#!/usr/bin/env bash
# Checks the Debian packages scripts/build-packages.sh made, then installs the amd64 box
# package on this machine and runs it as its own user, the way its systemd unit would but
# without systemd (there is none as PID 1 here): only CAP_NET_BIND_SERVICE, the unit's
# allocator settings, and a notify socket standing in for systemd's. The box must say
# READY=1 there and serve its login page over HTTPS with a certificate from its own CA.
# Removes the package (purge) at the end.
#
#   sudo scripts/test-packages.sh        # after scripts/build-packages.sh
#
# Ends with a cargo-style "test result:" line that scripts/test.sh adds to its totals.
set -uo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
OUT=target/packages
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # description, command...
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  echo "test result: $([ $failed -eq 0 ] && echo ok || echo FAILED). $passed passed; $failed failed"
  [ $failed -eq 0 ]
  exit
}

# --- What the four packages declare -------------------------------------------------------
for arch in amd64 arm64; do
  for pkg in lanterne-box lanterne-station; do
    deb=$OUT/${pkg}_${VERSION}_${arch}.deb
    if [ ! -f "$deb" ]; then
      bad "$deb exists (run scripts/build-packages.sh)"
      continue
    fi
    check "$pkg $arch: Architecture is $arch" test "$(dpkg-deb -f "$deb" Architecture)" = "$arch"
    deps=$(dpkg-deb -f "$deb" Depends)
    for d in libgstreamer1.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
      gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav; do
      grep -qw -- "$d" <<<"$deps" || bad "$pkg $arch: Depends lacks $d"
    done
    ok "$pkg $arch: declares the GStreamer libraries and plugins"
    want=$([ $arch = amd64 ] && echo x86-64 || echo 'ARM aarch64')
    bin=$(mktemp -d)
    dpkg-deb -x "$deb" "$bin"
    check "$pkg $arch: /usr/bin/$pkg is a $want binary" \
      grep -q "$want" <(file -b "$bin/usr/bin/$pkg")
    rm -rf "$bin"
  done
  deb=$OUT/lanterne-box_${VERSION}_${arch}.deb
  if [ -f "$deb" ]; then
    check "lanterne-box $arch: the room configuration is a conffile" \
      grep -qx /etc/lanterne/lanterne.toml <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
    check "lanterne-box $arch: ships the unit and the panel's udev rule" \
      grep -qzE 'lib/systemd/system/lanterne-box.service.*lib/udev/rules.d/99-lanterne-panel.rules|lib/udev/rules.d/99-lanterne-panel.rules.*lib/systemd/system/lanterne-box.service' \
      <(dpkg-deb -c "$deb" | tr '\n' ' ')
  fi
done

# --- Install the amd64 box and run it ------------------------------------------------------
deb=$OUT/lanterne-box_${VERSION}_amd64.deb
[ -f "$deb" ] || finish
if [ "$(id -u)" -ne 0 ]; then
  bad "installing needs root"
  finish
fi
if dpkg-query -W -f='${Status}' lanterne-box 2>/dev/null | grep -q installed; then
  bad "lanterne-box is already installed on this machine; not touching it"
  finish
fi
WORK=$(mktemp -d)
# The box's user reaches the notify socket inside.
chmod 0755 "$WORK"
box_pid=
cleanup() {
  [ -n "$box_pid" ] && kill "$box_pid" 2>/dev/null && wait "$box_pid" 2>/dev/null
  dpkg --purge lanterne-box >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

# apt resolves the declared dependencies (already present where scripts/setup.sh ran).
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "./$deb" >"$WORK/apt.log" 2>&1; then
  cat "$WORK/apt.log"
  bad "apt-get install $deb"
  finish
fi
ok "apt-get install $deb"
check "postinst made the system user 'lanterne'" bash -c 'getent passwd lanterne >/dev/null'
check "/var/lib/lanterne is the box user's, mode 700" \
  test "$(stat -c '%U %a' /var/lib/lanterne)" = "lanterne 700"
check "/etc/lanterne/lanterne.toml is root:lanterne, mode 640" \
  test "$(stat -c '%U:%G %a' /etc/lanterne/lanterne.toml)" = "root:lanterne 640"
check "the unit is enabled for boot" test -L /etc/systemd/system/multi-user.target.wants/lanterne-box.service
check "the installed unit is the hardened one" \
  grep -q '^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$' /lib/systemd/system/lanterne-box.service

# systemd's notify socket, played by a small listener: it prints the first datagram.
install -d -m 0755 "$WORK/notify"
python3 - "$WORK/notify/socket" >"$WORK/notify.out" 2>&1 <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.settimeout(180)
print(s.recv(4096).decode(), flush=True)
PY
listener=$!
for _ in $(seq 1 100); do [ -S "$WORK/notify/socket" ] && break; sleep 0.1; done

# As the unit runs it: user lanterne, its groups, CAP_NET_BIND_SERVICE only, the installed
# configuration. The ports are moved off 443/80/7443 so the test can run beside anything.
setpriv --reuid=lanterne --regid=lanterne --init-groups \
  --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service --bounding-set=-all,+net_bind_service \
  --no-new-privs -- \
  env -i PATH=/usr/bin:/bin NOTIFY_SOCKET="$WORK/notify/socket" MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=1048576 \
  /usr/bin/lanterne-box run --data-dir /var/lib/lanterne --config /etc/lanterne/lanterne.toml \
  --https 127.0.0.1:0 --station-link 127.0.0.1:0 --http-redirect 127.0.0.1:0 \
  --ready-file /var/lib/lanterne/ready.json 2>"$WORK/box.log" &
box_pid=$!

# Readiness is the READY=1 datagram (or the listener giving up after 180 s).
wait "$listener"
if grep -q '^READY=1$' "$WORK/notify.out"; then
  ok "the installed box said READY=1 on the notify socket ($(grep STATUS= "$WORK/notify.out"))"
else
  bad "no READY=1 from the box: $(cat "$WORK/notify.out")"
  tail -20 "$WORK/box.log"
  finish
fi
check "the box runs as lanterne" test "$(ps -o user= -p "$box_pid")" = lanterne
check "the box process holds only CAP_NET_BIND_SERVICE" \
  test "$(awk '/^CapEff/ { print $2 }' "/proc/$box_pid/status")" = 0000000000000400
check "first start: the admin password file is the box user's, mode 600" \
  test "$(stat -c '%U %a' /var/lib/lanterne/first-admin-password)" = "lanterne 600"
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https_url"])' /var/lib/lanterne/ready.json)
page=$(curl -sS --max-time 20 --cacert /var/lib/lanterne/https-ca.cert.pem "$url/login")
check "the login page comes over HTTPS, trusted through the box's own CA ($url/login)" \
  grep -q 'type="password"' <<<"$page"
check "the box logs no password" bash -c "! grep -qF \"\$(cat /var/lib/lanterne/first-admin-password)\" '$WORK/box.log'"
finish
