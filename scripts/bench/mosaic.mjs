// Mosaic benchmark: N replayed stations stream thumbnails to a real box; headless Chromium
// shows the room page and decodes the composed mosaic with WebCodecs. Reports mosaic frames
// per second delivered to the browser, station-frame → browser-decoded latency (p50/p99,
// from the capture timestamps every frame carries), and the box's CPU and RSS.
//
// Run through scripts/bench-mosaic.sh (builds release binaries and the replay file first):
//   scripts/bench-mosaic.sh [stations=32] [windows=5] [window_seconds=10]
//
// Readings are taken over several windows and reported as medians, because these machines
// are shared and noisy. In the same run, the same stations are also measured with nobody
// watching (the baseline): the difference is what one viewer costs the box.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from '../../tests/e2e/lib/classroom.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const require = createRequire(path.join(root, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');

const [stationsArg, windowsArg, secondsArg, replayArg] = process.argv.slice(2);
const STATIONS = Number(stationsArg || 32);
const WINDOWS = Number(windowsArg || 5);
const WINDOW_S = Number(secondsArg || 10);
const REPLAY = replayArg || path.join(root, 'run/bench/thumb.lrp');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

function cpuTicks(pid) {
  // utime + stime, fields 14 and 15 of /proc/<pid>/stat (after the parenthesised name).
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

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

async function measureCpu(pids, seconds) {
  const t0 = Date.now();
  const before = pids.map(cpuTicks);
  await sleep(seconds * 1000);
  const dt = (Date.now() - t0) / 1000;
  return pids.map((p, i) => ((cpuTicks(p) - before[i]) / CLK_TCK / dt) * 100);
}

const room = await startClassroom({ stations: STATIONS, replay: REPLAY });
let browser;
try {
  // Let every station connect and the mosaic settle.
  await sleep(5000);

  // Baseline: stations streaming, box composing, nobody watching.
  const idle = [];
  for (let w = 0; w < Math.min(WINDOWS, 3); w++) {
    const [boxCpu] = await measureCpu([room.boxPid], WINDOW_S / 2);
    idle.push(boxCpu);
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

  const windows = [];
  const latencies = [];
  let rssMax = 0;
  for (let w = 0; w < WINDOWS; w++) {
    const f0 = await page.evaluate(() => { window.lanterneStats.latencyMs.length = 0; return window.lanterneStats.framesDecoded; });
    const t0 = Date.now();
    const [boxCpu, stationsCpu] = await measureCpu([room.boxPid, room.classroomPid], WINDOW_S);
    const { frames, lat } = await page.evaluate(() => ({
      frames: window.lanterneStats.framesDecoded,
      lat: [...window.lanterneStats.latencyMs],
    }));
    const dt = (Date.now() - t0) / 1000;
    const rss = rssMb(room.boxPid);
    rssMax = Math.max(rssMax, rss);
    latencies.push(...lat);
    windows.push({
      mosaic_fps: round((frames - f0) / dt),
      box_cpu_pct: round(boxCpu),
      stations_process_cpu_pct: round(stationsCpu),
      box_rss_mb: round(rss),
      latency_ms_p50: round(percentile(lat, 50)),
      latency_ms_p99: round(percentile(lat, 99)),
      latency_samples: lat.length,
    });
    console.log(`window ${w + 1}/${WINDOWS}:`, JSON.stringify(windows.at(-1)));
  }

  const results = {
    mosaic_fps_median: round(median(windows.map((w) => w.mosaic_fps))),
    latency_ms_p50: round(percentile(latencies, 50)),
    latency_ms_p99: round(percentile(latencies, 99)),
    latency_samples: latencies.length,
    box_cpu_pct_median: round(median(windows.map((w) => w.box_cpu_pct))),
    box_cpu_pct_no_viewer_median: round(median(idle)),
    box_rss_mb_max: round(rssMax),
    stations_process_cpu_pct_median: round(median(windows.map((w) => w.stations_process_cpu_pct))),
  };
  results.viewer_cpu_ratio = round(results.box_cpu_pct_median / results.box_cpu_pct_no_viewer_median, 2);
  const targets = { mosaic_fps_min: 5, latency_ms_p50_max: 150, latency_ms_p99_max: 300, box_rss_mb_max: 200 };
  const verdict = {
    mosaic_fps: results.mosaic_fps_median >= targets.mosaic_fps_min,
    latency_p50: results.latency_ms_p50 < targets.latency_ms_p50_max,
    latency_p99: results.latency_ms_p99 < targets.latency_ms_p99_max,
    box_rss: results.box_rss_mb_max < targets.box_rss_mb_max,
  };
  const cpu = os.cpus();
  const report = {
    benchmark: 'mosaic',
    date: new Date().toISOString(),
    command: `scripts/bench-mosaic.sh ${STATIONS} ${WINDOWS} ${WINDOW_S}`,
    machine: {
      cpu: cpu[0]?.model, cores: cpu.length, memory_gb: round(os.totalmem() / 2 ** 30),
      os: `${os.type()} ${os.release()}`, node: process.version,
      box_codecs: JSON.parse(readFileSync(path.join(room.dir, 'ready.json'), 'utf8')).codec,
    },
    params: { stations: STATIONS, windows: WINDOWS, window_seconds: WINDOW_S, replay: path.relative(root, REPLAY) },
    results,
    targets,
    met: verdict,
    windows,
  };
  console.log(JSON.stringify(report, null, 2));
  mkdirSync(path.join(root, 'docs/bench'), { recursive: true });
  writeFileSync(path.join(root, 'docs/bench/mosaic.json'), `${JSON.stringify(report, null, 2)}\n`);
} finally {
  if (browser) await browser.close();
  await room.stop();
}
