// The room page: the live class mosaic with one tappable overlay per station, the focus view
// of one station (#station/<id> in the address, so the tablet's back gesture returns to the
// class), the connection state, the language switcher and logout. The classroom controls
// (assets/controls.js) act on the room, a selection of tiles, or the station in focus.
import { t, has, applyTranslations, bindSwitcher, onLangChange } from './i18n.js';
import { VideoStream, resetStats, webCodecsAvailable } from './video-stream.js';
import { Controls } from './controls.js';
import { initDemo } from './demo.js';

const $ = (id) => document.getElementById(id);
const els = {
  roomName: $('room-name'),
  summary: $('summary'),
  conn: $('conn'),
  connText: $('conn-text'),
  logout: $('logout'),
  mosaicView: $('mosaic-view'),
  mosaicWrap: $('mosaic-wrap'),
  mosaicStage: $('mosaic-stage'),
  mosaicCanvas: $('mosaic-canvas'),
  mosaicEmpty: $('mosaic-empty'),
  tiles: $('tiles'),
  focusView: $('focus-view'),
  focusWrap: $('focus-wrap'),
  focusStage: $('focus-stage'),
  focusCanvas: $('focus-canvas'),
  focusTitle: $('focus-title'),
  focusEnded: $('focus-ended'),
  endedReason: $('ended-reason'),
  back: $('back'),
  endedBack: $('ended-back'),
  unsupported: $('unsupported'),
  unsupportedText: $('unsupported-text'),
  devLink: $('dev-link'),
};

const ui = {
  roomName: null,
  /** Latest mosaic layout: { width, height, tiles: [...] } from /api/room or the stream. */
  layout: null,
  connState: 'connecting',
  view: null,
  focusId: null,
  stream: null,
  /** True when the focus view was opened from our own mosaic, so back can pop history. */
  pushedFocus: false,
  /** Why the box ended the focus stream (code or sentence), shown until the view changes. */
  endedReason: null,
};

const controls = new Controls({
  layout: () => ui.layout,
  view: () => ui.view,
  focusId: () => ui.focusId,
  onSelection: () => renderTiles(),
  onAuthLost: () => onAuthLost(),
});

// ---- stage sizing ------------------------------------------------------------------------

/**
 * Keeps a stage (canvas plus overlays) at the video's aspect ratio, as large as its wrapper
 * allows. Done in script because CSS cannot fit "contain" for a box that holds overlays.
 */
function fitStage(wrap, stage, aspect) {
  const fit = () => {
    const w = wrap.clientWidth;
    const h = wrap.clientHeight;
    if (!w || !h) return;
    const a = aspect();
    const width = Math.min(w, h * a);
    stage.style.width = `${Math.floor(width)}px`;
    stage.style.height = `${Math.floor(width / a)}px`;
  };
  new ResizeObserver(fit).observe(wrap);
  return fit;
}

const fitMosaic = fitStage(els.mosaicWrap, els.mosaicStage, () => {
  const l = ui.layout;
  return l && l.width > 0 && l.height > 0 ? l.width / l.height : 16 / 9;
});
const fitFocus = fitStage(els.focusWrap, els.focusStage, () => {
  const c = els.focusCanvas;
  return c.width > 0 && c.height > 0 ? c.width / c.height : 16 / 9;
});
// The focus canvas takes the station's resolution from its first frame.
new ResizeObserver(fitFocus).observe(els.focusCanvas);

// ---- strings that depend on state ---------------------------------------------------------

function renderConn() {
  els.conn.dataset.state = ui.connState;
  els.connText.textContent = t(`conn.${ui.connState}`);
  els.mosaicStage.classList.toggle('stale', ui.view === 'mosaic' && ui.connState !== 'live');
  els.focusStage.classList.toggle('stale', ui.view === 'focus' && ui.connState === 'reconnecting');
}

function renderHeader() {
  if (ui.roomName !== null) {
    els.roomName.removeAttribute('data-i18n');
    els.roomName.textContent = ui.roomName;
    document.title = t('room.title', { room: ui.roomName });
  }
  const tiles = ui.layout?.tiles ?? [];
  els.summary.textContent = ui.layout
    ? t('room.stations', { online: tiles.filter((x) => x.online).length, total: tiles.length })
    : '';
}

function stationName(id) {
  const tile = ui.layout?.tiles.find((x) => x.station_id === id);
  return tile ? tile.name : t('room.station', { id });
}

function renderFocusTitle() {
  if (ui.focusId !== null) els.focusTitle.textContent = t('room.focusOf', { name: stationName(ui.focusId) });
}

// ---- mosaic tiles -------------------------------------------------------------------------

const pct = (v, of) => `${(100 * v) / of}%`;

/** Overlays one button per tile, placed in percent of the mosaic so they scale with it. */
function renderTiles() {
  const layout = ui.layout;
  els.tiles.replaceChildren();
  if (!layout) return;
  els.mosaicEmpty.hidden = layout.tiles.length > 0;
  els.mosaicStage.hidden = layout.tiles.length === 0;
  for (const tile of layout.tiles) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'tile';
    b.classList.toggle('offline', !tile.online);
    b.dataset.stationId = String(tile.station_id);
    b.dataset.index = String(tile.index);
    b.style.left = pct(tile.x, layout.width);
    b.style.top = pct(tile.y, layout.height);
    b.style.width = pct(tile.w, layout.width);
    b.style.height = pct(tile.h, layout.height);
    if (controls.selecting) {
      // Offline stations can be selected too: waking them up is one of the actions.
      const on = controls.isSelected(tile.station_id);
      b.classList.toggle('selected', on);
      b.setAttribute('aria-pressed', String(on));
      b.setAttribute('aria-label', t('room.choose', { name: tile.name }));
    } else {
      b.setAttribute('aria-label', t('room.open', { name: tile.name }));
      if (!tile.online) b.setAttribute('aria-disabled', 'true');
    }

    const label = document.createElement('span');
    label.className = 'tile-label';
    const dot = document.createElement('span');
    dot.className = 'tile-dot';
    dot.title = t(tile.online ? 'room.online' : 'room.offline');
    const name = document.createElement('span');
    name.className = 'tile-name';
    name.textContent = tile.name;
    label.append(dot, name);
    // What the station still owes the teacher: unread messages, commands still running.
    if (tile.unread_messages > 0) {
      const m = document.createElement('span');
      m.className = 'tile-badge tile-unread';
      m.textContent = `✉ ${tile.unread_messages}`;
      m.title = t('room.unread', { n: tile.unread_messages });
      label.append(m);
    }
    if (tile.commands_running > 0) {
      const c = document.createElement('span');
      c.className = 'tile-badge tile-running';
      c.textContent = '▶';
      c.title = t('room.running', { n: tile.commands_running });
      label.append(c);
    }
    b.append(label);
    if (tile.locked === true || (tile.lock_ordered === true && tile.online)) {
      // "Locked" once the station reports its lock screen is up; until then, on its way.
      const lock = document.createElement('span');
      lock.className = 'tile-locked';
      lock.classList.toggle('pending', tile.locked !== true);
      lock.textContent = t(tile.locked === true ? 'room.locked' : 'room.locking');
      b.append(lock);
    }
    if (controls.isSelected(tile.station_id)) {
      const check = document.createElement('span');
      check.className = 'tile-check';
      check.setAttribute('aria-hidden', 'true');
      check.textContent = '✓';
      b.append(check);
    }
    if (!tile.online) {
      const off = document.createElement('span');
      off.className = 'tile-offline';
      off.textContent = t('room.offline');
      b.append(off);
    }
    els.tiles.append(b);
  }
}

function setLayout(layout) {
  if (!layout || !Array.isArray(layout.tiles)) return;
  ui.layout = { width: layout.width, height: layout.height, tiles: layout.tiles };
  controls.changed(); // drops stations that left from the selection, then draws the tiles
  renderHeader();
  renderFocusTitle();
  fitMosaic();
}

els.tiles.addEventListener('click', (ev) => {
  const b = ev.target.closest('button.tile');
  if (!b) return;
  if (controls.tap(Number(b.dataset.stationId))) return;
  if (b.getAttribute('aria-disabled') === 'true') return;
  ui.pushedFocus = true;
  location.hash = `#station/${b.dataset.stationId}`;
});

// ---- views --------------------------------------------------------------------------------

function stopStream() {
  if (ui.stream) ui.stream.stop();
  ui.stream = null;
}

function onAuthLost() {
  location.replace('/login');
}

function showMosaic() {
  if (ui.view === 'mosaic') return;
  stopStream();
  ui.view = 'mosaic';
  ui.focusId = null;
  document.body.dataset.view = 'mosaic';
  els.focusView.hidden = true;
  els.mosaicView.hidden = false;
  controls.render();
  resetStats('mosaic');
  ui.stream = new VideoStream({
    path: '/api/mosaic',
    canvas: els.mosaicCanvas,
    onState: (s) => { ui.connState = s; renderConn(); },
    onLayout: setLayout,
    onAuthLost,
  });
  ui.stream.start();
  fitMosaic();
}

function showFocus(id) {
  if (ui.view === 'focus' && ui.focusId === id) return;
  stopStream();
  ui.view = 'focus';
  ui.focusId = id;
  document.body.dataset.view = 'focus';
  els.mosaicView.hidden = true;
  els.focusView.hidden = false;
  els.focusEnded.hidden = true;
  ui.endedReason = null;
  // Never show the previous station's last picture under this station's name.
  const ctx = els.focusCanvas.getContext('2d', { alpha: false });
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, els.focusCanvas.width, els.focusCanvas.height);
  renderFocusTitle();
  controls.render();
  resetStats('focus');
  ui.stream = new VideoStream({
    path: `/api/stations/${encodeURIComponent(id)}/focus`,
    canvas: els.focusCanvas,
    onState: (s) => { ui.connState = s; renderConn(); },
    onEnded: (reason) => {
      ui.endedReason = reason;
      renderEndedReason();
      els.focusEnded.hidden = false;
      els.endedBack.focus();
    },
    onRefused: () => whyFocusRefused(id),
    onAuthLost,
  });
  ui.stream.start();
  fitFocus();
  els.back.focus({ preventScroll: true });
}

/** The box sends reason codes ("station-offline") or sentences; codes are translated. */
function renderEndedReason() {
  const r = ui.endedReason ?? '';
  els.endedReason.textContent = has(`reason.${r}`) ? t(`reason.${r}`) : r;
}

/**
 * The box refuses a focus handshake (404/409) for an unknown or offline station, and a page
 * cannot read that status; the room's layout tells which it was, and otherwise we retry.
 */
async function whyFocusRefused(id) {
  try {
    const room = await getJson('/api/room');
    if (!room) return null;
    setLayout(room.mosaic);
    const tile = room.mosaic.tiles.find((x) => x.station_id === id);
    if (!tile) return 'station-unknown';
    if (!tile.online) return 'station-offline';
  } catch {
    // Cannot tell; keep retrying.
  }
  return null;
}

function route() {
  const m = /^#station\/(\d+)$/.exec(location.hash);
  if (m) showFocus(Number(m[1]));
  else showMosaic();
}

function backToClass() {
  if (ui.pushedFocus) {
    ui.pushedFocus = false;
    history.back();
  } else {
    // Opened straight on a focus link: there is no mosaic entry to go back to.
    history.replaceState(null, '', location.pathname + location.search);
    route();
  }
}

els.back.addEventListener('click', backToClass);
els.endedBack.addEventListener('click', backToClass);
window.addEventListener('hashchange', route);
// With a keyboard (a teacher's laptop), Escape is the natural way out of one screen.
document.addEventListener('keydown', (ev) => {
  if (ev.key === 'Escape' && ui.view === 'focus') backToClass();
});

// A tablet that slept has lost its socket; reconnect as soon as the teacher looks again.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && ui.stream) ui.stream.retryNow();
});

// ---- session ------------------------------------------------------------------------------

els.logout.addEventListener('click', async () => {
  els.logout.disabled = true;
  stopStream();
  try {
    await fetch('/api/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
  } catch {
    // Even if the box is unreachable, leave the page: the teacher asked to go.
  }
  location.replace('/login');
});

async function getJson(url) {
  const res = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
  if (res.status === 401) {
    onAuthLost();
    return null;
  }
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

async function loadRoom() {
  for (let delay = 2000; ; delay = Math.min(delay * 2, 15_000)) {
    try {
      const room = await getJson('/api/room');
      if (!room) return false;
      ui.roomName = typeof room.name === 'string' ? room.name : '';
      setLayout(room.mosaic);
      return true;
    } catch (e) {
      console.warn(`lanterne: ${e.message}`);
      els.summary.textContent = t('room.loadFailed');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Admins of a box with a simulated panel get a link to its page (development and demos). */
async function offerDevPanel() {
  try {
    const res = await fetch('/api/dev/panel', { credentials: 'same-origin', cache: 'no-store' });
    els.devLink.hidden = !res.ok;
  } catch {
    // No link then; nothing else depends on it.
  }
}

function showUnsupported() {
  ui.view = null;
  controls.render();
  els.mosaicView.hidden = true;
  els.focusView.hidden = true;
  els.conn.hidden = true;
  els.unsupported.hidden = false;
  els.unsupportedText.textContent = t(window.isSecureContext ? 'unsupported.body' : 'unsupported.insecure');
}

onLangChange(() => {
  renderConn();
  renderHeader();
  renderTiles();
  renderFocusTitle();
  renderEndedReason();
  if (!els.unsupported.hidden) showUnsupported();
});

applyTranslations();
bindSwitcher($('lang-switch'));
renderConn();

if (!webCodecsAvailable()) {
  showUnsupported();
} else if (await loadRoom()) {
  route();
  offerDevPanel();
  initDemo({ focusedStation: () => ui.focusId, stations: () => ui.layout?.tiles ?? [] });
}
