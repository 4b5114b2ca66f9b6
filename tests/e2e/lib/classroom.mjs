// Starts a real Lanterne box and a simulated classroom (one `lanterne-station classroom`
// process with N synthetic stations) in a fresh temporary directory, for the browser tests.
//
//   const room = await startClassroom({ stations: 8 });
//   // room.url, room.username, room.password, room.stations[i] = { id, name, rgb },
//   room.boxPid, room.classroomPid (for the benchmarks' CPU and memory readings)
//   await room.stop();
//
// Options: `config` (the box's TOML config; the addresses are still given on the command
// line), `replay` (a replay file for every station), `autologin` (names of the stations set
// up to open a session on order; the others refuse). `room.status()` reads what each
// station shows (lock, messages, system actions), `room.waitForStatus(pred)` waits until a
// predicate on it holds, and `room.order('dismiss poste-01 3')` acts as a student.
// `stations: 0` starts the box alone; `room.runStation(name, args)` enrols and runs one real
// `lanterne-station run` process (e.g. capturing an Xvfb display).
//
// Needs the binaries built first (`cargo build --workspace --bins`, which scripts/test.sh
// does); LANTERNE_BIN_DIR overrides where they are (default: target/debug).
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { existsSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const binDir = process.env.LANTERNE_BIN_DIR || path.join(root, 'target', 'debug');

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
  stations = 8, replay = null, config = null, autologin = [],
} = {}) {
  for (const b of ['lanterne-box', 'lanterne-station']) {
    if (!existsSync(path.join(binDir, b))) {
      throw new Error(`${b} not found in ${binDir}: run cargo build --workspace --bins first`);
    }
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'lanterne-e2e-'));
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' };
  const boxLog = openSync(path.join(dir, 'box.log'), 'w');
  const boxArgs = ['run', '--data-dir', path.join(dir, 'box'), '--https', '127.0.0.1:0',
    '--station-link', '127.0.0.1:0', '--ready-file', path.join(dir, 'ready.json')];
  if (config !== null) {
    await writeFile(path.join(dir, 'box.toml'), config);
    boxArgs.push('--config', path.join(dir, 'box.toml'));
  }
  const box = spawn(path.join(binDir, 'lanterne-box'), boxArgs,
    { env, stdio: ['ignore', 'ignore', boxLog] });
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
      path.join(binDir, 'lanterne-box'),
      ['enrol-codes', '--data-dir', path.join(dir, 'box'), '--count', String(count)],
      { env, timeout: 60_000 },
    )).stdout;
    const base = {
      url: ready.https_url,
      username: 'admin',
      password: ready.admin_password,
      caCert: ready.ca_cert,
      dir,
      boxPid: box.pid,
      stop,
      async runStation(name, args) {
        const token = (await enrolCodes(1)).trim();
        const data = path.join(dir, 'stations', name);
        await promisify(execFile)(path.join(binDir, 'lanterne-station'),
          ['enrol', '--data-dir', data, '--box', ready.https_url, '--token', token,
            '--hostname', name], { env, timeout: 60_000 });
        const log = openSync(path.join(dir, `${name}.log`), 'w');
        const p = spawn(path.join(binDir, 'lanterne-station'), ['run', '--data-dir', data, ...args],
          { env, stdio: ['ignore', 'ignore', log] });
        procs.push(p);
        return p;
      },
    };
    if (stations === 0) return base;
    await writeFile(path.join(dir, 'tokens.txt'), await enrolCodes(stations));
    const args = ['classroom', '--data-dir', path.join(dir, 'stations'), '--box', ready.https_url,
      '--tokens', path.join(dir, 'tokens.txt'), '--count', String(stations),
      '--manifest', path.join(dir, 'stations.json'), '--status', path.join(dir, 'status.json')];
    if (replay) args.push('--replay', replay);
    if (autologin.length) args.push('--autologin', autologin.join(','));
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
