// Who sits where and who asks for help, on the room page: each tile shows the name of the
// student logged in at the station (under the station's name) and a raised hand with its
// place in the queue; a line above the class lists the raised hands in the order they went
// up, each with a button to clear it (the station takes the hand down); a search field finds
// a student or a station by name. A new hand gives a discreet signal: the line pulses once
// and the page title counts the hands (no sound in a classroom).
//
// The box is the source of truth: the tiles' `user_name` and `hand` (rank, 1 = first) come
// with every layout of the mosaic stream, at any hour (asking for help watches nobody).
import { t, onLangChange } from './i18n.js';

const $ = (id) => document.getElementById(id);
const els = {
  hands: $('hands'),
  handsTitle: $('hands-title'),
  handsList: $('hands-list'),
  find: $('find'),
  findCount: $('find-count'),
  findNames: $('find-names'),
};

let tiles = [];
/** Stations whose hand was up at the last render, to signal only new ones. */
let handsUp = new Set();

/** A raised hand, drawn (tablets need no emoji font for it). */
export function handIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '1.1em');
  svg.setAttribute('height', '1.1em');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '2');
  svg.setAttribute('stroke-linecap', 'round');
  svg.setAttribute('stroke-linejoin', 'round');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M8 12.5V5.5a1.5 1.5 0 0 1 3 0V11M11 10.5V3.8a1.5 1.5 0 0 1 3 0V11'
    + 'M14 10.5V5a1.5 1.5 0 0 1 3 0v6.5M17 11V8a1.5 1.5 0 0 1 3 0v6a8 8 0 0 1-8 8h-.6'
    + 'a7 7 0 0 1-5.7-2.9l-3-4.2a1.6 1.6 0 0 1 2.5-2L8 15.5');
  svg.append(path);
  return svg;
}

/** Lower case without accents, for a search that forgives "elise" for "Élise". */
function fold(s) {
  return (s ?? '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

function query() {
  return fold(els.find?.value.trim());
}

function matches(tile, q) {
  return q !== '' && (fold(tile.name).includes(q) || fold(tile.user_name).includes(q));
}

/**
 * Adds the student's name and raised hand to one tile button drawn by room.js, and marks it
 * when it matches the search.
 */
export function decorateTile(b, tile) {
  const extra = [];
  if (tile.user_name) {
    const label = b.querySelector('.tile-label');
    const caption = document.createElement('span');
    caption.className = 'tile-caption';
    const user = document.createElement('span');
    user.className = 'tile-user';
    user.textContent = tile.user_name;
    label?.replaceWith(caption);
    if (label) caption.append(label);
    // The spaces keep words apart for assistive technology (a flex column drops them).
    caption.append(' ', user);
    extra.push(tile.user_name);
  }
  if (tile.hand) {
    const hand = document.createElement('span');
    hand.className = 'tile-hand';
    hand.append(handIcon(), document.createTextNode(String(tile.hand)));
    hand.title = t('hand.tile', { n: tile.hand });
    b.append(' ', hand);
    extra.push(t('hand.tile', { n: tile.hand }));
  }
  // In the order they are on the tile, so what is seen is what is read (WCAG 2.5.3).
  if (extra.length) b.setAttribute('aria-label', `${b.getAttribute('aria-label')} — ${extra.join(' — ')}`);
  const q = query();
  b.classList.toggle('found', matches(tile, q));
  b.classList.toggle('dimmed', q !== '' && !matches(tile, q));
}

async function clearHand(id, button) {
  button.disabled = true;
  try {
    const res = await fetch(`/api/stations/${encodeURIComponent(id)}/hand/clear`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    if (res.status === 401) location.replace('/login');
  } catch {
    // The box is away; the hand stays listed and the button usable again.
  } finally {
    button.disabled = false;
  }
}

function renderList() {
  const raised = tiles.filter((x) => x.hand).sort((a, b) => a.hand - b.hand);
  els.hands.hidden = raised.length === 0;
  els.handsTitle.textContent = t('hand.title', { n: raised.length });
  els.handsList.replaceChildren(...raised.map((tile) => {
    const li = document.createElement('li');
    li.className = 'hand-item';
    li.dataset.stationId = String(tile.station_id);
    const rank = document.createElement('span');
    rank.className = 'hand-rank';
    rank.textContent = String(tile.hand);
    const who = document.createElement('span');
    who.className = 'hand-who';
    who.textContent = tile.user_name ? `${tile.name} · ${tile.user_name}` : tile.name;
    const clear = document.createElement('button');
    clear.type = 'button';
    clear.className = 'btn hand-clear';
    clear.textContent = t('hand.clear');
    clear.setAttribute('aria-label', t('hand.clearOf', { name: who.textContent }));
    clear.addEventListener('click', () => clearHand(tile.station_id, clear));
    li.append(rank, who, clear);
    return li;
  }));
  // The discreet signal: a new hand makes the line pulse once; the title counts hands.
  const now = new Set(raised.map((x) => x.station_id));
  const fresh = [...now].some((id) => !handsUp.has(id));
  handsUp = now;
  if (fresh) {
    els.hands.classList.remove('signal');
    void els.hands.offsetWidth; // restart the animation
    els.hands.classList.add('signal');
  }
  raisedCount = raised.length;
  titleHands();
}

let raisedCount = 0;
/** "✋ 2 · Salle 12 — Lanterne": kept when room.js sets the title again. */
function titleHands() {
  const base = document.title.replace(/^✋ \d+ · /, '');
  const want = raisedCount ? `✋ ${raisedCount} · ${base}` : base;
  if (document.title !== want) document.title = want;
}
const titleEl = document.querySelector('title');
if (titleEl) new MutationObserver(titleHands).observe(titleEl, { childList: true, characterData: true, subtree: true });

function renderFind() {
  const q = query();
  const found = q === '' ? 0 : tiles.filter((x) => matches(x, q)).length;
  els.findCount.textContent = q === '' ? '' : t('find.count', { n: found });
  // Suggestions: the students present, sorted by name, then the stations.
  const names = tiles.map((x) => x.user_name).filter(Boolean).sort((a, b) => a.localeCompare(b));
  const stations = tiles.map((x) => x.name).sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  els.findNames.replaceChildren(...[...new Set([...names, ...stations])].map((n) => {
    const o = document.createElement('option');
    o.value = n;
    return o;
  }));
}

/** Called by room.js after every layout: the hands line and the search follow the tiles. */
export function renderHands(layoutTiles, redraw) {
  tiles = layoutTiles ?? [];
  renderList();
  renderFind();
  if (els.find && !els.find.dataset.bound) {
    els.find.dataset.bound = '1';
    els.find.addEventListener('input', () => {
      renderFind();
      redraw();
    });
  }
}

onLangChange(() => {
  renderList();
  renderFind();
});
