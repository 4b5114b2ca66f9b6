// Drives WebKit (WebKitGTK, the engine of Safari) for the browser tests: Debian's
// `webkit2gtk-driver` package gives `WebKitWebDriver`, a W3C WebDriver server that runs
// WebKitGTK's MiniBrowser in automation mode. This is a small client of that protocol over
// fetch (sessions, navigation, elements, clicks, typing, scripts, window size, screenshots),
// enough for the tests; MiniBrowser runs on its own Xvfb display.
//
//   const wk = await startWebKit({ width: 1024, height: 768 });
//   await wk.go(url); const el = await wk.find('#login-submit'); await wk.click(el);
//   await wk.waitFor('() => document.title !== ""'); await wk.quit();
//
// Every call is bounded (STEP_LIMIT_MS); waits poll a script until it returns something
// truthy, never sleep for a fixed time. LANTERNE_WEBKIT_DRIVER and LANTERNE_MINIBROWSER
// point elsewhere than Debian's paths.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { withinLimit, STEP_LIMIT_MS } from './browser.mjs';

const DRIVER = process.env.LANTERNE_WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';
const MINIBROWSER = process.env.LANTERNE_MINIBROWSER
  || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
/** The W3C name of the key that makes an element reference in JSON. */
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export function webkitAvailable() {
  return existsSync(DRIVER) && existsSync(MINIBROWSER);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts Xvfb on a display it picks itself; resolves with { proc, display }. */
function startXvfb(width, height) {
  const proc = spawn('Xvfb', ['-displayfd', '1', '-screen', '0', `${Math.max(width, 1920)}x${Math.max(height, 1200)}x24`,
    '-nolisten', 'tcp', '-noreset'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Xvfb gave no display within 30 s')), 30_000);
    proc.on('error', (e) => reject(new Error(`Xvfb: ${e.message} (run scripts/setup.sh)`)));
    proc.stdout.once('data', (d) => {
      clearTimeout(timer);
      resolve({ proc, display: `:${String(d).trim()}` });
    });
  });
}

/** A WebDriver error answer as an Error naming the command. */
class WebDriverError extends Error {}

/**
 * Starts Xvfb, WebKitWebDriver and a MiniBrowser session with a `width`×`height` viewport
 * that accepts the box's self-signed certificate (acceptInsecureCerts).
 */
export async function startWebKit({ width, height }) {
  const xvfb = await startXvfb(width, height);
  const port = await freePort();
  let log = '';
  const driver = spawn(DRIVER, [`--port=${port}`], {
    env: { ...process.env, DISPLAY: xvfb.display, GDK_BACKEND: 'x11' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d) => { log = (log + d).slice(-4000); };
  driver.stdout.on('data', keep);
  driver.stderr.on('data', keep);
  const base = `http://127.0.0.1:${port}`;

  async function call(method, route, body) {
    const res = await withinLimit(fetch(`${base}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }), `WebDriver ${method} ${route}`);
    const json = await res.json();
    if (!res.ok) {
      throw new WebDriverError(`WebDriver ${method} ${route}: ${json.value?.error}: ${json.value?.message}`);
    }
    return json.value;
  }

  const stopAll = () => {
    if (driver.exitCode === null) driver.kill('SIGTERM');
    if (xvfb.proc.exitCode === null) xvfb.proc.kill('SIGTERM');
  };
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (driver.exitCode !== null) throw new Error(`WebKitWebDriver exited: ${log}`);
      try {
        if ((await call('GET', '/status')).ready) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`WebKitWebDriver not ready in 30 s: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const created = await call('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          acceptInsecureCerts: true,
          'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
        },
      },
    });
    const s = `/session/${created.sessionId}`;
    const wk = {
      capabilities: created.capabilities,
      log: () => log,
      go: (url) => call('POST', `${s}/url`, { url }),
      url: () => call('GET', `${s}/url`),
      /** Runs `script` (a function body; `arguments` holds args) and returns its result. */
      exec: (script, ...args) => call('POST', `${s}/execute/sync`, { script, args }),
      /** As exec, for a function body that returns a promise. */
      execAsync: (script, ...args) => call('POST', `${s}/execute/async`, {
        script: `const done = arguments[arguments.length - 1];
          Promise.resolve((async () => { ${script} })(...Array.from(arguments).slice(0, -1)))
            .then(done, (e) => done({ __error: String(e) }));`,
        args,
      }).then((v) => {
        if (v && v.__error) throw new WebDriverError(v.__error);
        return v;
      }),
      async find(css) {
        const el = await call('POST', `${s}/element`, { using: 'css selector', value: css });
        return el[ELEMENT];
      },
      click: (el) => call('POST', `${s}/element/${el}/click`, {}),
      type: (el, text) => call('POST', `${s}/element/${el}/value`, { text }),
      async screenshot(file) {
        await writeFile(file, Buffer.from(await call('GET', `${s}/screenshot`), 'base64'));
      },
      /** Makes the page's viewport `w`×`h` CSS px (the window is a little larger). */
      async setViewport(w, h) {
        const inner = await call('POST', `${s}/execute/sync`, { script: 'return [innerWidth, innerHeight, outerWidth, outerHeight];', args: [] });
        const [iw, ih, ow, oh] = inner;
        await call('POST', `${s}/window/rect`, { width: w + (ow - iw), height: h + (oh - ih) });
      },
      /**
       * Polls `fn` (a function's source, called with args) every 100 ms until it returns
       * something truthy; returns that, or throws naming `what` after `timeoutMs`.
       */
      async waitFor(fn, { args = [], timeoutMs = 30_000, what = fn } = {}) {
        const deadline = Date.now() + timeoutMs;
        let last;
        for (;;) {
          try {
            last = await call('POST', `${s}/execute/sync`, { script: `return (${fn})(...arguments);`, args });
            if (last) return last;
          } catch (e) {
            last = e.message;
          }
          if (Date.now() > deadline) throw new Error(`WebKit: ${what} not true after ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async quit() {
        await call('DELETE', s).catch(() => {});
        stopAll();
      },
    };
    return wk;
  } catch (e) {
    stopAll();
    throw e;
  }
}

export { STEP_LIMIT_MS };
