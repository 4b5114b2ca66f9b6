// The tablet page survives the box restarting under it, against the REAL box and 2 simulated
// stations: with the class open, the box process is stopped and started again on the same
// data directory and port (an update, a power cut). The page says "Reconnexion…" while the box
// is away, never goes back to the sign-in page (the session lives in the box's database), and
// the mosaic decodes again within 10 s of the box answering; the stations' own pictures come
// back once they have reconnected too.
//
// NEEDS THE BOX BINARIES BUILT FIRST: `cargo build --workspace --bins`.
//
//   cd tests/e2e && node --test reconnect.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { launch, waitForFrames, waitForColour, TABLET } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');
const RESUME_MS = 10_000;

describe('the tablet page across a box restart', { timeout: 300_000 }, () => {
  let room;
  let browser;
  let page;
  const navigations = [];

  before(async () => {
    await mkdir(results, { recursive: true });
    room = await startClassroom({ stations: 2 });
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
  }, { timeout: 240_000 });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  it('shows "Reconnexion…" and resumes the mosaic without a new sign-in', async (t) => {
    await page.goto(`${room.url}/login`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/);
    await page.waitForFunction((n) => document.querySelectorAll('#tiles .tile:not(.offline)').length === n,
      room.stations.length, { timeout: 60_000 });
    await waitForFrames(page, 'mosaic', 5, 30_000);
    // Every state and wording the connection line goes through, as the teacher sees it.
    await page.evaluate(() => {
      window.connSeen = [];
      const conn = document.getElementById('conn');
      const note = () => window.connSeen.push(`${conn.dataset.state}:${document.getElementById('conn-text').textContent}`);
      new MutationObserver(note).observe(conn, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });

    const { stoppedAt, readyAt } = await room.restartBox();
    await page.waitForFunction(() => window.connSeen.includes('reconnecting:Reconnexion…'), null, { timeout: 10_000 });
    await page.screenshot({ path: path.join(results, 'reconnect-away.png') });
    const framesAway = await page.evaluate(() => window.lanterneStats.framesDecoded);

    // Live again and decoding new frames, within 10 s of the box answering.
    await page.waitForFunction((above) => window.lanterneStats.connection === 'live'
      && window.lanterneStats.framesDecoded > above + 2, framesAway, { timeout: RESUME_MS, polling: 100 });
    const resumedAt = Date.now();
    t.diagnostic(`box stopped → ready again ${readyAt - stoppedAt} ms; ready → mosaic decoding again ${resumedAt - readyAt} ms`);
    assert.ok(resumedAt - readyAt <= RESUME_MS);
    assert.equal(await page.locator('#conn-text').textContent(), 'En direct');
    assert.ok(await page.evaluate(() => window.lanterneStats.reconnects) > 0, 'the page reconnected by itself');
    assert.deepEqual(navigations, [], 'no reload and no trip to the sign-in page');
    assert.equal(new URL(page.url()).pathname, '/room');

    // The stations come back on their own backoff; then each tile shows its station again.
    await page.waitForFunction((n) => document.querySelectorAll('#tiles .tile:not(.offline)').length === n,
      room.stations.length, { timeout: 45_000 });
    const layout = await page.evaluate(async () => (await (await fetch('/api/room')).json()).mosaic);
    for (const s of room.stations) {
      const tile = layout.tiles.find((x) => x.station_id === s.id);
      await waitForColour(page, '#mosaic-canvas', (tile.x + tile.w * 0.5) / layout.width,
        (tile.y + tile.h * 0.7) / layout.height, s.rgb, { tolerance: 45, timeout: 30_000 });
    }
    await page.screenshot({ path: path.join(results, 'reconnect-back.png') });
    assert.deepEqual(navigations, []);
  });
});
