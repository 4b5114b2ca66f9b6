// Starts a real Lanterne box and a simulated classroom (one `lanterne-station classroom`
// process with N synthetic stations) in a fresh temporary directory, for the browser tests.
//
//   const room = await startClassroom({ stations: 8 });
//   const room = await startClassroom({ stations: 1, config: '[room]\nname = "Salle 12"\n' });
//   (config: a room configuration in TOML; its addresses are replaced by free loopback ports)
//   // room.url, room.username, room.password, room.stations[i] = { id, name, rgb },
//   room.boxPid, room.classroomPid (for the benchmarks' CPU and memory readings)
//   await room.stop();
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

export async function startClassroom({ stations = 8, replay = null, config = null } = {}) {
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
    await writeFile(path.join(dir, 'lanterne.toml'), config);
    boxArgs.push('--config', path.join(dir, 'lanterne.toml'));
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
    const { stdout } = await promisify(execFile)(
      path.join(binDir, 'lanterne-box'),
      ['enrol-codes', '--data-dir', path.join(dir, 'box'), '--count', String(stations)],
      { env },
    );
    await writeFile(path.join(dir, 'tokens.txt'), stdout);
    const args = ['classroom', '--data-dir', path.join(dir, 'stations'), '--box', ready.https_url,
      '--tokens', path.join(dir, 'tokens.txt'), '--count', String(stations),
      '--manifest', path.join(dir, 'stations.json')];
    if (replay) args.push('--replay', replay);
    const classLog = openSync(path.join(dir, 'stations.log'), 'w');
    const classroom = spawn(path.join(binDir, 'lanterne-station'), args,
      { env, stdio: ['ignore', 'ignore', classLog] });
    procs.push(classroom);
    const manifest = await waitForFile(path.join(dir, 'stations.json'), classroom,
      'lanterne-station classroom', 120_000);
    return {
      url: ready.https_url,
      username: 'admin',
      password: ready.admin_password,
      caCert: ready.ca_cert,
      stations: manifest,
      dir,
      boxPid: box.pid,
      classroomPid: classroom.pid,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
