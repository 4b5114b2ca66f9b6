// Browser test of the teacher UI's live player without the box: a fake box (lib/fake-box.mjs)
// serves web-ui/ and streams real x264 output in the box's framing; headless Chromium logs
// in through the form and the test checks decoded frames, pixels, overlays, focus view,
// reconnect, language and the "ended" message.
//
//   cd tests/e2e && npm ci && node --test player.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeMosaic, encodeSolid } from './lib/h264.mjs';
import { startFakeBox, frameMessage } from './lib/fake-box.mjs';
import { launch, waitForFrames, waitForColour, TABLET } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const webRoot = path.resolve(here, '../../web-ui');
const results = path.join(here, 'test-results');

const FPS = 15;
const TILE = { w: 320, h: 180 };
const USER = { username: 'prof.martin', password: 'Lanterne-2024!' };
// Ids deliberately differ from tile indexes, so mixing the two up fails the test.
const STATIONS = [
  { id: 11, name: 'poste-01', rgb: [200, 40, 40], online: true },
  { id: 12, name: 'poste-02', rgb: [40, 170, 70], online: true },
  { id: 13, name: 'poste-03', rgb: [40, 80, 200], online: true, locked: true },
  { id: 14, name: 'poste-04', rgb: [230, 190, 40], online: false },
];

describe('web UI player against a fake box streaming real H.264', { timeout: 180_000 }, () => {
  let tmp;
  let box;
  let browser;
  let page;
  const cspViolations = [];

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'lanterne-player-'));
    await mkdir(results, { recursive: true });
    const clip = { fps: FPS, frames: 30 };
    const [mosaic, ...focus] = await Promise.all([
      encodeMosaic(tmp, { colours: STATIONS.map((s) => s.rgb), cols: 2, tileW: TILE.w, tileH: TILE.h, ...clip }),
      ...STATIONS.map((s) => encodeSolid(tmp, `station-${s.id}`, { rgb: s.rgb, width: 480, height: 270, ...clip })),
    ]);
    box = await startFakeBox({
      webRoot,
      roomName: 'Salle 12',
      user: USER,
      fps: FPS,
      mosaic: { ...mosaic, width: 2 * TILE.w, height: 2 * TILE.h },
      stations: STATIONS.map((s, i) => ({
        ...s,
        tile: { x: (i % 2) * TILE.w, y: Math.floor(i / 2) * TILE.h, ...TILE },
        clip: { ...focus[i], width: 480, height: 270 },
      })),
    });
    browser = await launch({ viewport: TABLET, hasTouch: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    // The login page's session probe (401) and the refused offline focus (409) are expected;
    // anything else is worth seeing.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/\b(401|409)\b/.test(m.text())) console.error(`console: ${m.text()}`);
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    await box?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('sends a visitor without a session from /room to /login', async () => {
    await page.goto(`${box.url}/room`);
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.locator('#username').waitFor();
    assert.equal(await page.locator('h1').textContent(), 'Connexion', 'French by default');
    await page.screenshot({ path: path.join(results, 'login.png') });
  });

  it('shows the box\'s error message for a wrong password', async () => {
    await page.fill('#username', USER.username);
    await page.fill('#password', 'not-the-password');
    await page.click('#login-submit');
    const error = page.locator('#login-error');
    await error.waitFor({ state: 'visible' });
    assert.equal(await error.textContent(), 'Identifiant ou mot de passe incorrect.');
    assert.equal(new URL(page.url()).pathname, '/login');
  });

  it('logs in through the form and opens the room', async () => {
    await page.fill('#password', USER.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/);
    await page.waitForFunction(() => document.getElementById('room-name').textContent === 'Salle 12');
    assert.equal(await page.title(), 'Salle 12 — Lanterne');
  });

  it('decodes mosaic frames continuously', async () => {
    const first = await waitForFrames(page, 'mosaic', 0);
    // Ten more frames is under a second of video: proof the stream keeps flowing.
    const later = await waitForFrames(page, 'mosaic', first + 10);
    assert.ok(later > first + 10);
    const s = await page.evaluate(() => ({ ...window.lanterneStats, latencyMs: undefined }));
    assert.ok(s.keyframesDecoded >= 1, 'decoding started at a keyframe');
    assert.equal(s.decodeErrors, 0);
    assert.equal(await page.locator('#conn').getAttribute('data-state'), 'live');
    assert.equal(await page.locator('#conn-text').textContent(), 'En direct');
  });

  it('paints each station\'s colour at its tile centre', async () => {
    for (const [i, s] of STATIONS.entries()) {
      const fx = ((i % 2) * TILE.w + TILE.w / 2) / (2 * TILE.w);
      const fy = (Math.floor(i / 2) * TILE.h + TILE.h / 2) / (2 * TILE.h);
      await waitForColour(page, '#mosaic-canvas', fx, fy, s.rgb);
    }
  });

  it('overlays tile names and online state where the tiles are drawn', async () => {
    const tiles = page.locator('#tiles .tile');
    assert.equal(await tiles.count(), STATIONS.length);
    const canvas = await page.locator('#mosaic-canvas').boundingBox();
    for (const [i, s] of STATIONS.entries()) {
      const tile = page.locator(`#tiles .tile[data-station-id="${s.id}"]`);
      assert.equal(await tile.locator('.tile-name').textContent(), s.name);
      assert.equal(await tile.evaluate((el) => el.classList.contains('offline')), !s.online);
      // Overlays are laid out in mosaic coordinates and must land on the scaled canvas.
      const box2 = await tile.boundingBox();
      const scale = canvas.width / (2 * TILE.w);
      assert.ok(Math.abs(box2.x - (canvas.x + (i % 2) * TILE.w * scale)) < 2, `tile ${s.name} x`);
      assert.ok(Math.abs(box2.y - (canvas.y + Math.floor(i / 2) * TILE.h * scale)) < 2, `tile ${s.name} y`);
      assert.ok(Math.abs(box2.width - TILE.w * scale) < 2, `tile ${s.name} width`);
    }
    assert.ok(canvas.width > TABLET.width * 0.6, `mosaic uses the screen (${canvas.width} px wide)`);
    assert.equal(await page.locator('.tile[data-station-id="14"] .tile-offline').textContent(), 'Hors ligne');
    assert.deepEqual(await page.locator('.tile-locked').evaluateAll((els) => els.map((e) => [e.closest('.tile').dataset.stationId, e.textContent])),
      [['13', 'Verrouillé']], 'only the locked station says so');
    assert.equal(await page.locator('#summary').textContent(), '3 / 4 postes en ligne');
    await page.screenshot({ path: path.join(results, 'room-landscape.png') });

    // A station coming online arrives as a layout message on the live stream.
    box.setOnline(14, true);
    await page.waitForFunction(() => !document.querySelector('.tile[data-station-id="14"]').classList.contains('offline'));
    assert.equal(await page.locator('#summary').textContent(), '4 / 4 postes en ligne');
  });

  it('records capture-to-decode latency for every tile update', async () => {
    await page.waitForFunction(() => window.lanterneStats.latencyMs.length >= 40, null, { timeout: 10_000 });
    const lat = await page.evaluate(() => window.lanterneStats.latencyMs);
    assert.ok(lat.every((v) => Number.isFinite(v) && v > -50 && v < 5000), `plausible latencies: ${lat.slice(0, 10)}`);
    const dec = await page.evaluate(() => window.lanterneStats.decodeMs);
    assert.ok(dec.length > 0 && dec.every((v) => v >= 0 && v < 5000), `browser decode times: ${dec.slice(0, 10)}`);
  });

  it('fits the mosaic to a portrait tablet and a phone', async () => {
    await page.setViewportSize({ width: TABLET.height, height: TABLET.width });
    await page.waitForFunction(() => document.getElementById('mosaic-stage').getBoundingClientRect().width <= 820);
    const stage = await page.locator('#mosaic-stage').boundingBox();
    assert.ok(stage.width > 0.9 * TABLET.height, `mosaic spans the portrait width (${stage.width} px)`);
    assert.ok(Math.abs(stage.width / stage.height - 16 / 9) < 0.02, 'mosaic keeps its aspect ratio');
    await page.screenshot({ path: path.join(results, 'room-portrait.png') });
    // A phone still gets a usable page: nothing overflows sideways, controls stay reachable.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.getElementById('mosaic-stage').getBoundingClientRect().width <= 390);
    // The header re-measures itself on the frame after a resize (assets/topbar.js): the page
    // must settle with nothing sticking out sideways.
    const settled = await page.waitForFunction(
      () => document.documentElement.scrollWidth <= window.innerWidth, null, { timeout: 3000 },
    ).then(() => true, () => false);
    const widest = settled ? null : await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className} → ${Math.round(e.getBoundingClientRect().right)}`)
      .slice(0, 8));
    assert.ok(settled, `no sideways scrolling; past the right edge: ${JSON.stringify(widest)}`);
    // The header's actions fold into its menu on a phone; opened, each fits the width.
    await page.waitForSelector('#menu-toggle', { state: 'visible' });
    await page.click('#menu-toggle');
    for (const sel of ['#logout', '#lang-switch', '#conn', '#menu-toggle']) {
      const b = await page.locator(sel).boundingBox();
      assert.ok(b && b.x >= 0 && b.x + b.width <= 390, `${sel} fits the phone's width`);
    }
    await page.keyboard.press('Escape');
    await page.waitForSelector('#logout', { state: 'hidden' });
    await page.screenshot({ path: path.join(results, 'room-phone.png') });
    await page.setViewportSize(TABLET);
    await page.waitForFunction(() => document.getElementById('mosaic-stage').getBoundingClientRect().width > 820);
  });

  it('survives malformed messages and a broken keyframe, resuming at the next keyframe', async () => {
    const before = await page.evaluate(() => ({ ...window.lanterneStats, latencyMs: undefined }));
    // A truncated header, an unknown version, and a "keyframe" of noise the decoder must reject.
    const noise = Buffer.alloc(4000);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + 13) & 0xff;
    const broken = Buffer.concat([Buffer.from([0, 0, 0, 1, 0x65]), noise]);
    const badVersion = frameMessage({ keyframe: true, seq: 1, captureUs: 0, data: broken });
    badVersion[0] = 2;
    box.injectMosaic(Buffer.from([1, 1, 0]), badVersion,
      frameMessage({ keyframe: true, seq: 1e9, captureUs: 0, data: broken }));
    await page.waitForFunction((b) => window.lanterneStats.droppedFrames >= b.droppedFrames + 2
      && window.lanterneStats.decodeErrors >= b.decodeErrors + 1, before, { timeout: 10_000 });
    // Decoding resumes on its own once the stream's next keyframe arrives.
    const after = await page.evaluate(() => window.lanterneStats.keyframesDecoded);
    await page.waitForFunction((k) => window.lanterneStats.keyframesDecoded > k, after, { timeout: 10_000 });
    const n = await page.evaluate(() => window.lanterneStats.framesDecoded);
    await waitForFrames(page, 'mosaic', n + 5);
    await waitForColour(page, '#mosaic-canvas', 0.75, 0.75, STATIONS[3].rgb);
  });

  it('reconnects by itself after the connection drops', async () => {
    box.dropMosaic();
    await page.waitForFunction(() => window.lanterneStats.reconnects >= 1, null, { timeout: 5_000 });
    await page.waitForFunction(() => window.lanterneStats.connection === 'live', null, { timeout: 15_000 });
    const n = await page.evaluate(() => window.lanterneStats.framesDecoded);
    await waitForFrames(page, 'mosaic', n + 5);
    assert.equal(box.openSockets().mosaic, 1, 'exactly one mosaic connection after reconnecting');
  });

  it('opens the focus view of a tapped station and decodes its own stream', async () => {
    await page.locator('.tile[data-station-id="12"]').tap();
    await page.waitForURL(/#station\/12$/);
    // The view switches right after the URL does: wait for it instead of sampling once.
    await page.locator('#focus-view').waitFor({ state: 'visible', timeout: 5_000 });
    await page.locator('#mosaic-view').waitFor({ state: 'hidden', timeout: 5_000 });
    assert.equal(await page.locator('#focus-title').textContent(), 'Écran de poste-02');
    const first = await waitForFrames(page, 'focus', 0);
    await waitForFrames(page, 'focus', first + 10);
    await waitForColour(page, '#focus-canvas', 0.5, 0.5, STATIONS[1].rgb);
    assert.deepEqual(await page.evaluate(() => [document.getElementById('focus-canvas').width,
      document.getElementById('focus-canvas').height]), [480, 270], 'canvas takes the station\'s resolution');
    await page.waitForFunction(() => window.lanterneStats.latencyMs.length >= 5);
    assert.deepEqual(box.openSockets(), { mosaic: 0, focus: 1 }, 'the mosaic stream is closed while focused');
    await page.screenshot({ path: path.join(results, 'focus-landscape.png') });
    // Portrait, one-handed: the way back sits at the bottom, under the thumb.
    await page.setViewportSize({ width: TABLET.height, height: TABLET.width });
    await page.waitForFunction(() => {
      const back = document.getElementById('back').getBoundingClientRect();
      const stage = document.getElementById('focus-stage').getBoundingClientRect();
      return back.top > stage.bottom && stage.width > 700;
    });
    const back = await page.locator('#back').boundingBox();
    assert.ok(back.y + back.height > TABLET.width * 0.85, `back button near the bottom (y=${back.y})`);
    assert.ok(back.height >= 48, 'back button is a comfortable touch target');
    await page.screenshot({ path: path.join(results, 'focus-portrait.png') });
    await page.setViewportSize(TABLET);
  });

  it('goes back to the class mosaic with the back button', async () => {
    await page.locator('#back').tap();
    await page.waitForFunction(() => location.hash === '' && window.lanterneStats.view === 'mosaic');
    await page.locator('#mosaic-view').waitFor({ state: 'visible', timeout: 5_000 });
    await waitForFrames(page, 'mosaic', 5);
    await waitForColour(page, '#mosaic-canvas', 0.25, 0.25, STATIONS[0].rgb);
    assert.deepEqual(box.openSockets(), { mosaic: 1, focus: 0 });
  });

  it('leaves the focus view with Escape or the browser\'s back gesture', async () => {
    await page.locator('.tile[data-station-id="11"]').tap();
    await waitForFrames(page, 'focus', 2);
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => window.lanterneStats.view === 'mosaic' && location.hash === '');
    await page.locator('.tile[data-station-id="11"]').tap();
    await waitForFrames(page, 'focus', 2);
    await page.goBack();
    await page.waitForFunction(() => window.lanterneStats.view === 'mosaic' && location.hash === '');
    await waitForFrames(page, 'mosaic', 2);
  });

  it('shows why a focused station ended and offers the way back', async () => {
    await page.locator('.tile[data-station-id="13"]').tap();
    await waitForFrames(page, 'focus', 3);
    box.endFocus(13, 'Le poste a été éteint.');
    const ended = page.locator('#focus-ended');
    await ended.waitFor({ state: 'visible' });
    assert.equal(await page.locator('#ended-reason').textContent(), 'Le poste a été éteint.');
    assert.equal(await page.locator('#conn').getAttribute('data-state'), 'ended');
    await page.screenshot({ path: path.join(results, 'focus-ended.png') });
    await page.locator('#ended-back').tap();
    await waitForFrames(page, 'mosaic', 3);
  });

  it('says a station is offline when its focus link is opened, instead of retrying', async () => {
    box.setOnline(14, false);
    await page.waitForFunction(() => document.querySelector('.tile[data-station-id="14"]').classList.contains('offline'));
    // Offline tiles cannot be tapped; a saved link or a race with the layout still lands here.
    await page.locator('.tile[data-station-id="14"]').tap({ force: true });
    assert.equal(await page.evaluate(() => location.hash), '', 'an offline tile does not open');
    await page.evaluate(() => { location.hash = '#station/14'; });
    await page.locator('#focus-ended').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.locator('#ended-reason').textContent(), 'Le poste s’est déconnecté ou a été éteint.');
    assert.equal(await page.locator('#conn').getAttribute('data-state'), 'ended');
    await page.locator('#ended-back').tap();
    await waitForFrames(page, 'mosaic', 3);
    box.setOnline(14, true);
    await page.waitForFunction(() => !document.querySelector('.tile[data-station-id="14"]').classList.contains('offline'));
  });

  it('says when screens may be watched, and which station cannot be watched at all', async () => {
    const line = page.locator('#monitoring');
    const lineIs = (state) => page.waitForFunction(
      (s) => document.getElementById('monitoring').dataset.state === s && !document.getElementById('monitoring').hidden,
      state, { timeout: 10_000 },
    );
    box.setRoom({ monitoring_configured: false, monitoring: false, next_monitoring: null, monitoring_until: null });
    await lineIs('off');
    assert.match(await line.textContent(), /^Surveillance non configurée : aucun écran ne peut être observé/);
    // Nothing may be opened then.
    assert.equal(await page.locator('.tile[data-station-id="12"]').getAttribute('aria-disabled'), 'true');

    box.setRoom({ monitoring_configured: true, monitoring: false, next_monitoring: '2031-03-17 13:15', monitoring_until: null });
    await lineIs('closed');
    const closed = await line.textContent();
    assert.match(closed, /^Surveillance interdite maintenant\. Prochaine plage : /);
    assert.match(closed, /17 mars/);
    assert.match(closed, /13:15/);

    box.setRoom({ monitoring_configured: true, monitoring: true, next_monitoring: null, monitoring_until: '2031-03-17 16:45' });
    await lineIs('allowed');
    assert.match(await line.textContent(), /^Surveillance autorisée jusqu’à .*16:45/);
    assert.equal(await page.locator('.tile[data-station-id="12"]').getAttribute('aria-disabled'), null);

    // A station whose badge is up shows it; one that cannot show it says so and is not opened.
    box.setTile(11, { indicator: true });
    await page.locator('.tile[data-station-id="11"] .tile-watched').waitFor({ timeout: 10_000 });
    box.setTile(12, { no_indicator: true });
    const blind = page.locator('.tile[data-station-id="12"]');
    await blind.locator('.tile-noindicator').waitFor({ timeout: 10_000 });
    assert.equal(await blind.locator('.tile-noindicator').textContent(), 'Non visionnable : pas d’indicateur');
    assert.equal(await blind.getAttribute('aria-disabled'), 'true');
    await blind.tap({ force: true });
    assert.equal(await page.evaluate(() => location.hash), '', 'a station without indicator does not open');
    await page.screenshot({ path: path.join(results, 'room-monitoring.png') });
    box.setTile(11, { indicator: false });
    box.setTile(12, { no_indicator: false });
    box.setRoom({});
    await page.waitForFunction(() => !document.querySelector('.tile[data-station-id="12"] .tile-noindicator'));
  });

  it('switches to English, remembers it, and honours ?lang=', async () => {
    await page.locator('#lang-switch button[data-lang="en"]').tap();
    assert.equal(await page.locator('#logout').textContent(), 'Log out');
    assert.equal(await page.locator('#conn-text').textContent(), 'Live');
    assert.equal(await page.locator('#summary').textContent(), '4 / 4 stations online');
    assert.equal(await page.locator('.tile[data-station-id="11"]').getAttribute('aria-label'), 'Open the screen of poste-01');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');

    await page.reload();
    await waitForFrames(page, 'mosaic', 0);
    assert.equal(await page.locator('#logout').textContent(), 'Log out', 'choice kept across reloads');
    await page.screenshot({ path: path.join(results, 'room-english.png') });

    await page.goto(`${box.url}/room?lang=fr`);
    await page.locator('#logout').waitFor();
    await page.waitForFunction(() => document.getElementById('logout').textContent === 'Déconnexion');
  });

  it('skips delta frames to the next keyframe when the decoder falls behind', async () => {
    const p = await browser.context.newPage();
    // Lets the test pretend the decoder has a backlog, as on a slow tablet.
    await p.addInitScript(() => {
      const real = Object.getOwnPropertyDescriptor(VideoDecoder.prototype, 'decodeQueueSize').get;
      Object.defineProperty(VideoDecoder.prototype, 'decodeQueueSize', {
        get() { return window.fakeDecodeBacklog ?? real.call(this); },
      });
    });
    await p.goto(`${box.url}/room`);
    await waitForFrames(p, 'mosaic', 5);
    await p.evaluate(() => { window.fakeDecodeBacklog = 8; });
    const keyframe = (above) => p.waitForFunction((k) => window.lanterneStats.keyframesDecoded > k
      && { frames: window.lanterneStats.framesDecoded, keys: window.lanterneStats.keyframesDecoded,
        dropped: window.lanterneStats.droppedFrames }, above, { timeout: 10_000 }).then((h) => h.jsonValue());
    const k0 = await p.evaluate(() => window.lanterneStats.keyframesDecoded);
    const a = await keyframe(k0);
    const b = await keyframe(a.keys);
    assert.equal(b.frames - a.frames, b.keys - a.keys, 'only keyframes are decoded while behind');
    assert.ok(b.dropped - a.dropped >= 5, `delta frames were dropped (${b.dropped - a.dropped})`);
    await p.evaluate(() => { window.fakeDecodeBacklog = undefined; });
    const n = await p.evaluate(() => window.lanterneStats.framesDecoded);
    await waitForFrames(p, 'mosaic', n + 12);
    await p.close();
  });

  it('logs out and locks the room again', async () => {
    await page.locator('#logout').tap();
    await page.waitForURL(/\/login$/);
    await page.goto(`${box.url}/room`);
    assert.equal(new URL(page.url()).pathname, '/login');
    const api = await page.request.get(`${box.url}/api/room`);
    assert.equal(api.status(), 401);
  });

  it('breaks no rule of the box\'s Content-Security-Policy on any page', () => {
    assert.deepEqual(cspViolations, []);
  });

  it('tells the teacher plainly when the browser cannot decode video', async () => {
    const p = await browser.context.newPage();
    // Simulates Safari before 16.4 / an old Android WebView, which lack WebCodecs.
    await p.addInitScript(() => { delete window.VideoDecoder; });
    await p.goto(`${box.url}/login`);
    await p.fill('#username', USER.username);
    await p.fill('#password', USER.password);
    await p.click('#login-submit');
    await p.waitForURL(/\/room$/);
    const msg = p.locator('#unsupported');
    await msg.waitFor({ state: 'visible' });
    assert.match(await p.locator('#unsupported-text').textContent(), /Safari.*16\.4/);
    assert.equal(await p.locator('#unsupported h1').textContent(), 'Navigateur trop ancien');
    assert.equal(box.openSockets().mosaic, 0, 'no stream is opened that could not be shown');
    await p.close();
  });
});
