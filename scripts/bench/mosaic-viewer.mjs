// A minimal mosaic viewer for measurements that need the box composing without the cost of a
// browser: signs in and holds the mosaic WebSocket open, counting the frames it receives.
//
//   const v = await openMosaicViewer(room); v.frames(); await v.close();
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(root, 'tests/e2e/package.json'));
const WebSocket = require('ws');

export async function openMosaicViewer(room) {
  const origin = new URL(room.url).origin;
  const login = await fetch(`${room.url}/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin },
    body: JSON.stringify({ username: room.username, password: room.password }),
  });
  if (!login.ok) throw new Error(`login failed: ${login.status}`);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const ws = new WebSocket(`${room.url.replace('https', 'wss')}/api/mosaic`,
    { headers: { cookie, origin }, rejectUnauthorized: false });
  let frames = 0;
  ws.on('message', (_data, isBinary) => { if (isBinary) frames++; });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return {
    frames: () => frames,
    close: () => new Promise((r) => { ws.once('close', r); ws.close(); }),
  };
}
