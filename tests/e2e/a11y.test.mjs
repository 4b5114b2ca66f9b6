// Accessibility audit of every page of the teacher's web UI against the REAL box with 2
// simulated stations, in French and in English: axe-core (npm) runs inside the page and must
// find no serious or critical violation of WCAG 2.1 A/AA (labels on every control, contrast,
// names of buttons and links, document language, ARIA use…). Pages: sign-in, the class (a
// student's name on a tile and her raised hand listed),
// the class with its header menu open, one station full size, the class during a demo, the
// message sheet, the admin pages and "my account". Each violation is reported with its rule,
// impact and the elements at fault.
//
// axe is evaluated through the DevTools protocol (page.evaluate), not as an inline <script>:
// the box's Content-Security-Policy refuses inline scripts, and this test must not weaken it.
//
// NEEDS THE BOX BINARIES BUILT FIRST: `cargo build --workspace --bins`.
//
//   cd tests/e2e && node --test a11y.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { startClassroom } from './lib/classroom.mjs';
import { launch, waitForFrames, TABLET } from './lib/browser.mjs';

const require = createRequire(import.meta.url);
const AXE = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

/** Serious and critical violations on the page as it is now, one line per element. */
async function audit(page) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.split('\n').slice(1).join(' ').trim()}`),
    }));
  }, TAGS);
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.impact} ${v.id} (${v.help}) at ${n}`));
}

describe('accessibility audit of every page (axe-core), French and English', { timeout: 420_000 }, () => {
  let room;
  let browser;
  let page;

  before(async () => {
    room = await startClassroom({ stations: 2 });
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
  }, { timeout: 240_000 });

  after(async () => {
    await browser?.close();
    await room?.stop();
  });

  for (const lang of ['fr', 'en']) {
    it(`finds no serious or critical violation in ${lang === 'fr' ? 'French' : 'English'}`, async () => {
      const found = [];
      const check = async (what) => {
        assert.equal(await page.evaluate(() => document.documentElement.lang), lang, `${what} is in ${lang}`);
        for (const v of await audit(page)) found.push(`${what}: ${v}`);
      };
      await browser.context.clearCookies();
      await page.goto(`${room.url}/login?lang=${lang}`);
      await page.locator('#username').waitFor();
      await check('sign-in');
      await page.fill('#username', room.username);
      await page.fill('#password', room.password);
      await page.click('#login-submit');
      await page.waitForURL(/\/room$/);
      await page.waitForFunction((n) => document.querySelectorAll('#tiles .tile:not(.offline)').length === n,
        room.stations.length, { timeout: 60_000 });
      await waitForFrames(page, 'mosaic', 0, 30_000);
      // A student at poste-01 with her hand up: her name on the tile, the line of hands.
      room.order(`login ${room.stations[0].name} Élise Martin`);
      room.order(`hand ${room.stations[0].name} up`);
      await page.locator('#hands').waitFor({ state: 'visible' });
      await page.locator('#tiles .tile-user').waitFor();
      await check('the class');

      // The header menu, open (a narrower screen folds it).
      await page.setViewportSize({ width: 768, height: 1024 });
      await page.locator('#menu-toggle').waitFor({ state: 'visible' });
      await page.locator('#menu-toggle').click();
      await page.locator('#logout').waitFor({ state: 'visible' });
      await check('the header menu');
      await page.keyboard.press('Escape');
      await page.setViewportSize(TABLET);

      await page.locator('#act-message').click();
      await page.locator('#sheet-message').waitFor({ state: 'visible' });
      await check('the message sheet');
      await page.locator('#sheet-message [data-cancel]').click();

      const first = room.stations[0];
      await page.locator(`#tiles .tile[data-station-id="${first.id}"]`).click();
      await waitForFrames(page, 'focus', 0, 30_000);
      await check('one station full size');
      await page.locator('#back').click();
      await page.waitForFunction(() => document.body.dataset.view === 'mosaic');

      const status = await page.evaluate(async (source) => (await fetch('/api/demo', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ source, targets: null, mode: 'windowed', region: null }),
      })).status, first.id);
      assert.equal(status, 200);
      await page.locator('#demo-banner').waitFor({ state: 'visible', timeout: 15_000 });
      await check('the class during a demo');
      await page.locator('#demo-banner button').click();
      await page.locator('#demo-banner').waitFor({ state: 'hidden', timeout: 15_000 });

      for (const which of ['admin', 'account']) {
        await page.goto(`${room.url}/${which}`);
        await page.locator('#quick-lock').waitFor({ state: 'visible' });
        // The lists fill in from the box; audit them filled.
        if (which === 'admin') {
          await page.waitForFunction(() => document.querySelectorAll('#accounts-table tbody tr').length > 0
            && document.querySelectorAll('#audit-table tbody tr').length > 0);
        } else {
          await page.waitForFunction(() => document.getElementById('my-account').children.length > 0);
        }
        await check(which === 'admin' ? 'the admin pages' : 'my account');
      }
      assert.deepEqual(found, [], `${found.length} serious or critical accessibility problems`);
    });
  }
});
