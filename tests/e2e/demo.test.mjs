// End-to-end browser test of the demo (fan-out) against the REAL box: a teacher opens one
// simulated station, shows it to the class from the focus view, and every other station
// decodes the source's picture — checked by the colour at the centre of what each station's
// player decoded (reported by the station, relayed in GET /api/room), since each simulated
// station paints its own colour. Done in full-screen and windowed modes; stopping returns
// every station to its own screen. The windowed run shows only the left half of the source
// (cropped by each receiving station's player).
//
// NEEDS THE BOX BINARIES BUILT FIRST (`cargo build --workspace --bins`); LANTERNE_BIN_DIR
// points elsewhere than target/debug.
//
//   cd tests/e2e && node --test demo.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { launch, colourDistance, waitForColour, waitForFrames, TABLET } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');
// Four stations: one source, three receivers each decoding a 720p30 stream on this machine.
const STATIONS = 4;
// One encode (the source station) and one decode + scale (the receiving station).
const TOLERANCE = 40;

describe('demo: one station shown on every other, from the tablet', { timeout: 420_000 }, () => {
  let room;
  let browser;
  let page;
  let api;

  const roomState = async () => (await api.get(`${room.url}/api/room`)).json();

  /** Polls /api/room until `cond(room)` holds; fails with the last state seen. */
  async function roomUntil(what, cond, timeout = 60_000) {
    const deadline = Date.now() + timeout;
    let last;
    while (Date.now() < deadline) {
      last = await roomState();
      if (cond(last)) return last;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last?.demo ?? last)}`);
  }

  before(async () => {
    await mkdir(results, { recursive: true });
    room = await startClassroom({
      stations: STATIONS,
      // The development room, plus the HDMI input's colour-bar stand-in.
      config: ['[room]', 'name = "Salle de démonstration"', '[panel]', 'backend = "simulated"',
        '[accounts]', 'require_totp_for_admins = false', '[hdmi]', 'input = "test-pattern"',
        'bitrate_kbps = 2000'].join('\n'),
    });
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    api = browser.context.request;
    await page.goto(`${room.url}/room`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/, { timeout: 15_000 });
    await page.waitForFunction((ids) => ids.every((id) => {
      const el = document.querySelector(`#tiles .tile[data-station-id="${id}"]`);
      return el && !el.classList.contains('offline');
    }), room.stations.map((s) => s.id), { timeout: 60_000, polling: 250 });
  }, { timeout: 240_000 });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  for (const [mode, part] of [['fullscreen', 'whole'], ['windowed', 'left'], ['windowed', 'custom']]) {
    it(`shows station 1 on every other station, ${mode}, ${part} screen, then stops`, async () => {
      const source = room.stations[0];
      const receivers = room.stations.slice(1);

      await page.locator(`#tiles .tile[data-station-id="${source.id}"]`).tap();
      await page.waitForURL(new RegExp(`#station/${source.id}$`));
      await waitForFrames(page, 'focus', 0, 30_000);

      await page.locator('#demo-open').tap();
      await page.locator('#demo-dialog').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#demo-open').textContent(), 'Montrer à la classe');
      await page.locator(`#demo-mode-${mode}`).check();
      await page.locator('#demo-targets-all').check();
      await page.locator('#demo-region').selectOption(part);
      if (part === 'custom') {
        // The middle quarter of the screen: 25 % from the left and the top, half of each side.
        assert.equal(await page.locator('#demo-custom').isVisible(), true);
        await page.fill('#demo-custom-w', '80');
        await page.locator('#demo-start').tap();
        assert.match(await page.locator('#demo-error').textContent(), /tenir dans l’écran/);
        await page.fill('#demo-custom-w', '50');
      }
      const canvas = await page.evaluate(() => {
        const c = document.getElementById('focus-canvas');
        return { width: c.width, height: c.height };
      });
      await page.locator('#demo-start').tap();
      await page.locator('#demo-dialog').waitFor({ state: 'hidden' });

      // The banner lists every receiver, and each comes to "playing".
      await page.locator('#demo-banner').waitFor({ state: 'visible' });
      const summary = await page.locator('#demo-summary').textContent();
      assert.match(summary, new RegExp(`${source.name}.*${receivers.length} poste`));
      await page.waitForFunction((n) => document.querySelectorAll(
        '#demo-health .demo-receiver[data-state="playing"]').length === n,
      receivers.length, { timeout: 60_000, polling: 250 });

      // Every receiver decodes the source's picture (not its own): the colour at the centre
      // of its last decoded picture is the source station's colour.
      const playing = await roomUntil('every receiver decoding the source colour', (r) => r.demo
        && r.demo.mode === mode
        && receivers.every((s) => {
          const h = r.demo.receivers.find((x) => x.station_id === s.id)?.health;
          return h?.playing && h.frames_decoded >= 10 && h.centre_rgb
            && colourDistance(h.centre_rgb, source.rgb) <= TOLERANCE;
        }));
      assert.equal(playing.watched, true, 'a shown screen counts as watched');
      const even = (v) => Math.floor(v / 2) * 2;
      const expected = {
        whole: null,
        left: { x: 0, y: 0, width: canvas.width / 2, height: canvas.height },
        custom: {
          x: even(canvas.width * 0.25),
          y: even(canvas.height * 0.25),
          width: even(canvas.width * 0.5),
          height: even(canvas.height * 0.5),
        },
      };
      assert.deepEqual(playing.demo.region, expected[part]);
      for (const s of receivers) {
        assert.ok(colourDistance(s.rgb, source.rgb) > TOLERANCE, 'stations must differ in colour');
      }
      // Still decoding a moment later (a stream, not one picture).
      const decoded = (r) => receivers.map((s) => r.demo.receivers.find((x) => x.station_id === s.id).health.frames_decoded);
      const before = decoded(playing);
      const later = await roomUntil('more frames at every receiver', (r) => r.demo
        && decoded(r).every((n, i) => n >= before[i] + 15));
      assert.ok(later.demo.receivers.every((x) => x.online));
      await page.screenshot({ path: path.join(results, `demo-${mode}.png`) });

      // Full screen takes the receiving students' keyboard and mouse; a window leaves them.
      const blocked = mode === 'fullscreen';
      await room.waitForStatus((st) => receivers.every((r) => st.find((x) => x.id === r.id)
        ?.input_blocked === blocked) && !st.find((x) => x.id === source.id).input_blocked,
      `receivers' input ${blocked ? 'blocked' : 'free'}, the source's free`);

      await page.locator('#demo-stop').tap();
      await page.locator('#demo-banner').waitFor({ state: 'hidden' });
      const stopped = await roomUntil('the demo stopped', (r) => r.demo === null);
      assert.equal(stopped.last_demo_end.reason, 'stopped');
      await room.waitForStatus((st) => st.every((x) => !x.input_blocked),
        'every student has keyboard and mouse back');

      // Back to normal: each station's own picture is in its mosaic tile again.
      await page.locator('#back').tap();
      await page.waitForFunction(() => window.lanterneStats.view === 'mosaic');
      const { mosaic } = stopped;
      for (const s of room.stations) {
        const tile = mosaic.tiles.find((x) => x.station_id === s.id);
        await waitForColour(page, '#mosaic-canvas', (tile.x + tile.w / 2) / mosaic.width,
          (tile.y + tile.h * 0.7) / mosaic.height, s.rgb, { tolerance: 45, timeout: 30_000 });
      }
    });
  }

  it('shows the teacher’s PC (HDMI) on every station from the action bar, then stops', async () => {
    // The colour-bar stand-in: the players' centre sample falls on the cyan bar.
    const CYAN = [0, 255, 255];
    await page.locator('#demo-open-hdmi').waitFor({ state: 'visible', timeout: 15_000 });
    assert.equal((await page.locator('#demo-open-hdmi').textContent()).trim(), 'Écran enseignant');
    await page.locator('#demo-open-hdmi').tap();
    assert.match(await page.locator('#demo-dialog h2').textContent(), /HDMI/);
    assert.equal(await page.locator('#demo-region').isDisabled(), true, 'the whole picture');
    await page.locator('#demo-start').tap();
    await page.locator('#demo-banner').waitFor({ state: 'visible' });
    const playing = await roomUntil('every station decoding the HDMI picture', (r) => r.demo
      && r.demo.source.kind === 'hdmi'
      && room.stations.every((s) => {
        const h = r.demo.receivers.find((x) => x.station_id === s.id)?.health;
        return h?.playing && h.frames_decoded >= 10 && h.centre_rgb
          && colourDistance(h.centre_rgb, CYAN) <= TOLERANCE;
      }));
    assert.equal(playing.demo.receivers.length, room.stations.length, 'every station receives');
    await page.screenshot({ path: path.join(results, 'demo-hdmi.png') });
    await page.locator('#demo-stop').tap();
    await page.locator('#demo-banner').waitFor({ state: 'hidden' });
    const stopped = await roomUntil('the demo stopped', (r) => r.demo === null);
    assert.equal(stopped.last_demo_end.reason, 'stopped');
  });
});
