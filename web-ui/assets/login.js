// The sign-in page: posts the credentials as JSON to /api/login and goes to the room.
import { t, applyTranslations, bindSwitcher, onLangChange } from './i18n.js';

const form = document.getElementById('login-form');
const username = document.getElementById('username');
const password = document.getElementById('password');
const errorBox = document.getElementById('login-error');
const submit = document.getElementById('login-submit');

applyTranslations();
document.title = t('login.title');
onLangChange(() => { document.title = t('login.title'); });
bindSwitcher(document.getElementById('lang-switch'));

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  if (!username.value || !password.value) {
    (username.value ? password : username).focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = t('login.busy');
  try {
    const res = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: username.value, password: password.value }),
    });
    if (res.ok) {
      location.replace('/room');
      return;
    }
    // The box words its 401/429 messages for people ("locked for 5 minutes"): show them as-is.
    let message = t('login.failed', { status: res.status });
    try {
      const body = await res.json();
      if (body && typeof body.error === 'string' && body.error) message = body.error;
    } catch {
      // Not JSON (a proxy error page, say): the generic message stands.
    }
    showError(message);
    password.select();
  } catch {
    showError(t('login.network'));
  } finally {
    submit.disabled = false;
    submit.textContent = t('login.submit');
  }
});

// Someone who still has a session does not need to sign in again.
fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' })
  .then((res) => { if (res.ok) location.replace('/room'); })
  .catch(() => {});
username.focus();
