// Remote help from the focus view (P5): "Prendre la main" asks the student at the station;
// nothing happens until the student clicks "Accepter" on their own screen. Once accepted,
// the picture becomes interactive: taps and drags drive the station's pointer (a long press
// is a right click, the wheel or a two-finger swipe scrolls), and a row of keys plus a text
// field type on it. The student can end it at any time; the box and the station both refuse
// input outside the help the student accepted. Every step is listed under the picture (and
// is in the box's audit log).
import { t } from './i18n.js';

const POLL_MS = 1000;
/** A touch held this long without moving is a right click. */
const LONG_PRESS_MS = 600;
/** Events per request (the box accepts 32) and requests in flight (one: order matters). */
const MAX_BATCH = 32;

const $ = (id) => document.getElementById(id);

export function initHelp({ focusedStation, stage, canvas, useHelpView, onAuthLost }) {
  const els = {
    ask: $('help-ask'),
    stop: $('help-stop'),
    status: $('help-status'),
    panel: $('help-panel'),
    text: $('help-text'),
    send: $('help-send'),
    steps: $('help-steps'),
    stepsList: $('help-steps-list'),
  };
  const state = {
    station: null,
    /** The box's view of this station's help: { help: {id, helper, state}|null, steps }. */
    view: null,
    active: false,
    poll: null,
    queue: [],
    sending: false,
    /** Modifiers toggled on the key row, pressed before the next key or text. */
    sticky: new Set(),
    lastResult: null,
  };

  async function api(method, path, body) {
    const res = await fetch(path, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401) {
      onAuthLost();
      throw new Error('signed out');
    }
    let data = null;
    if (res.status !== 204) {
      try { data = await res.json(); } catch { data = null; }
    }
    if (!res.ok) {
      const e = new Error(data?.error ?? `HTTP ${res.status}`);
      e.status = res.status;
      throw e;
    }
    return data;
  }

  const base = () => `/api/stations/${encodeURIComponent(state.station)}/help`;

  function render() {
    const h = state.view?.help ?? null;
    const mine = h !== null;
    els.ask.hidden = mine;
    els.stop.hidden = !mine;
    els.stop.textContent = t(h?.state === 'active' ? 'help.stop' : 'help.cancel');
    els.panel.hidden = !state.active;
    stage.classList.toggle('helping', state.active);
    let line = '';
    if (h?.state === 'asking') line = t('help.asking');
    else if (h?.state === 'active') line = t('help.active');
    else if (state.lastResult) line = t(`help.result.${state.lastResult}`);
    els.status.textContent = line;
    const steps = state.view?.steps ?? [];
    els.steps.hidden = steps.length === 0;
    els.stepsList.replaceChildren(...steps.map((s) => {
      const li = document.createElement('li');
      const when = new Date(s.at_us / 1000).toLocaleTimeString();
      const label = t(`help.step.${s.step}`);
      const by = ['student', 'box', 'station'].includes(s.by) ? t(`help.by.${s.by}`) : s.by;
      li.textContent = `${when} — ${label} (${by})${s.detail ? ` — ${s.detail}` : ''}`;
      li.dataset.step = s.step;
      return li;
    }));
  }

  async function refresh() {
    if (state.station === null) return;
    const station = state.station;
    try {
      const view = await api('GET', base());
      if (station !== state.station) return;
      const before = state.view?.help ?? null;
      state.view = view;
      const now = view.help;
      if (before && !now) {
        // Over: say how, from the last step.
        const last = view.steps[view.steps.length - 1];
        state.lastResult = last ? (last.step === 'ended' && last.by === 'student' ? 'ended-by-student' : last.step) : null;
      }
      setActive(now?.state === 'active');
      render();
      schedule(now !== null);
    } catch (e) {
      if (e.status === 403) {
        // This account may not ask for help here: nothing to offer.
        els.ask.hidden = true;
        els.stop.hidden = true;
      }
      schedule(state.view?.help != null);
    }
  }

  function schedule(running) {
    clearTimeout(state.poll);
    state.poll = running ? setTimeout(refresh, POLL_MS) : null;
  }

  function setActive(active) {
    if (active === state.active) return;
    state.active = active;
    state.queue = [];
    state.sticky.clear();
    // The picture during help comes through the help's own view (any hour, ends with it).
    useHelpView(active);
  }

  els.ask.addEventListener('click', async () => {
    state.lastResult = null;
    try {
      await api('POST', base());
      await refresh();
    } catch (e) {
      els.status.textContent = t('help.failed', { reason: e.message });
    }
  });

  els.stop.addEventListener('click', async () => {
    try {
      await api('POST', `${base()}/stop`);
    } catch (e) {
      els.status.textContent = t('help.failed', { reason: e.message });
    }
    await refresh();
  });

  // ---- input ----------------------------------------------------------------------------

  function push(...events) {
    if (!state.active) return;
    for (const e of events) {
      const last = state.queue[state.queue.length - 1];
      // Consecutive moves: only the newest matters.
      if (e.PointerMove && last?.PointerMove) state.queue[state.queue.length - 1] = e;
      else state.queue.push(e);
    }
    flush();
  }

  async function flush() {
    if (state.sending || state.queue.length === 0 || state.station === null) return;
    state.sending = true;
    const batch = state.queue.splice(0, MAX_BATCH);
    try {
      await api('POST', `${base()}/input`, { events: batch });
    } catch (e) {
      if (e.status === 409) {
        // The help is over (the student ended it): say so without waiting for the poll.
        state.queue = [];
        refresh();
      } else if (e.status !== 429) {
        els.status.textContent = t('help.failed', { reason: e.message });
      }
    } finally {
      state.sending = false;
    }
    if (state.queue.length) flush();
  }

  function position(ev) {
    const r = canvas.getBoundingClientRect();
    const fx = Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1);
    const fy = Math.min(Math.max((ev.clientY - r.top) / r.height, 0), 1);
    return { PointerMove: { x: Math.round(fx * 65535), y: Math.round(fy * 65535) } };
  }

  const button = (b, pressed) => ({ Button: { button: b, pressed } });
  let press = null;

  stage.addEventListener('pointerdown', (ev) => {
    if (!state.active || ev.target.closest('button, a, input')) return;
    ev.preventDefault();
    stage.setPointerCapture?.(ev.pointerId);
    const right = ev.pointerType === 'mouse' && ev.button === 2;
    press = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, touch: ev.pointerType !== 'mouse', down: false, long: null };
    if (press.touch) {
      // A touch waits: held still it is a right click, moved it is a drag, lifted a click.
      push(position(ev));
      press.long = setTimeout(() => {
        if (!press || press.down) return;
        press.long = 'fired';
        push(button('Right', true), button('Right', false));
      }, LONG_PRESS_MS);
    } else {
      press.down = true;
      push(position(ev), button(right ? 'Right' : ev.button === 1 ? 'Middle' : 'Left', true));
      press.button = right ? 'Right' : ev.button === 1 ? 'Middle' : 'Left';
    }
  });

  stage.addEventListener('pointermove', (ev) => {
    if (!state.active) return;
    if (press && press.id === ev.pointerId) {
      if (press.touch && !press.down && Math.hypot(ev.clientX - press.x, ev.clientY - press.y) > 10) {
        if (press.long !== 'fired') {
          clearTimeout(press.long);
          press.down = true;
          press.button = 'Left';
          push(button('Left', true));
        }
      }
      push(position(ev));
    } else if (ev.pointerType === 'mouse') {
      push(position(ev));
    }
  });

  function release(ev) {
    if (!press || press.id !== ev.pointerId) return;
    const p = press;
    press = null;
    if (p.touch) {
      if (p.long === 'fired') return;
      clearTimeout(p.long);
      if (!p.down) {
        push(position(ev), button('Left', true), button('Left', false));
        return;
      }
    }
    push(position(ev), button(p.button ?? 'Left', false));
  }
  stage.addEventListener('pointerup', release);
  stage.addEventListener('pointercancel', release);
  stage.addEventListener('contextmenu', (ev) => { if (state.active) ev.preventDefault(); });
  stage.addEventListener('wheel', (ev) => {
    if (!state.active) return;
    ev.preventDefault();
    const steps = Math.max(-10, Math.min(10, Math.round(ev.deltaY / 60) || Math.sign(ev.deltaY)));
    if (steps) push({ Scroll: { steps } });
  }, { passive: false });

  function withSticky(events) {
    const mods = [...state.sticky];
    state.sticky.clear();
    for (const b of els.panel.querySelectorAll('[data-sticky]')) b.setAttribute('aria-pressed', 'false');
    return [
      ...mods.map((key) => ({ Key: { key, pressed: true } })),
      ...events,
      ...mods.reverse().map((key) => ({ Key: { key, pressed: false } })),
    ];
  }

  els.panel.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-key]');
    if (!b) return;
    const key = b.dataset.key;
    if (b.hasAttribute('data-sticky')) {
      const on = !state.sticky.has(key);
      if (on) state.sticky.add(key); else state.sticky.delete(key);
      b.setAttribute('aria-pressed', String(on));
      return;
    }
    push(...withSticky([{ Key: { key, pressed: true } }, { Key: { key, pressed: false } }]));
  });

  function sendText() {
    const text = els.text.value;
    if (!text) return;
    // Control characters go as keys; the box refuses them inside text.
    const chunks = [];
    for (const part of text.replace(/[\u0000-\u001f\u007f]/g, '').match(/[\s\S]{1,200}/gu) ?? []) {
      chunks.push({ Text: { text: part } });
    }
    push(...withSticky(chunks));
    els.text.value = '';
  }
  els.send.addEventListener('click', sendText);
  els.text.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      if (els.text.value) sendText();
      else push(...withSticky([{ Key: { key: 'Enter', pressed: true } }, { Key: { key: 'Enter', pressed: false } }]));
    }
  });

  return {
    /** The focus view opened `id` (or closed: null). */
    setStation(id) {
      if (id === state.station) return;
      clearTimeout(state.poll);
      if (state.active) setActive(false);
      state.station = id;
      state.view = null;
      state.lastResult = null;
      state.queue = [];
      render();
      if (id !== null) refresh();
    },
    rerender: render,
  };
}
