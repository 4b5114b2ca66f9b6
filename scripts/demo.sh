#!/usr/bin/env bash
# Runs a Lanterne box with a simulated classroom on this machine, then prints where to look.
#
#   sudo scripts/demo.sh            # 8 simulated stations
#   sudo scripts/demo.sh 16         # 16
#
# Everything lives under run/demo/ (SQLite database, the box's self-signed CA, station
# identities). The box listens on https://<this machine>:8443, stations on 127.0.0.1:7443;
# each simulated station encodes a moving test pattern in its own colour with its name.
# Ctrl-C stops everything. Running it again reuses the same box and stations.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-8}
HTTPS_ADDR=${LANTERNE_HTTPS:-0.0.0.0:8443}
LINK_ADDR=${LANTERNE_LINK:-127.0.0.1:7443}
RUN=run/demo

scripts/setup.sh
cargo build --release -p lanterne-box -p lanterne-station
BIN=target/release

mkdir -p "$RUN"
rm -f "$RUN/ready.json"
# The demo room: simulated front panel, two approved commands, a monitoring schedule that
# includes the time it starts (below) and no second factor for the admin (no authenticator
# app needed to look around).
cat > "$RUN/lanterne.toml" <<'TOML'
[room]
name = "Salle de démonstration"
school = "Établissement de démonstration"
[panel]
backend = "simulated"
[accounts]
require_totp_for_admins = false
# No capture hardware here: colour bars stand in for the teacher's PC ("Écran enseignant").
[hdmi]
input = "test-pattern"
[[commands]]
name = "espace-disque"
program = "/bin/df"
args = ["-h", "/"]
[[commands]]
name = "bonjour"
program = "/bin/echo"
args = ["Bonjour"]
allowed_args = ["la classe", "tout le monde"]
TOML
# A box without [schedule] watches nobody. This one may watch all day, every day, except for
# the policy's 30-minute monitoring-free slot, placed about twelve hours from now so the
# demo shows everything; it is written afresh at every start.
now_min=$((10#$(date +%H) * 60 + 10#$(date +%M)))
free=$(( (now_min + 720) % 1440 ))
(( free < 60 )) && free=60
(( free > 1380 )) && free=1380
hhmm() { printf '%02d:%02d' $(($1 / 60)) $(($1 % 60)); }
days='["mon", "tue", "wed", "thu", "fri", "sat", "sun"]'
cat >> "$RUN/lanterne.toml" <<TOML
[schedule]
access = [{ days = $days, start = "00:00", end = "24:00" }]
monitoring = [
  { days = $days, start = "00:00", end = "$(hhmm $free)" },
  { days = $days, start = "$(hhmm $((free + 30)))", end = "24:00" },
]
TOML
# Each PC runs only the commands its own /etc/lanterne/station.toml lists; the simulated
# stations share this one, which allows the two demo commands.
cat > "$RUN/station.toml" <<'TOML'
[[commands]]
program = "/bin/df"
args = ["-h", "/"]
[[commands]]
program = "/bin/echo"
args = ["Bonjour"]
allowed_args = ["la classe", "tout le monde"]
TOML
chmod 644 "$RUN/station.toml"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

RUST_LOG=${RUST_LOG:-info} "$BIN/lanterne-box" run --data-dir "$RUN/box" --config "$RUN/lanterne.toml" \
  --https "$HTTPS_ADDR" --station-link "$LINK_ADDR" --ready-file "$RUN/ready.json" \
  > >(tee "$RUN/box.out") 2> "$RUN/box.log" &
pids+=($!)
for _ in $(seq 1 300); do
  [ -f "$RUN/ready.json" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "the box failed to start:"; tail -n 20 "$RUN/box.log"; exit 1; }
  sleep 0.1
done
[ -f "$RUN/ready.json" ] || { echo "the box did not become ready"; exit 1; }

# The box writes the generated first password to a file only it can read, never to its
# output; the first sign-in replaces it (and removes the file).
if [ -f "$RUN/box/first-admin-password" ]; then
  pw="$(cat "$RUN/box/first-admin-password")   (the first sign-in asks you to choose your own)"
else
  pw="the one you chose at the first sign-in"
fi
port=${HTTPS_ADDR##*:}

# Tokens for stations that are not enrolled yet.
need=0
for i in $(seq 1 "$COUNT"); do
  [ -f "$RUN/stations/station-$(printf %02d "$i")/station.json" ] || need=$((need + 1))
done
: > "$RUN/tokens.txt"
if [ "$need" -gt 0 ]; then
  "$BIN/lanterne-box" enrol-codes --data-dir "$RUN/box" --count "$need" > "$RUN/tokens.txt"
fi
RUST_LOG=${RUST_LOG:-info} "$BIN/lanterne-station" classroom --data-dir "$RUN/stations" \
  --box "https://127.0.0.1:$port" --tokens "$RUN/tokens.txt" --count "$COUNT" \
  --manifest "$RUN/stations.json" --status "$RUN/status.json" --autologin poste-01 \
  --station-config "$RUN/station.toml" \
  2> "$RUN/stations.log" &
pids+=($!)

host_ip=$(hostname -I 2>/dev/null | awk '{print $1}')
cat <<MSG

  Lanterne is running with $COUNT simulated stations.

    Open:      https://localhost:$port/   (or https://${host_ip:-this-machine}:$port/ from a tablet)
    Login:     admin
    Password:  $pw

  Simulated front panel (lock button, LEDs): https://localhost:$port/dev
  What each simulated station shows (lock, messages, power): $RUN/status.json

  The certificate is issued by the box's HTTPS CA: $RUN/box/https-ca.cert.pem
  (limited to the box's own names; trust it on the tablet, see docs/operations.md, or
  accept the browser warning).
  Logs: $RUN/box.log, $RUN/stations.log.  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}"
echo "a process stopped; see $RUN/box.log and $RUN/stations.log"
