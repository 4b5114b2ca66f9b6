// A station's X display in the browser tests: start Xvfb, take screenshots of it (PNG for
// people, RGB for checks), find something on it by its colour, and click there as the
// student would (xdotool, through XTEST).
import { spawn, execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Starts Xvfb (width × height) on a display it picks itself; resolves { proc, display }.
 * `-noreset`: without it the server resets whenever its last client leaves, and a client
 * connecting meanwhile is refused ("Can't open display"). Polling the display (xwininfo,
 * screenshots) while a program starts made that happen: the program died at once.
 */
export function startXvfb(width, height) {
  const proc = spawn('Xvfb', ['-displayfd', '1', '-screen', '0', `${width}x${height}x24`,
    '-nolisten', 'tcp', '-noreset'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Xvfb gave no display within 30 s')), 30_000);
    proc.on('error', (e) => reject(new Error(`Xvfb: ${e.message} (run scripts/setup.sh)`)));
    proc.stdout.once('data', (d) => {
      clearTimeout(timer);
      resolve({ proc, display: `:${String(d).trim()}`, width, height });
    });
  });
}

/** Screenshot of the whole X screen into `dir`/`name`.png; returns the raw RGB bytes. */
export async function screenshot(x, dir, name) {
  const png = path.join(dir, `${name}.png`);
  const raw = path.join(dir, `${name}.rgb`);
  await run('gst-launch-1.0', ['-q', 'ximagesrc', `display-name=${x.display}`, 'use-damage=false',
    'num-buffers=1', '!', 'videoconvert', '!', 'video/x-raw,format=RGB', '!', 'tee', 'name=t',
    't.', '!', 'queue', '!', 'filesink', `location=${raw}`,
    't.', '!', 'queue', '!', 'videoconvert', '!', 'pngenc', '!', 'filesink', `location=${png}`]);
  const rgb = await readFile(raw);
  if (rgb.length !== x.width * x.height * 3) throw new Error('not one full RGB frame');
  return rgb;
}

/** Centre of the pixels of exactly `colour` ([r, g, b]) on the screenshot, or null. */
export function centreOf(x, rgb, colour, minPixels = 50) {
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (let y = 0; y < x.height; y += 2) {
    for (let xx = 0; xx < x.width; xx += 2) {
      const i = (y * x.width + xx) * 3;
      if (rgb[i] === colour[0] && rgb[i + 1] === colour[1] && rgb[i + 2] === colour[2]) {
        sx += xx; sy += y; n += 1;
      }
    }
  }
  return n >= minPixels ? { x: Math.round(sx / n), y: Math.round(sy / n) } : null;
}

/** Waits for `colour` on the screen (screenshots kept as `name`); its centre. */
export async function waitForColour(x, dir, name, colour, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const at = centreOf(x, await screenshot(x, dir, name), colour);
    if (at) return at;
    if (Date.now() > deadline) throw new Error(`${colour} never showed on ${x.display}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A click at (px, py), as the student's mouse would make it. */
export async function click(x, px, py) {
  await run('xdotool', ['mousemove', '--sync', String(px), String(py), 'click', '1'],
    { env: { ...process.env, DISPLAY: x.display } });
}
