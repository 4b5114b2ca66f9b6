// Lock and unlock the whole class from the pages that are not the room (admin, my account):
// the one action a teacher needs in a hurry stays one tap away wherever the tablet is. The
// bar sits at the bottom of the page, under the thumb, as on the room page; the box decides
// who may lock (a technician is refused there, and the bar is not offered to one).
import { t, onLangChange } from './i18n.js';

const bar = document.getElementById('quick-lock');
const status = document.getElementById('quick-lock-status');

/** "Sent to 8 stations." plus the offline ones, as the room page words it. */
function summary(report) {
  const sent = t('act.sentTo', { n: report.sent_to?.length ?? 0 });
  const offline = report.offline?.length ?? 0;
  return offline ? `${sent} ${t('act.offlineCount', { n: offline })}` : sent;
}

async function lock(locked) {
  const title = t(locked ? 'lock.doneTitle' : 'unlock.doneTitle');
  status.textContent = '';
  let res;
  try {
    res = await fetch('/api/room/lock', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ locked }),
    });
  } catch {
    status.textContent = t('quick.result', { title, text: t('act.network') });
    return;
  }
  if (res.status === 401) {
    location.replace('/login');
    return;
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // No JSON body: the status says enough.
  }
  if (!res.ok) {
    const reason = typeof body?.error === 'string' ? body.error : `HTTP ${res.status}`;
    status.textContent = t('quick.result', { title, text: t('act.refused', { reason }) });
    return;
  }
  status.textContent = t('quick.result', { title, text: summary(body ?? {}) });
}

async function start() {
  const res = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) return; // the page itself handles a lost session
  const me = await res.json();
  bar.hidden = me.role === 'technician';
  document.body.classList.toggle('has-quick-lock', !bar.hidden);
}

if (bar && status) {
  document.getElementById('quick-lock-on').addEventListener('click', () => lock(true));
  document.getElementById('quick-lock-off').addEventListener('click', () => lock(false));
  onLangChange(() => { status.textContent = ''; });
  start().catch(() => {});
}
