// The room page's access hooks, kept out of room.js: links to "my account" and (for admins)
// the admin pages, a detour to "my account" when the role requires two-factor login that is
// not set up yet, and the focus view's screenshot button when the box allows screenshots.
import { t, onLangChange } from './i18n.js';

const adminLink = document.getElementById('admin-link');
const shotButton = document.getElementById('screenshot');
const shotStatus = document.getElementById('screenshot-status');

async function json(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/** The station shown in the focus view, from the page address (#station/12). */
function focusedStation() {
  const m = /^#station\/(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) : null;
}

async function start() {
  const res = await fetch('/api/account', { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) return; // room.js handles a lost session
  const me = await res.json();
  if (me.totp_required && !me.totp_enabled) {
    location.replace('/account');
    return;
  }
  adminLink.hidden = me.role !== 'admin';
  // Screenshots: the list answers 403 with screenshots_disabled when the box keeps them off.
  const shots = await fetch('/api/screenshots', { credentials: 'same-origin', cache: 'no-store' });
  shotButton.hidden = !shots.ok;
}

shotButton.addEventListener('click', async () => {
  const id = focusedStation();
  if (id === null) return;
  shotButton.disabled = true;
  shotStatus.textContent = '';
  try {
    const res = await fetch(`/api/stations/${id}/screenshot`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    const body = await json(res);
    shotStatus.textContent = res.ok
      ? t('shot.done')
      : t('shot.failed', { message: body?.error || `HTTP ${res.status}` });
  } catch {
    shotStatus.textContent = t('login.network');
  } finally {
    shotButton.disabled = false;
  }
});

window.addEventListener('hashchange', () => { shotStatus.textContent = ''; });
onLangChange(() => { shotStatus.textContent = ''; });
start().catch(() => {});
