// Two-factor enrolment, shared by the sign-in page (accounts that must turn it on first) and
// "my account": asks the box for a new secret, shows its QR code (drawn by the box) and the
// key as text, confirms with a first code, then shows the recovery codes once.
import { t } from './i18n.js';

/** JSON POST to the box; resolves to { ok, status, body }. */
export async function postJson(path, body = {}) {
  const res = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  let json = null;
  try {
    json = await res.json();
  } catch {
    // 204 or a non-JSON error page: the status alone says enough.
  }
  return { ok: res.ok, status: res.status, body: json };
}

function el(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}

/** Shows a list of recovery codes with a "saved them" button; resolves when pressed. */
export function showRecoveryCodes(container, codes) {
  container.replaceChildren();
  container.append(el('h2', {}, t('totp.codesHeading')), el('p', { class: 'muted' }, t('totp.codesIntro')));
  const list = el('ol', { class: 'recovery-codes', id: 'recovery-codes' });
  for (const c of codes) list.append(el('li', {}, c));
  const done = el('button', { type: 'button', class: 'btn btn-primary', id: 'recovery-done' }, t('totp.codesDone'));
  container.append(list, done);
  done.focus();
  return new Promise((resolve) => done.addEventListener('click', () => resolve(), { once: true }));
}

/**
 * Runs the enrolment inside container. Resolves once two-factor login is on and the user has
 * seen the recovery codes; rejects with an Error carrying the box's message if setup fails.
 */
export async function enrolTotp(container) {
  const setup = await postJson('/api/account/totp/setup');
  if (!setup.ok) throw new Error(setup.body?.error || `HTTP ${setup.status}`);
  const uri = new URL(setup.body.otpauth_uri);
  const secret = uri.searchParams.get('secret') || '';
  container.replaceChildren();
  const qr = el('div', { class: 'totp-qr', id: 'totp-qr', role: 'img', 'aria-label': 'QR code' });
  // The SVG is drawn by the box from the otpauth URI; it has no script and no external links.
  qr.innerHTML = setup.body.qr_svg;
  const key = el('code', { id: 'totp-secret', class: 'totp-secret' }, secret.replace(/(.{4})/g, '$1 ').trim());
  const form = el('form', { id: 'totp-form', novalidate: '' });
  const label = el('label', { for: 'totp-code' }, t('totp.confirmLabel'));
  const input = el('input', {
    id: 'totp-code', name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code',
    pattern: '[0-9]{6}', maxlength: '6', required: '',
  });
  const err = el('p', { class: 'form-error', role: 'alert', id: 'totp-error' });
  err.hidden = true;
  const submit = el('button', { type: 'submit', class: 'btn btn-primary btn-wide', id: 'totp-submit' }, t('totp.confirm'));
  form.append(label, input, err, submit);
  container.append(el('p', {}, t('totp.scan')), qr, el('p', { class: 'muted' }, t('totp.secret')), key, form);
  input.focus();
  const codes = await new Promise((resolve) => {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      submit.disabled = true;
      try {
        const res = await postJson('/api/account/totp/confirm', { code: input.value.trim() });
        if (res.ok) {
          resolve(res.body.recovery_codes);
          return;
        }
        err.textContent = res.status === 400 ? t('totp.badCode') : (res.body?.error || `HTTP ${res.status}`);
        err.hidden = false;
        input.select();
      } catch {
        err.textContent = t('login.network');
        err.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });
  });
  await showRecoveryCodes(container, codes);
}
