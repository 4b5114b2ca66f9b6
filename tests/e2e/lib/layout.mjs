// Layout checks shared by the tablet-size browser tests: nothing sticks out sideways, a
// control is on screen and the topmost thing under its centre (one tap, no scrolling), touch
// targets are at least 44×44 CSS px, and the header's name is not cut.
//
// Each returns a list of problems (strings), so a failing test names every one at once.

/** Phone, iPad portrait, iPad mini landscape, iPad Pro landscape. */
export const SIZES = [
  { width: 360, height: 740 },
  { width: 768, height: 1024 },
  { width: 1024, height: 768 },
  { width: 1366, height: 1024 },
];

export const sizeName = ({ width, height }) => `${width}x${height}`;

/**
 * Elements that stick out of the viewport sideways (or make the page scroll sideways). Content
 * inside a box that clips or scrolls it sideways is judged through that box (which is itself
 * checked): what sticks out of it cannot be seen, or is reached by scrolling the box alone.
 */
export async function horizontalOverflow(page) {
  return page.evaluate(() => {
    const problems = [];
    const vw = document.documentElement.clientWidth;
    const sw = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
    if (sw > vw + 1) problems.push(`the page is ${sw} px wide in a ${vw} px screen`);
    const describe = (el) => {
      const id = el.id ? `#${el.id}` : '';
      const cls = typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
      return `${el.tagName.toLowerCase()}${id}${cls}`;
    };
    const insideClip = (el) => {
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        if (getComputedStyle(p).overflowX !== 'visible') return true;
      }
      return false;
    };
    for (const el of document.body.querySelectorAll('*')) {
      const s = getComputedStyle(el);
      if (s.display === 'none' || s.visibility === 'hidden') continue;
      if (el.closest('dialog:not([open])')) continue;
      const r = el.getBoundingClientRect();
      // Nothing to see: empty, or visually hidden text kept for screen readers.
      if (r.width <= 1 || r.height <= 1) continue;
      // A box that hides or scrolls part of its content sideways hides it as much as the
      // screen edge would; only text that ends in "…" says so, and the admin tables
      // scroll on purpose in their own box (too many columns for a phone).
      if (s.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1
        && s.textOverflow !== 'ellipsis' && !el.matches('.admin-scroll, .table-scroll')) {
        problems.push(`${describe(el)} hides ${el.scrollWidth - el.clientWidth} px of its content sideways`);
      }
      if (insideClip(el)) continue;
      if (r.left < -1 || r.right > vw + 1) {
        problems.push(`${describe(el)} spans ${Math.round(r.left)}–${Math.round(r.right)} px of ${vw}`);
      }
    }
    return problems.slice(0, 20);
  });
}

/**
 * Problems keeping `selector` from being tapped at once: off screen (would need scrolling),
 * smaller than 44×44, or covered by something else at its centre.
 */
export async function tappableWithoutScrolling(page, selector) {
  return page.evaluate((selector) => {
    const el = document.querySelector(selector);
    if (!el) return [`${selector} is not on the page`];
    const s = getComputedStyle(el);
    if (s.display === 'none' || s.visibility === 'hidden' || el.closest('[hidden]')) return [`${selector} is hidden`];
    const r = el.getBoundingClientRect();
    const vw = document.documentElement.clientWidth;
    const vh = window.innerHeight;
    const problems = [];
    if (r.left < 0 || r.top < 0 || r.right > vw + 0.5 || r.bottom > vh + 0.5) {
      problems.push(`${selector} is at ${Math.round(r.left)},${Math.round(r.top)}–${Math.round(r.right)},${Math.round(r.bottom)}, outside the ${vw}×${vh} screen`);
    }
    if (r.width < 44 || r.height < 44) problems.push(`${selector} is ${r.width}×${r.height} px, under 44×44`);
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!hit || !(hit === el || el.contains(hit))) {
      problems.push(`${selector} is covered at its centre by ${hit ? hit.outerHTML.slice(0, 80) : 'nothing'}`);
    }
    return problems;
  }, selector);
}

/**
 * Visible controls smaller than 44×44 CSS px. A checkbox or radio button counts by the label
 * around it (the label is what a finger taps); text links inside a sentence are exempt, as
 * in WCAG 2.5.8.
 */
export async function smallTargets(page) {
  return page.evaluate(() => {
    const problems = [];
    const controls = document.querySelectorAll('button, a[href], input, select, textarea, [role="button"]');
    for (const el of controls) {
      const s = getComputedStyle(el);
      if (s.display === 'none' || s.visibility === 'hidden') continue;
      if (el.closest('dialog:not([open]), [hidden]')) continue;
      let target = el;
      if (el.matches('input[type="checkbox"], input[type="radio"]')) target = el.closest('label') ?? el;
      if (el.matches('input[type="hidden"]')) continue;
      if (el.matches('p a, li a') && getComputedStyle(el).display === 'inline') continue;
      const r = target.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.width < 43.5 || r.height < 43.5) {
        const id = el.id ? `#${el.id}` : '';
        const text = (el.textContent || el.getAttribute('aria-label') || '').trim().slice(0, 30);
        problems.push(`${el.tagName.toLowerCase()}${id} "${text}" is ${Math.round(r.width)}×${Math.round(r.height)} px`);
      }
    }
    return problems.slice(0, 20);
  });
}

/** Whether the header's room or page name is shown whole (not cut with "…"). */
export async function nameCut(page) {
  return page.evaluate(() => {
    const n = document.querySelector('.topbar .room-name');
    if (!n) return ['no name in the header'];
    const cut = n.scrollWidth > n.clientWidth + 1 || n.scrollHeight > n.clientHeight + 1;
    return cut ? [`the header's name "${n.textContent}" is cut (${n.scrollWidth}×${n.scrollHeight} in ${n.clientWidth}×${n.clientHeight})`] : [];
  });
}
