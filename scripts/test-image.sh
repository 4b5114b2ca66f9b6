#!/usr/bin/env bash
# Boots the Lanterne SD-card image (scripts/build-image.sh) under qemu-system-aarch64 -M virt
# with the Debian arm64 kernel and initrd taken from the image's own boot partition, and uses
# the box as a technician and a teacher would, from this machine through QEMU's user-mode
# network forwarding:
#   - SSH is off on a fresh card; a public key put on the card's boot partition as
#     lanterne-ssh.pub turns it on (that is how the technician reads the first password and
#     makes enrolment codes; docs/operations.md);
#   - the box made its CA and first password at first boot; the HTTPS login page answers;
#     admin signs in, replaces the password, sets up two-factor login (images/image/check-box.py);
#   - a simulated station on this machine enrols with a code from the box and its tile comes
#     online in the room's mosaic.
#
#   sudo scripts/test-image.sh         # after scripts/build-image.sh; 2 to 3.5 minutes measured
#
# The image is not changed: the test boots a copy. Ends with a cargo-style "test result:"
# line that scripts/test.sh adds to its totals.
set -uo pipefail
cd "$(dirname "$0")/.."

IMAGE=${1:-target/image/lanterne-box-arm64.img}
STATION=${LANTERNE_STATION_BIN:-target/debug/lanterne-station}
BOOT_TIMEOUT=${LANTERNE_BOOT_TIMEOUT:-900}
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() {
  echo "test result: $([ $failed -eq 0 ] && echo ok || echo FAILED). $passed passed; $failed failed"
  [ $failed -eq 0 ]
  exit
}
[ -f "$IMAGE" ] || { bad "$IMAGE exists (run scripts/build-image.sh)"; finish; }
[ -x "$STATION" ] || { bad "$STATION exists (cargo build -p lanterne-station)"; finish; }

WORK=$(mktemp -d)
qemu_pid=
station_pid=
cleanup() {
  [ -n "$station_pid" ] && kill "$station_pid" 2>/dev/null
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
start=$(date +%s)

cp --sparse=always "$IMAGE" "$WORK/card.img"
boot_offset=$(sfdisk -J "$WORK/card.img" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]; print(p["partitions"][0]["start"] * p.get("sectorsize", 512))')
FAT="$WORK/card.img@@$boot_offset"

# Debian's kernel and initrd, as raspi-firmware put them on the boot partition.
export MTOOLS_SKIP_CHECK=1
kernel=$(mdir -b -i "$FAT" :: 2>/dev/null | sed -n 's|^::/\(vmlinuz-.*\)|\1|p' | sort -V | tail -1)
initrd=${kernel/vmlinuz-/initrd.img-}
[ -n "$kernel" ] && mcopy -n -i "$FAT" "::$kernel" "$WORK/vmlinuz" 2>/dev/null &&
  mcopy -n -i "$FAT" "::$initrd" "$WORK/initrd.img" 2>/dev/null ||
  { bad "the boot partition holds vmlinuz and initrd.img"; mdir -i "$FAT" ::; finish; }
ok "Debian's arm64 kernel and initrd read from the image's boot partition ($kernel)"
if mdir -i "$FAT" ::lanterne-ssh.pub >/dev/null 2>&1; then
  bad "a fresh card carries no SSH key"
else
  ok "a fresh card carries no SSH key (SSH off)"
fi

# The technician's key, put on the card as docs/operations.md says.
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id" -C lanterne-image-test
mcopy -i "$FAT" "$WORK/id.pub" ::lanterne-ssh.pub

# Ports: HTTPS and SSH on free ports of this machine; the station link on 7443 itself,
# because enrolment tells stations the box's own port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTPS_PORT=$(free_port)
SSH_PORT=$(free_port)
if ss -ltn | awk '{print $4}' | grep -qE '(^|:)7443$'; then
  bad "port 7443 is free on this machine (the station link is forwarded there)"
  finish
fi

qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1536 -nographic -no-reboot \
  -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
  -append "root=LABEL=RASPIROOT rw console=ttyAMA0 net.ifnames=0" \
  -drive "file=$WORK/card.img,format=raw,if=virtio" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$HTTPS_PORT-:443,hostfwd=tcp:127.0.0.1:7443-:7443,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22" \
  -device virtio-net-pci,netdev=n0,romfile= \
  </dev/null >"$WORK/console.log" 2>&1 &
qemu_pid=$!

# Ready when SSH answers with the key (the card's key turned it on) and the box's HTTPS
# port answers; bounded by BOOT_TIMEOUT, watching that the machine still runs.
SSH=(ssh -q -i "$WORK/id" -p "$SSH_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o ConnectTimeout=10 -o BatchMode=yes root@127.0.0.1)
deadline=$(($(date +%s) + BOOT_TIMEOUT))
until "${SSH[@]}" systemctl is-active --quiet lanterne-box.service 2>/dev/null; do
  if ! kill -0 "$qemu_pid" 2>/dev/null || [ "$(date +%s)" -gt "$deadline" ]; then
    bad "the box boots and its service becomes active within ${BOOT_TIMEOUT}s"
    tail -n 40 "$WORK/console.log"
    finish
  fi
  sleep 2
done
ok "the image boots; lanterne-box.service is active ($(($(date +%s) - start)) s after the start)"
# The rest of the first boot (the console greeting runs after the box) ends before the checks.
state=$(timeout 300 "${SSH[@]}" systemctl is-system-running --wait)
if [ "$state" = running ]; then
  ok "the first boot finished with every unit started (systemctl is-system-running: running; $(($(date +%s) - start)) s)"
else
  bad "the first boot finished with every unit started (systemctl is-system-running: $state)"
  "${SSH[@]}" systemctl --failed --no-legend
fi
check_ssh() { # description, remote command
  if "${SSH[@]}" "$2"; then ok "$1"; else bad "$1"; fi
}
check_ssh "SSH came on only for the card's key (password login off, key file removed)" \
  'test ! -e /boot/firmware/lanterne-ssh.pub && sshd -T | grep -qx "passwordauthentication no"'
# SSH must have been off until the card's key turned it on: not enabled in the image nor by
# systemd's first-boot presets (ssh.socket would listen from the start of the boot).
check_ssh "SSH was off until lanterne-card-ssh turned it on (ssh.socket never enabled nor listening)" \
  'test "$(systemctl is-enabled ssh.socket)" = disabled && ! journalctl -b -o cat -u ssh.socket | grep -q Listening && test "$(systemctl show -p ActiveEnterTimestampMonotonic --value ssh.service)" -gt "$(systemctl show -p ExecMainStartTimestampMonotonic --value lanterne-card-ssh.service)"'
check_ssh "the box runs as its own user with only CAP_NET_BIND_SERVICE" \
  'pid=$(systemctl show -p MainPID --value lanterne-box); test "$(ps -o user= -p $pid)" = lanterne && grep -q "^CapEff:.*0000000000000400" /proc/$pid/status'
check_ssh "systemd gets READY and watchdog from the box (Type=notify, WatchdogSec=30)" \
  'test "$(systemctl show -p Type --value lanterne-box)" = notify && test "$(systemctl show -p WatchdogUSec --value lanterne-box)" = 30s && journalctl -u lanterne-box -o cat | grep -q "box ready"'
check_ssh "the box logs to journald with its events' fields (LANTERNE_HTTPS_URL on \"box ready\")" \
  'journalctl -u lanterne-box -o verbose --no-pager | grep -q "^ *LANTERNE_HTTPS_URL=https://" && journalctl -u lanterne-box -o verbose --no-pager | grep -q "^ *SYSLOG_IDENTIFIER=lanterne-box$"'
check_ssh "first boot made the box's CAs and first password on the data partition" \
  'findmnt -n -o SOURCE /var/lib/lanterne | grep -q . && test -s /var/lib/lanterne/https-ca.cert.pem && test -s /var/lib/lanterne/first-admin-password && test "$(stat -c "%U %a" /var/lib/lanterne/first-admin-password)" = "lanterne 600"'
check_ssh "the machine has its own id (not one baked into the image)" \
  'test -s /etc/machine-id && test "$(cat /etc/machine-id)" != uninitialized'
check_ssh "the console greeting names the box's address and shows the first password" \
  'grep -q "Lanterne classroom box" /run/issue.d/50-lanterne.issue && test -s /run/issue.d/60-lanterne-first-password.issue'

"${SSH[@]}" cat /var/lib/lanterne/https-ca.cert.pem > "$WORK/ca.pem"
first=$("${SSH[@]}" cat /var/lib/lanterne/first-admin-password)
URL="https://127.0.0.1:$HTTPS_PORT"
# The health check answers anyone, with nothing but "ok"; metrics are off on a fresh card.
if [ "$(curl -s --cacert "$WORK/ca.pem" "$URL/healthz")" = ok ]; then
  ok "GET /healthz answers ok without a sign-in"
else
  bad "GET /healthz answers ok without a sign-in"
fi
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/ca.pem" "$URL/metrics")
if [ "$status" = 404 ]; then ok "metrics are off on a fresh card (GET /metrics: 404)"; else bad "metrics are off on a fresh card (GET /metrics: $status)"; fi
if python3 images/image/check-box.py sign-in "$URL" "$WORK/ca.pem" "$first" "Lanterne-image-test-$RANDOM-passe" "$WORK/session.json" >"$WORK/sign-in.out"; then
  passed=$((passed + $(grep -c '^ok' "$WORK/sign-in.out")))
else
  passed=$((passed + $(grep -c '^ok' "$WORK/sign-in.out")))
  failed=$((failed + 1))
fi
cat "$WORK/sign-in.out"
echo "test-image: signed in at $(($(date +%s) - start)) s"
check_ssh "the first password file is gone once replaced" 'test ! -e /var/lib/lanterne/first-admin-password'
# The audit lines of those sign-ins are in the journal too, with their fields, for a school
# that forwards its boxes' journals (docs/operations.md, "Health, metrics and thirty boxes").
check_ssh "the audit trail's sign-in lines are in the journal (TARGET=lanterne_audit, LANTERNE_ACTION=login)" \
  'journalctl -u lanterne-box TARGET=lanterne_audit LANTERNE_ACTION=login -o verbose --no-pager | grep -q "^ *LANTERNE_ACTOR=admin$"'

# Enrolment: a code made on the box (as the technician does over SSH), used by a simulated
# station on this machine.
"${SSH[@]}" runuser -u lanterne -- lanterne-box enrol-codes --data-dir /var/lib/lanterne --count 1 > "$WORK/tokens.txt"
if grep -qE '^[A-Z0-9-]+@[0-9a-f]+$' "$WORK/tokens.txt"; then
  ok "the box made an enrolment code over SSH"
else
  bad "the box made an enrolment code over SSH: $(cat "$WORK/tokens.txt")"
  finish
fi
RUST_LOG=info "$STATION" classroom --data-dir "$WORK/stations" --box "$URL" --tokens "$WORK/tokens.txt" \
  --count 1 --manifest "$WORK/stations.json" 2>"$WORK/station.log" &
station_pid=$!
for _ in $(seq 1 600); do
  [ -s "$WORK/stations.json" ] && break
  kill -0 "$station_pid" 2>/dev/null || break
  sleep 0.2
done
if [ ! -s "$WORK/stations.json" ]; then
  bad "the simulated station enrols with the box"
  tail -n 20 "$WORK/station.log"
  finish
fi
ok "the simulated station enrolled with the box ($(($(date +%s) - start)) s)"
name=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m=m if isinstance(m,list) else m["stations"]; print(m[0]["name"])' "$WORK/stations.json")
if python3 images/image/check-box.py tile "$URL" "$WORK/ca.pem" "$WORK/session.json" "$name" 120 >"$WORK/tile.out"; then
  ok "$(grep '^ok.*tile' "$WORK/tile.out" | sed 's/^ok   //') ($(($(date +%s) - start)) s)"
else
  bad "$(tail -1 "$WORK/tile.out")"
  tail -n 20 "$WORK/station.log"
fi
check_ssh "the box lists the station as enrolled" "runuser -u lanterne -- lanterne-box stations --data-dir /var/lib/lanterne | grep -qw '$name'"
echo "test-image: $(($(date +%s) - start)) s"
finish
