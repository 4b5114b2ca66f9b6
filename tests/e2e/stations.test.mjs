// The admin page's "Postes" section and account deletion in the browser, against the REAL
// box with two simulated stations (lib/classroom.mjs): revoking a station after the
// confirmation cuts its agent's link (the station reports it lost the box) and keeps it
// listed as revoked; dismissing a confirmation changes nothing; deleting a station removes
// it and the audit log names it station#<id>; an admin deletes another account but is
// offered no button for their own; the section reads in English too.
//
// NEEDS THE BOX BINARIES BUILT FIRST (`cargo build -p lanterne-box -p lanterne-station --bins`,
// or LANTERNE_BIN_DIR). A screenshot of the section goes to test-results/.
//
//   cd tests/e2e && node --test stations.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { launch, TABLET } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');

describe('stations and accounts on the admin page', { timeout: 180_000 }, () => {
  let room;
  let browser;
  let page;
  /** The confirmations shown, and whether the next one is accepted. */
  const dialogs = [];
  let acceptDialogs = true;

  before(async () => {
    await mkdir(results, { recursive: true });
    // The development room: no two-factor requirement, so the form signs in directly.
    room = await startClassroom({ stations: 2 });
    browser = await launch({ viewport: TABLET, ignoreHTTPSErrors: true });
    page = await browser.context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      if (acceptDialogs) d.accept(); else d.dismiss();
    });
    await page.goto(`${room.url}/login`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room/);
    await room.waitForStatus((st) => st.length === 2 && st.every((s) => s.connected), 'both connected');
  });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  const row = (id) => `#stations-table tr[data-station-id="${id}"]`;
  const state = (id) => page.textContent(`${row(id)} td:nth-child(4)`);

  it('revoking a station asks first, cuts its link and keeps it listed as revoked', async () => {
    const [first, second] = room.stations;
    await page.goto(`${room.url}/admin`);
    await page.waitForSelector(row(first.id));
    assert.equal(await state(first.id), 'inscrit');
    assert.equal(await page.textContent(`${row(first.id)} td:first-child`), first.name);

    // Dismissed: nothing happens.
    acceptDialogs = false;
    await page.click(`${row(first.id)} button:has-text("Révoquer")`);
    assert.match(dialogs.at(-1), new RegExp(`Révoquer le poste ${first.name} \\?`));
    assert.equal(await state(first.id), 'inscrit');

    acceptDialogs = true;
    await page.click(`${row(first.id)} button:has-text("Révoquer")`);
    await page.waitForSelector('#stations-status:has-text("révoqué")');
    await page.waitForFunction((sel) => document.querySelector(sel)?.children[3].textContent === 'révoqué',
      row(first.id));
    assert.equal(await page.locator(`${row(first.id)} button:has-text("Révoquer")`).count(), 0);
    // The student's side: the agent lost the box, and stays away (its reconnections are
    // refused); the other station keeps its link.
    await room.waitForStatus((st) => !st.find((s) => s.id === first.id).connected
      && st.find((s) => s.id === second.id).connected, 'the revoked station disconnected', 5_000);
    await new Promise((r) => setTimeout(r, 1500));
    const st = await room.status();
    assert.equal(st.find((s) => s.id === first.id).connected, false, 'still refused');
    const tiles = await page.evaluate(async () => (await (await fetch('/api/room')).json()).mosaic.tiles
      .map((t) => t.station_id));
    assert.deepEqual(tiles, [second.id]);
  });

  it('deleting a station asks first, removes it and leaves station#id in the audit log', async () => {
    const [first, second] = room.stations;
    acceptDialogs = false;
    await page.click(`${row(second.id)} button:has-text("Supprimer")`);
    assert.match(dialogs.at(-1), /irréversible/);
    assert.equal(await page.locator(row(second.id)).count(), 1, 'dismissed: still there');

    acceptDialogs = true;
    await page.click(`${row(first.id)} button:has-text("Supprimer")`);
    await page.waitForSelector(`${row(first.id)}`, { state: 'detached' });
    await page.waitForSelector(`#audit-table td:has-text("station#${first.id}")`);
    const audit = await page.textContent('#audit-table');
    assert.match(audit, /delete-station/);
    assert.doesNotMatch(audit, new RegExp(first.name), 'the name is gone from the log');
    await page.locator('#stations').screenshot({ path: path.join(results, 'admin-stations.png') });
  });

  it('an admin deletes another account, never their own', async () => {
    const created = await page.evaluate(async () => (await fetch('/api/accounts', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'mme.petit', role: 'teacher', password: 'Tableau-2026!' }),
    })).status);
    assert.equal(created, 201);
    await page.reload();
    const account = '#accounts-table tr[data-username="mme.petit"]';
    await page.waitForSelector(account);
    assert.equal(await page.locator('#accounts-table tr[data-username="admin"] button:has-text("Supprimer")').count(), 0);
    await page.click(`${account} button:has-text("Supprimer")`);
    assert.match(dialogs.at(-1), /Supprimer définitivement le compte mme\.petit/);
    await page.waitForSelector(account, { state: 'detached' });
    await page.waitForSelector('#audit-table td:has-text("delete-account")');
    assert.doesNotMatch(await page.textContent('#audit-table'), /mme\.petit/);
  });

  it('reads in English', async () => {
    await page.click('#lang-switch button[data-lang="en"]');
    await page.waitForSelector('#stations-h:has-text("Stations")');
    const [, second] = room.stations;
    assert.equal(await page.locator(`${row(second.id)} button:has-text("Revoke")`).count(), 1);
    assert.equal(await page.locator(`${row(second.id)} button:has-text("Delete")`).count(), 1);
    assert.equal(await state(second.id), 'enrolled');
    await page.click('#lang-switch button[data-lang="fr"]');
  });
});
