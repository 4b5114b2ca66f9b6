// Launches the machine's Debian Chromium headless through playwright-core (never a
// downloaded browser), with throw-away contexts, and reads pixels back from page canvases.
//
// No browser-test step may wait longer than STEP_LIMIT_MS. Playwright's actions, waits and
// navigations get STEP_TIMEOUT_MS as their default here, explicitly; the calls playwright-core
// runs with no timeout at all (page.close, context.newPage, clearCookies, evaluate, isVisible,
// … — `kNoTimeout` in its client) are bounded by STEP_LIMIT_MS through `bounded`. One such call
// once held access.test.mjs for 288 s, until the suite's limit: `page.close()` landing while the
// page navigated by itself never returns.
import { chromium } from 'playwright-core';

const EXECUTABLE = process.env.LANTERNE_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A tablet-sized landscape viewport (iPad Air 11"). */
export const TABLET = { width: 1180, height: 820 };

/** Default timeout of every Playwright action, wait and navigation in these tests. */
export const STEP_TIMEOUT_MS = 30_000;
/** The longest any single browser-test step may take, whatever it is. */
export const STEP_LIMIT_MS = 60_000;

/**
 * `promise`, or a rejection naming `what` once `ms` have passed without it settling.
 */
export function withinLimit(promise, what, ms = STEP_LIMIT_MS) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

// Methods playwright-core calls with no timeout (checked against its client code, 1.65).
const PAGE_UNBOUNDED = ['close', 'evaluate', 'evaluateHandle', '$', '$$', '$eval', '$$eval',
  'isVisible', 'isHidden', 'content', 'title', 'bringToFront'];
const CONTEXT_UNBOUNDED = ['newPage', 'clearCookies', 'cookies', 'addCookies', 'close'];
const BOUNDED = Symbol('bounded');

/** Wraps `names` of `target` so each call rejects after STEP_LIMIT_MS. Idempotent. */
function bounded(target, names, what) {
  if (target[BOUNDED]) return target;
  target[BOUNDED] = true;
  for (const name of names) {
    const original = target[name].bind(target);
    target[name] = (...args) => withinLimit(original(...args), `${what}.${name}()`);
  }
  return target;
}

function prepare(context) {
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  context.on('page', (page) => bounded(page, PAGE_UNBOUNDED, 'page'));
  bounded(context, CONTEXT_UNBOUNDED, 'context');
  const newPage = context.newPage;
  context.newPage = async () => bounded(await newPage(), PAGE_UNBOUNDED, 'page');
  return context;
}

/**
 * Returns { context, newContext, close }. contextOptions go to the context (viewport,
 * ignoreHTTPSErrors, ...); `newContext(options)` makes another, isolated one (its own
 * cookies: another person's tablet) with the same options unless overridden.
 */
export async function launch(contextOptions = {}) {
  const browser = await chromium.launch({
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    timeout: STEP_LIMIT_MS,
  });
  const newContext = async (options = {}) => prepare(
    await withinLimit(browser.newContext({ viewport: TABLET, ...contextOptions, ...options }),
      'browser.newContext()'),
  );
  const context = await newContext();
  return {
    context,
    newContext,
    close: async () => {
      await withinLimit(browser.close(), 'browser.close()').catch(() => {});
    },
  };
}

/**
 * The RGB of the canvas pixel at fractions (fx, fy) of its width and height, averaged over a
 * 5×5 patch so one noisy codec pixel cannot decide a test.
 */
export async function canvasPixel(page, selector, fx, fy) {
  return page.evaluate(({ selector, fx, fy }) => {
    const c = document.querySelector(selector);
    const ctx = c.getContext('2d');
    const x = Math.min(Math.max(Math.round(c.width * fx) - 2, 0), c.width - 5);
    const y = Math.min(Math.max(Math.round(c.height * fy) - 2, 0), c.height - 5);
    const d = ctx.getImageData(x, y, 5, 5).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) sum[k] += d[i + k];
    return sum.map((s) => Math.round(s / 25));
  }, { selector, fx, fy });
}

/** Largest per-channel difference between two colours. */
export function colourDistance(a, b) {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

/** Waits until window.lanterneStats.framesDecoded in `view` exceeds `above`; returns it. */
export async function waitForFrames(page, view, above, timeout = 20_000) {
  const handle = await page.waitForFunction(({ view, above }) => {
    const s = window.lanterneStats;
    return s && s.view === view && s.framesDecoded > above ? s.framesDecoded : false;
  }, { view, above }, { timeout, polling: 100 });
  return handle.jsonValue();
}

/**
 * Waits until the canvas pixel at (fx, fy) is within `tolerance` of rgb on every channel
 * (the decoder may still be showing an older frame); throws with the colour last seen.
 */
export async function waitForColour(page, selector, fx, fy, rgb, { tolerance = 40, timeout = 10_000 } = {}) {
  try {
    await page.waitForFunction(({ selector, fx, fy, rgb, tolerance }) => {
      const c = document.querySelector(selector);
      const x = Math.min(Math.max(Math.round(c.width * fx) - 2, 0), c.width - 5);
      const y = Math.min(Math.max(Math.round(c.height * fy) - 2, 0), c.height - 5);
      const d = c.getContext('2d').getImageData(x, y, 5, 5).data;
      const sum = [0, 0, 0];
      for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) sum[k] += d[i + k];
      return sum.every((s, k) => Math.abs(s / 25 - rgb[k]) <= tolerance);
    }, { selector, fx, fy, rgb, tolerance }, { timeout, polling: 100 });
  } catch (e) {
    const seen = await canvasPixel(page, selector, fx, fy).catch(() => null);
    throw new Error(`${selector} at (${fx}, ${fy}): expected ≈${JSON.stringify(rgb)}, saw ${JSON.stringify(seen)} (${e.message.split('\n')[0]})`);
  }
}

/**
 * A control of a page's header (log out, language, admin, account, developer panel links),
 * opening the header's menu first when the header is folded into it (a screen too narrow for
 * every action, see web-ui/assets/topbar.js).
 */
export async function headerControl(page, selector) {
  const control = page.locator(selector);
  const toggle = page.locator('#menu-toggle');
  if (await toggle.isVisible() && !(await control.isVisible())) {
    await toggle.click();
    await control.waitFor({ state: 'visible' });
  }
  return control;
}
