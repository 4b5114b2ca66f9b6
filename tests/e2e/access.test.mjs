// Access and privacy in the browser, against the REAL box (lib/classroom.mjs with one
// simulated station and a room configuration that requires two-factor login of admins):
// forced two-factor enrolment at the admin's first sign-in, sign-in with password + TOTP
// (the code computed here, RFC 6238), a wrong code, a recovery code that works once, the
// admin pages (accounts, audit filters and export, room link), role limits for a teacher,
// cross-origin POSTs refused, room link regeneration, and lock-out after repeated failures.
//
// NEEDS THE BOX BINARIES BUILT FIRST (`cargo build -p lanterne-box -p lanterne-station --bins`,
// or LANTERNE_BIN_DIR). Screenshots of the login and admin pages go to test-results/.
//
//   cd tests/e2e && node --test access.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom, scheduleIncludingNow } from './lib/classroom.mjs';
import { launch, TABLET } from './lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');

const CONFIG = `[room]
name = "Salle 12"
school = "Collège Jean Moulin"
[privacy]
screenshots = true
[accounts]
require_totp_for_admins = true
require_totp_for_teachers = false
${scheduleIncludingNow()}`;

// ---- RFC 6238 (TOTP, SHA-1, 6 digits, 30 s), written here so the test does not trust the box

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secretB32, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32Decode(secretB32)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(n).padStart(6, '0');
}

it('the TOTP helper matches RFC 6238 appendix B (SHA-1)', () => {
  // Key "12345678901234567890" in base32; the RFC lists 8 digits, these are its last 6.
  const key = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  assert.equal(totp(key, 59), '287082');
  assert.equal(totp(key, 1111111109), '081804');
  assert.equal(totp(key, 2000000000), '279037');
});

describe('access and privacy against the real box', { timeout: 300_000 }, () => {
  let room;
  let browser;
  let secret;
  let recoveryCodes;
  // A TOTP code is accepted once per time step. Enrolment uses the current step and the
  // password + code sign-in the next one (the box accepts one step of clock skew), so no test
  // waits for the clock; the other admin sessions are opened with recovery codes.
  let spareRecoveryCodes = [];
  let promptAnswer = '';
  const teacher = { username: 'prof.martin', password: 'Cahier-de-texte-7' };

  before(async () => {
    await mkdir(results, { recursive: true });
    room = await startClassroom({ stations: 1, config: CONFIG });
    browser = await launch({ viewport: TABLET, ignoreHTTPSErrors: true });
  });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  /** A page on the sign-in form with no session (the persistent context's cookies cleared). */
  async function freshLogin() {
    await browser.context.clearCookies();
    const page = await browser.context.newPage();
    await page.goto(`${room.url}/login`);
    return page;
  }

  /** Submits the sign-in form and waits for the box's answer to be shown. */
  async function submitAndWait(page) {
    const answered = page.waitForResponse((r) => r.url() === `${room.url}/api/login`);
    await page.click('#login-submit');
    await answered;
    await page.waitForFunction(() => !document.getElementById('login-submit').disabled);
  }

  async function fillPassword(page, username, password) {
    await page.fill('#username', username);
    await page.fill('#password', password);
    await page.click('#login-submit');
  }

  it('the admin must turn on two-factor login at first sign-in, and gets recovery codes', async () => {
    const page = await freshLogin();
    await fillPassword(page, room.username, room.password);
    await page.waitForSelector('#enrol:not([hidden]) #totp-qr svg', { timeout: 15_000 });
    assert.ok(await page.isHidden('#login-form'), 'the password form gives way to the enrolment');
    secret = (await page.textContent('#totp-secret')).replace(/\s/g, '');
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    await page.screenshot({ path: path.join(results, 'login-enrol.png') });

    // A wrong code is refused with a French message.
    const wrong = totp(secret, Date.now() / 1000) === '000000' ? '111111' : '000000';
    await page.fill('#totp-code', wrong);
    await page.click('#totp-submit');
    await page.waitForSelector('#totp-error:not([hidden])');
    assert.match(await page.textContent('#totp-error'), /ne correspond pas/);

    await page.fill('#totp-code', totp(secret, Date.now() / 1000));
    await page.click('#totp-submit');
    await page.waitForSelector('#recovery-codes li');
    recoveryCodes = await page.$$eval('#recovery-codes li', (lis) => lis.map((li) => li.textContent));
    spareRecoveryCodes = recoveryCodes.slice(1);
    assert.equal(recoveryCodes.length, 10);
    for (const c of recoveryCodes) assert.match(c, /^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
    await page.screenshot({ path: path.join(results, 'login-recovery-codes.png') });
    await page.click('#recovery-done');
    await page.waitForURL(/\/room$/);
    await page.close();
  });

  it('signing in takes the password and then the authenticator code', async () => {
    const page = await freshLogin();
    await fillPassword(page, room.username, room.password);
    await page.waitForSelector('#second-factor:not([hidden]) #code');
    assert.ok(await page.isHidden('#login-error'), 'asking for the code is not an error');
    await page.screenshot({ path: path.join(results, 'login-code.png') });

    // A wrong code: a clear French error, no session.
    const good = totp(secret, Date.now() / 1000 + 30);
    await page.fill('#code', good === '123450' ? '654321' : '123450');
    await submitAndWait(page);
    assert.equal(await page.textContent('#login-error'),
      'Code incorrect ou déjà utilisé. Attendez le code suivant et réessayez.');
    assert.equal((await page.context().request.get(`${room.url}/api/me`)).status(), 401);

    // The same message in English after the switch.
    await page.click('#lang-switch button[data-lang="en"]');
    assert.equal(await page.textContent('#login-error'),
      'Wrong or already used code. Wait for the next code and try again.');
    await page.click('#lang-switch button[data-lang="fr"]');

    await page.fill('#code', good);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/);
    const me = await page.context().request.get(`${room.url}/api/me`);
    assert.equal(me.status(), 200);
    assert.equal((await me.json()).role, 'admin');
    await page.close();
  });

  it('a recovery code signs in once', async () => {
    const code = recoveryCodes[0];
    for (const attempt of ['first', 'second']) {
      const page = await freshLogin();
      await fillPassword(page, room.username, room.password);
      await page.waitForSelector('#second-factor:not([hidden])');
      await page.click('#toggle-recovery');
      await page.fill('#recovery-code', code.toLowerCase());
      await page.click('#login-submit');
      if (attempt === 'first') {
        await page.waitForURL(/\/room$/);
      } else {
        await page.waitForSelector('#login-error:not([hidden])');
        assert.equal(await page.textContent('#login-error'), 'Code de secours inconnu ou déjà utilisé.');
        assert.match(page.url(), /\/login$/);
      }
      await page.close();
    }
  });

  /** An admin page with a session (password + a spare recovery code, through the API). */
  async function adminPage() {
    await browser.context.clearCookies();
    const res = await browser.context.request.post(`${room.url}/api/login`, {
      headers: { Origin: room.url },
      data: { username: room.username, password: room.password, recovery_code: spareRecoveryCodes.shift() },
    });
    assert.equal(res.status(), 200, await res.text());
    const page = await browser.context.newPage();
    // Confirmations are accepted; a password prompt gets the value the test put here.
    page.on('dialog', (d) => d.accept(d.type() === 'prompt' ? promptAnswer : undefined));
    await page.goto(`${room.url}/admin`);
    await page.waitForSelector('#accounts-table tbody tr');
    return page;
  }

  it('the admin pages create accounts, filter and export the audit log', async () => {
    const page = await adminPage();
    await page.fill('#new-username', teacher.username);
    await page.selectOption('#new-role', 'teacher');
    await page.fill('#new-password', teacher.password);
    await page.click('#create-account button[type="submit"]');
    await page.waitForSelector(`#accounts-table tr[data-username="${teacher.username}"]`);
    const row = await page.textContent(`#accounts-table tr[data-username="${teacher.username}"]`);
    assert.match(row, /enseignant/);
    assert.match(await page.textContent('#accounts-table tr[data-username="admin"]'), /oui/,
      'the admin has two-factor login');

    // Disable, re-enable, and set a new password (which the teacher then signs in with).
    const rowOf = () => page.textContent(`#accounts-table tr[data-username="${teacher.username}"]`);
    await page.click(`#accounts-table tr[data-username="${teacher.username}"] button:has-text("Désactiver")`);
    await page.waitForFunction((u) => /désactivé/.test(
      document.querySelector(`#accounts-table tr[data-username="${u}"]`).textContent), teacher.username);
    const disabled = await browser.context.request.post(`${room.url}/api/login`, {
      headers: { Origin: room.url }, data: teacher,
    });
    assert.equal(disabled.status(), 401, 'a disabled account cannot sign in');
    await page.click(`#accounts-table tr[data-username="${teacher.username}"] button:has-text("Réactiver")`);
    await page.waitForFunction((u) => /actif/.test(
      document.querySelector(`#accounts-table tr[data-username="${u}"]`).children[2].textContent), teacher.username);
    assert.doesNotMatch(await rowOf(), /désactivé/);
    teacher.password = 'Nouveau-cahier-8';
    promptAnswer = teacher.password;
    await page.click(`#accounts-table tr[data-username="${teacher.username}"] button:has-text("Nouveau mot de passe")`);
    await page.waitForFunction(() => /changé/.test(document.getElementById('accounts-status').textContent));

    // A weak password is refused with the rule named.
    await page.fill('#new-username', 'faible');
    await page.fill('#new-password', 'court');
    await page.click('#create-account button[type="submit"]');
    await page.waitForSelector('#admin-error:not([hidden])');
    assert.match(await page.textContent('#admin-error'), /au moins 8 caractères/);

    // Audit: filtered by action and by today's date.
    await page.fill('#f-action', 'create-account');
    const today = new Date();
    const day = `${today.getFullYear()}-${String(today.getMonth() + 1).padStart(2, '0')}-${String(today.getDate()).padStart(2, '0')}`;
    await page.fill('#f-since', day);
    await page.fill('#f-until', day);
    await page.click('#audit-filter button[type="submit"]');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#audit-table tbody tr')];
      return rows.length > 0 && rows.every((r) => r.children[2].textContent === 'create-account');
    });
    const audited = await page.$$eval('#audit-table tbody tr', (rows) => rows.map((r) => r.children[3].textContent));
    assert.deepEqual(audited, [teacher.username]);
    // The export links carry the same filters and answer CSV / JSON.
    const csvHref = await page.getAttribute('#export-csv', 'href');
    assert.match(csvHref, /action=create-account/);
    const csv = await page.context().request.get(`${room.url}${csvHref}`);
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()['content-type'], /text\/csv/);
    const lines = (await csv.text()).trim().split('\n');
    assert.equal(lines.length, 2, 'header and one line');
    assert.match(lines[1], /"prof\.martin"/);
    const json = await page.context().request.get(`${room.url}${await page.getAttribute('#export-json', 'href')}`);
    assert.equal((await json.json())[0].target, teacher.username);
    await page.screenshot({ path: path.join(results, 'admin.png'), fullPage: true });
    await page.close();
  });

  // The visitor is a tablet that scanned the QR code: its own browser context, without the
  // admin's session. (It used to be a page in the admin's context: the sign-in page, seeing a
  // session, sent it on to the live room, and the test closed it during that navigation — a
  // `page.close()` that can wait forever; on a loaded machine it held this test for 288 s.)
  it('regenerating the room link refuses the old one at once', async () => {
    const page = await adminPage();
    await page.click('#regenerate-link');
    await page.waitForSelector('#room-link-url:not([hidden])');
    const first = await page.textContent('#room-link-url');
    assert.ok(await page.isVisible('#room-link-qr svg'), 'QR code shown');
    const tablet = await browser.newContext();
    const visitor = await tablet.newPage();
    await visitor.goto(first);
    await visitor.waitForSelector('#login-form');
    assert.match(visitor.url(), /\/login$/, 'the current link leads to the sign-in');

    await page.click('#regenerate-link');
    await page.waitForFunction((old) => document.querySelector('#room-link-url').textContent !== old, first);
    const second = await page.textContent('#room-link-url');
    const old = await visitor.goto(first);
    assert.equal(old.status(), 404);
    assert.match(await visitor.textContent('body'), /no longer valid/);
    await visitor.goto(second);
    await visitor.waitForSelector('#login-form');
    assert.match(visitor.url(), /\/login$/);
    // Still on the sign-in page: nobody was signed in by following the link.
    assert.equal((await tablet.request.get(`${room.url}/api/me`)).status(), 401);
    await tablet.close();
    await page.close();
  });

  it('cross-origin POSTs are refused', async () => {
    const page = await adminPage();
    const before = await page.context().request.get(`${room.url}/api/me`);
    assert.equal(before.status(), 200);

    // A page on another origin submits a form to the box (the classic CSRF).
    const evil = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<form id="f" method="POST" action="${room.url}/api/logout" enctype="text/plain">
        <input name="x" value="y"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    const attacker = await browser.context.newPage();
    const refused = attacker.waitForResponse((r) => r.url() === `${room.url}/api/logout`);
    await attacker.goto(`http://localhost:${evil.address().port}/`);
    const res = await refused;
    assert.ok([401, 403].includes(res.status()), `status ${res.status()}`);
    // The form's navigation must be over before the page is closed (a close racing a
    // navigation can hang; see lib/browser.mjs).
    await attacker.waitForURL(`${room.url}/api/logout`);
    await attacker.close();
    evil.close();
    assert.equal((await page.context().request.get(`${room.url}/api/me`)).status(), 200,
      'the admin is still signed in');

    // Even with the session cookie, a request whose Origin is not the box is refused.
    const forged = await page.context().request.post(`${room.url}/api/room/link`, {
      headers: { Origin: 'https://evil.example' },
      data: {},
    });
    assert.equal(forged.status(), 403);
    assert.match((await forged.json()).error, /cross-origin request from https:\/\/evil\.example refused/);
    await page.close();
  });

  it('a teacher cannot open the admin pages or export the audit log', async () => {
    const page = await freshLogin();
    await fillPassword(page, teacher.username, teacher.password);
    await page.waitForURL(/\/room$/);
    assert.ok(await page.isHidden('#admin-link'), 'no admin link for a teacher');
    const res = await page.goto(`${room.url}/admin`);
    assert.equal(res.status(), 403);
    await page.waitForSelector('#forbidden h1');
    assert.equal(await page.textContent('#forbidden h1'), 'Accès réservé aux administrateurs');
    await page.screenshot({ path: path.join(results, 'admin-refused.png') });
    for (const api of ['/api/audit.csv', '/api/audit', '/api/accounts']) {
      const r = await page.context().request.get(`${room.url}${api}`);
      assert.equal(r.status(), 403, api);
    }
    // Screenshots are on in this room: the focus view offers the button, the picture is kept
    // on the box and the teacher sees their own.
    await page.goto(`${room.url}/room#station/${room.stations[0].id}`);
    await page.waitForSelector('body[data-view="focus"] #screenshot:not([hidden])');
    await page.click('#screenshot');
    await page.waitForFunction(() => document.getElementById('screenshot-status').textContent !== '');
    assert.equal(await page.textContent('#screenshot-status'), 'Capture enregistrée sur le boîtier.');
    const shots = await (await page.context().request.get(`${room.url}/api/screenshots`)).json();
    assert.equal(shots.length, 1);
    assert.equal(shots[0].taken_by, teacher.username);
    const png = await page.context().request.get(`${room.url}/api/screenshots/${shots[0].id}.png`);
    assert.equal(png.headers()['content-type'], 'image/png');
    assert.deepEqual([...(await png.body()).subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');

    // "My account" is for every role.
    await page.goto(`${room.url}/account`);
    await page.waitForSelector('#totp-state');
    assert.match(await page.textContent('#totp-state'), /désactivée/);
    await page.close();
  });

  it('repeated failures lock the account out and say how long to wait', async () => {
    const page = await freshLogin();
    await page.fill('#username', teacher.username);
    for (let i = 0; i < 5; i++) {
      await page.fill('#password', 'Mauvais-mot-2-passe');
      await submitAndWait(page);
      assert.equal(await page.textContent('#login-error'), 'Identifiant ou mot de passe incorrect.');
    }
    // Now even the right password waits.
    await page.fill('#password', teacher.password);
    await submitAndWait(page);
    assert.match(await page.textContent('#login-error'),
      /^Trop d’essais infructueux\. Réessayez dans 5 min \(\d+ s\)\.$/);
    assert.match(page.url(), /\/login$/);
    await page.screenshot({ path: path.join(results, 'login-locked-out.png') });
    await page.close();
  });
});
