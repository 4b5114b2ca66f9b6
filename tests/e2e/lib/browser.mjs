// Launches the machine's Debian Chromium headless through playwright-core (never a
// downloaded browser), with a throw-away profile, and reads pixels back from page canvases.
import { chromium } from 'playwright-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const EXECUTABLE = process.env.LANTERNE_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A tablet-sized landscape viewport (iPad Air 11"). */
export const TABLET = { width: 1180, height: 820 };

/**
 * Returns { context, close }. contextOptions go to the persistent context (viewport,
 * ignoreHTTPSErrors, ...).
 */
export async function launch(contextOptions = {}) {
  const profile = await mkdtemp(path.join(tmpdir(), 'lanterne-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    viewport: TABLET,
    ...contextOptions,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
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
