// Remote help (P5) from the tablet against a real station on an X display (Xvfb): the
// student's application is an ordinary X program (lib/help-target.py: a big button that
// changes colour when clicked, and a text field). The test plays the teacher on the tablet
// and the student at the station (xdotool clicks on the station's screen):
//   - "Refuser" and the 30 s timeout each leave the station untouched and the tablet told;
//   - after "Accepter", a tap on the tablet's picture clicks the application's button and
//     typed text arrives in its text field;
//   - the student's "Arrêter" ends it, and further input is refused;
//   - every step is in the audit log.
// Screenshots of the station's screen are kept in test-results/ (help-prompt.png,
// help-banner.png, help-ended.png).
//
// NEEDS the binaries (`cargo build --workspace --bins`), Xvfb, xdotool, gst-launch-1.0 and
// python3-tk (scripts/setup.sh installs them).
//
//   cd tests/e2e && node --test remote-help.test.mjs
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startClassroom } from './lib/classroom.mjs';
import { launch, TABLET } from './lib/browser.mjs';
import { startXvfb, waitForColour, click, screenshot } from './lib/x11.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const results = path.join(here, 'test-results');
const WIDTH = 1280;
const HEIGHT = 720;
// appliance/overlay/src/theme.rs
const MESSAGE_BUTTON = [0x25, 0x63, 0xeb];
const CONSENT_ACCEPT = [0x15, 0x80, 0x3d];
const CONSENT_REFUSE = [0x4b, 0x55, 0x63];
const HELP_STOP_BUTTON = [0xff, 0xed, 0xd5];
/** The prompt ignores clicks in its first 700 ms (they were aimed at something else). */
const ARMING_MS = 900;

/** The student's application; resolves once it is on screen. Lines it prints are in .lines. */
function startApp(display) {
  const proc = spawn('/usr/bin/python3', [path.join(here, 'lib', 'help-target.py'), `${WIDTH}x${HEIGHT}`],
    { env: { ...process.env, DISPLAY: display }, stdio: ['ignore', 'pipe', 'inherit'] });
  const app = { proc, lines: [] };
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      app.lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  app.waitLine = async (want, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!app.lines.includes(want)) {
      if (proc.exitCode !== null) throw new Error('the application exited');
      if (Date.now() > deadline) throw new Error(`the application never said ${JSON.stringify(want)}: ${JSON.stringify(app.lines)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return app.waitLine('ready').then(() => app);
}

describe('remote help with the student’s consent, on a real X station', { timeout: 400_000 }, () => {
  let room;
  let xvfb;
  let app;
  let browser;
  let page;

  before(async () => {
    await mkdir(results, { recursive: true });
    xvfb = await startXvfb(WIDTH, HEIGHT);
    app = await startApp(xvfb.display);
    room = await startClassroom({ stations: 0 });
    await room.runStation('poste-aide', ['--source', 'x11', '--display', xvfb.display]);
    browser = await launch({ viewport: TABLET, hasTouch: true, ignoreHTTPSErrors: true });
    page = browser.context.pages()[0] ?? await browser.context.newPage();
    await page.goto(`${room.url}/login`);
    await page.fill('#username', room.username);
    await page.fill('#password', room.password);
    await page.click('#login-submit');
    await page.waitForURL(/\/room$/, { timeout: 15_000 });
    await page.locator('#tiles .tile:not(.offline)').waitFor({ timeout: 60_000 });
    // The student reads the hours notice first, as at the start of any session.
    const ok = await waitForColour(xvfb, results, 'help-notice', MESSAGE_BUTTON, 30_000);
    await click(xvfb, ok.x, ok.y);
    await page.locator('#tiles .tile:not(.offline)').first().click();
    await page.waitForURL(/#station\/\d+$/);
    await page.locator('#help-ask:not([hidden])').waitFor({ timeout: 15_000 });
  }, { timeout: 200_000 });

  after(async () => {
    await browser?.close();
    await room?.stop();
    app?.proc.kill();
    xvfb?.proc.kill();
  });

  /** Waits for a step in the tablet's list of help steps (inside a closed <details>). */
  const step = (name) => ({
    waitFor: (opts = {}) => page.locator(`#help-steps-list li[data-step="${name}"]`)
      .first().waitFor({ state: 'attached', timeout: 15_000, ...opts }),
  });

  it('leaves the station untouched when the student refuses', async () => {
    await page.click('#help-ask');
    const refuse = await waitForColour(xvfb, results, 'help-prompt', CONSENT_REFUSE);
    await new Promise((r) => setTimeout(r, ARMING_MS));
    await click(xvfb, refuse.x, refuse.y);
    await step('refused').waitFor({ timeout: 15_000 });
    assert.match(await page.textContent('#help-status'), /refusé/);
    assert.ok(await page.locator('#help-panel').isHidden(), 'no input controls');
    assert.deepEqual(app.lines.filter((l) => l !== 'ready'), [], 'nothing reached the application');
  });

  it('counts no answer within 30 s as a refusal', async () => {
    await page.click('#help-ask');
    await waitForColour(xvfb, results, 'help-prompt-waiting', CONSENT_ACCEPT);
    await step('timed-out').waitFor({ timeout: 45_000 });
    assert.match(await page.textContent('#help-status'), /Pas de réponse/);
    const shot = await screenshot(xvfb, results, 'help-after-timeout');
    assert.equal(shot.includes(Buffer.from(CONSENT_ACCEPT)), false, 'the prompt is gone');
    assert.deepEqual(app.lines.filter((l) => l !== 'ready'), []);
  });

  it('after Accepter, a tap clicks the application and typed text arrives in its field', async () => {
    await page.click('#help-ask');
    const accept = await waitForColour(xvfb, results, 'help-prompt', CONSENT_ACCEPT);
    await new Promise((r) => setTimeout(r, ARMING_MS));
    await click(xvfb, accept.x, accept.y);
    await page.locator('#help-panel:not([hidden])').waitFor({ timeout: 15_000 });
    await step('accepted').waitFor();
    await waitForColour(xvfb, results, 'help-banner', HELP_STOP_BUTTON);

    const canvas = await page.locator('#focus-canvas').boundingBox();
    // The button covers the left half of the station's screen.
    await page.mouse.click(canvas.x + canvas.width * 0.25, canvas.y + canvas.height * 0.5);
    await app.waitLine('click 1');
    // The text field sits in the middle of the right half.
    await page.mouse.click(canvas.x + canvas.width * 0.75, canvas.y + canvas.height * 0.5);
    await page.fill('#help-text', 'Bonjour à tous');
    await page.click('#help-send');
    await app.waitLine('text Bonjour à tous');
  });

  it('ends when the student clicks Arrêter, and refuses input after that', async () => {
    const stop = await waitForColour(xvfb, results, 'help-banner', HELP_STOP_BUTTON);
    await click(xvfb, stop.x, stop.y);
    await step('ended').waitFor({ timeout: 15_000 });
    await page.locator('#help-panel').waitFor({ state: 'hidden' });
    assert.match(await page.textContent('#help-status'), /L’élève a arrêté/);
    await screenshot(xvfb, results, 'help-ended');
    const clicks = app.lines.filter((l) => l.startsWith('click')).length;
    const status = await page.evaluate(async () => {
      const id = /#station\/(\d+)$/.exec(location.hash)[1];
      const res = await fetch(`/api/stations/${id}/help/input`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ PointerMove: { x: 16000, y: 32000 } }, { Button: { button: 'Left', pressed: true } }, { Button: { button: 'Left', pressed: false } }] }),
      });
      return res.status;
    });
    assert.equal(status, 409, 'input after the end is refused');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(app.lines.filter((l) => l.startsWith('click')).length, clicks, 'no click reached the application');
  });

  it('records every step in the audit log', async () => {
    const rows = await page.evaluate(async () => (await fetch('/api/audit?limit=500')).json());
    const help = rows.filter((r) => r.action === 'remote-help');
    const results = help.map((r) => r.result);
    for (const s of ['asked', 'prompt-shown', 'refused', 'timed-out', 'accepted', 'started', 'ended']) {
      assert.ok(results.includes(s), `audit has ${s}: ${JSON.stringify(results)}`);
    }
    const by = (s) => help.filter((r) => r.result === s).map((r) => r.actor);
    assert.ok(by('refused').includes('student'));
    assert.ok(by('accepted').includes('student'));
    assert.ok(by('ended').includes('student'));
    assert.ok(by('asked').every((a) => a === room.username));
    assert.ok(help.every((r) => r.target === 'poste-aide'));
  });
});
