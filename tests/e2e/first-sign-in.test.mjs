// The first admin's first sign-in, in the browser, against the REAL box: the generated
// password (read from the box's private file, as an admin would) signs in, and the page asks
// for a new password before anything else; two different entries are refused in French;
// a password that breaks the school rule is refused with the rule in words; a good one takes
// the admin to the room, the file is gone, and the old password no longer works.
//
// NEEDS THE BOX BINARIES BUILT FIRST (`cargo build --workspace --bins`, or LANTERNE_BIN_DIR).
//
//   cd tests/e2e && node --test first-sign-in.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startClassroom } from './lib/classroom.mjs';
import { launch, TABLET } from './lib/browser.mjs';

describe('the first admin sign-in', () => {
  let room;
  let browser;

  before(async () => {
    room = await startClassroom({ stations: 1, keepFirstPassword: true });
    browser = await launch({ viewport: TABLET, ignoreHTTPSErrors: true });
  });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  it('asks for a new password before the room, and forgets the generated one', async () => {
    const file = path.join(room.dir, 'box', 'first-admin-password');
    const first = readFileSync(file, 'utf8').trim();
    assert.equal(first, room.password, 'the file holds the generated password');

    const page = await browser.context.newPage();
    await page.goto(`${room.url}/login`);
    await page.fill('#username', 'admin');
    await page.fill('#password', first);
    await page.click('#login-submit');
    await page.waitForSelector('#new-password:not([hidden])');
    assert.equal(await page.isHidden('#login-form'), true, 'the sign-in form makes way');
    // The password was just typed: it is not asked again.
    assert.equal(await page.isHidden('#current-row'), true);

    await page.fill('#new-password-1', 'Nouveau-Tableau-26!');
    await page.fill('#new-password-2', 'Autre-Tableau-26!');
    await page.click('#new-password-submit');
    await page.waitForSelector('#new-password-error:not([hidden])');
    assert.match(await page.textContent('#new-password-error'), /pas identiques/);

    await page.fill('#new-password-1', 'faible');
    await page.fill('#new-password-2', 'faible');
    await page.click('#new-password-submit');
    await page.waitForFunction(() => /8 caractères/.test(
      document.getElementById('new-password-error').textContent));

    await page.fill('#new-password-1', 'Nouveau-Tableau-26!');
    await page.fill('#new-password-2', 'Nouveau-Tableau-26!');
    await page.click('#new-password-submit');
    await page.waitForURL(/\/room$/);
    assert.equal(existsSync(file), false, 'the file goes with the first password');

    const status = await page.evaluate(async () => (await fetch('/api/room')).status);
    assert.equal(status, 200, 'the room is open with the new session');

    // The generated password is refused now; the new one works.
    const tryLogin = (password) => page.evaluate(async (pw) => (await fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: pw }),
    })).status, password);
    assert.equal(await tryLogin(first), 401);
    assert.equal(await tryLogin('Nouveau-Tableau-26!'), 200);
    await page.close();
  });
});
