// The real lock overlay, seen in a screenshot: a station agent runs on an Xvfb display covered
// by a window of one colour; the teacher locks the class from the tablet UI; a screenshot of
// the X display then shows the lock screen (its background everywhere, the padlock and message
// drawn in the middle, nothing of the student's window), and after unlocking the student's
// window again. Screenshots are kept in test-results/ (x11-before.png, x11-locked.png,
// x11-unlocked.png).
//
// NEEDS THE BOX BINARIES BUILT FIRST: `cargo build --workspace --bins` (scripts/test.sh does it),
// plus Xvfb, xlogo, xwininfo and gst-launch-1.0 (scripts/setup.sh installs them).
//
//   cd tests/e2e && node --test x11-lock.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startClassroom } from './lib/classroom.mjs';
import { launch, TABLET } from './lib/browser.mjs';
import { startXvfb } from './lib/x11.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');
const run = promisify(execFile);
const WIDTH = 1280;
const HEIGHT = 720;
/** The student's window. */
const STUDENT = [0xc8, 0x32, 0x32];
/** The lock screen's background and the watched badge (appliance/overlay theme.rs). */
const LOCK_BACKGROUND = [0x0b, 0x14, 0x26];
const BADGE = [0xb9, 0x1c, 0x1c];
/** The OK button of a message card (theme.rs MESSAGE_BUTTON). */
const MESSAGE_BUTTON = [0x25, 0x63, 0xeb];

/** Covers the screen with one colour (xlogo with equal fore- and background). */
async function studentWindow(display) {
  const hex = `#${STUDENT.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
  const proc = spawn('xlogo', ['-display', display, '-bg', hex, '-fg', hex,
    '-geometry', `${WIDTH}x${HEIGHT}+0+0`], { stdio: 'ignore' });
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await run('xwininfo', ['-display', display, '-name', 'xlogo']);
      return proc;
    } catch {
      if (Date.now() > deadline) throw new Error('the xlogo window never appeared');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Screenshot of the whole X screen: a PNG for people, raw RGB bytes for the checks. */
async function screenshot(display, name) {
  const png = path.join(results, `${name}.png`);
  const raw = path.join(results, `${name}.rgb`);
  await run('gst-launch-1.0', ['-q', 'ximagesrc', `display-name=${display}`, 'use-damage=false',
    'num-buffers=1', '!', 'videoconvert', '!', 'video/x-raw,format=RGB', '!', 'tee', 'name=t',
    't.', '!', 'queue', '!', 'filesink', `location=${raw}`,
    't.', '!', 'queue', '!', 'videoconvert', '!', 'pngenc', '!', 'filesink', `location=${png}`]);
  const rgb = await readFile(raw);
  assert.equal(rgb.length, WIDTH * HEIGHT * 3, 'one full RGB frame');
  return rgb;
}

const near = (rgb, i, colour, tol) => colour.every((v, k) => Math.abs(rgb[i + k] - v) <= tol);

/** Share of pixels (0..1) within `tol` of `colour`, in the rectangle given in fractions. */
function share(rgb, colour, { x0 = 0, y0 = 0, x1 = 1, y1 = 1 } = {}, tol = 16) {
  let hit = 0;
  let all = 0;
  for (let y = Math.floor(y0 * HEIGHT); y < Math.floor(y1 * HEIGHT); y += 2) {
    for (let x = Math.floor(x0 * WIDTH); x < Math.floor(x1 * WIDTH); x += 2) {
      all += 1;
      if (near(rgb, (y * WIDTH + x) * 3, colour, tol)) hit += 1;
    }
  }
  return hit / all;
}

/** Share of bright pixels (text and padlock) in the rectangle. */
function brightShare(rgb, { x0, y0, x1, y1 }) {
  let hit = 0;
  let all = 0;
  for (let y = Math.floor(y0 * HEIGHT); y < Math.floor(y1 * HEIGHT); y++) {
    for (let x = Math.floor(x0 * WIDTH); x < Math.floor(x1 * WIDTH); x++) {
      const i = (y * WIDTH + x) * 3;
      all += 1;
      if (rgb[i] + rgb[i + 1] + rgb[i + 2] > 3 * 170) hit += 1;
    }
  }
  return hit / all;
}

describe('the lock overlay on a real X display', { timeout: 300_000 }, () => {
  let room;
  let xvfb;
  let xlogo;
  let browser;
  let page;

  before(async () => {
    await mkdir(results, { recursive: true });
    xvfb = await startXvfb(WIDTH, HEIGHT);
    xlogo = await studentWindow(xvfb.display);
    room = await startClassroom({ stations: 0 });
    await room.runStation('poste-x11', ['--source', 'x11', '--display', xvfb.display]);
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    await page.goto(`${room.url}/login`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/, { timeout: 15_000 });
    await page.locator('#tiles .tile:not(.offline)').waitFor({ timeout: 60_000 });
  }, { timeout: 200_000 });

  after(async () => {
    await browser?.close();
    await room?.stop();
    xlogo?.kill();
    xvfb?.proc.kill();
  });

  it('tells the student the monitoring hours, until they click OK', async () => {
    // The agent shows the hours notice once it has the room's schedule: find its OK button
    // on the screen and click it, as a student would.
    let ok = null;
    for (let i = 0; i < 50 && !ok; i++) {
      const rgb = await screenshot(xvfb.display, 'x11-notice');
      let sx = 0;
      let sy = 0;
      let n = 0;
      for (let y = 0; y < HEIGHT; y += 2) {
        for (let x = 0; x < WIDTH; x += 2) {
          if (near(rgb, (y * WIDTH + x) * 3, MESSAGE_BUTTON, 6)) { sx += x; sy += y; n += 1; }
        }
      }
      if (n > 200) ok = { x: Math.round(sx / n), y: Math.round(sy / n) };
    }
    assert.ok(ok, 'the hours notice (with its OK button) is on the student’s screen');
    await run('xdotool', ['mousemove', '--sync', String(ok.x), String(ok.y), 'click', '1'],
      { env: { ...process.env, DISPLAY: xvfb.display } });
    let gone = 0;
    for (let i = 0; i < 20 && gone <= 0.95; i++) gone = share(await screenshot(xvfb.display, 'x11-before'), STUDENT);
    assert.ok(gone > 0.95, 'the notice is gone once read');
  });

  it('covers the student’s screen when the teacher locks, and gives it back on unlock', async () => {
    const before = await screenshot(xvfb.display, 'x11-before');
    assert.ok(share(before, STUDENT) > 0.95, 'the student’s window fills the screen at first');

    await page.click('#act-lock');
    // The tile says "locked" once the station reports its overlay is up.
    await page.locator('#tiles .tile-locked:not(.pending)').waitFor({ timeout: 20_000 });
    const locked = await screenshot(xvfb.display, 'x11-locked');
    // The "screen watched" badge (top right) stays above the lock: the student is still told.
    const badge = share(locked, BADGE, { x0: 0.85, y0: 0, x1: 1, y1: 0.06 }, 8);
    assert.ok(badge > 0.2, `the watched badge shows over the lock (${badge.toFixed(3)})`);
    assert.equal(share(locked, STUDENT, { y0: 0.1 }), 0, 'nothing of the student’s window shows');
    // The lock screen's background all around the middle band…
    for (const band of [{ y0: 0, y1: 0.2 }, { y0: 0.8, y1: 1 }, { x0: 0, x1: 0.15 }, { x0: 0.85, x1: 1 }]) {
      const s = share(locked, LOCK_BACKGROUND, band);
      assert.ok(s > 0.97, `lock background in ${JSON.stringify(band)}: ${s.toFixed(3)}`);
    }
    // …and the padlock and the message drawn in it.
    const drawn = brightShare(locked, { x0: 0.1, y0: 0.25, x1: 0.9, y1: 0.75 });
    assert.ok(drawn > 0.005, `padlock and message visible in the middle (${(100 * drawn).toFixed(2)} % bright)`);

    await page.click('#act-unlock');
    await page.waitForFunction(() => !document.querySelector('#tiles .tile-locked'), null,
      { timeout: 20_000 });
    // The overlay window is unmapped as the station reports it; poll the screen briefly.
    let after = null;
    for (let i = 0; i < 20; i++) {
      after = await screenshot(xvfb.display, 'x11-unlocked');
      if (share(after, STUDENT) > 0.95) break;
    }
    assert.ok(share(after, STUDENT) > 0.95, 'the student’s window is back after unlocking');
  });
});
