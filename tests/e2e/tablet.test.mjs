// The teacher's tablet at every common size, against the REAL box and 4 simulated stations:
// a phone (360×740), an iPad held upright (768×1024), an iPad mini in landscape (1024×768)
// and a large iPad in landscape (1366×1024). For the room, the focus view, the room during a
// demo, the admin pages and "my account", at each size: a screenshot is kept in
// test-results/ (tablet-<page>-<size>.png), nothing sticks out sideways, lock and unlock are
// on screen and the topmost thing under a finger (no scrolling), every control is at least
// 44×44 CSS px, and the header's name is whole. Also: the web app manifest is served, valid
// and installable (Chromium's own check), and lock/unlock really work by touch at a tablet
// size and from "my account" on a phone.
//
// NEEDS THE BOX BINARIES BUILT FIRST: `cargo build --workspace --bins`.
//
//   cd tests/e2e && node --test tablet.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { launch, waitForFrames, TABLET } from './lib/browser.mjs';
import {
  SIZES, sizeName, horizontalOverflow, tappableWithoutScrolling, smallTargets, nameCut,
} from './lib/layout.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');

/** PNG width and height from its IHDR chunk. */
function pngSize(buf) {
  assert.equal(buf.subarray(1, 4).toString('latin1'), 'PNG', 'a PNG file');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

describe('the tablet page at every size', { timeout: 600_000 }, () => {
  let room;
  let browser;
  let page;
  const pageErrors = [];

  before(async () => {
    await mkdir(results, { recursive: true });
    room = await startClassroom({ stations: 4 });
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${room.url}/login`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/);
    await room.waitForStatus((st) => st.length === 4 && st.every((s) => s.connected), 'all connected', 60_000);
  }, { timeout: 240_000 });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  it('serves a valid, installable web app manifest', async () => {
    const linked = await page.evaluate(() => document.querySelector('link[rel="manifest"]')?.href);
    assert.equal(linked, `${room.url}/assets/manifest.webmanifest`);
    // Public: the browser fetches it without credentials.
    const res = await browser.newContext().then((c) => c.request.get(linked));
    assert.equal(res.status(), 200);
    assert.equal(res.headers()['content-type'], 'application/manifest+json');
    const m = await res.json();
    assert.equal(m.name, 'Lanterne');
    assert.ok(m.short_name && m.short_name.length <= 12, 'a short name for the home screen');
    assert.equal(m.start_url, '/room');
    assert.ok(new URL(m.start_url, room.url).pathname.startsWith(m.scope), 'start_url inside scope');
    assert.ok(['fullscreen', 'standalone'].includes(m.display), `opens without browser chrome (${m.display})`);
    assert.match(m.background_color, /^#[0-9a-f]{6}$/i);
    assert.match(m.theme_color, /^#[0-9a-f]{6}$/i);
    const pngs = m.icons.filter((i) => i.type === 'image/png');
    for (const want of ['192x192', '512x512']) {
      assert.ok(pngs.some((i) => i.sizes === want && i.purpose.split(' ').includes('any')), `a ${want} icon`);
    }
    assert.ok(pngs.some((i) => i.purpose.split(' ').includes('maskable')), 'a maskable icon');
    for (const icon of m.icons) {
      const r = await browser.context.request.get(new URL(icon.src, room.url).href);
      assert.equal(r.status(), 200, icon.src);
      assert.equal(r.headers()['content-type'], icon.type, icon.src);
      if (icon.type === 'image/png') {
        const { width, height } = pngSize(await r.body());
        assert.equal(`${width}x${height}`, icon.sizes, `${icon.src} is the size it claims`);
      }
    }
    const touch = await page.evaluate(() => document.querySelector('link[rel="apple-touch-icon"]')?.href);
    const t = await browser.context.request.get(touch);
    assert.equal(t.status(), 200);
    assert.deepEqual(pngSize(await t.body()), { width: 180, height: 180 });
    // Chromium's own verdict: it parses the manifest and says why the page could not be
    // installed, if it could not.
    const cdp = await browser.context.newCDPSession(page);
    const app = await cdp.send('Page.getAppManifest');
    assert.deepEqual(app.errors, [], 'the manifest parses without errors');
    // The one reason allowed is the test's own throw-away browser profile ('in-incognito':
    // Chromium never offers to install from one).
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), [], 'installable');
    await cdp.detach();
  });

  /** The checks every page gets at every size; `lock` and `unlock` are the page's buttons. */
  async function checkPage(name, size, { lock, unlock, extra = [] }) {
    const file = `tablet-${name}-${sizeName(size)}.png`;
    await page.screenshot({ path: path.join(results, file) });
    const problems = [
      ...await horizontalOverflow(page),
      ...await tappableWithoutScrolling(page, lock),
      ...await tappableWithoutScrolling(page, unlock),
      ...await smallTargets(page),
      ...await nameCut(page),
    ];
    for (const sel of extra) problems.push(...await tappableWithoutScrolling(page, sel));
    assert.deepEqual(problems, [], `${name} at ${sizeName(size)} (see test-results/${file})`);
  }

  /** Waits for the room page to be drawn: its name, live frames, every tile online. */
  async function roomReady() {
    await page.waitForFunction(() => document.getElementById('room-name').textContent === 'Salle de démonstration');
    await page.waitForFunction((n) => document.querySelectorAll('#tiles .tile:not(.offline)').length === n,
      room.stations.length);
    await waitForFrames(page, 'mosaic', 0, 30_000);
    // The header measures itself on the next animation frame; let it settle.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  }

  for (const size of SIZES) {
    const portrait = size.height > size.width;
    it(`room, focus, demo, admin and account pages at ${sizeName(size)}`, async () => {
      await page.setViewportSize(size);
      await page.goto(`${room.url}/room`);
      await roomReady();

      // ---- the class ----
      await checkPage('room', size, { lock: '#act-lock', unlock: '#act-unlock', extra: ['#act-select'] });
      if (portrait) {
        const { stage, vw } = await page.evaluate(() => ({
          stage: document.getElementById('mosaic-stage').getBoundingClientRect().width,
          vw: document.documentElement.clientWidth,
        }));
        assert.ok(stage >= vw - 1, `the mosaic spans the portrait width (${stage} of ${vw} px)`);
      }
      // The header's menu, when it is folded: what it holds fits and is tappable.
      if (await page.locator('#menu-toggle').isVisible()) {
        await page.locator('#menu-toggle').tap();
        assert.deepEqual([
          ...await tappableWithoutScrolling(page, '#logout'),
          ...await tappableWithoutScrolling(page, '#account-link'),
          ...await horizontalOverflow(page),
        ], [], `the header menu at ${sizeName(size)}`);
        await page.screenshot({ path: path.join(results, `tablet-menu-${sizeName(size)}.png`) });
        await page.keyboard.press('Escape');
        await page.locator('#logout').waitFor({ state: 'hidden' });
      } else {
        assert.deepEqual(await tappableWithoutScrolling(page, '#logout'), [], 'logout in the header');
      }

      // ---- one station full size ----
      const first = room.stations[0];
      await page.locator(`#tiles .tile[data-station-id="${first.id}"]`).tap();
      await page.waitForFunction((id) => document.body.dataset.view === 'focus' && location.hash === `#station/${id}`, first.id);
      await waitForFrames(page, 'focus', 0, 30_000);
      await checkPage('focus', size, { lock: '#act-lock', unlock: '#act-unlock', extra: ['#back', '#demo-open'] });
      await page.locator('#back').tap();
      await page.waitForFunction(() => document.body.dataset.view === 'mosaic');

      // ---- the class while a student's screen is shown to the others ----
      const started = await page.evaluate(async (source) => (await fetch('/api/demo', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ source, targets: null, mode: 'windowed', region: null }),
      })).status, first.id);
      assert.equal(started, 200, 'demo started');
      await page.locator('#demo-banner').waitFor({ state: 'visible', timeout: 15_000 });
      await waitForFrames(page, 'mosaic', 0, 30_000);
      await checkPage('demo', size, { lock: '#act-lock', unlock: '#act-unlock', extra: ['#demo-banner button'] });
      await page.locator('#demo-banner button').tap();
      await page.locator('#demo-banner').waitFor({ state: 'hidden', timeout: 15_000 });

      // ---- the admin pages and my account ----
      for (const which of ['admin', 'account']) {
        await page.goto(`${room.url}/${which}`);
        await page.locator('#quick-lock').waitFor({ state: 'visible' });
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
        await checkPage(which, size, { lock: '#quick-lock-on', unlock: '#quick-lock-off' });
      }
      assert.deepEqual(pageErrors, []);
    });
  }

  it('locks and unlocks the class with one tap on an upright iPad', async () => {
    await page.setViewportSize({ width: 768, height: 1024 });
    await page.goto(`${room.url}/room`);
    await roomReady();
    const scrollBefore = await page.evaluate(() => [scrollX, scrollY]);
    await page.locator('#act-lock').tap();
    await room.waitForStatus((s) => s.every((x) => x.locked), 'every station locked');
    await page.waitForFunction((n) => document.querySelectorAll('#tiles .tile-locked:not(.pending)').length === n,
      room.stations.length, { timeout: 15_000 });
    await page.locator('#act-unlock').tap();
    await room.waitForStatus((s) => s.every((x) => !x.locked), 'every station unlocked');
    assert.deepEqual(await page.evaluate(() => [scrollX, scrollY]), scrollBefore, 'nothing scrolled');
  });

  it('locks and unlocks the class from "my account" on a phone', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${room.url}/account`);
    await page.locator('#quick-lock-on').tap();
    await room.waitForStatus((s) => s.every((x) => x.locked), 'every station locked');
    await page.waitForFunction(() => /Envoyé à 4 poste/.test(document.getElementById('quick-lock-status').textContent));
    await page.locator('#quick-lock-off').tap();
    await room.waitForStatus((s) => s.every((x) => !x.locked), 'every station unlocked');
    await page.waitForFunction(() => /^Déverrouillage : Envoyé à 4 poste/.test(document.getElementById('quick-lock-status').textContent));
  });
});
