// The header of every signed-in page (room, admin, my account): when its actions do not fit
// beside the room or page name, they fold into a menu behind one button, so the name stays
// readable and nothing runs off the right edge (a phone, an iPad held upright, or English
// labels that are longer than the French ones).
//
// Whether it fits is measured, not guessed from the width: the header holds different
// buttons for an admin and a teacher, and in each language. Measured again on every resize
// (rotation), language change and change of the header's content.
import { onLangChange } from './i18n.js';

const header = document.querySelector('header.topbar');
const actions = header?.querySelector('.topbar-actions');
const toggle = header?.querySelector('.menu-toggle');
const name = header?.querySelector('.room-name');

function isOpen() {
  return header.classList.contains('open');
}

function setOpen(open) {
  header.classList.toggle('open', open);
  toggle.setAttribute('aria-expanded', String(open));
}

/** Folds the actions into the menu when, laid out in a row, they would squeeze the name. */
function measure() {
  const wasOpen = isOpen();
  header.classList.remove('collapsed');
  setOpen(false);
  const overflowing = header.scrollWidth > header.clientWidth + 1;
  const nameCut = name !== null && name.scrollWidth > name.clientWidth + 1;
  const collapsed = overflowing || nameCut;
  // The toggle shows through CSS (.collapsed), not `hidden`: measuring must not change an
  // attribute the observer below watches, or it would measure for ever.
  header.classList.toggle('collapsed', collapsed);
  if (collapsed && wasOpen) setOpen(true);
}

if (header && actions && toggle) {
  toggle.addEventListener('click', () => {
    setOpen(!isOpen());
    if (isOpen()) actions.querySelector('a:not([hidden]), button:not([hidden])')?.focus();
  });
  // Choosing something in the menu, tapping elsewhere or Escape closes it.
  actions.addEventListener('click', (ev) => {
    if (ev.target.closest('a, button') && !ev.target.closest('.lang-switch')) setOpen(false);
  });
  document.addEventListener('pointerdown', (ev) => {
    if (isOpen() && !header.contains(ev.target)) setOpen(false);
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && isOpen()) {
      setOpen(false);
      toggle.focus();
    }
  });
  let pending = false;
  const remeasure = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      measure();
    });
  };
  new ResizeObserver(remeasure).observe(header);
  // Links appear (admin, developer panel) and the room's name arrives after the first paint.
  new MutationObserver(remeasure).observe(header, {
    subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['hidden'],
  });
  onLangChange(remeasure);
  measure();
}
