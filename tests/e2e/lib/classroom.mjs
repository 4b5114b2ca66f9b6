// Starts a real Lanterne box and a simulated classroom (one `lanterne-station classroom`
// process with N synthetic stations) in a fresh temporary directory, for the browser tests.
//
//   const room = await startClassroom({ stations: 8 });
//   // room.url, room.username, room.password, room.stations[i] = { id, name, rgb },
//   room.boxPid, room.classroomPid (for the benchmarks' CPU and memory readings)
//   await room.stop();
//
// Options: `config` (the box's TOML config; the addresses are still given on the command
// line; default: the development room), `schedule` (default true: a config without its own
// `[schedule]` gets `scheduleIncludingNow()`, since a box without one watches nobody; false
// keeps the config as given), `replay` (a replay file for every station), `autologin` (names
// of the stations set up to open a session on order; the others refuse), `stationConfig` (every
// station's own configuration, as /etc/lanterne/station.toml on a real PC: the commands it
// accepts; without it the stations run no command). `room.status()` reads what each
// station shows (lock, messages, system actions), `room.waitForStatus(pred)` waits until a
// predicate on it holds, and `room.order('dismiss poste-01 3')` acts as a student.
// `room.restartBox()` stops the box and starts it again on the same data directory, config and
// addresses (stations and tablets find it where it was). `stations: 0` starts the box alone; `room.runStation(name, args)` enrols one station and
// runs it as on a PC: the system service (`lanterne-station run`) and the session helper
// (`lanterne-station session ARGS`, e.g. capturing an Xvfb display) joined by their socket.
// Run as root (CI), the helper runs as the account `nobody`, as a student's would: the service
// refuses a helper running as root.
//
// Needs the binaries built first (`cargo build --workspace --bins`, which scripts/test.sh
// does); LANTERNE_BIN_DIR overrides where they are (default: target/debug).
// LANTERNE_BOX_BIN runs another box binary, and LANTERNE_BOX_WRAPPER runs it through a
// command (space-separated), e.g. an aarch64 build under `qemu-aarch64 -L SYSROOT`
// (scripts/bench-aarch64.sh); the stations stay this machine's own.
import { spawn, execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { existsSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import https from 'node:https';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const binDir = process.env.LANTERNE_BIN_DIR || path.join(root, 'target', 'debug');
const boxBin = process.env.LANTERNE_BOX_BIN || path.join(binDir, 'lanterne-box');
const boxWrapper = (process.env.LANTERNE_BOX_WRAPPER || '').split(' ').filter(Boolean);
/** The command and arguments that run the box with `args`. */
const boxCommand = (args) => (boxWrapper.length
  ? [boxWrapper[0], [...boxWrapper.slice(1), boxBin, ...args]]
  : [boxBin, args]);

/** What the box runs without --config: the development room (appliance/box config.rs). */
const DEVELOPMENT_ROOM = `[room]
name = "Salle de démonstration"
school = "Établissement de démonstration"
[panel]
backend = "simulated"
[accounts]
require_totp_for_admins = false
`;

/**
 * A `[schedule]` under which screens may be watched now and for about eleven hours either
 * way: open all day, watched all day but for the policy's 30-minute monitoring-free slot,
 * placed about twelve hours from now (local time, which the box shares with this process).
 * The same as `schedule_including_now` of the Rust scenarios.
 */
export function scheduleIncludingNow() {
  const now = new Date();
  const minute = now.getHours() * 60 + now.getMinutes();
  const free = Math.min(Math.max((minute + 12 * 60) % (24 * 60), 60), 23 * 60);
  const hhmm = (m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  const days = '["mon", "tue", "wed", "thu", "fri", "sat", "sun"]';
  return `[schedule]
access = [{ days = ${days}, start = "00:00", end = "24:00" }]
monitoring = [
  { days = ${days}, start = "00:00", end = "${hhmm(free)}" },
  { days = ${days}, start = "${hhmm(free + 30)}", end = "24:00" },
]
`;
}

async function waitForFile(file, proc, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) {
      throw new Error(`${what} exited with code ${proc.exitCode} before it was ready`);
    }
    if (existsSync(file)) {
      try {
        return JSON.parse(await readFile(file, 'utf8'));
      } catch {
        // Written by rename, so a parse error means "not yet"; poll again.
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`);
}

export async function startClassroom({
  stations = 8, replay = null, config = null, autologin = [], schedule = true, stationConfig = null,
  keepFirstPassword = false,
} = {}) {
  for (const b of [boxBin, path.join(binDir, 'lanterne-station')]) {
    if (!existsSync(b)) {
      throw new Error(`${b} not found: run cargo build --workspace --bins first`);
    }
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'lanterne-e2e-'));
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' };
  const boxLog = openSync(path.join(dir, 'box.log'), 'w');
  const boxArgs = ['run', '--data-dir', path.join(dir, 'box'), '--https', '127.0.0.1:0',
    '--station-link', '127.0.0.1:0', '--ready-file', path.join(dir, 'ready.json')];
  let toml = config ?? DEVELOPMENT_ROOM;
  if (schedule && !toml.includes('[schedule]')) toml = `${toml.replace(/\n?$/, '\n')}${scheduleIncludingNow()}`;
  await writeFile(path.join(dir, 'box.toml'), toml);
  boxArgs.push('--config', path.join(dir, 'box.toml'));
  let box = spawn(...boxCommand(boxArgs), { env, stdio: ['ignore', 'ignore', boxLog] });
  const procs = [box];
  const stop = async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode === null
      ? new Promise((r) => p.once('exit', r)) : null)));
    if (!process.env.LANTERNE_KEEP_TMP) await rm(dir, { recursive: true, force: true });
  };
  try {
    const ready = await waitForFile(path.join(dir, 'ready.json'), box, 'lanterne-box', 60_000);
    const enrolCodes = async (count) => (await promisify(execFile)(
      ...boxCommand(['enrol-codes', '--data-dir', path.join(dir, 'box'), '--count', String(count)]),
      { env, timeout: 60_000 },
    )).stdout;
    // The generated first password must be replaced at the first sign-in; the harness does
    // it as the admin would, so the tests sign in with the new one.
    // `keepFirstPassword`: the test goes through that first sign-in itself.
    let password = ready.admin_password;
    if (!keepFirstPassword) {
      password = `${ready.admin_password}-Lt9`;
      await replaceFirstPassword(ready, ready.admin_password, password);
    }
    const base = {
      url: ready.https_url,
      username: 'admin',
      password,
      caCert: ready.ca_cert,
      dir,
      boxPid: box.pid,
      stop,
      /**
       * Stops the box (SIGTERM, as systemd would) and starts it again with the same data
       * directory, config and addresses, as after a power cut or an update. Resolves when
       * the new box accepts connections, with { stoppedAt, readyAt } (Date.now() values).
       */
      async restartBox() {
        const exited = new Promise((r) => box.once('exit', r));
        box.kill('SIGTERM');
        await exited;
        const stoppedAt = Date.now();
        const readyFile = path.join(dir, 'ready.json');
        await rm(readyFile, { force: true });
        const args = [...boxArgs];
        args[args.indexOf('--https') + 1] = new URL(ready.https_url).host;
        args[args.indexOf('--station-link') + 1] = ready.station_link;
        const log = openSync(path.join(dir, 'box.log'), 'a');
        box = spawn(...boxCommand(args), { env, stdio: ['ignore', 'ignore', log] });
        procs.push(box);
        this.boxPid = box.pid;
        await waitForFile(readyFile, box, 'lanterne-box (restarted)', 60_000);
        return { stoppedAt, readyAt: Date.now() };
      },
      async runStation(name, args) {
        const token = (await enrolCodes(1)).trim();
        const data = path.join(dir, 'stations', name);
        await promisify(execFile)(path.join(binDir, 'lanterne-station'),
          ['enrol', '--data-dir', data, '--box', ready.https_url, '--token', token,
            '--hostname', name], { env, timeout: 60_000 });
        // The PC's own configuration names the helper's socket, in a directory the helper's
        // account may reach.
        const pc = path.join(dir, `pc-${name}`);
        await mkdir(pc, { recursive: true });
        await chmod(dir, 0o755);
        await chmod(pc, 0o755);
        const socket = path.join(pc, 'session.sock');
        const config = path.join(pc, 'station.toml');
        await writeFile(config, `[session]\nsocket = ${JSON.stringify(socket)}\n`, { mode: 0o644 });
        const log = openSync(path.join(dir, `${name}.log`), 'w');
        const service = spawn(path.join(binDir, 'lanterne-station'),
          ['run', '--data-dir', data, '--config', config], { env, stdio: ['ignore', 'ignore', log] });
        procs.push(service);
        const deadline = Date.now() + 30_000;
        while (!existsSync(socket)) {
          if (service.exitCode !== null) throw new Error(`the service of ${name} exited`);
          if (Date.now() > deadline) throw new Error(`the service of ${name} never listened`);
          await new Promise((r) => setTimeout(r, 50));
        }
        // Its home holds GStreamer's registry cache.
        const home = path.join(pc, 'home');
        await mkdir(home);
        const helperArgs = ['session', '--socket', socket, ...args];
        const options = { env: { ...env, HOME: home }, stdio: ['ignore', 'ignore',
          openSync(path.join(dir, `${name}-session.log`), 'w')] };
        if (process.getuid() === 0) {
          const id = async (flag) => Number((await promisify(execFile)('id', [flag, 'nobody'])).stdout);
          options.uid = await id('-u');
          options.gid = await id('-g');
          await chown(home, options.uid, options.gid);
        } else {
          // Not root: the service runs as this account too, and the helper is told so.
          helperArgs.push('--service-user', String(process.getuid()));
        }
        procs.push(spawn(path.join(binDir, 'lanterne-station'), helperArgs, options));
        return service;
      },
    };
    if (stations === 0) return base;
    await writeFile(path.join(dir, 'tokens.txt'), await enrolCodes(stations));
    const args = ['classroom', '--data-dir', path.join(dir, 'stations'), '--box', ready.https_url,
      '--tokens', path.join(dir, 'tokens.txt'), '--count', String(stations),
      '--manifest', path.join(dir, 'stations.json'), '--status', path.join(dir, 'status.json')];
    if (replay) args.push('--replay', replay);
    if (autologin.length) args.push('--autologin', autologin.join(','));
    if (stationConfig !== null) {
      // Written with mode 0644: the station refuses a file others may write.
      await writeFile(path.join(dir, 'station.toml'), stationConfig, { mode: 0o644 });
      args.push('--station-config', path.join(dir, 'station.toml'));
    }
    const classLog = openSync(path.join(dir, 'stations.log'), 'w');
    const classroom = spawn(path.join(binDir, 'lanterne-station'), args,
      { env, stdio: ['pipe', 'ignore', classLog] });
    procs.push(classroom);
    // Every wait in the browser tests is bounded by a minute (lib/browser.mjs).
    const manifest = await waitForFile(path.join(dir, 'stations.json'), classroom,
      'lanterne-station classroom', 60_000);
    const status = async () => {
      try {
        return JSON.parse(await readFile(path.join(dir, 'status.json'), 'utf8'));
      } catch {
        return null; // not written yet
      }
    };
    return {
      ...base,
      status,
      async waitForStatus(pred, what, timeoutMs = 15_000) {
        const deadline = Date.now() + timeoutMs;
        let last = null;
        while (Date.now() < deadline) {
          last = await status();
          if (last && pred(last)) return last;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`stations never showed: ${what}; last status: ${JSON.stringify(last)}`);
      },
      order(line) {
        classroom.stdin.write(`${line}\n`);
      },
      stations: manifest,
      classroomPid: classroom.pid,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** One JSON request to the box over HTTPS, trusting its CA; answers { status, headers, body }. */
async function boxRequest(ready, method, route, body, cookie) {
  const url = new URL(route, ready.https_url);
  const ca = await readFile(ready.ca_cert);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method,
      ca,
      timeout: 30_000,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(data),
        origin: new URL(ready.https_url).origin,
        ...(cookie ? { cookie } : {}),
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${route}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Signs the first admin in with the generated password and replaces it. */
async function replaceFirstPassword(ready, first, next) {
  const login = await boxRequest(ready, 'POST', '/api/login', { username: 'admin', password: first });
  if (login.status !== 200) throw new Error(`first sign-in: ${login.status} ${login.body}`);
  const cookie = String(login.headers['set-cookie']).split(';')[0];
  const change = await boxRequest(ready, 'POST', '/api/account/password',
    { current_password: first, new_password: next }, cookie);
  if (change.status !== 204) throw new Error(`replacing the first password: ${change.status} ${change.body}`);
}
