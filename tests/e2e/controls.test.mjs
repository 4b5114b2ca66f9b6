// Classroom controls driven from the tablet UI against the REAL box and a simulated
// classroom: lock and unlock (room, selection), messages with read receipts, an approved
// command with each station's result, restart, opening a link, Wake-on-LAN, refusals of bad
// input, an offline station reported, and the simulated panel's button on the developer page.
// Every effect is checked on the students' side: the simulated classroom writes what each
// station shows (lib/classroom.mjs `status()`), and the test acts as the students through it.
//
// NEEDS THE BOX BINARIES BUILT FIRST: `cargo build --workspace --bins` (scripts/test.sh does it).
//
//   cd tests/e2e && node --test controls.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { headerControl, launch, TABLET } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');
const LOCK_MESSAGE = 'Écrans verrouillés — regardez le tableau';

/** Receives Wake-on-LAN packets the box sends to this local socket instead of the subnet. */
async function wolListener() {
  const socket = dgram.createSocket('udp4');
  const packets = [];
  const waiters = [];
  socket.on('message', (msg) => {
    packets.push(msg);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((r) => socket.bind(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    packets,
    async next(timeoutMs = 10_000) {
      if (packets.length) return packets.shift();
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no Wake-on-LAN packet arrived')), timeoutMs);
        waiters.push(() => { clearTimeout(timer); resolve(); });
      });
      return packets.shift();
    },
    close: () => socket.close(),
  };
}

/** A magic packet is 6 × 0xFF then the station's MAC 16 times. */
function assertMagicPacket(packet, mac) {
  const bytes = Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
  assert.equal(packet.length, 102, 'a magic packet is 102 bytes');
  assert.ok(packet.subarray(0, 6).every((b) => b === 0xff), 'starts with six 0xFF');
  for (let i = 0; i < 16; i++) {
    assert.deepEqual(packet.subarray(6 + 6 * i, 12 + 6 * i), bytes, `MAC repetition ${i + 1}`);
  }
}

describe('classroom controls from the tablet', { timeout: 420_000 }, () => {
  let room;
  let browser;
  let page;
  let wol;
  const pageErrors = [];

  const station = (i) => room.stations[i];
  const byName = (status, name) => status.find((s) => s.name === name);
  const tile = (i) => page.locator(`#tiles .tile[data-station-id="${station(i).id}"]`);
  /** Waits until the page shows station i full size: the page routes on `hashchange`, which
   *  runs after the URL has already changed, so waiting for the URL alone races the view. */
  const inFocus = (i) => page.waitForFunction(
    (id) => document.body.dataset.view === 'focus' && location.hash === `#station/${id}`,
    station(i).id,
  );
  const reportLine = (name) => page.locator(`#report-list li[data-station="${name}"]`);

  async function waitReportLine(name, state, text) {
    const line = reportLine(name);
    await line.waitFor({ timeout: 15_000 });
    await page.waitForFunction(({ name, state, text }) => {
      const li = document.querySelector(`#report-list li[data-station="${name}"]`);
      return li && li.dataset.state === state && li.textContent.includes(text);
    }, { name, state, text }, { timeout: 15_000, polling: 100 }).catch(async (e) => {
      throw new Error(`report line for ${name}: wanted ${state} "${text}", saw ${JSON.stringify(await line.textContent())} (${e.message.split('\n')[0]})`);
    });
  }

  before(async () => {
    await mkdir(results, { recursive: true });
    wol = await wolListener();
    room = await startClassroom({
      stations: 4,
      autologin: ['poste-01'],
      config: [
        '[room]', 'name = "Salle 104"',
        '[network]', `wol_broadcast = "${wol.address}"`,
        '[panel]', 'backend = "simulated"',
        // Two-factor login is covered by its own tests; this one is about the controls.
        '[accounts]', 'require_totp_for_admins = false',
        '[[commands]]', 'name = "bonjour"', 'program = "/bin/echo"', 'args = ["bonjour"]',
        'allowed_args = ["tout le monde"]', 'timeout_s = 10',
        '[[commands]]', 'name = "pause"', 'program = "/bin/sleep"', 'args = ["3"]',
      ].join('\n'),
      // The stations' own allow-list has both commands too (a station runs nothing else).
      stationConfig: [
        '[[commands]]', 'program = "/bin/echo"', 'args = ["bonjour"]',
        'allowed_args = ["tout le monde"]',
        '[[commands]]', 'program = "/bin/sleep"', 'args = ["3"]',
      ].join('\n'),
    });
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${room.url}/login`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/, { timeout: 15_000 });
    await page.waitForFunction((ids) => ids.every((id) => {
      const el = document.querySelector(`#tiles .tile[data-station-id="${id}"]`);
      return el && !el.classList.contains('offline');
    }), room.stations.map((s) => s.id), { timeout: 60_000, polling: 250 });
    await room.waitForStatus((st) => st.length === 4 && st.every((s) => s.connected), 'all connected');
  }, { timeout: 240_000 });

  after(async () => {
    wol?.close();
    await browser?.close();
    await room?.stop();
  });

  it('locks and unlocks the whole class, and the tiles show it', async () => {
    assert.equal(await page.locator('#act-target').textContent(), 'Toute la classe');
    await page.click('#act-lock');
    const st = await room.waitForStatus((s) => s.every((x) => x.locked), 'every station locked');
    for (const s of st) assert.equal(s.lock_message, LOCK_MESSAGE);
    for (const s of room.stations) await waitReportLine(s.name, 'ok', 'Verrouillé');
    // The tiles say what the stations report, not merely what was asked.
    await page.waitForFunction((n) => document.querySelectorAll('#tiles .tile-locked:not(.pending)').length === n,
      room.stations.length, { timeout: 15_000 });
    await page.screenshot({ path: path.join(results, 'controls-locked.png') });

    await page.click('#act-unlock');
    await room.waitForStatus((s) => s.every((x) => !x.locked), 'every station unlocked');
    await page.waitForFunction(() => document.querySelectorAll('#tiles .tile-locked').length === 0,
      null, { timeout: 15_000 });
  });

  it('locks only the chosen stations', async () => {
    await page.click('#act-select');
    // In selection mode a tap chooses instead of opening the station.
    await tile(0).click();
    await tile(2).click();
    assert.equal(new URL(page.url()).hash, '');
    assert.equal(await page.locator('#act-target').textContent(), '2 postes choisis');
    assert.equal(await tile(0).getAttribute('aria-pressed'), 'true');
    assert.equal(await tile(1).getAttribute('aria-pressed'), 'false');
    await page.click('#act-lock');
    await room.waitForStatus((s) => s.map((x) => x.locked).join() === 'true,false,true,false',
      'poste-01 and poste-03 locked, the others not');
    await page.screenshot({ path: path.join(results, 'controls-selection.png') });
    await page.click('#act-unlock');
    await room.waitForStatus((s) => s.every((x) => !x.locked), 'the chosen stations unlocked');
  });

  it('sends a message to the chosen stations and shows who has read it', async () => {
    await page.click('#act-message');
    assert.equal(await page.locator('#sheet-message [data-target]').textContent(), '2 postes choisis');
    await page.fill('#message-text', 'Enregistrez votre travail, s’il vous plaît.');
    await page.click('#message-form button[type=submit]');
    // Message 0 is the station's own notice of the monitoring hours, not a teacher's.
    const teachers = (x) => x.messages.filter((m) => m.id !== 0);
    const st = await room.waitForStatus((s) => teachers(byName(s, station(0).name)).length === 1
      && teachers(byName(s, station(2).name)).length === 1, 'the message on the chosen stations');
    const shown = teachers(byName(st, station(0).name))[0];
    assert.equal(shown.text, 'Enregistrez votre travail, s’il vous plaît.');
    assert.equal(shown.from, room.username);
    assert.equal(teachers(byName(st, station(1).name)).length, 0, 'not sent to the others');
    await waitReportLine(station(0).name, 'pending', 'Pas encore lu');
    await waitReportLine(station(2).name, 'pending', 'Pas encore lu');
    // The tiles say it too, until the students dismiss the message.
    await tile(0).locator('.tile-unread').waitFor({ timeout: 10_000 });
    assert.equal(await tile(1).locator('.tile-unread').count(), 0);

    // The student of poste-01 clicks OK: the tablet sees it read there, and only there.
    room.order(`dismiss ${station(0).name} ${shown.id}`);
    await waitReportLine(station(0).name, 'ok', 'Lu');
    await waitReportLine(station(2).name, 'pending', 'Pas encore lu');
    await tile(0).locator('.tile-unread').waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal(await tile(2).locator('.tile-unread').textContent(), '✉ 1');
    assert.match(await page.locator('#report-summary').textContent(), /Lu par 1 poste\(s\) sur 2/);
    await page.screenshot({ path: path.join(results, 'controls-message.png') });
  });

  it('refuses a blank message with the box’s reason and keeps the sheet open', async () => {
    await page.click('#act-message');
    await page.fill('#message-text', '    ');
    await page.click('#message-form button[type=submit]');
    const err = page.locator('#sheet-message [data-error]');
    await err.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await err.textContent(), /Refusé : 'text' must not be empty/);
    assert.equal(await page.locator('#sheet-message').evaluate((d) => d.open), true);
    await page.click('#sheet-message [data-cancel]');
    await page.click('#act-select'); // leave selection mode: back to the whole class
    assert.equal(await page.locator('#act-target').textContent(), 'Toute la classe');
  });

  it('runs an approved command everywhere and shows each station’s exit code and output', async () => {
    await page.click('#act-command');
    await page.waitForFunction(() => document.querySelectorAll('#command-name option').length === 2);
    await page.selectOption('#command-name', 'bonjour');
    assert.equal(await page.locator('#command-line').textContent(), '/bin/echo bonjour');
    await page.selectOption('#command-arg', 'tout le monde');
    await page.click('#command-run');
    for (const s of room.stations) {
      await waitReportLine(s.name, 'ok', 'Code de sortie 0');
      assert.equal((await reportLine(s.name).locator('.report-detail').textContent()).trim(),
        'bonjour tout le monde');
    }
    assert.match(await page.locator('#report-summary').textContent(), /Terminée sur 4 poste\(s\) sur 4/);
    await page.screenshot({ path: path.join(results, 'controls-command.png') });

    // A longer command shows on the tiles while it runs.
    await page.click('#act-command');
    await page.selectOption('#command-name', 'pause');
    assert.equal(await page.locator('#command-arg').isDisabled(), true, 'no argument allowed');
    await page.click('#command-run');
    await tile(3).locator('.tile-running').waitFor({ timeout: 10_000 });
    await waitReportLine(station(3).name, 'pending', 'En cours');
    await waitReportLine(station(3).name, 'ok', 'Code de sortie 0');
    await tile(3).locator('.tile-running').waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('restarts one chosen station after a confirmation', async () => {
    await page.click('#act-select');
    await tile(1).click();
    await page.click('#act-power');
    await page.selectOption('#power-countdown', '0');
    await page.click('#sheet-power [data-power="restart"]');
    assert.match(await page.locator('#power-confirm-text').textContent(), /Redémarrer poste-02/);
    // Nothing happens before the second tap.
    assert.ok((await room.status()).every((s) => s.system.length === 0));
    await page.click('#power-confirm-go');
    // "Done" once the station itself reports it carried the order out.
    await waitReportLine(station(1).name, 'ok', 'Fait');
    const st = await room.waitForStatus((s) => byName(s, station(1).name).system.includes('restart'),
      'poste-02 restarting');
    for (const i of [0, 2, 3]) assert.deepEqual(byName(st, station(i).name).system, []);
    await page.click('#act-select');
  });

  it('opens sessions where stations are set up for it and shows why the others refuse', async () => {
    await page.click('#act-power');
    await page.click('#sheet-power [data-power="open-session"]');
    await waitReportLine(station(0).name, 'ok', 'Fait');
    for (const i of [1, 2, 3]) {
      await waitReportLine(station(i).name, 'bad', 'Impossible sur ce poste');
      assert.match(await reportLine(station(i).name).locator('.report-detail').textContent(),
        /not set up to open sessions/);
    }
    assert.match(await page.locator('#report-summary').textContent(), /Fait sur 4 poste\(s\) sur 4/);
    const st = await room.status();
    assert.ok(byName(st, station(0).name).system.includes('open-session'));
    await page.screenshot({ path: path.join(results, 'controls-open-session.png') });

    // Logging a student out asks for confirmation, then ends that session only.
    await tile(2).click();
    await inFocus(2);
    await page.click('#act-power');
    await page.selectOption('#power-countdown', '0');
    await page.click('#sheet-power [data-power="logout"]');
    assert.match(await page.locator('#power-confirm-text').textContent(), /Fermer la session de poste-03/);
    await page.click('#power-confirm-go');
    await waitReportLine(station(2).name, 'ok', 'Fait');
    assert.deepEqual(byName(await room.status(), station(2).name).system, ['logout']);
    await page.click('#back');
    await page.waitForFunction(() => document.body.dataset.view === 'mosaic');
  });

  it('opens a link on the station in focus, and refuses a script address', async () => {
    await tile(2).click();
    await page.waitForURL(new RegExp(`#station/${station(2).id}$`));
    await inFocus(2);
    assert.equal(await page.locator('#act-target').textContent(), station(2).name);
    await page.click('#act-url');
    await page.fill('#url-text', 'javascript:alert(1)');
    await page.click('#url-form button[type=submit]');
    const err = page.locator('#sheet-url [data-error]');
    await err.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await err.textContent(), /Refusé : .*http/);

    await page.fill('#url-text', 'https://example.org/cours');
    await page.click('#url-form button[type=submit]');
    await waitReportLine(station(2).name, 'ok', 'Fait');
    const st = await room.waitForStatus(
      (s) => byName(s, station(2).name).system.join() === 'logout,open-url https://example.org/cours',
      'the link opened on poste-03');
    assert.ok(!byName(st, station(0).name).system.some((x) => x.startsWith('open-url')),
      'the link opened on the station in focus only');
    await page.click('#back');
    await page.waitForFunction(() => document.body.dataset.view === 'mosaic');
  });

  it('reports an offline station instead of skipping it, and wakes it up', async () => {
    const gone = station(3);
    room.order(`unplug ${gone.name}`);
    await tile(3).and(page.locator('.offline')).waitFor({ timeout: 30_000 });

    await page.click('#act-lock');
    await waitReportLine(gone.name, 'offline', 'Hors ligne : sera verrouillé à son retour');
    assert.match(await page.locator('#report-summary').textContent(), /1 hors ligne/);
    await room.waitForStatus((s) => [0, 1, 2].every((i) => byName(s, station(i).name).locked),
      'the online stations locked');

    await page.click('#act-message');
    await page.fill('#message-text', 'Contrôle dans 5 minutes');
    await page.click('#message-form button[type=submit]');
    await waitReportLine(gone.name, 'offline', 'Hors ligne : non reçu');

    // Offline stations can be chosen, to power them on.
    await page.click('#act-select');
    await tile(3).click();
    await page.click('#act-power');
    await page.click('#sheet-power [data-power="wake"]');
    await waitReportLine(gone.name, 'ok', 'Signal de réveil envoyé');
    assertMagicPacket(await wol.next(), '02:00:00:00:00:04');
    await page.click('#act-select');
  });

  it('presses the simulated panel button on the developer page', async () => {
    // The room is locked (previous test): the button's light is on.
    await (await headerControl(page, '#dev-link')).click();
    await page.waitForURL(/\/dev$/);
    await page.waitForFunction(() => document.getElementById('lock-led').dataset.state === 'on',
      null, { timeout: 10_000 });
    // Leaving the class closed its mosaic: once the box's linger (5 s) is over nobody is
    // watched any more, and the status light says so.
    await page.waitForFunction(() => document.getElementById('status-led').dataset.state === 'off',
      null, { timeout: 10_000 });
    await page.screenshot({ path: path.join(results, 'controls-dev-panel.png') });

    await page.click('#press');
    await room.waitForStatus((s) => s.filter((x) => x.connected).every((x) => !x.locked),
      'the button unlocked every station');
    await page.waitForFunction(() => document.getElementById('lock-led').dataset.state === 'off',
      null, { timeout: 10_000 });

    await page.click('#press');
    await room.waitForStatus((s) => s.filter((x) => x.connected).every((x) => x.locked),
      'pressed again: every station locked');
    await page.waitForFunction(() => document.getElementById('lock-led').dataset.state === 'on',
      null, { timeout: 10_000 });
  });

  it('speaks English when asked', async () => {
    await page.goto(`${room.url}/room`);
    await (await headerControl(page, '#lang-switch button[data-lang="en"]')).click();
    assert.equal((await page.locator('#act-lock').textContent()).trim(), 'Lock');
    assert.equal(await page.locator('#act-target').textContent(), 'Whole class');
    await (await headerControl(page, '#lang-switch button[data-lang="fr"]')).click();
    assert.deepEqual(pageErrors, [], 'no script error on the pages');
  });
});
