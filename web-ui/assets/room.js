// The room page: the live class mosaic with one tappable overlay per station, the focus view
// of one station (#station/<id> in the address, so the tablet's back gesture returns to the
// class), the connection state, the language switcher and logout. The classroom controls
// (assets/controls.js) act on the room, a selection of tiles, or the station in focus.
// Above the class, a line says whether screens may be watched now and until / from when
// (the box's monitoring hours); each tile says whether its student's badge is up, or that
// the station cannot be watched at all (no indicator).
import { t, has, applyTranslations, bindSwitcher, onLangChange, getLang } from './i18n.js';
import { VideoStream, resetStats, webCodecsAvailable } from './video-stream.js';
import { Controls } from './controls.js';
import { initDemo } from './demo.js';
import { initHelp } from './help.js';
import { decorateTile, renderHands } from './hands.js';

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
  monitoring: $('monitoring'),
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
  /** The room's monitoring state from /api/room: { configured, allowed, until, next }. */
  monitoring: null,
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

/** "2026-11-23 09:15" (box local time) as the tablet's language writes it. */
function localWhen(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})$/.exec(text ?? '');
  if (!m) return text ?? '';
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const opts = sameDay
    ? { hour: '2-digit', minute: '2-digit' }
    : { weekday: 'long', day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' };
  return d.toLocaleString(getLang(), opts);
}

/** An eye, drawn (tablets need no emoji font for it). */
function eyeIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '1em');
  svg.setAttribute('height', '1em');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2.5');
  const lid = document.createElementNS(ns, 'path');
  lid.setAttribute('d', 'M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z');
  const pupil = document.createElementNS(ns, 'circle');
  pupil.setAttribute('cx', '12');
  pupil.setAttribute('cy', '12');
  pupil.setAttribute('r', '3');
  svg.append(lid, pupil);
  return svg;
}

/** Whether screens may be watched now, and until or from when; hidden until the box says. */
function renderMonitoring() {
  const m = ui.monitoring;
  if (!m) {
    els.monitoring.hidden = true;
    return;
  }
  let state;
  let text;
  if (!m.configured) {
    state = 'off';
    text = t('mon.off');
  } else if (m.allowed) {
    state = 'allowed';
    text = m.until ? t('mon.allowed', { until: localWhen(m.until) }) : t('mon.allowedOpen');
  } else {
    state = 'closed';
    text = m.next ? t('mon.closed', { next: localWhen(m.next) }) : t('mon.closedNever');
  }
  els.monitoring.dataset.state = state;
  els.monitoring.textContent = text;
  els.monitoring.hidden = false;
}

/** Takes the monitoring fields of a GET /api/room answer (absent from older boxes). */
function setMonitoring(room) {
  if (typeof room?.monitoring !== 'boolean') return;
  ui.monitoring = {
    configured: room.monitoring_configured !== false,
    allowed: room.monitoring,
    until: room.monitoring_until ?? null,
    next: room.next_monitoring ?? null,
  };
  renderMonitoring();
  renderTiles();
}

/** Screens may not be watched now (as far as the tablet knows). */
function monitoringClosed() {
  return ui.monitoring !== null && !ui.monitoring.allowed;
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
      // Nothing to open: offline, no indicator, or outside the monitoring hours.
      if (!tile.online || tile.no_indicator === true || monitoringClosed()) {
        b.setAttribute('aria-disabled', 'true');
      }
    }
    b.classList.toggle('noindicator', tile.online && tile.no_indicator === true);

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
    // The student's screen shows "Écran observé" right now (as the station reports it).
    if (tile.online && tile.indicator === true) {
      const w = document.createElement('span');
      w.className = 'tile-badge tile-watched';
      w.append(eyeIcon());
      w.title = t('room.badgeShown');
      w.setAttribute('role', 'img');
      w.setAttribute('aria-label', t('room.badgeShown'));
      label.append(w);
    }
    b.append(label);
    if (tile.online && tile.no_indicator === true) {
      const n = document.createElement('span');
      n.className = 'tile-noindicator';
      n.textContent = t('room.noIndicator');
      n.title = t('room.noIndicatorHelp');
      b.append(n);
    }
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
    decorateTile(b, tile);
    els.tiles.append(b);
  }
  renderHands(layout.tiles, renderTiles);
}

function setLayout(layout) {
  if (!layout || !Array.isArray(layout.tiles)) return;
  ui.layout = { width: layout.width, height: layout.height, tiles: layout.tiles };
  controls.changed(); // drops stations that left from the selection, then draws the tiles
  renderHeader();
  renderFocusTitle();
  fitMosaic();
}

// The mosaic stream carries the tiles, not the room's monitoring state: every change the box
// announces (a window opening or closing changes the tiles too) and a slow tick refresh it
// from /api/room, at most once a second.
const MONITORING_REFRESH_MS = 30_000;
let monitoringTimer = null;
let monitoringDue = 0;
function refreshMonitoring(delayMs = 1000) {
  const at = Date.now() + delayMs;
  if (monitoringTimer !== null && monitoringDue <= at) return;
  clearTimeout(monitoringTimer);
  monitoringDue = at;
  monitoringTimer = setTimeout(async () => {
    monitoringTimer = null;
    try {
      setMonitoring(await getJson('/api/room'));
    } catch (e) {
      console.warn(`lanterne: monitoring state: ${e.message}`);
    }
    refreshMonitoring(MONITORING_REFRESH_MS);
  }, delayMs);
}

function onLayout(layout) {
  setLayout(layout);
  refreshMonitoring();
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
  help.setStation(null);
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
    onLayout,
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
  startFocusStream(id, false);
  help.setStation(id);
  fitFocus();
  els.back.focus({ preventScroll: true });
}

/**
 * The focus view's picture: the station's full stream, or during remote help the helper's
 * own view of it (which the box keeps open at any hour while the student's consent holds).
 */
function startFocusStream(id, helping) {
  stopStream();
  els.focusEnded.hidden = true;
  ui.endedReason = null;
  resetStats('focus');
  const base = `/api/stations/${encodeURIComponent(id)}`;
  ui.stream = new VideoStream({
    path: helping ? `${base}/help/video` : `${base}/focus`,
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
}

const help = initHelp({
  focusedStation: () => ui.focusId,
  stage: els.focusStage,
  canvas: els.focusCanvas,
  useHelpView: (helping) => {
    if (ui.view === 'focus' && ui.focusId !== null) startFocusStream(ui.focusId, helping);
  },
  onAuthLost: () => onAuthLost(),
});

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
    setMonitoring(room);
    const tile = room.mosaic.tiles.find((x) => x.station_id === id);
    if (!tile) return 'station-unknown';
    if (!tile.online) return 'station-offline';
    if (room.monitoring_configured === false) return 'monitoring-not-configured';
    if (room.monitoring === false) return 'outside-monitoring-hours';
    if (tile.no_indicator === true) return 'no-indicator';
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
// The same when the tablet's Wi-Fi comes back.
window.addEventListener('online', () => {
  if (ui.stream) ui.stream.retryNow();
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
      setMonitoring(room);
      refreshMonitoring(MONITORING_REFRESH_MS);
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
  renderMonitoring();
  renderHeader();
  renderTiles();
  renderFocusTitle();
  renderEndedReason();
  help.rerender();
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
