// The demo (fan-out) controls of the room page: a "show to the class" button in the focus
// view opens a small form (targets, mode, part of the screen), and a banner shows the running demo with each
// receiving station's health and a stop button.
//
// Kept apart from room.js, which only calls initDemo() once the room is loaded. The box is
// the source of truth: the banner follows the `demo` field of GET /api/room (refreshed by the
// box every second while a demo runs), so a demo started from another tablet shows too.
import { t, onLangChange } from './i18n.js';

const POLL_RUNNING_MS = 1000;
const POLL_IDLE_MS = 3000;
/** Parts of the source screen a teacher can pick, as fractions (x, y, w, h) of the picture. */
const REGIONS = {
  whole: null,
  top: [0, 0, 1, 0.5],
  bottom: [0, 0.5, 1, 0.5],
  left: [0, 0, 0.5, 1],
  right: [0.5, 0, 0.5, 1],
  // A rectangle the teacher enters, in percent of the picture (see customFractions).
  custom: null,
};

/**
 * The rectangle of `part` in pixels of the source picture (the focus canvas takes the
 * stream's size), with even sizes for the decoder's 4:2:0 crop.
 */
function regionOf(part, customFields) {
  const f = part === 'custom' ? customFractions(customFields) : REGIONS[part];
  const canvas = document.getElementById('focus-canvas');
  if (!f || !canvas) return null;
  const even = (v) => Math.floor(v / 2) * 2;
  const size = (v) => Math.max(16, even(v));
  return {
    x: even(canvas.width * f[0]),
    y: even(canvas.height * f[1]),
    width: size(canvas.width * f[2]),
    height: size(canvas.height * f[3]),
  };
}

/**
 * The custom rectangle as fractions (x, y, w, h), or null when it is not a rectangle inside
 * the picture (the box would refuse it; the form says so first).
 */
function customFractions(fields) {
  const [x, y, w, h] = fields.map((f) => Number(f.input.value) / 100);
  const ok = [x, y, w, h].every(Number.isFinite) && x >= 0 && y >= 0 && w > 0 && h > 0
    && x + w <= 1 && y + h <= 1;
  return ok ? [x, y, w, h] : null;
}

/** Makes an element with a class and optional text. */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

async function postJson(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    // An empty or non-JSON body: the status says enough.
  }
  return { ok: res.ok, status: res.status, data };
}

/**
 * Wires the demo controls into the page.
 *   focusedStation(): id of the station open in the focus view, or null
 *   stations(): [{ station_id, name, online }] of the room
 */
export function initDemo({ focusedStation, stations }) {
  // `hdmi`: the box has an HDMI input; `fromHdmi`: the form was opened for it (not for the
  // station in focus).
  const state = {
    demo: null, lastEnd: null, seenEndAt: null, timer: null, hdmi: false, fromHdmi: false,
  };

  // ---- "show to the class" button, in the focus view's bar ----------------------------
  const bar = document.querySelector('#focus-view .focus-bar');
  const open = el('button', 'btn demo-open');
  open.type = 'button';
  open.id = 'demo-open';
  bar?.append(open);

  // ---- "show the teacher's PC (HDMI)", in the room's action bar -------------------------
  const openHdmi = el('button', 'act demo-open-hdmi');
  openHdmi.type = 'button';
  openHdmi.id = 'demo-open-hdmi';
  openHdmi.hidden = true;
  document.querySelector('#actionbar .act-buttons')?.append(openHdmi);

  // ---- the form -------------------------------------------------------------------------
  const dialog = el('dialog', 'demo-dialog');
  dialog.id = 'demo-dialog';
  const form = el('form');
  form.method = 'dialog';
  const title = el('h2');
  const targetsLegend = el('p', 'demo-legend');
  const targetAll = radio('demo-targets', 'all', true);
  const targetSome = radio('demo-targets', 'some', false);
  const list = el('div', 'demo-stations');
  list.id = 'demo-stations';
  const modeLegend = el('p', 'demo-legend');
  const modeFull = radio('demo-mode', 'fullscreen', true);
  const modeWindow = radio('demo-mode', 'windowed', false);
  const regionLegend = el('label', 'demo-legend');
  const region = el('select', 'demo-region');
  region.id = 'demo-region';
  regionLegend.htmlFor = region.id;
  for (const part of Object.keys(REGIONS)) {
    const o = el('option');
    o.value = part;
    region.append(o);
  }
  // The custom rectangle: left, top, width, height in percent of the source picture.
  const custom = el('div', 'demo-custom');
  custom.id = 'demo-custom';
  const customFields = ['x', 'y', 'w', 'h'].map((k, i) => {
    const label = el('label', 'demo-custom-field');
    const input = el('input');
    input.type = 'number';
    input.min = '0';
    input.max = '100';
    input.step = '1';
    input.inputMode = 'numeric';
    input.id = `demo-custom-${k}`;
    input.value = String([25, 25, 50, 50][i]);
    const text = el('span');
    label.append(text, input);
    custom.append(label);
    return { key: k, input, text };
  });
  const showCustom = () => { custom.hidden = region.value !== 'custom'; };
  region.addEventListener('change', showCustom);
  const error = el('p', 'demo-error');
  error.id = 'demo-error';
  error.setAttribute('role', 'alert');
  const start = el('button', 'btn btn-primary');
  start.type = 'button';
  start.id = 'demo-start';
  const cancel = el('button', 'btn');
  cancel.type = 'button';
  const actions = el('div', 'demo-actions');
  actions.append(cancel, start);
  form.append(title, targetsLegend, targetAll.label, targetSome.label, list,
    modeLegend, modeFull.label, modeWindow.label, regionLegend, region, custom, error, actions);
  dialog.append(form);
  document.body.append(dialog);

  function radio(name, value, checked) {
    const input = el('input');
    input.type = 'radio';
    input.name = name;
    input.value = value;
    input.checked = checked;
    input.id = `${name}-${value}`;
    const label = el('label', 'demo-choice');
    const text = el('span');
    label.append(input, text);
    return { input, label, text };
  }

  /** The station shown, or null when the teacher's PC (HDMI) is. */
  const sourceStation = () => (state.fromHdmi ? null : focusedStation());

  function fillStationList() {
    const source = sourceStation();
    list.replaceChildren();
    for (const s of stations()) {
      if (s.station_id === source) continue;
      const label = el('label', 'demo-choice');
      const box = el('input');
      box.type = 'checkbox';
      box.value = String(s.station_id);
      box.checked = true;
      label.append(box, el('span', '', s.name));
      list.append(label);
    }
    list.hidden = !targetSome.input.checked;
  }
  targetAll.input.addEventListener('change', fillStationList);
  targetSome.input.addEventListener('change', fillStationList);

  const openForm = (fromHdmi) => {
    state.fromHdmi = fromHdmi;
    // A region is picked in the pixels of the picture the focus view shows; the HDMI
    // picture is not on screen, so it is shown whole.
    region.value = 'whole';
    region.disabled = fromHdmi;
    showCustom();
    error.textContent = '';
    render();
    fillStationList();
    dialog.showModal();
  };
  open.addEventListener('click', () => openForm(false));
  openHdmi.addEventListener('click', () => openForm(true));
  cancel.addEventListener('click', () => dialog.close());
  start.addEventListener('click', async () => {
    const source = state.fromHdmi ? 'hdmi' : focusedStation();
    if (source === null) return;
    const targets = targetSome.input.checked
      ? [...list.querySelectorAll('input:checked')].map((b) => Number(b.value))
      : null;
    if (!state.fromHdmi && region.value === 'custom' && !customFractions(customFields)) {
      error.textContent = t('demo.customInvalid');
      return;
    }
    start.disabled = true;
    const res = await postJson('/api/demo', {
      source,
      targets,
      mode: modeFull.input.checked ? 'fullscreen' : 'windowed',
      region: state.fromHdmi ? null : regionOf(region.value, customFields),
    });
    start.disabled = false;
    if (!res.ok) {
      error.textContent = t('demo.failed', { error: res.data?.error ?? `HTTP ${res.status}` });
      return;
    }
    dialog.close();
    state.demo = res.data;
    render();
    schedule(POLL_RUNNING_MS);
  });

  // ---- the banner ------------------------------------------------------------------------
  const banner = el('section', 'demo-banner');
  banner.id = 'demo-banner';
  banner.setAttribute('role', 'status');
  banner.hidden = true;
  const summary = el('p', 'demo-summary');
  summary.id = 'demo-summary';
  const health = el('ul', 'demo-health');
  health.id = 'demo-health';
  const stop = el('button', 'btn btn-danger');
  stop.type = 'button';
  stop.id = 'demo-stop';
  banner.append(summary, health, stop);
  document.querySelector('main')?.before(banner);

  stop.addEventListener('click', async () => {
    stop.disabled = true;
    const res = await postJson('/api/demo/stop', {});
    stop.disabled = false;
    // 409: it had already ended (source gone); the next poll shows why.
    if (res.ok || res.status === 409) {
      state.demo = null;
      state.seenEndAt = res.data?.at_us ?? state.seenEndAt;
      render();
    }
  });

  function receiverLine(r) {
    const li = el('li', 'demo-receiver');
    li.dataset.stationId = String(r.station_id);
    const h = r.health;
    let status;
    if (!r.online) status = t('demo.offline');
    else if (!h || !h.playing || h.frames_decoded === 0) status = t('demo.starting');
    else status = t('demo.health', { fps: (h.fps_x100 / 100).toFixed(0), drops: h.frames_dropped + r.relay.dropped });
    li.dataset.state = !r.online ? 'offline' : (h?.frames_decoded > 0 ? 'playing' : 'starting');
    li.append(el('span', 'demo-receiver-name', r.name), el('span', 'demo-receiver-state', status));
    return li;
  }

  function render() {
    open.textContent = t('demo.show');
    openHdmi.textContent = t('demo.showHdmi');
    openHdmi.hidden = !state.hdmi;
    title.textContent = state.fromHdmi
      ? t('demo.titleHdmi')
      : t('demo.title', { name: stations().find((s) => s.station_id === focusedStation())?.name ?? '' });
    targetsLegend.textContent = t('demo.targets');
    targetAll.text.textContent = t('demo.targets.all');
    targetSome.text.textContent = t('demo.targets.some');
    modeLegend.textContent = t('demo.mode');
    modeFull.text.textContent = t('demo.mode.fullscreen');
    modeWindow.text.textContent = t('demo.mode.windowed');
    regionLegend.textContent = t('demo.region');
    for (const o of region.options) o.textContent = t(`demo.region.${o.value}`);
    for (const f of customFields) f.text.textContent = t(`demo.custom.${f.key}`);
    start.textContent = t('demo.start');
    cancel.textContent = t('demo.cancel');
    stop.textContent = t('demo.stop');

    const d = state.demo;
    const end = state.lastEnd;
    const freshEnd = end && end.at_us !== state.seenEndAt && end.reason !== 'stopped';
    banner.hidden = !d && !freshEnd;
    banner.dataset.state = d ? 'running' : 'ended';
    stop.hidden = !d;
    health.replaceChildren();
    if (d) {
      summary.textContent = t('demo.running', {
        name: d.source_name,
        count: d.receivers.length,
        mode: t(`demo.mode.${d.mode}`),
      });
      for (const r of d.receivers) health.append(receiverLine(r));
    } else if (freshEnd) {
      summary.textContent = t(`demo.ended.${end.reason}`, { name: end.source_name });
    }
  }

  async function poll() {
    try {
      const res = await fetch('/api/room', { credentials: 'same-origin', cache: 'no-store' });
      if (res.ok) {
        const room = await res.json();
        const wasRunning = state.demo !== null;
        state.demo = room.demo ?? null;
        state.lastEnd = room.last_demo_end ?? null;
        state.hdmi = room.hdmi_available === true;
        // An end that happened before this page knew of a demo is old news.
        if (!wasRunning && !state.demo && state.seenEndAt === null) state.seenEndAt = state.lastEnd?.at_us ?? 0;
        render();
      }
    } catch (e) {
      console.warn(`lanterne: demo state: ${e.message}`);
    }
    schedule(state.demo ? POLL_RUNNING_MS : POLL_IDLE_MS);
  }

  function schedule(ms) {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, ms);
  }

  onLangChange(render);
  render();
  poll();
}
