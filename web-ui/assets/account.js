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
        const r = await postJson('/api/account/recovery-codes');
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
