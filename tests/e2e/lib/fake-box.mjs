// A stand-in for the Lanterne box's HTTP contract, for testing the web UI's player without
// the Rust box: serves web-ui/ the way the box does (session pages, public assets, same
// security headers) and streams real H.264 on /api/mosaic and /api/stations/<id>/focus in
// the box's binary framing. Test hooks change station state and end or drop streams.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webmanifest': 'application/manifest+json',
};
// The box's policy: anything inline (script or style) is refused, so the UI must not rely on
// it. Like the box, the WebSocket origin is named (here ws: rather than wss:).
const securityHeaders = (host) => ({
  'Content-Security-Policy': `default-src 'self'; img-src 'self' data:; connect-src 'self' ws://${host}; `
    + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
});
const COOKIE = 'lanterne_session';

/** The box's video message: header, per-tile updates, then the access unit. */
export function frameMessage({ keyframe, seq, captureUs, updates = [], data }) {
  const head = 20 + updates.length * 10;
  const buf = Buffer.alloc(head + data.length);
  buf.writeUInt8(1, 0);
  buf.writeUInt8(keyframe ? 1 : 0, 1);
  buf.writeBigUInt64BE(BigInt(seq), 2);
  buf.writeBigUInt64BE(BigInt(captureUs), 10);
  buf.writeUInt16BE(updates.length, 18);
  updates.forEach((u, i) => {
    buf.writeUInt16BE(u.tile, 20 + i * 10);
    buf.writeBigUInt64BE(BigInt(u.captureUs), 22 + i * 10);
  });
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(buf, head);
  return buf;
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

/**
 * Starts the server. mosaic = { codec, aus, width, height }, stations = [{ id, name, online,
 * tile: {x,y,w,h}, clip: { codec, aus, width, height } }], user = { username, password }.
 */
export async function startFakeBox({ webRoot, roomName, mosaic, stations, user, fps = 15 }) {
  const sessions = new Set();
  const sockets = { mosaic: new Set(), focus: new Map() };
  /** Extra fields of GET /api/room (the monitoring state), set by tests. */
  let roomExtra = {};
  const log = [];
  let origin = '';

  const layout = () => ({
    width: mosaic.width,
    height: mosaic.height,
    tiles: stations.map((s, index) => ({ index, station_id: s.id, name: s.name, online: s.online, locked: Boolean(s.locked), ...s.tile })),
  });

  const sessionOf = (req) => {
    const m = /(?:^|;\s*)lanterne_session=([0-9a-f]+)/.exec(req.headers.cookie || '');
    return m && sessions.has(m[1]) ? m[1] : null;
  };

  const send = (res, status, body, headers = {}) => {
    res.writeHead(status, { ...securityHeaders(new URL(origin).host), ...headers });
    res.end(body);
  };
  const json = (res, status, obj, headers = {}) => send(res, status, JSON.stringify(obj),
    { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });

  async function file(res, rel) {
    const full = path.resolve(webRoot, rel);
    if (!full.startsWith(path.resolve(webRoot) + path.sep)) return json(res, 404, { error: 'no such page' });
    try {
      const body = await readFile(full);
      send(res, 200, body, { 'Content-Type': MIME[path.extname(full)] || 'application/octet-stream' });
    } catch {
      json(res, 404, { error: 'no such page' });
    }
  }

  async function body(req) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
  }

  // Checks the box makes on every POST: JSON content type and a same-origin Origin header.
  function postGuard(req, res) {
    if (req.headers.origin !== origin) {
      json(res, 403, { error: `cross-origin request from ${req.headers.origin} refused` });
      return false;
    }
    if (!(req.headers['content-type'] || '').startsWith('application/json')) {
      json(res, 415, { error: 'expected application/json' });
      return false;
    }
    return true;
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, origin);
    const p = url.pathname;
    log.push(`${req.method} ${p}`);
    try {
      if (req.method === 'GET' && p === '/login') return await file(res, 'login.html');
      if (req.method === 'GET' && p.startsWith('/assets/')) return await file(res, p.slice(1));
      if (req.method === 'POST' && p === '/api/login') {
        if (!postGuard(req, res)) return;
        let creds;
        try {
          creds = JSON.parse(await body(req));
        } catch {
          return json(res, 400, { error: 'body is not JSON' });
        }
        if (creds.username !== user.username || creds.password !== user.password) {
          return json(res, 401, { error: 'Identifiant ou mot de passe incorrect.' });
        }
        const token = randomBytes(16).toString('hex');
        sessions.add(token);
        return json(res, 200, { username: user.username, role: 'teacher' },
          { 'Set-Cookie': `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict` });
      }
      const session = sessionOf(req);
      if (req.method === 'GET' && (p === '/' || p === '/room')) {
        if (!session) return send(res, 303, '', { Location: '/login' });
        return p === '/' ? send(res, 303, '', { Location: '/room' }) : await file(res, 'room.html');
      }
      if (p.startsWith('/api/')) {
        if (!session) return json(res, 401, { error: 'not logged in' });
        if (req.method === 'GET' && p === '/api/me') return json(res, 200, { username: user.username, role: 'teacher' });
        if (req.method === 'GET' && p === '/api/room') return json(res, 200, { name: roomName, ...roomExtra, mosaic: layout() });
        if (req.method === 'POST' && p === '/api/logout') {
          if (!postGuard(req, res)) return;
          sessions.delete(session);
          return send(res, 204, '', { 'Set-Cookie': `${COOKIE}=; Path=/; HttpOnly; Max-Age=0` });
        }
      }
      json(res, 404, { error: 'no such page' });
    } catch (e) {
      json(res, 500, { error: 'internal error' });
      console.error(e);
    }
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const p = new URL(req.url, origin).pathname;
    log.push(`WS ${p}`);
    const refuse = (status) => {
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    };
    if (!sessionOf(req)) return refuse('401 Unauthorized');
    if (req.headers.origin !== origin) return refuse('403 Forbidden');
    const focus = /^\/api\/stations\/(\d+)\/focus$/.exec(p);
    const station = focus && stations.find((s) => s.id === Number(focus[1]));
    // Like the box: an unknown station is a 404 and an offline one a 409, before the upgrade.
    if (p !== '/api/mosaic' && !station) return refuse('404 Not Found');
    if (station && !station.online) return refuse('409 Conflict');
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (station) streamFocus(ws, station);
      else streamMosaic(ws);
    });
  });

  // Paces a clip in a loop at fps, starting at its first (key) frame like the box does for a
  // new viewer. Messages are skipped while the socket is backed up, as the box's bounded queue
  // would, but only up to the next keyframe.
  function pace(ws, clip, extra) {
    let i = 0;
    let seq = 0;
    let skipping = false;
    ws.send(JSON.stringify({ type: 'config', codec: clip.codec, width: clip.width, height: clip.height }));
    const timer = setInterval(() => {
      const au = clip.aus[i];
      i = (i + 1) % clip.aus.length;
      if (ws.bufferedAmount > 1 << 20) skipping = true;
      if (skipping && !au.keyframe) return;
      skipping = false;
      const captureUs = nowUs();
      ws.send(frameMessage({ keyframe: au.keyframe, seq: seq++, captureUs, data: au.data, ...extra(captureUs) }));
    }, 1000 / fps);
    ws.on('close', () => clearInterval(timer));
  }

  function streamMosaic(ws) {
    sockets.mosaic.add(ws);
    ws.on('close', () => sockets.mosaic.delete(ws));
    ws.send(JSON.stringify({ type: 'layout', ...layout() }));
    pace(ws, mosaic, (captureUs) => ({
      updates: stations.map((s, index) => ({ index, online: s.online }))
        .filter((s) => s.online).map(({ index }) => ({ tile: index, captureUs })),
    }));
  }

  function streamFocus(ws, station) {
    if (!sockets.focus.has(station.id)) sockets.focus.set(station.id, new Set());
    const set = sockets.focus.get(station.id);
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    pace(ws, station.clip, () => ({}));
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;

  return {
    url: origin,
    log,
    /** Open viewer sockets, for assertions about what the page keeps open. */
    openSockets: () => ({ mosaic: sockets.mosaic.size, focus: [...sockets.focus.values()].reduce((n, s) => n + s.size, 0) }),
    /** Changes a station's online state and pushes the new layout, as the box does. */
    setOnline(id, online) {
      stations.find((s) => s.id === id).online = online;
      const msg = JSON.stringify({ type: 'layout', ...layout() });
      for (const ws of sockets.mosaic) ws.send(msg);
    },
    /** Sets fields of one tile (e.g. no_indicator) and pushes the new layout. */
    setTile(id, fields) {
      const s = stations.find((x) => x.id === id);
      s.tile = { ...s.tile, ...fields };
      const msg = JSON.stringify({ type: 'layout', ...layout() });
      for (const ws of sockets.mosaic) ws.send(msg);
    },
    /** Sets the room's monitoring fields of GET /api/room and pushes a layout, as the box
     * does when a window opens or closes. */
    setRoom(fields) {
      roomExtra = { ...fields };
      const msg = JSON.stringify({ type: 'layout', ...layout() });
      for (const ws of sockets.mosaic) ws.send(msg);
    },
    /** Tells focus viewers of a station that it is gone. */
    endFocus(id, reason) {
      for (const ws of sockets.focus.get(id) ?? []) {
        ws.send(JSON.stringify({ type: 'ended', reason }));
        ws.close();
      }
    },
    /** Sends raw binary messages to every mosaic viewer, between the paced frames. */
    injectMosaic(...messages) {
      for (const ws of sockets.mosaic) for (const m of messages) ws.send(m);
    },
    /** Cuts every mosaic connection abruptly, like a Wi-Fi drop. */
    dropMosaic() {
      for (const ws of sockets.mosaic) ws.terminate();
    },
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
