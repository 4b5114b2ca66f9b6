// Scale benchmark: a classroom of N stations (40 by default) showing realistic screens
// (recorded by scripts/bench/record-content.sh through the station's own capture, encoder
// and rate control), a real box, and in the same run the same motion content served by
// x11vnc to view-only VNC receivers, as Epoptes and Veyon do.
//
// Run through scripts/bench-scale.sh (installs, builds, records the content first):
//   scripts/bench-scale.sh [stations=40] [windows=3] [window_seconds=10] [vnc_receivers=10]
//
// Phases, all in one run:
//  1. content: bytes per second of each recorded scene, thumbnail and full size, as they go
//     on the station link (access units plus the link's framing and TLS record overhead).
//  2. idle room: the stations are connected and nobody watches. Box CPU, and every byte the
//     box receives on the station link (`ss -ti` on its port): heartbeats only, no video.
//  3. mosaic: headless Chromium opens the real room page; the box decodes N thumbnails,
//     composes and encodes the mosaic. Mosaic fps delivered to the browser, station frame →
//     browser-decoded latency, box CPU, station-link bytes per station.
//  4. VNC: for each motion scene, the same program runs on a fresh Xvfb screen, x11vnc
//     serves it to M receivers (scripts/bench/rfb.mjs); bytes and updates per receiver and
//     x11vnc's CPU per receiver, against the bytes per receiver of Lanterne's fan-out, which
//     forwards the station's full stream of that scene unchanged to each receiver, and, in
//     the same run, the box's relay CPU per receiver for that stream: bench-fanout (the
//     fan-out benchmark's program) shows the scene's full stream to the same number of
//     receiving stations through a real box.
// Box RSS is sampled every 500 ms over the whole run.
//
// With LANTERNE_BENCH_AARCH64 set (scripts/bench-aarch64.sh), the box is the aarch64 build run
// under qemu-aarch64 (LANTERNE_BOX_BIN, LANTERNE_BOX_WRAPPER: tests/e2e/lib/classroom.mjs):
// a functional check at a small scale. Its CPU and memory are the emulator's, not a Pi's, so
// the report (docs/bench/scale-aarch64.json) carries no targets, and the VNC phase, which does
// not involve the box, is skipped.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdirSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from '../../tests/e2e/lib/classroom.mjs';
import { connectRfb } from './rfb.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const require = createRequire(path.join(root, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');

const [stationsArg, windowsArg, secondsArg, vncArg, contentArg] = process.argv.slice(2);
const STATIONS = Number(stationsArg || 40);
const WINDOWS = Number(windowsArg || 3);
const WINDOW_S = Number(secondsArg || 10);
const AARCH64 = Boolean(process.env.LANTERNE_BENCH_AARCH64);
const VNC_RECEIVERS = AARCH64 ? 0 : Number(vncArg || 10);
const CONTENT = contentArg || path.join(root, 'target/bench-content');
// Where the release binaries are (bench-fanout of the VNC phase); scripts/bench-scale.sh sets it.
const BIN_DIR = process.env.LANTERNE_BIN_DIR || path.join(root, 'target', 'release');
const SCENES = ['editor', 'browser', 'video', 'slide', 'idle'];
const MOTION_SCENES = ['video', 'browser'];
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
// On the station link every access unit is a frame (kind u8, length u32) with an 18-byte
// media header, inside TLS 1.3 records of at most 16 KiB, each 22 bytes longer (header,
// content type, AEAD tag).
const FRAME_OVERHEAD = 5 + 18;
const TLS_RECORD = 16384;
const TLS_OVERHEAD = 22;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
/** Bytes received so far on every established TCP connection to local port `port`. */
function linkBytesReceived(port) {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`]).toString();
  let sum = 0;
  for (const m of out.matchAll(/bytes_received:(\d+)/g)) sum += Number(m[1]);
  return sum;
}

/** A replay file's header and frames (format: appliance/media/src/replay.rs). */
function readReplay(file) {
  const b = readFileSync(file);
  if (b.toString('latin1', 0, 8) !== 'LNTRPLAY') throw new Error(`${file}: not a replay file`);
  const [width, height, fps, , count, loopMs] = [10, 14, 18, 22, 26, 30].map((o) => b.readUInt32LE(o));
  let pos = 34;
  const frames = [];
  for (let i = 0; i < count; i++) {
    const len = b.readUInt32LE(pos);
    const pts = Number(b.readBigUInt64LE(pos + 4));
    const key = (b[pos + 12] & 1) === 1;
    frames.push({ len, pts, key });
    pos += 13 + len;
  }
  const durationS = loopMs ? loopMs / 1000 : (frames.at(-1).pts + 1e6 / fps) / 1e6;
  return { width, height, fps, frames, durationS };
}

function wireRate(r) {
  const au = r.frames.reduce((a, f) => a + f.len, 0);
  const wire = r.frames.reduce((a, f) => {
    const n = f.len + FRAME_OVERHEAD;
    return a + n + Math.ceil(n / TLS_RECORD) * TLS_OVERHEAD;
  }, 0);
  return {
    size: `${r.width}x${r.height}`,
    kbytes_per_s: round(wire / r.durationS / 1000, 2),
    au_kbytes_per_s: round(au / r.durationS / 1000, 2),
    frames_per_s: round(r.frames.length / r.durationS, 2),
    keyframes: r.frames.filter((f) => f.key).length,
    seconds: r.durationS,
  };
}

async function measureCpu(pids, seconds) {
  const t0 = Date.now();
  const before = pids.map(cpuTicks);
  await sleep(seconds * 1000);
  const dt = (Date.now() - t0) / 1000;
  return pids.map((p, i) => ((cpuTicks(p) - before[i]) / CLK_TCK / dt) * 100);
}

// ── 1. content ───────────────────────────────────────────────────────────────────────────
const content = {};
for (const s of SCENES) {
  content[s] = {
    thumb: wireRate(readReplay(path.join(CONTENT, `${s}-thumb.lrp`))),
    full: wireRate(readReplay(path.join(CONTENT, `${s}-full.lrp`))),
  };
  console.log(`content ${s}:`, JSON.stringify(content[s]));
}
// Station i replays scene i mod 5: a room of editors, readers, a few videos, slides, idle PCs.
const replays = SCENES.map((s) => path.join(CONTENT, `${s}-thumb.lrp`));
const expectedThumbKBps = Array.from({ length: STATIONS }, (_, i) => content[SCENES[i % SCENES.length]].thumb.kbytes_per_s)
  .reduce((a, b) => a + b, 0);

// ── 2.–3. the classroom ──────────────────────────────────────────────────────────────────
const room = await startClassroom({ stations: STATIONS, replay: replays.join(',') });
const ready = JSON.parse(readFileSync(path.join(room.dir, 'ready.json'), 'utf8'));
const linkPort = Number(ready.station_link.split(':').pop());
let rssMax = 0;
const rssTimer = setInterval(() => {
  try { rssMax = Math.max(rssMax, rssMb(room.boxPid)); } catch { /* exiting */ }
}, 500);
let browser;
const results = {};
const windows = { idle: [], mosaic: [] };
try {
  // Every station connected (the box lists them online), then past the 5 s linger.
  await sleep(8000);
  for (let w = 0; w < WINDOWS; w++) {
    const b0 = linkBytesReceived(linkPort);
    const t0 = Date.now();
    const [boxCpu] = await measureCpu([room.boxPid], WINDOW_S);
    const bps = (linkBytesReceived(linkPort) - b0) / ((Date.now() - t0) / 1000);
    windows.idle.push({ box_cpu_pct: round(boxCpu, 2), link_bytes_per_s: round(bps), connections: STATIONS });
    console.log(`idle window ${w + 1}/${WINDOWS}:`, JSON.stringify(windows.idle.at(-1)));
  }

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const login = await context.request.post(`${room.url}/api/login`, {
    data: { username: room.username, password: room.password },
    headers: { Origin: room.url },
  });
  if (!login.ok()) throw new Error(`login failed: ${login.status()} ${await login.text()}`);
  const page = await context.newPage();
  await page.goto(`${room.url}/room`);
  await page.waitForFunction(() => window.lanterneStats && window.lanterneStats.framesDecoded > 10,
    null, { timeout: 60_000 });
  await sleep(3000);
  const latencies = [];
  for (let w = 0; w < WINDOWS; w++) {
    const f0 = await page.evaluate(() => { window.lanterneStats.latencyMs.length = 0; return window.lanterneStats.framesDecoded; });
    const b0 = linkBytesReceived(linkPort);
    const t0 = Date.now();
    const [boxCpu, stationsCpu] = await measureCpu([room.boxPid, room.classroomPid], WINDOW_S);
    const { frames, lat } = await page.evaluate(() => ({
      frames: window.lanterneStats.framesDecoded,
      lat: [...window.lanterneStats.latencyMs],
    }));
    const dt = (Date.now() - t0) / 1000;
    const bps = (linkBytesReceived(linkPort) - b0) / dt;
    latencies.push(...lat);
    windows.mosaic.push({
      mosaic_fps: round((frames - f0) / dt),
      box_cpu_pct: round(boxCpu),
      stations_process_cpu_pct: round(stationsCpu),
      box_rss_mb: round(rssMb(room.boxPid)),
      link_kbytes_per_s_per_station: round(bps / STATIONS / 1000, 2),
      latency_ms_p50: round(percentile(lat, 50)),
      latency_ms_p99: round(percentile(lat, 99)),
      latency_samples: lat.length,
    });
    console.log(`mosaic window ${w + 1}/${WINDOWS}:`, JSON.stringify(windows.mosaic.at(-1)));
  }
  await browser.close();
  browser = null;

  Object.assign(results, {
    box_rss_mb_max: round(rssMax),
    idle_box_cpu_pct: round(median(windows.idle.map((w) => w.box_cpu_pct)), 2),
    idle_link_bytes_per_s: round(median(windows.idle.map((w) => w.link_bytes_per_s))),
    idle_link_bytes_per_s_per_station: round(median(windows.idle.map((w) => w.link_bytes_per_s)) / STATIONS, 1),
    mosaic_fps_median: round(median(windows.mosaic.map((w) => w.mosaic_fps))),
    latency_ms_p50: round(percentile(latencies, 50)),
    latency_ms_p99: round(percentile(latencies, 99)),
    latency_samples: latencies.length,
    mosaic_box_cpu_pct_median: round(median(windows.mosaic.map((w) => w.box_cpu_pct))),
    mosaic_link_kbytes_per_s_per_station: round(median(windows.mosaic.map((w) => w.link_kbytes_per_s_per_station)), 2),
    mosaic_link_expected_kbytes_per_s_per_station: round(expectedThumbKBps / STATIONS, 2),
    stations_process_cpu_pct_median: round(median(windows.mosaic.map((w) => w.stations_process_cpu_pct))),
  });
} finally {
  clearInterval(rssTimer);
  if (browser) await browser.close();
  await room.stop();
}
results.box_rss_mb_max = round(rssMax);

// ── 4. VNC on the same motion content ───────────────────────────────────────────────────
const vnc = {};
for (const scene of VNC_RECEIVERS > 0 ? MOTION_SCENES : []) {
  vnc[scene] = await vncRun(scene);
  console.log(`vnc ${scene}:`, JSON.stringify(vnc[scene]));
}

async function vncRun(scene) {
  const work = mkdtempSync(path.join(os.tmpdir(), 'lanterne-vnc-'));
  const procs = [];
  const started = (p) => { procs.push(p); return p; };
  try {
    const xvfb = started(spawn('Xvfb', ['-displayfd', '1', '-screen', '0', '1920x1080x24', '-nolisten', 'tcp', '-noreset'],
      { stdio: ['ignore', 'pipe', 'ignore'] }));
    const display = `:${(await new Promise((r) => xvfb.stdout.once('data', r))).toString().trim()}`;
    // The same scene as recorded: record-content.sh --live sets it up and drives it, without
    // recording, until killed.
    started(spawn(path.join(root, 'scripts/bench/record-content.sh'), ['--live', scene],
      { env: { ...process.env, DISPLAY: display }, stdio: 'ignore', detached: true }));
    await sleep(9000); // the program's first paint
    const port = 5900 + Math.floor(Math.random() * 2000);
    const server = started(spawn('x11vnc', ['-display', display, '-viewonly', '-shared', '-forever', '-nopw',
      '-localhost', '-rfbport', String(port), '-quiet'], { stdio: 'ignore' }));
    let receivers = [];
    for (let tries = 0; receivers.length === 0; tries++) {
      try {
        receivers = await Promise.all(Array.from({ length: VNC_RECEIVERS }, () => connectRfb({ port })));
      } catch (e) {
        if (tries > 50) throw e;
        await sleep(200);
      }
    }
    await sleep(3000); // first full updates out of the way
    const s0 = receivers.map((r) => r.stats());
    const [serverCpu] = await measureCpu([server.pid], WINDOW_S);
    const s1 = receivers.map((r) => r.stats());
    receivers.forEach((r) => r.close());
    const per = s1.map((s, i) => ({
      kbytes_per_s: (s.bytes - s0[i].bytes) / WINDOW_S / 1000,
      updates_per_s: (s.updates - s0[i].updates) / WINDOW_S,
    }));
    const vncKBps = median(per.map((p) => p.kbytes_per_s));
    const lanterneKBps = content[scene].full.kbytes_per_s;
    return {
      receivers: VNC_RECEIVERS,
      vnc_kbytes_per_s_per_receiver: round(vncKBps),
      vnc_updates_per_s_per_receiver: round(median(per.map((p) => p.updates_per_s))),
      vnc_server_cpu_pct: round(serverCpu),
      vnc_server_cpu_pct_per_receiver: round(serverCpu / VNC_RECEIVERS, 2),
      lanterne_kbytes_per_s_per_receiver: lanterneKBps,
      lanterne_fps: content[scene].full.frames_per_s,
      bytes_ratio: round(vncKBps / lanterneKBps, 1),
      ...await fanoutRun(scene, serverCpu / VNC_RECEIVERS),
    };
  } finally {
    for (const p of procs.reverse()) {
      try { process.kill(p.detached ? -p.pid : p.pid, 'SIGTERM'); } catch { /* gone */ }
    }
    await sleep(1000);
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The box's fan-out of the scene's full stream to VNC_RECEIVERS receiving stations, measured
 * by bench-fanout (relay CPU = box CPU during the demo − before it, per receiver), next to
 * x11vnc's CPU per receiver.
 */
async function fanoutRun(scene, vncCpuPerReceiver) {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'lanterne-fanout-')), 'fanout.json');
  const windows = Math.min(WINDOWS, 3);
  const child = spawn(path.join(BIN_DIR, 'bench-fanout'),
    ['run', String(VNC_RECEIVERS), String(windows), String(WINDOW_S),
      path.join(CONTENT, `${scene}-thumb.lrp`), path.join(CONTENT, `${scene}-full.lrp`), out],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`bench-fanout on the ${scene} scene exited with ${code}`);
  const f = JSON.parse(readFileSync(out, 'utf8')).results;
  rmSync(path.dirname(out), { recursive: true, force: true });
  return {
    lanterne_relay_cpu_pct_per_receiver: f.relay_cpu_pct_per_receiver,
    lanterne_box_cpu_pct_with_demo: f.box_cpu_pct_median,
    lanterne_box_cpu_pct_before_demo: f.box_cpu_idle_pct_median,
    lanterne_frames_lost: f.healthy_frames_lost,
    cpu_ratio: f.relay_cpu_pct_per_receiver > 0 ? round(vncCpuPerReceiver / f.relay_cpu_pct_per_receiver, 1) : null,
  };
}

// ── report ───────────────────────────────────────────────────────────────────────────────
results.static_kbytes_per_s_per_station = Math.max(content.slide.thumb.kbytes_per_s, content.slide.full.kbytes_per_s);
results.static_thumb_kbytes_per_s = content.slide.thumb.kbytes_per_s;
results.static_full_kbytes_per_s = content.slide.full.kbytes_per_s;
results.content = content;
results.vnc = vnc;
results.vnc_bytes_ratio = VNC_RECEIVERS > 0 ? Math.min(...MOTION_SCENES.map((s) => vnc[s].bytes_ratio)) : null;
let fanout = null;
try {
  fanout = JSON.parse(readFileSync(path.join(root, 'docs/bench/fanout.json'), 'utf8'));
} catch { /* not measured on this checkout */ }
// The 1080p30 figure of the fan-out benchmark, for reference (another run).
results.lanterne_relay_cpu_pct_per_receiver = fanout?.results?.relay_cpu_pct_per_receiver ?? null;
results.lanterne_relay_cpu_measured = fanout?.date ?? null;

const targets = {
  box_rss_mb_max: 150, idle_box_cpu_pct_max: 1, static_kbytes_per_s_max: 20, mosaic_fps_min: 10, vnc_bytes_ratio_min: 10,
  // Heartbeats (every 5 s each way) are tens of bytes per second per station; the smallest
  // thumbnail stream is kilobytes per second.
  idle_link_bytes_per_s_per_station_max: 200,
};
const met = {
  box_rss: results.box_rss_mb_max < targets.box_rss_mb_max,
  idle_cpu: results.idle_box_cpu_pct < targets.idle_box_cpu_pct_max,
  idle_no_video: results.idle_link_bytes_per_s_per_station < targets.idle_link_bytes_per_s_per_station_max,
  static_rate: results.static_kbytes_per_s_per_station <= targets.static_kbytes_per_s_max,
  mosaic_fps: results.mosaic_fps_median >= targets.mosaic_fps_min,
  vnc_ratio: results.vnc_bytes_ratio >= targets.vnc_bytes_ratio_min,
};
const cpu = os.cpus();
const report = {
  benchmark: AARCH64 ? 'scale-aarch64' : 'scale',
  date: new Date().toISOString(),
  command: AARCH64
    ? `scripts/bench-aarch64.sh ${STATIONS} ${WINDOWS} ${WINDOW_S}`
    : `scripts/bench-scale.sh ${STATIONS} ${WINDOWS} ${WINDOW_S} ${VNC_RECEIVERS}`,
  machine: {
    cpu: cpu[0]?.model, cores: cpu.length, memory_gb: round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`, node: process.version, box_codecs: ready.codec,
    load_average_at_end: os.loadavg().map((x) => round(x, 2)),
  },
  params: {
    stations: STATIONS, windows: WINDOWS, window_seconds: WINDOW_S, vnc_receivers: VNC_RECEIVERS,
    scenes: SCENES, station_scene: 'station i replays scene i mod 5',
  },
  results,
  ...(AARCH64 ? { box: process.env.LANTERNE_BENCH_AARCH64 } : { targets, met }),
  windows,
};
console.log(JSON.stringify(report, null, 2));
mkdirSync(path.join(root, 'docs/bench'), { recursive: true });
writeFileSync(path.join(root, `docs/bench/${report.benchmark}.json`), `${JSON.stringify(report, null, 2)}\n`);
