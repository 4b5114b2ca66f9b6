// Who sits where and raised hands, against the REAL box and 3 simulated stations, in a room
// with NO monitoring schedule (the box watches nobody: asking for help must work anyway). The
// test acts as the students through the simulated classroom's orders (login, logout, hand):
// a student's display name shows under the station's name and logging out removes it; the
// teacher finds a student by name (accents forgiven); hands raised on two stations appear on
// the tablet within 1 s each, in the order raised (tiles and the line above the class), with
// the page title counting them; "Vu" clears one and the station's own hand goes down; the
// other student withdraws theirs. Screenshot: test-results/hands.png.
//
// NEEDS THE BOX BINARIES BUILT FIRST: `cargo build --workspace --bins`.
//
//   cd tests/e2e && node --test hands.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { launch, TABLET } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');
const NO_SCHEDULE = `[room]
name = "Salle 21"
school = "Collège de test"
[panel]
backend = "simulated"
[accounts]
require_totp_for_admins = false
`;

describe('names and raised hands on the tablet, outside any monitoring hours', { timeout: 300_000 }, () => {
  let room;
  let browser;
  let page;
  const station = (i) => room.stations[i];
  const tile = (i) => `#tiles .tile[data-station-id="${station(i).id}"]`;
  const handOf = (i) => page.evaluate((sel) => document.querySelector(`${sel} .tile-hand`)?.textContent ?? null, tile(i));

  before(async () => {
    await mkdir(results, { recursive: true });
    room = await startClassroom({ stations: 3, config: NO_SCHEDULE, schedule: false });
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    await page.goto(`${room.url}/login`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/);
    await page.waitForFunction(() => document.querySelectorAll('#tiles .tile:not(.offline)').length === 3,
      null, { timeout: 60_000 });
    // Nobody may be watched in this room.
    await page.waitForFunction(() => document.getElementById('monitoring').dataset.state === 'off');
  }, { timeout: 240_000 });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  it('shows the logged-in student under the station name, and not after logging out', async () => {
    room.order(`login ${station(0).name} Élise Martin`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .tile-user`)?.textContent === 'Élise Martin',
      tile(0), { timeout: 10_000 });
    // Under the station's name, on the same tile.
    const [name, user] = await Promise.all(['.tile-name', '.tile-user'].map((c) => page.locator(`${tile(0)} ${c}`).boundingBox()));
    assert.ok(user.y > name.y, 'the student is under the station name');
    assert.match(await page.locator(tile(0)).getAttribute('aria-label'), /Élise Martin/);
    assert.equal(await page.locator(`${tile(1)} .tile-user`).count(), 0, 'nobody at the other station');
    const api = await (await browser.context.request.get(`${room.url}/api/room`)).json();
    assert.equal(api.mosaic.tiles.find((x) => x.station_id === station(0).id).user_name, 'Élise Martin');

    // Finding her: accents and case forgiven; the others are dimmed.
    await page.fill('#find', 'elise');
    await page.waitForFunction((sel) => document.querySelector(sel).classList.contains('found'), tile(0));
    assert.equal(await page.locator('#tiles .tile.dimmed').count(), 2);
    assert.equal(await page.textContent('#find-count'), '1 poste(s) trouvé(s)');
    await page.fill('#find', station(2).name);
    await page.waitForFunction((sel) => document.querySelector(sel).classList.contains('found'), tile(2));
    await page.fill('#find', '');
    await page.waitForFunction(() => document.querySelectorAll('#tiles .tile.dimmed, #tiles .tile.found').length === 0);

    room.order(`logout ${station(0).name}`);
    await page.waitForFunction((sel) => !document.querySelector(`${sel} .tile-user`), tile(0), { timeout: 10_000 });
    const after = await (await browser.context.request.get(`${room.url}/api/room`)).json();
    assert.equal(after.mosaic.tiles.find((x) => x.station_id === station(0).id).user_name, null);
  });

  it('shows raised hands within 1 s in the order raised; clearing one clears it on the station', async (t) => {
    room.order(`login ${station(0).name} Élise Martin`);
    await page.waitForFunction((sel) => document.querySelector(`${sel} .tile-user`), tile(0));
    const raise = async (i) => {
      const t0 = Date.now();
      room.order(`hand ${station(i).name} up`);
      await page.waitForFunction((sel) => document.querySelector(`${sel} .tile-hand`), tile(i), { timeout: 5_000, polling: 20 });
      return Date.now() - t0;
    };
    const first = await raise(2);
    const second = await raise(0);
    t.diagnostic(`hand raised → shown on the tablet: ${first} ms, ${second} ms`);
    assert.ok(first < 1000 && second < 1000, `within 1 s (${first}, ${second} ms)`);
    assert.equal(await handOf(2), '1');
    assert.equal(await handOf(0), '2');
    assert.equal(await handOf(1), null);
    // The line above the class lists them in order, with the student's name, and signals.
    const items = await page.$$eval('#hands-list .hand-item .hand-who', (els) => els.map((e) => e.textContent));
    assert.deepEqual(items, [station(2).name, `${station(0).name} · Élise Martin`]);
    assert.equal(await page.textContent('#hands-title'), 'Mains levées (2)');
    assert.ok((await page.title()).startsWith('✋ 2 · '), await page.title());
    assert.ok(await page.evaluate(() => document.getElementById('hands').classList.contains('signal')));
    const status = await room.waitForStatus((s) => s[2].hand_raised && s[0].hand_raised, 'two hands up');
    assert.equal(status[1].hand_raised, false);
    await page.screenshot({ path: path.join(results, 'hands.png') });

    // The teacher has seen poste-03: "Vu" clears it there too, and poste-01 moves up.
    await page.locator(`#hands-list .hand-item[data-station-id="${station(2).id}"] .hand-clear`).tap();
    await room.waitForStatus((s) => !s[2].hand_raised && s[0].hand_raised, 'poste-03 hand down on the station');
    await page.waitForFunction((sel) => !document.querySelector(`${sel} .tile-hand`), tile(2));
    assert.equal(await handOf(0), '1');

    // The student of poste-01 withdraws: nothing is left, the title is plain again.
    room.order(`hand ${station(0).name} down`);
    await page.waitForFunction(() => document.getElementById('hands').hidden, null, { timeout: 5_000 });
    assert.equal(await handOf(0), null);
    assert.ok(!(await page.title()).startsWith('✋'));
    // Clearing a hand that is down says so, and an unknown station is 404.
    const cleared = await page.evaluate(async (id) => (await (await fetch(`/api/stations/${id}/hand/clear`, {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}',
    })).json()).cleared, station(0).id);
    assert.equal(cleared, false);
    const unknown = await page.evaluate(async () => (await fetch('/api/stations/999/hand/clear', {
      method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: '{}',
    })).status);
    assert.equal(unknown, 404);
  });
});
