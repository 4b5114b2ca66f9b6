// The sign-in page: posts the credentials as JSON to /api/login and goes to the room. When
// the box asks for a second factor the code field appears (or a recovery code field); when
// the account must turn two-factor login on first, the enrolment runs here before the room.
import { t, has, applyTranslations, bindSwitcher, onLangChange } from './i18n.js';
import { enrolTotp } from './totp-enrol.js';

const form = document.getElementById('login-form');
const username = document.getElementById('username');
const password = document.getElementById('password');
const secondFactor = document.getElementById('second-factor');
const code = document.getElementById('code');
const codeRow = document.getElementById('code-row');
const recovery = document.getElementById('recovery-code');
const recoveryRow = document.getElementById('recovery-row');
const toggleRecovery = document.getElementById('toggle-recovery');
const errorBox = document.getElementById('login-error');
const submit = document.getElementById('login-submit');
const enrol = document.getElementById('enrol');

applyTranslations();
document.title = t('login.title');
bindSwitcher(document.getElementById('lang-switch'));

// The last refusal, kept so a language switch re-words it.
let lastError = null;

function errorText({ reason, body, status }) {
  if (reason === 'locked_out') {
    const s = Number(body.retry_after_s) || 0;
    return t('login.error.locked_out', { min: Math.ceil(s / 60), s });
  }
  if (reason && has(`login.error.${reason}`)) return t(`login.error.${reason}`);
  // A reason this page does not know: the box words its messages for people.
  return body?.error || t('login.failed', { status });
}

function showError(err) {
  lastError = err;
  errorBox.textContent = typeof err === 'string' ? t(err) : errorText(err);
  errorBox.hidden = false;
}

function toggleLabel() {
  toggleRecovery.textContent = t(recoveryRow.hidden ? 'login.useRecovery' : 'login.useCode');
}

onLangChange(() => {
  document.title = t('login.title');
  toggleLabel();
  if (lastError && !errorBox.hidden) showError(lastError);
});

function useRecovery(on) {
  recoveryRow.hidden = !on;
  codeRow.hidden = on;
  toggleLabel();
  (on ? recovery : code).focus();
}
toggleRecovery.addEventListener('click', () => useRecovery(recoveryRow.hidden));

const newPassword = document.getElementById('new-password');

// The first admin's generated password must be replaced before anything else. `current` is
// the password just typed (unknown after a reload: then the form asks for it).
function replacePassword(current) {
  form.hidden = true;
  newPassword.hidden = false;
  const currentRow = document.getElementById('current-row');
  const currentInput = document.getElementById('current-password');
  const first = document.getElementById('new-password-1');
  const again = document.getElementById('new-password-2');
  const err = document.getElementById('new-password-error');
  const send = document.getElementById('new-password-submit');
  currentRow.hidden = Boolean(current);
  (current ? first : currentInput).focus();
  return new Promise((resolve) => {
    document.getElementById('new-password-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      if (first.value !== again.value) {
        err.textContent = t('login.passwordsDiffer');
        err.hidden = false;
        again.select();
        return;
      }
      send.disabled = true;
      try {
        const res = await fetch('/api/account/password', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ current_password: current || currentInput.value, new_password: first.value }),
        });
        if (res.ok) {
          newPassword.hidden = true;
          resolve();
          return;
        }
        let body = null;
        try { body = await res.json(); } catch { /* status alone */ }
        const rule = /'new_password': (\w+)/.exec(body?.error || '')?.[1];
        err.textContent = rule && has(`pwrule.${rule}`) ? t(`pwrule.${rule}`) : (body?.error || t('login.failed', { status: res.status }));
        err.hidden = false;
      } catch {
        err.textContent = t('login.network');
        err.hidden = false;
      } finally {
        send.disabled = false;
      }
    });
  });
}

async function afterLogin(reply, current) {
  if (reply.password_change_required) {
    await replacePassword(current);
    // The change gave a fresh session: ask again what else the account must do first.
    const res = await fetch('/api/account', { credentials: 'same-origin', cache: 'no-store' });
    const me = res.ok ? await res.json() : {};
    reply = { totp_setup_required: me.totp_required && !me.totp_enabled };
  }
  if (!reply.totp_setup_required) {
    location.replace('/room');
    return;
  }
  form.hidden = true;
  enrol.hidden = false;
  try {
    await enrolTotp(document.getElementById('enrol-body'));
    location.replace('/room');
  } catch (e) {
    showError({ body: { error: e.message }, status: 0 });
  }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  if (!username.value || !password.value) {
    (username.value ? password : username).focus();
    return;
  }
  const creds = { username: username.value, password: password.value };
  if (!secondFactor.hidden) {
    if (recoveryRow.hidden) creds.code = code.value.trim();
    else creds.recovery_code = recovery.value.trim();
  }
  submit.disabled = true;
  submit.textContent = t('login.busy');
  try {
    const res = await fetch('/api/login', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(creds),
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      // Not JSON (a proxy error page, say): the status decides the message.
    }
    if (res.ok) {
      await afterLogin(body || {}, creds.password);
      return;
    }
    const reason = body?.reason;
    if (reason === 'totp_required' && secondFactor.hidden) {
      // The password was right: ask for the second factor without calling it a failure.
      secondFactor.hidden = false;
      code.focus();
      return;
    }
    showError({ reason, body, status: res.status });
    if (reason === 'bad_credentials') password.select();
    else if (!secondFactor.hidden) (recoveryRow.hidden ? code : recovery).select();
  } catch {
    showError('login.network');
  } finally {
    submit.disabled = false;
    submit.textContent = t('login.submit');
  }
});

// Someone who still has a session does not need to sign in again, unless they left before
// turning on a two-factor login their role requires.
fetch('/api/account', { credentials: 'same-origin', cache: 'no-store' })
  .then(async (res) => {
    if (!res.ok) return;
    const me = await res.json();
    afterLogin({
      totp_setup_required: me.totp_required && !me.totp_enabled,
      password_change_required: me.password_change_required,
    });
  })
  .catch(() => {});
username.focus();
