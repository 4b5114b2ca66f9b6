// Draws the web app's home-screen icons (web-ui/assets/icon-*.png) from the Lanterne mark
// (web-ui/assets/lanterne.svg) with the machine's Chromium, so the PNGs always match the SVG.
// Run again after changing the mark, and commit the PNGs (the box embeds web-ui/ as it is):
//
//   cd tests/e2e && node tools/make-icons.mjs
//
// icon-192/512: the mark as drawn (rounded square, transparent corners), purpose "any".
// icon-maskable-512: full-bleed background with the mark inside the central 60 % (the safe
// zone Android masks to a circle or squircle). icon-180: iOS's apple-touch-icon, opaque and
// full-bleed (iOS rounds the corners itself).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from '../lib/browser.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.resolve(here, '../../../web-ui/assets');
const BACKGROUND = '#14181f';

const svg = await readFile(path.join(assets, 'lanterne.svg'), 'utf8');
const src = `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;

const ICONS = [
  { file: 'icon-192.png', size: 192, mark: 1, background: null },
  { file: 'icon-512.png', size: 512, mark: 1, background: null },
  { file: 'icon-maskable-512.png', size: 512, mark: 0.6, background: BACKGROUND },
  { file: 'icon-180.png', size: 180, mark: 0.8, background: BACKGROUND },
];

const browser = await launch();
try {
  const page = await browser.context.newPage();
  for (const icon of ICONS) {
    await page.setViewportSize({ width: icon.size, height: icon.size });
    const markPx = Math.round(icon.size * icon.mark);
    await page.setContent(`<!doctype html><html><body style="margin:0;width:${icon.size}px;
      height:${icon.size}px;display:grid;place-items:center;background:${icon.background ?? 'transparent'}">
      <img src="${src}" width="${markPx}" height="${markPx}"></body></html>`);
    await page.waitForFunction(() => document.images[0].complete);
    const png = await page.screenshot({ omitBackground: icon.background === null });
    await writeFile(path.join(assets, icon.file), png);
    console.log(`${icon.file}: ${icon.size}×${icon.size}, ${png.length} bytes`);
  }
} finally {
  await browser.close();
}
