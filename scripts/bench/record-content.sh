#!/usr/bin/env bash
# Records realistic screen content for the scale benchmark: real programs on a private Xvfb
# screen (1920x1080), captured by the station agent's own X11 path (ximagesrc → scale →
# rate control → x264, `lanterne-station record --display`), each scene as two replay files:
# the thumbnail a 40-station mosaic asks for and the full stream of the focus view.
#
#   scripts/bench/record-content.sh OUT_DIR [seconds=30]
#   DISPLAY=:N scripts/bench/record-content.sh --live SCENE   # runs one scene on :N until killed
#
# Scenes (each recorded once; an existing pair of files is kept):
#   editor  typing into Mousepad (a text editor from Debian) at about 6 characters a second
#   browser Chromium scrolling a long generated page (wheel bursts, pauses to read)
#   video   a 960x540 window in Chromium in which a picture pans and zooms without pause
#           (every pixel of the window changes every frame, as in a film)
#   slide   a Chromium slide with a focused note field: only its caret blinks
#   idle    a desktop: wallpaper and a clock showing minutes, nothing else moves
# Needs Xvfb, xdotool, mousepad, chromium, xwallpaper, desktop-base and the release build of
# lanterne-station (scripts/bench-scale.sh installs and builds them). Files go to OUT_DIR
# (several MB for the full streams: generated on demand, not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
live=
if [ "${1:-}" = --live ]; then
  live=${2:?usage: record-content.sh --live SCENE}
else
  out=${1:?usage: record-content.sh OUT_DIR [seconds]}
  seconds=${2:-30}
  mkdir -p "$out"
fi
station=${LANTERNE_BIN_DIR:-$PWD/target/release}/lanterne-station
# What a 40-station mosaic asks of each station (1280x720 mosaic, 7x6 grid, tile 178x100 at
# 5 fps, the box's defaults) and what the focus view asks (1280x720 at 30 fps, 3000 kbit/s).
thumb_args=(--width 178 --height 100 --fps 5 --bitrate-kbps 250)
full_args=(--full-width 1280 --full-height 720 --full-fps 30 --full-bitrate-kbps 3000)

work=$(mktemp -d /tmp/lanterne-content.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do [ "$p" -gt 0 ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 0' TERM INT

if [ -z "$live" ]; then
  # A display number of its own (-displayfd prints it once the server accepts connections).
  Xvfb -displayfd 1 -screen 0 1920x1080x24 -nolisten tcp -noreset >"$work/display" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/display" ] && break; sleep 0.1; done
  export DISPLAY=":$(head -1 "$work/display")"
  echo "recording on $DISPLAY into $out ($seconds s per scene)"
else
  pids+=(0) # stop_scene keeps the first entry (the Xvfb of a recording)
fi

chromium_app() { # URL: one full-screen app window, no browser chrome
  chromium --no-sandbox --user-data-dir="$work/chromium-$1" --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-features=Translate --test-type --window-position=0,0 --window-size=1920,1080 \
    --app="file://$work/$2" >/dev/null 2>&1 &
  pids+=($!)
  xdotool search --sync --onlyvisible --class chromium >/dev/null
  sleep 4 # first paint and fonts
}

stop_scene() {
  for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; done
  pids=("${pids[0]}")
  sleep 1
}

record() { # SCENE: the scene is on screen; record it, driving it with "$driver" meanwhile
  local scene=$1
  if [ -n "$live" ]; then
    # Live mode: drive the scene until killed, record nothing.
    if [ -n "${driver:-}" ]; then $driver; else while true; do sleep 60; done; fi
  fi
  "$station" record --display "$DISPLAY" --seconds "$seconds" "${thumb_args[@]}" "${full_args[@]}" \
    --out "$out/$scene-thumb.lrp" --full-out "$out/$scene-full.lrp" &
  local rec=$!
  if [ -n "${driver:-}" ]; then $driver & local drv=$!; fi
  wait $rec
  [ -n "${driver:-}" ] && kill "$drv" 2>/dev/null || true
  driver=
}

# Generated pages (no network on these machines).
python3 - "$work" <<'PY'
import sys, random
d = sys.argv[1]
random.seed(7)
words = ("la le les des une un eau cycle nuage pluie océan rivière soleil chaleur vapeur air "
         "montagne climat terre plante racine sol mer lac glace neige vent énergie température "
         "pression mesure expérience élève classe cours chapitre question réponse exemple").split()
def para(n):
    s = " ".join(random.choice(words) for _ in range(n))
    return s[0].upper() + s[1:] + "."
body = []
for i in range(40):
    body.append(f"<h2>{i+1}. {para(4)[:-1]}</h2>")
    for _ in range(3):
        body.append(f"<p>{para(random.randint(40, 90))}</p>")
    if i % 3 == 0:
        h = random.randint(0, 360)
        body.append(f'<div class="fig" style="background:linear-gradient(120deg,hsl({h},60%,70%),hsl({(h+90)%360},55%,45%))"><span>Figure {i//3+1}</span></div>')
open(f"{d}/long.html", "w").write("""<!doctype html><meta charset="utf-8"><style>
body{font-family:serif;max-width:1100px;margin:40px auto;font-size:21px;line-height:1.5;color:#222}
h2{font-family:sans-serif;color:#1d3557}.fig{height:320px;border-radius:10px;margin:20px 0;display:flex;align-items:end}
.fig span{background:#fff8;padding:6px 12px;font-family:sans-serif}</style>""" + "\n".join(body))
open(f"{d}/slide.html", "w").write("""<!doctype html><meta charset="utf-8"><style>
body{margin:0;font-family:sans-serif;background:#fdfdf8}.s{padding:60px 90px}
h1{font-size:64px;color:#1d3557;margin:0 0 30px}li{font-size:38px;margin:18px 0;color:#222}
.box{position:absolute;right:90px;top:200px;width:520px;height:380px;border-radius:16px;
background:linear-gradient(135deg,#a8dadc,#457b9d)}
.note{font-size:30px;border:2px solid #ccc;margin-top:40px;padding:10px;width:900px}</style>
<div class="s"><h1>Le cycle de l'eau</h1><ul><li>Évaporation des océans</li>
<li>Condensation en nuages</li><li>Précipitations</li><li>Ruissellement et infiltration</li></ul>
<div class="box"></div><div class="note" contenteditable="true" id="n">Notes : </div></div>
<script>const n=document.getElementById('n');n.focus();const r=document.createRange();
r.selectNodeContents(n);r.collapse(false);getSelection().removeAllRanges();getSelection().addRange(r);</script>""")
open(f"{d}/video.html", "w").write("""<!doctype html><meta charset="utf-8"><style>
body{margin:0;background:#2b2b2b}.win{position:absolute;left:480px;top:200px;width:960px;height:540px;overflow:hidden;background:#000}
.win img{width:960px;height:540px;animation:pan 7s ease-in-out infinite alternate}
.bar{position:absolute;left:480px;top:740px;width:960px;height:36px;background:#111;color:#ddd;font:18px sans-serif}
@keyframes pan{0%{transform:scale(1.05) translate(0,0) rotate(0deg)}50%{transform:scale(1.6) translate(-12%,8%) rotate(3deg)}
100%{transform:scale(1.25) translate(10%,-6%) rotate(-2deg)}}</style>
<div class="win"><img src="picture.png"></div><div class="bar">▶ 00:12 / 03:40</div>""")
PY
# The "film": the largest picture Debian's desktop-base ships.
picture=$(find /usr/share/desktop-base -name '*.png' -size +300k -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
cp "$picture" "$work/picture.png"
wallpaper=$picture # Debian's wallpapers are SVG, which xwallpaper does not read

have() {
  if [ -n "$live" ]; then [ "$live" != "$1" ]; return; fi
  [ -s "$out/$1-thumb.lrp" ] && [ -s "$out/$1-full.lrp" ]
}

if ! have editor; then
  sed -n '1,400p' README.md > "$work/notes.md"
  mousepad "$work/notes.md" >/dev/null 2>&1 &
  pids+=($!)
  win=$(xdotool search --sync --onlyvisible --class mousepad | head -1)
  xdotool windowsize "$win" 1920 1080 windowmove "$win" 0 0 windowfocus "$win"
  xdotool key ctrl+End
  sleep 2
  type_text() {
    while true; do
      xdotool type --delay 160 "Le cycle de l'eau commence par l'évaporation des océans sous l'effet du soleil. "
      xdotool key Return
      sleep 2
    done
  }
  driver=type_text
  record editor
  stop_scene
fi

if ! have browser; then
  cp "$work/long.html" "$work/page.html"
  chromium_app browser page.html
  scroll() {
    while true; do
      for _ in 1 2 3 4; do xdotool click 5; sleep 0.08; done
      sleep 1.5
    done
  }
  xdotool mousemove 960 540
  driver=scroll
  record browser
  stop_scene
fi

if ! have video; then
  chromium_app video video.html
  xdotool mousemove 1900 1070
  record video
  stop_scene
fi

if ! have slide; then
  chromium_app slide slide.html
  xdotool mousemove 1900 1070
  record slide
  stop_scene
fi

if ! have idle; then
  cp "$wallpaper" "$work/wall.png"
  xwallpaper --zoom "$work/wall.png"
  xclock -digital -strftime '%H:%M' -update 60 -geometry 120x40+1790+10 >/dev/null 2>&1 &
  pids+=($!)
  xdotool mousemove 960 540
  sleep 2
  record idle
  stop_scene
fi
[ -z "$live" ] && ls -l "$out"
