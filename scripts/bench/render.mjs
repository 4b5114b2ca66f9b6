// Regenerates docs/benchmarks.md from the machine-readable results in docs/bench/*.json,
// so the prose and the figures never disagree. Run by each scripts/bench-*.sh.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'docs/bench');

const ABOUT = {
  mosaic: {
    title: 'Mosaic: replayed stations → one composed stream → browser',
    what: `Each simulated station replays a pre-encoded 256×144, 5 fps H.264 thumbnail at real-time
pace over its own mutually authenticated TLS link, all from one
\`lanterne-station classroom --replay\` process. (The box asks real stations for thumbnails no
larger than their tile, about 208×116 for 32 stations on a 1280×720 mosaic; a replay cannot
rescale, so the file is slightly larger than what real stations send.) The box decodes every thumbnail, composes the grid, encodes it once and sends it over
a secure WebSocket to headless Chromium, which decodes it with WebCodecs on the real room page.
Latency is measured per station frame: from its capture timestamp (stamped by the station when
the frame is sent) to the moment the browser has decoded the first mosaic frame that shows it.
Box CPU is utime+stime of the box process over each window (100 % = one core); RSS is VmRSS.
The baseline, measured in the same run, is the same box with the same stations and nobody
watching; the ratio is what a viewer adds.`,
    rows: (r) => [
      ['mosaic frames/s delivered to the browser (median of windows)', r.mosaic_fps_median, '≥ 5'],
      ['station frame → browser decoded, p50 (ms)', r.latency_ms_p50, '< 150'],
      ['station frame → browser decoded, p99 (ms)', r.latency_ms_p99, '< 300'],
      ['box CPU with one viewer (% of a core, median)', r.box_cpu_pct_median, 'reported'],
      ['box CPU with no viewer, baseline (% of a core, median)', r.box_cpu_pct_no_viewer_median, 'reported'],
      ['ratio viewer / baseline', r.viewer_cpu_ratio, 'reported'],
      ['box RSS (MB, max)', r.box_rss_mb_max, '< 200'],
      ['station simulator CPU (% of a core, median; load generator)', r.stations_process_cpu_pct_median, '—'],
      ['latency samples', r.latency_samples, '—'],
    ],
  },
  lock: {
    title: 'Lock: order → shown on every station',
    what: `N real station agents (each with its own mutually authenticated TLS link, replaying
thumbnail video) run in the benchmark process with the simulated screen that display-less
stations use. Each round sends a lock or unlock order — alternately through the tablet API
(\`POST /api/room/lock\`) and the simulated panel button — and times (a) each station showing
the new state, (b) the last of the N stations showing it, and (c) the box having every
station's acknowledgement (seen by a tablet WebSocket as a layout in which every tile reports
the state). The baseline, in the same run, is an authenticated \`GET /api/me\` on a fresh HTTPS
connection, which every order also pays.`,
    rows: (r) => [
      ['one station shows the lock, p50 (ms)', r.shown_ms_p50, 'reported'],
      ['one station shows the lock, p99 (ms)', r.shown_ms_p99, 'reported'],
      ['all stations show the lock, p50 (ms)', r.all_stations_shown_ms_p50, 'reported'],
      ['all stations show the lock, p99 (ms)', r.all_stations_shown_ms_p99, '< 250'],
      ['box has every acknowledgement, p50 (ms)', r.box_acknowledged_all_ms_p50, 'reported'],
      ['box has every acknowledgement, p99 (ms)', r.box_acknowledged_all_ms_p99, '< 250'],
      ['baseline: authenticated request round trip, median (ms)', r.baseline_request_ms_median, '—'],
      ['ratio all-shown p50 / baseline', r.ratio_all_shown_p50_to_baseline, 'reported'],
      ['samples (stations × rounds)', r.samples, '—'],
    ],
  },
  fanout: {
    title: 'Demo fan-out: one 1080p30 stream → N stations over TLS',
    what: `A real box process shows one station's screen to N receiving stations. The source is a
real station agent replaying a recorded 1920×1080, 30 fps, ~4 Mbit/s x264 stream (moving colour
bars with a running clock, an IDR every 2 s) as its full stream; the receivers are raw
station-link clients with real enrolled identities and their own TLS connections, which do not
decode (this machine could not decode N × 1080p30): they time every demo frame and check its
sequence number, which the box numbers per connection, so each frame the box dropped for a
receiver is a gap. Latency is receiver arrival minus the frame's capture timestamp, stamped by
the source when it sends the frame (same clock): source → box → receiver, an upper bound of what
the relay adds. Box CPU is utime+stime of the box process (100 % = one core); the relay's share
is the box with the demo minus the same box idle just before (stations connected, thumbnails
and the mosaic running), divided by N. Then one receiver (connected with a 16 KiB receive buffer, as
behind a slow link: on loopback the kernel would otherwise buffer megabytes for it) reads at a
quarter of the stream's bitrate in every other window, and the other receivers are compared between the windows with
and without it (alternating, so the shared machine's drift affects both alike). The baseline, in the same run, sends the same access
units at the same pace through GStreamer's \`tcpserversink\` (plain TCP, no TLS) in a child
process to N plain TCP readers. Everything, load generators included, shares the machine's
cores with the box.`,
    rows: (r) => [
      ['stream bitrate (kbit/s)', r.stream_kbps, '~4000'],
      ['frames lost at healthy receivers', r.healthy_frames_lost, '0'],
      ['frames received by healthy receivers', r.healthy_frames_received, '—'],
      ['source → box → receiver latency, p50 (ms)', r.latency_ms_p50, 'reported'],
      ['source → box → receiver latency, p99 (ms)', r.latency_ms_p99, '< 20 (relay-added)'],
      ['box CPU with the demo (% of a core, median)', r.box_cpu_pct_median, 'reported'],
      ['box CPU idle before the demo (% of a core, median)', r.box_cpu_idle_pct_median, 'reported'],
      ['relay CPU per receiver (% of a core)', r.relay_cpu_pct_per_receiver, 'reported'],
      ['box RSS (MB, max)', r.box_rss_mb_max, '< 200'],
      ['one throttled receiver: frames lost at the others', r.throttled_others_frames_lost, '0'],
      ['one throttled receiver: others\' latency p50 (ms)', r.throttled_others_latency_ms_p50, 'reported'],
      ['the others\' latency p99 in the alternate windows without it (ms)', r.unthrottled_others_latency_ms_p99, 'reported'],
      ['one throttled receiver: others\' latency p99 (ms)', r.throttled_others_latency_ms_p99, 'reported'],
      ['change of the others\' p99 (%)', r.throttled_others_p99_change_pct, '±10'],
      ['throttled receiver: frames read while throttled / gaps it saw', `${r.throttled_receiver_frames} / ${r.throttled_receiver_frames_lost}`, '—'],
      ['frames the relay dropped: for the throttled receiver / for all the others', `${r.throttled_receiver_relay_dropped} / ${r.others_relay_dropped}`, 'drops / 0'],
      ['baseline tcpserversink CPU (% of a core, median)', r.baseline_server_cpu_pct_median, 'reported'],
      ['baseline CPU per receiver (% of a core)', r.baseline_cpu_pct_per_receiver, 'reported'],
      ['baseline slowest receiver (kbit/s)', r.baseline_slowest_receiver_kbps, '≈ stream'],
      ['ratio relay / baseline CPU per receiver', r.ratio_relay_to_baseline_cpu_per_receiver, 'reported'],
    ],
  },
  'remote-help': {
    title: 'Remote help: a tap on the tablet → the pixel it changes on the station',
    what: `A real box, a real station agent (its system service, and its session helper running as
a student's account on an Xvfb display) and an ordinary X application (Tk: a button that flips
between red and green at each click). The student accepts the consent prompt with a click; then
each round sends what the tablet sends for a tap (pointer move, press, release) as one
\`POST /api/stations/{id}/help/input\` on a kept-alive HTTPS connection on loopback, and polls the
button's pixel on the X server until its colour flips: one sample is the time from sending the
request to seeing the new colour. Path: HTTPS → the box's policy and room → the station link (TLS)
→ the service → the session helper → XTEST → the application redraws. The baseline, in the same
run and timed the same way, is the same click played straight into the X server with XTEST.`,
    rows: (r) => [
      ['tap → changed pixel, p50 (ms)', r.input_to_pixel_ms_p50, '< 100'],
      ['tap → changed pixel, p99 (ms)', r.input_to_pixel_ms_p99, '< 200'],
      ['tap → changed pixel, max (ms)', r.input_to_pixel_ms_max, 'reported'],
      ['baseline: XTEST click → changed pixel, p50 / p99 (ms)', `${r.baseline_xtest_click_to_pixel_ms_p50} / ${r.baseline_xtest_click_to_pixel_ms_p99}`, '—'],
      ['added by Lanterne, p50 (ms)', r.added_by_lanterne_ms_p50, 'reported'],
      ['samples', r.samples, '≥ 200'],
    ],
  },
  hostile: {
    title: 'Hostile network: the box at a 1024 open-file limit under attack',
    what: `The box (release build) runs under \`prlimit --nofile=1024:1024\`, the open-file limit a
systemd service gets, with one simulated station streaming and a teacher watching the mosaic
WebSocket. One attacker process (its own one-thread runtime, on the same two cores as the box)
then runs each phase in turn: N connections from 16 loopback addresses each sending half of a
\`POST /api/login\` and nothing more, then the same from one address; slow headers (HTTPS
request heads a byte a second) with TLS ClientHellos a byte a second on the station link;
slow bodies (whole heads, bodies a byte a second) with TLS sessions made with a real enrolled
station's certificate whose hello comes a byte a second; then M logins at once with random
user names. Every connection the box closes is opened again after about half a second, so each
attack keeps its N connections going for the whole phase; "held at once" is how many of them
the box kept open together, as the attacker saw it. Meanwhile the teacher signs in again and
again, each time on a fresh HTTPS connection from 127.0.0.1; during the station-link phases a
second station connects. RSS is the box's VmRSS and descriptors its /proc/PID/fd, sampled
every 100 ms. The baseline is the phase without attack, in the same run.`,
    rows: (r) => {
      const rows = [
        ['box open-file limit', r.box_nofile, '1024'],
        ['box exited', r.box_exited ? 'yes' : 'no', 'no'],
        ['box RSS, all phases (MB, max)', r.box_rss_mb_max, '< 300'],
        ['box accept errors logged', r.box_accept_error_lines, '0'],
      ];
      for (const p of r.phases) {
        const attacks = p.attacks
          .map((a) => `${a.connections} ${a.kind} on ${a.target} (${a.sources} addr.): held at once ${a.held_max}, refused ${a.refused}, cut ${a.cut} (max after ${a.cut_after_s_max} s)`)
          .join('; ');
        rows.push([`**${p.name}**${attacks ? `: ${attacks}` : ''}`, '', '']);
        rows.push(['— teacher sign-in p50 / p99 (ms)', `${p.sign_in_ms_p50} / ${p.sign_in_ms_p99} (${p.sign_ins} sign-ins)`, 'p99 < 2000']);
        rows.push(['— mosaic frames / longest pause (ms)', `${p.mosaic_frames} / ${p.mosaic_max_gap_ms}`, 'pause < 2000']);
        rows.push(['— box RSS (MB, max) / descriptors (max)', `${p.box_rss_mb_max} / ${p.box_fds_max}`, '< 300 / < 1024']);
        if (p.station_connect_ms !== null) rows.push(['— a station connects (ms)', p.station_connect_ms, '< 5000']);
        if (p.logins) rows.push(['— logins answered (by status) / p50 / p99 (ms)', `${JSON.stringify(p.logins.answers)} / ${p.logins.answer_ms_p50} / ${p.logins.answer_ms_p99}`, 'reported']);
      }
      return rows;
    },
  },
};

ABOUT.scale = {
  title: 'Scale: 40 stations on realistic screens, an idle room, and VNC on the same content',
  what: `Realistic screens are recorded on this machine by \`scripts/bench/record-content.sh\`: real
programs on a private 1920×1080 Xvfb screen (typing in Mousepad; Chromium scrolling a long page;
a 960×540 window in Chromium in which a picture pans and zooms without pause, standing in for a
film; a Chromium slide whose only change is a blinking caret; a desktop with a wallpaper and a
clock showing minutes), each captured for 30 s by the station agent's own X11 path
(\`lanterne-station record --display\`: ximagesrc, scaling, the rate control that skips
unchanged pictures, x264) as two replay files: the thumbnail a 40-station mosaic asks for
(178×100, 5 fps, 250 kbit/s) and the focus stream (1280×720, 30 fps, 3000 kbit/s). A scene's
rate is its access units plus the station link's framing and TLS record overhead, per second of
recording (a file loops at its recorded length, so each pass starts with one keyframe).
The recordings' frame rates are what the capture achieved on this shared machine while the
program ran (Chromium scrolling or animating at 1920×1080 in software): motion scenes may
reach fewer than 30 fps at full size (the table gives each scene's rate), and then their
full-size rates are lower than a fast PC would send.
Then N stations (station i replays scene i mod 5; stations sharing a scene start spread over
its 30 s, as real screens never change in step) connect over their own mutually authenticated
TLS links to a real box (release build). Idle room: nobody watches; box CPU is utime+stime of the
box process per window (100 % = one core) and the station-link bytes are everything the box
received on its station-link port (\`ss -ti\`), which must be heartbeats only. Mosaic:
headless Chromium opens the real room page and decodes the composed stream with WebCodecs;
fps delivered to the browser, station frame → browser-decoded latency, box CPU. Box RSS is
VmRSS sampled every 500 ms over the whole run. VNC, in the same run: for the two motion scenes,
the same program runs live on a fresh Xvfb screen, \`x11vnc -viewonly -shared\` (what Epoptes
runs) serves it to M receivers that speak enough RFB 3.8 to do what a view-only viewer does
(shared session, ZRLE/CopyRect/Raw, an incremental update request as soon as the previous
update is complete) and count bytes and updates without drawing (\`scripts/bench/rfb.mjs\`);
x11vnc's CPU is divided by M. Lanterne's fan-out forwards the station's full stream unchanged to
each receiver, so its bytes per receiver are that stream's rate; the ratio is VNC's bytes per
receiver over Lanterne's. Its CPU, in the same run: the fan-out benchmark's program
(\`bench-fanout\`) has a station replay the scene's full stream as a demo to M receiving stations
through a real box; the relay's CPU is the box's CPU during the demo minus before it, per
receiver. The receivers do not get the same picture size: x11vnc sends the
1920×1080 screen as it is, while the focus stream is scaled to 1280×720, the box's default for
the focus view (and what a tablet shows), which favours Lanterne in this ratio. Everything (Chromium, x11vnc, the stations, the box) shares the
machine's two cores, with other engineers' builds running.`,
  rows: (r) => {
    const rows = [
      ['box RSS, whole run (MB, max)', r.box_rss_mb_max, '< 150'],
      ['idle room: box CPU (% of a core, median)', r.idle_box_cpu_pct, '< 1'],
      ['idle room: station-link bytes/s received by the box, all stations (median)', r.idle_link_bytes_per_s, 'heartbeats only'],
      ['idle room: the same per station (bytes/s)', r.idle_link_bytes_per_s_per_station, '< 200 (no video)'],
      ['static slide, thumbnail / full size (kB/s per station)', `${r.static_thumb_kbytes_per_s} / ${r.static_full_kbytes_per_s}`, '≤ 20'],
      ['mosaic frames/s delivered to the browser (median of windows)', r.mosaic_fps_median, '≥ 10'],
      ['station frame → browser decoded, p50 / p99 (ms)', `${r.latency_ms_p50} / ${r.latency_ms_p99}`, 'reported'],
      ['box CPU with the mosaic open (% of a core, median)', r.mosaic_box_cpu_pct_median, 'reported'],
      ['thumbnails on the station link while watched, measured / from the files (kB/s per station)', `${r.mosaic_link_kbytes_per_s_per_station} / ${r.mosaic_link_expected_kbytes_per_s_per_station}`, '—'],
      ['station simulator CPU (% of a core, median; load generator)', r.stations_process_cpu_pct_median, '—'],
    ];
    for (const [scene, c] of Object.entries(r.content)) {
      rows.push([`scene ${scene}: thumbnail ${c.thumb.size} — kB/s, frames/s, keyframes in ${c.thumb.seconds} s`, `${c.thumb.kbytes_per_s}, ${c.thumb.frames_per_s}, ${c.thumb.keyframes}`, '—']);
      rows.push([`scene ${scene}: full ${c.full.size} — kB/s, frames/s, keyframes in ${c.full.seconds} s`, `${c.full.kbytes_per_s}, ${c.full.frames_per_s}, ${c.full.keyframes}`, '—']);
    }
    for (const [scene, v] of Object.entries(r.vnc)) {
      rows.push([`VNC, ${scene}: kB/s per receiver (${v.receivers} receivers), updates/s`, `${v.vnc_kbytes_per_s_per_receiver}, ${v.vnc_updates_per_s_per_receiver}`, '—']);
      rows.push([`VNC, ${scene}: x11vnc CPU, total / per receiver (% of a core)`, `${v.vnc_server_cpu_pct} / ${v.vnc_server_cpu_pct_per_receiver}`, 'reported']);
      rows.push([`Lanterne fan-out, ${scene}: kB/s per receiver, frames/s`, `${v.lanterne_kbytes_per_s_per_receiver}, ${v.lanterne_fps}`, '—']);
      if (v.lanterne_relay_cpu_pct_per_receiver !== undefined) {
        rows.push([`Lanterne fan-out, ${scene}: box CPU before / with the demo (% of a core), relay CPU per receiver, frames lost`,
          `${v.lanterne_box_cpu_pct_before_demo} / ${v.lanterne_box_cpu_pct_with_demo}, ${v.lanterne_relay_cpu_pct_per_receiver}, ${v.lanterne_frames_lost}`, 'reported']);
        rows.push([`ratio VNC / Lanterne CPU per receiver, ${scene}`, v.cpu_ratio ?? 'n/a (no relay CPU measurable)', 'reported']);
      }
      rows.push([`ratio VNC / Lanterne bytes per receiver, ${scene}`, v.bytes_ratio, '≥ 10']);
    }
    rows.push(['VNC / Lanterne bytes ratio (the smaller of the scenes)', r.vnc_bytes_ratio, '≥ 10']);
    if (r.lanterne_relay_cpu_pct_per_receiver !== null && !Object.values(r.vnc).some((v) => v.lanterne_relay_cpu_pct_per_receiver !== undefined)) {
      rows.push([`Lanterne relay CPU per receiver (% of a core; fan-out benchmark of ${r.lanterne_relay_cpu_measured}, not this run)`, r.lanterne_relay_cpu_pct_per_receiver, 'reported']);
    }
    return rows;
  },
};

ABOUT['scale-aarch64'] = {
  title: 'The aarch64 box under emulation: the scale benchmark at a small scale (functional check)',
  what: `The box cross-built for aarch64 (\`scripts/cross-build.sh\`'s build, release) runs under
\`qemu-aarch64\` user emulation on this x86 machine, with Debian's arm64 GStreamer plugins from an
unpacked arm64 root (\`scripts/cross-sysroot.sh --runtime\`), through the scale benchmark of the
next section (\`scripts/bench/scale.mjs\`, the same scenes, recorded again on the machine of the
run when it has no recording yet) with a few x86 stations and headless Chromium. It checks that the arm64 build works as a box: stations enrol and connect, an idle
room carries no video, the mosaic is decoded, composed, encoded and reaches the browser. Its
CPU, memory and frame rate are those of an emulator translating every arm64 instruction (and
software codecs: there is no V4L2 codec device), not of a Pi: they are no estimate of a Pi's,
and no target applies. The VNC comparison, which does not involve the box, is not repeated.`,
  rows: (r) => [
    ['box RSS (qemu-aarch64 process), whole run (MB, max)', r.box_rss_mb_max, 'emulated'],
    ['idle room: box CPU (% of an x86 core, median, emulated)', r.idle_box_cpu_pct, 'emulated'],
    ['idle room: station-link bytes/s per station (median)', r.idle_link_bytes_per_s_per_station, '< 200 (no video)'],
    ['mosaic frames/s delivered to the browser (median of windows)', r.mosaic_fps_median, '> 0 (works)'],
    ['station frame → browser decoded, p50 / p99 (ms)', `${r.latency_ms_p50} / ${r.latency_ms_p99}`, 'emulated'],
    ['box CPU with the mosaic open (% of an x86 core, median, emulated)', r.mosaic_box_cpu_pct_median, 'emulated'],
    ['thumbnails on the station link while watched, measured / from the files (kB/s per station)', `${r.mosaic_link_kbytes_per_s_per_station} / ${r.mosaic_link_expected_kbytes_per_s_per_station}`, '—'],
  ],
};

// The Pi 4 budget under the scale table: what the measured load asks of a Pi 4's codecs,
// memory and CPU, from the Pi's published figures. Nothing here is measured on a Pi.
ABOUT.scale.after = (r, params) => {
  const n = params.stations;
  const scenes = Object.values(r.content);
  // Stations replay the scenes round robin, so the room's thumbnail rate is their mean.
  const thumbFps = scenes.reduce((a, c) => a + c.thumb.frames_per_s, 0) / scenes.length;
  const [tw, th] = scenes[0].thumb.size.split('x').map(Number);
  const decodeMpx = (n * tw * th * thumbFps) / 1e6;
  const encodeMpx = (1280 * 720 * 10) / 1e6;
  const composeMBps = (n * tw * th * 1.5 * thumbFps + 1280 * 720 * 1.5 * 10) / 1e6;
  const tlsKBps = n * r.mosaic_link_kbytes_per_s_per_station + 250 + 375;
  const pct = (x, of) => Math.round((1000 * x) / of) / 10;
  return `
### The Pi 4's budget for this room (estimated)

Every Pi figure in this table is **estimated**: the load is what this run measured (or, for
the mosaic and focus streams, the box's default settings), the capacity is the Raspberry Pi 4's
published specification. Sources: the Raspberry Pi 4 Model B product brief and specifications
(raspberrypi.com: Broadcom BCM2711, four Cortex-A72 cores at 1.5 GHz, 1.8 GHz on later
boards; H.264 hardware decode 1080p60 and encode 1080p30; LPDDR4-3200), and sbc-bench's
"ARMv8 Crypto Extensions" notes (github.com/ThomasKaiser/sbc-bench: the BCM2711 lacks the
ARMv8 crypto extensions, so TLS runs in software; the box prefers ChaCha20-Poly1305 there).
The aarch64 build runs through this benchmark only under emulation (the section "The aarch64
box under emulation"), which checks that it works and measures nothing about a Pi.

| stage | load in this run (${n} stations) | Pi 4 capacity (published) | share (estimated) |
|---|---|---|---|
| thumbnail decode (V4L2 decoder) | ${n} × ${tw}×${th} at ${Math.round(thumbFps * 10) / 10} frames/s (mean of the scenes under rate control) = ${Math.round(decodeMpx * 10) / 10} Mpixel/s | 1080p60 = 124.4 Mpixel/s | ${pct(decodeMpx, 124.4)} % of the decoder, if ${n} decoder contexts cost no more than their pixels (not verified: needs the device) |
| mosaic encode (V4L2 encoder) | 1280×720 at 10 fps = ${encodeMpx} Mpixel/s | 1080p30 = 62.2 Mpixel/s | ${pct(encodeMpx, 62.2)} % of the encoder |
| composition (memory copies) | tiles into the canvas, canvas to the encoder: ${Math.round(composeMBps * 10) / 10} MB/s | LPDDR4-3200, 32-bit bus: 12.8 GB/s peak | ${pct(composeMBps, 12800)} % of peak bandwidth |
| TLS (software ChaCha20-Poly1305) | thumbnails in (measured) + mosaic out (2 Mbit/s) + one focus stream (3 Mbit/s): ${Math.round(tlsKBps)} kB/s | no published ChaCha20 figure for the A72 found; measure on the device with \`openssl speed -evp chacha20-poly1305\` | not estimated |
| with software codecs instead (no V4L2 device) | box CPU with the mosaic open on this run's machine: ${r.mosaic_box_cpu_pct_median} % of an x86 core | four A72 cores | not estimated: no published per-core ratio between this machine and an A72 is cited here |
`;
};

ABOUT.windows = {
  title: 'The Windows agent under Wine, next to the Linux agent',
  what: `**Wine figures are indicative only.** The Windows agent runs here under Wine 8 on Linux, not
on Windows: Wine's GDI, its wineserver and its socket layer are not Windows', so these numbers say
how the agent behaves on this machine, not what it costs on a school's Windows PC (which
encodes with Media Foundation, in hardware when the PC has it, and would capture with DXGI once
that is written; under Wine, which has no Media Foundation H.264 encoder, it uses GDI and
OpenH264). One Xvfb display (1280×720) shows a moving picture drawn by a Windows program
under Wine (a 320×180 red square bouncing over blue, 25 steps a second). Both agents, release
builds, capture that same display one after the other and stream to a real box on loopback: the
Windows agent (\`lanterne-station.exe desktop\`, one process under Wine), then the Linux agent as
deployed (the \`run\` service as root and its \`session\` helper as the student, X11 capture,
GStreamer; their CPU and RSS summed). Three phases each: nobody watching, the mosaic open (the
agent sends its thumbnail) and the station's focus view open (it sends its full stream). For
each phase, after a 3 s warm-up, several windows: agent CPU is utime+stime of its processes over
the window (100 % = one core), RSS is VmRSS at the end of the window; medians over the windows.
"Sent" is what the agent's TCP connection to the box's station link sent (the kernel's
\`bytes_sent\`, TLS and control messages included); frames are the thumbnail frames the mosaic
took in, or the access units the focus view received. The wineserver's CPU is Wine's own cost
outside the agent's process, shared with the painter.`,
  rows: (r) => {
    const w = r.windows;
    const l = r.linux;
    const both = (f) => `${f(w)} / ${f(l)}`;
    return [
      ['nobody watching: agent CPU (% of a core), Windows under Wine / Linux', both((a) => a.idle.cpu_pct_median), 'reported'],
      ['nobody watching: agent RSS (MB)', both((a) => a.idle.rss_mb_median), 'reported'],
      ['nobody watching: sent (kB/s)', both((a) => a.idle.sent_kB_per_s_median), 'reported'],
      ['thumbnail: agent CPU (% of a core)', both((a) => a.thumbnail.cpu_pct_median), 'reported'],
      ['thumbnail: agent RSS (MB)', both((a) => a.thumbnail.rss_mb_median), 'reported'],
      ['thumbnail: sent (kB/s)', both((a) => a.thumbnail.sent_kB_per_s_median), 'reported'],
      ['thumbnail: frames/s taken in by the mosaic', both((a) => a.thumbnail.thumbnail_frames_per_s_median), 'reported'],
      ['full stream: agent CPU (% of a core)', both((a) => a.full.cpu_pct_median), 'reported'],
      ['full stream: agent RSS (MB)', both((a) => a.full.rss_mb_median), 'reported'],
      ['full stream: sent (kB/s)', both((a) => a.full.sent_kB_per_s_median), 'reported'],
      ['full stream: frames/s at the focus view', both((a) => a.full.focus_frames_per_s_median), 'reported'],
      ['full stream: video at the focus view (kB/s)', both((a) => a.full.focus_video_kB_per_s_median), 'reported'],
      ['wineserver CPU (% of a core) while nobody watches / thumbnail / full stream', `${w.idle.wineserver_cpu_pct_median} / ${w.thumbnail.wineserver_cpu_pct_median} / ${w.full.wineserver_cpu_pct_median}`, '—'],
    ];
  },
  after: (r, params) => {
    const a = params.agents || {};
    const who = (k) => (a[k] ? `${a[k].capture} capture, ${a[k].encoder} encoder` : 'unknown');
    return `
Capture and encoder: the Windows agent under Wine ${who('windows')} (as it told the box); the
Linux agent ${who('linux')} (its session helper's log). Different encoders explain part of any
difference, as does Wine itself; no figure here is a measurement on Windows. The picture changes
25 times a second, so about 25 frames/s is the most a full stream can carry (the focus view
asks for 30); a full stream below that is the agent not keeping up on this machine's shared cores.
`;
  },
};

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
let md = `# Benchmarks

Figures measured by the benchmark scripts, regenerated from \`docs/bench/*.json\` (one file per
benchmark, with the date and the machine) by \`node scripts/bench/render.mjs\`. These are
benchmarks, not tests: the shared machines they run on are noisy, so each reports medians over
several windows and a baseline measured in the same run.
`;
for (const f of files) {
  const b = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
  const about = ABOUT[b.benchmark];
  if (!about) continue;
  md += `\n## ${about.title}\n\n${about.what}\n\nReproduce: \`${b.command}\`\n\n`;
  md += `Measured ${b.date} on ${b.machine.cpu} (${b.machine.cores} cores, ${b.machine.memory_gb} GB), ${b.machine.os}; box codecs ${b.machine.box_codecs}; parameters ${JSON.stringify(b.params)}.\n\n`;
  md += '| figure | measured | target |\n|---|---|---|\n';
  for (const [name, v, t] of about.rows(b.results)) md += `| ${name} | ${v} | ${t} |\n`;
  if (b.met) {
    const missed = Object.entries(b.met).filter(([, ok]) => !ok).map(([k]) => k);
    md += `\nTargets ${missed.length ? `missed: ${missed.join(', ')}` : 'all met'}.\n`;
  }
  if (about.after) md += about.after(b.results, b.params);
}
writeFileSync(path.join(root, 'docs/benchmarks.md'), md);
console.log('wrote docs/benchmarks.md');
