// "My account": the signed-in user's two-factor status, its enrolment and new recovery
// codes. Mounted by the /account page (every role) and by the admin pages.
import { t, applyTranslations, bindSwitcher, onLangChange } from './i18n.js';
import { enrolTotp, postJson, showRecoveryCodes } from './totp-enrol.js';

function el(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

async function fetchStatus() {
  const res = await fetch('/api/account', { credentials: 'same-origin', cache: 'no-store' });
  if (res.status === 401) {
    location.replace('/login');
    return null;
  }
  return res.json();
}

/** Shows a password field in `work`; resolves with what was typed. */
function askPassword(work, label) {
  return new Promise((resolve) => {
    const form = el('form', { id: 'reauth-form' });
    const id = 'reauth-password';
    form.append(el('label', { for: id }, label));
    const input = el('input', { id, type: 'password', autocomplete: 'current-password', required: '' });
    form.append(input, el('button', { type: 'submit', class: 'btn btn-primary' }, t('totp.confirm')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      form.remove();
      resolve(input.value);
    });
    work.replaceChildren(form);
    input.focus();
  });
}

/** The "change my password" form: the current password, then the new one. */
function changePassword(work) {
  const form = el('form', { id: 'password-form' });
  const field = (id, label, auto) => {
    form.append(el('label', { for: id }, label));
    const i = el('input', { id, type: 'password', autocomplete: auto, required: '' });
    form.append(i);
    return i;
  };
  const current = field('pw-current', t('login.currentPassword'), 'current-password');
  const first = field('pw-new', t('login.newPassword'), 'new-password');
  const again = field('pw-again', t('login.newPasswordAgain'), 'new-password');
  form.append(el('p', { class: 'muted' }, t('login.passwordRule')));
  const err = el('p', { class: 'form-error', role: 'alert' });
  err.hidden = true;
  form.append(err, el('button', { type: 'submit', class: 'btn btn-primary' }, t('login.newPasswordSubmit')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (first.value !== again.value) {
      err.textContent = t('login.passwordsDiffer');
      err.hidden = false;
      return;
    }
    const r = await postJson('/api/account/password',
      { current_password: current.value, new_password: first.value });
    if (!r.ok) {
      err.textContent = t('admin.error', { message: r.body?.error || r.status });
      err.hidden = false;
      return;
    }
    work.replaceChildren(el('p', { id: 'password-changed' }, t('account.passwordChanged')));
  });
  work.replaceChildren(form);
  current.focus();
}

/** Fills container with the account's state and actions; returns the status it showed. */
export async function mountAccount(container) {
  let me = await fetchStatus();
  if (!me) return null;
  const refresh = async () => {
    me = (await fetchStatus()) || me;
    render();
  };
  const render = () => {
    container.replaceChildren();
    container.append(el('p', { id: 'account-user' },
      t('account.user', { name: me.username, role: t(`role.${me.role}`) })));
    const state = el('p', { id: 'totp-state' }, t(me.totp_enabled ? 'account.totpOn' : 'account.totpOff'));
    container.append(state);
    const work = el('div', { id: 'account-work' });
    if (me.totp_enabled) {
      container.append(el('p', { id: 'codes-left' }, t('account.codesLeft', { n: me.recovery_codes_left })));
      const regen = el('button', { type: 'button', class: 'btn', id: 'regenerate-codes' }, t('account.regenerate'));
      regen.addEventListener('click', async () => {
        if (!confirm(t('account.regenerateConfirm'))) return;
        // New codes replace the old ones: the box asks for the password again.
        const password = await askPassword(work, t('account.confirmPassword'));
        const r = await postJson('/api/account/recovery-codes', { password });
        if (!r.ok) {
          work.textContent = t('admin.error', { message: r.body?.error || r.status });
          return;
        }
        await showRecoveryCodes(work, r.body.recovery_codes);
        await refresh();
      });
      container.append(regen);
    } else {
      if (me.totp_required) container.append(el('p', { class: 'form-error' }, t('account.totpRequired')));
      const start = el('button', { type: 'button', class: 'btn btn-primary', id: 'enable-totp' }, t('totp.start'));
      start.addEventListener('click', async () => {
        start.hidden = true;
        try {
          await enrolTotp(work);
          await refresh();
        } catch (e) {
          work.textContent = t('admin.error', { message: e.message });
          start.hidden = false;
        }
      });
      container.append(start);
    }
    const change = el('button', { type: 'button', class: 'btn', id: 'change-password' }, t('account.changePassword'));
    change.addEventListener('click', () => changePassword(work));
    container.append(change);
    container.append(work);
  };
  render();
  onLangChange(() => { if (!container.querySelector('#totp-form, #recovery-codes')) render(); });
  return me;
}

// As the /account page's own script.
if (document.body.dataset.page === 'account') {
  applyTranslations();
  document.title = t('account.title');
  onLangChange(() => { document.title = t('account.title'); });
  bindSwitcher(document.getElementById('lang-switch'));
  const me = await mountAccount(document.getElementById('my-account'));
  if (me?.role === 'admin') document.getElementById('admin-link').hidden = false;
}
