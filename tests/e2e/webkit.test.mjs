// The tablet page in WebKit (WebKitGTK 2.50's MiniBrowser through WebKitWebDriver, the engine of
// Safari on iPads) against the REAL box and 2 simulated stations, at a tablet size (1024×768,
// then upright 768×1024): sign in through the form, the live mosaic decoding (frames counted
// over time, each tile in its station's colour), one station full size in its colour, back,
// lock and unlock with the stations reporting it; the layout checks of tablet.test.mjs (no
// sideways overflow, lock and unlock tappable without scrolling) hold in WebKit too.
// Screenshots: test-results/webkit-*.png.
//
// NEEDS THE BOX BINARIES BUILT FIRST (`cargo build --workspace --bins`) and Debian's
// webkit2gtk-driver and Xvfb (scripts/setup.sh installs them).
//
//   cd tests/e2e && node --test webkit.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { startWebKit, webkitAvailable } from './lib/webkit.mjs';
import { horizontalOverflow, tappableWithoutScrolling } from './lib/layout.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');
const TOLERANCE = 45;

/** The average RGB of a 5×5 patch at fractions (fx, fy) of a canvas, or null. */
function pixelAt(selector, fx, fy) {
  const c = document.querySelector(selector);
  if (!c || !c.width) return null;
  const x = Math.min(Math.max(Math.round(c.width * fx) - 2, 0), c.width - 5);
  const y = Math.min(Math.max(Math.round(c.height * fy) - 2, 0), c.height - 5);
  const d = c.getContext('2d').getImageData(x, y, 5, 5).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) sum[k] += d[i + k];
  return sum.map((s) => Math.round(s / 25));
}

describe('the tablet page in WebKit (Safari\'s engine)', { timeout: 420_000, skip: !webkitAvailable() && 'webkit2gtk-driver is not installed (scripts/setup.sh)' }, () => {
  let room;
  let wk;
  // The layout helpers take a Playwright-like page; this runs their checks in WebKit.
  const asPage = () => ({ evaluate: (fn, arg) => wk.exec(`return (${fn})(arguments[0]);`, arg) });

  const waitColour = async (selector, fx, fy, rgb, what) => {
    const seen = await wk.waitFor(`(sel, fx, fy, rgb, tol) => {
      const p = (${pixelAt})(sel, fx, fy);
      return p && p.every((v, k) => Math.abs(v - rgb[k]) <= tol) ? p : false;
    }`, { args: [selector, fx, fy, rgb, TOLERANCE], timeoutMs: 15_000, what });
    return seen;
  };

  // The page's video statistics, for a failure message: what the decoder did and dropped.
  const pageStats = () => wk.exec(`const { latencyMs, decodeMs, ...rest } = window.lanterneStats; return rest;`);
  const explained = async (promise) => {
    try {
      return await promise;
    } catch (e) {
      const st = await pageStats().catch((err) => `unreadable: ${err.message}`);
      throw new Error(`${e.message}\npage video stats: ${JSON.stringify(st)}`);
    }
  };

  before(async () => {
    await mkdir(results, { recursive: true });
    room = await startClassroom({ stations: 2 });
    wk = await startWebKit({ width: 1024, height: 768 });
    await wk.go('about:blank');
    await wk.setViewport(1024, 768);
  }, { timeout: 240_000 });

  after(async () => {
    await wk?.quit();
    await room?.stop();
  });

  it('signs in through the form', async () => {
    await wk.go(`${room.url}/room`);
    await wk.waitFor('() => location.pathname === "/login" && document.getElementById("username")');
    assert.deepEqual(await wk.exec('return [innerWidth, innerHeight];'), [1024, 768]);
    assert.equal(await wk.exec('return window.isSecureContext;'), true, 'HTTPS makes a secure context');
    assert.equal(await wk.execAsync(`return (await VideoDecoder.isConfigSupported({ codec: 'avc1.42E01F' })).supported;`), true,
      'WebKit decodes H.264 through WebCodecs');
    await wk.type(await wk.find('#username'), room.username);
    await wk.type(await wk.find('#password'), room.password);
    await wk.click(await wk.find('#login-submit'));
    await wk.waitFor('() => location.pathname === "/room"', { what: 'the room after signing in' });
  });

  it('decodes the live mosaic, each tile in its station\'s colour', async (t) => {
    await wk.waitFor(`(n) => document.querySelectorAll('#tiles .tile:not(.offline)').length === n`,
      { args: [room.stations.length], timeoutMs: 60_000, what: 'every station online' });
    const first = await explained(wk.waitFor('() => window.lanterneStats.view === "mosaic" && window.lanterneStats.framesDecoded', { timeoutMs: 30_000 }));
    const t0 = Date.now();
    // Frames keep coming: counted over time, not a single picture.
    const later = await explained(wk.waitFor(`(above) => window.lanterneStats.framesDecoded > above + 20 && window.lanterneStats.framesDecoded`,
      { args: [first], timeoutMs: 30_000, what: '20 more mosaic frames' }));
    const seconds = (Date.now() - t0) / 1000;
    t.diagnostic(`WebKit decoded ${later - first} mosaic frames in ${seconds.toFixed(1)} s`);
    const stats = await wk.exec('return { errors: window.lanterneStats.decodeErrors, state: document.getElementById("conn").dataset.state };');
    assert.deepEqual(stats, { errors: 0, state: 'live' });
    const layout = await wk.execAsync(`return (await (await fetch('/api/room')).json()).mosaic;`);
    for (const s of room.stations) {
      const tile = layout.tiles.find((x) => x.station_id === s.id);
      await waitColour('#mosaic-canvas', (tile.x + tile.w * 0.5) / layout.width, (tile.y + tile.h * 0.7) / layout.height,
        s.rgb, `${s.name}'s tile in its colour ${s.rgb}`);
    }
    await wk.screenshot(path.join(results, 'webkit-mosaic.png'));
  });

  it('opens one station full size in its own colour, and goes back', async (t) => {
    const s = room.stations[1];
    await wk.click(await wk.find(`#tiles .tile[data-station-id="${s.id}"]`));
    await wk.waitFor(`(id) => document.body.dataset.view === 'focus' && location.hash === '#station/' + id`, { args: [s.id] });
    await explained(wk.waitFor('() => window.lanterneStats.view === "focus" && window.lanterneStats.framesDecoded > 5', { timeoutMs: 30_000, what: 'focus frames' }));
    await explained(waitColour('#focus-canvas', 0.5, 0.7, s.rgb, `${s.name} full size in its colour`));
    t.diagnostic(`focus view: ${JSON.stringify(await pageStats())}`);
    assert.equal(await wk.exec('return document.getElementById("focus-title").textContent;'), `Écran de ${s.name}`);
    await wk.screenshot(path.join(results, 'webkit-focus.png'));
    await wk.click(await wk.find('#back'));
    await wk.waitFor('() => document.body.dataset.view === "mosaic" && window.lanterneStats.view === "mosaic" && window.lanterneStats.framesDecoded > 2',
      { what: 'the mosaic again' });
  });

  it('locks and unlocks the class, upright and in landscape', async () => {
    for (const [w, h] of [[1024, 768], [768, 1024]]) {
      await wk.setViewport(w, h);
      await wk.waitFor(`(w) => innerWidth === w`, { args: [w] });
      await wk.exec('return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));');
      const page = asPage();
      assert.deepEqual([
        ...await horizontalOverflow(page),
        ...await tappableWithoutScrolling(page, '#act-lock'),
        ...await tappableWithoutScrolling(page, '#act-unlock'),
      ], [], `layout in WebKit at ${w}x${h}`);
      await wk.click(await wk.find('#act-lock'));
      await room.waitForStatus((st) => st.every((x) => x.locked), 'every station locked');
      await wk.waitFor(`(n) => document.querySelectorAll('#tiles .tile-locked:not(.pending)').length === n`,
        { args: [room.stations.length], timeoutMs: 15_000, what: 'the tiles say locked' });
      await wk.screenshot(path.join(results, `webkit-locked-${w}x${h}.png`));
      await wk.click(await wk.find('#act-unlock'));
      await room.waitForStatus((st) => st.every((x) => !x.locked), 'every station unlocked');
      await wk.waitFor(`() => document.querySelectorAll('#tiles .tile-locked').length === 0`, { timeoutMs: 15_000, what: 'no tile says locked' });
      await wk.click(await wk.find('#report-close'));
    }
  });
});
