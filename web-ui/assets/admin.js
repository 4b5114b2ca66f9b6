// The admin pages: accounts, stations (revoke, delete), the audit log with its filters and
// exports, the room link, the documents, the screenshot list and "my account". Every action goes through the box's
// JSON API, which checks the admin role itself; this page only presents it.
import { t, has, applyTranslations, bindSwitcher, onLangChange, getLang } from './i18n.js';
import { mountAccount } from './account.js';
import { postJson } from './totp-enrol.js';

applyTranslations();
document.title = t('admin.title');
bindSwitcher(document.getElementById('lang-switch'));

const errorBox = document.getElementById('admin-error');

function showError(body, status) {
  if (body?.totp_setup_required) {
    // Admins must turn on two-factor login before using anything else.
    errorBox.textContent = t('account.totpRequired');
    document.getElementById('my-account').scrollIntoView();
  } else {
    // The password rule comes back as a key ('password': password_too_short) to translate.
    const rule = /'password': (password_\w+)/.exec(body?.error || '');
    const message = rule && has(`pwrule.${rule[1]}`) ? t(`pwrule.${rule[1]}`) : (body?.error || `HTTP ${status}`);
    errorBox.textContent = t('admin.error', { message });
  }
  errorBox.hidden = false;
}

async function getJson(path) {
  const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (res.status === 401) {
    location.replace('/login');
    throw new Error('signed out');
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // The status decides.
  }
  return { ok: res.ok, status: res.status, body };
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.append(td);
  return td;
}

function button(label, onClick, extraClass = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `btn btn-small ${extraClass}`.trim();
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

/** A same-origin DELETE; the box checks the Origin header like for a POST. */
async function deleteJson(path) {
  const res = await fetch(path, { method: 'DELETE', credentials: 'same-origin' });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // 204: nothing to read.
  }
  return { ok: res.ok, status: res.status, body };
}

/** Who is signed in: an admin cannot delete their own account (the box refuses it too). */
let me = null;

// ---- accounts ----

const accountsStatus = document.getElementById('accounts-status');

async function loadAccounts() {
  if (!me) {
    const r = await getJson('/api/me');
    if (r.ok) me = r.body.username;
  }
  const res = await getJson('/api/accounts');
  if (!res.ok) return showError(res.body, res.status);
  const tbody = document.querySelector('#accounts-table tbody');
  tbody.replaceChildren();
  for (const a of res.body) {
    const tr = document.createElement('tr');
    tr.dataset.username = a.username;
    cell(tr, a.username);
    cell(tr, t(`role.${a.role}`));
    cell(tr, t(a.disabled ? 'admin.disabled' : 'admin.enabled'));
    cell(tr, t(a.totp_enabled ? 'admin.yes' : 'admin.no'));
    const actions = cell(tr, '');
    actions.append(
      button(t(a.disabled ? 'admin.enable' : 'admin.disable'), async () => {
        const r = await postJson(`/api/accounts/${encodeURIComponent(a.username)}/disabled`,
          { disabled: !a.disabled });
        if (!r.ok) return showError(r.body, r.status);
        loadAccounts();
      }),
      ...(a.totp_enabled ? [button(t('admin.resetTotp'), async () => {
        if (!confirm(t('admin.resetTotpConfirm', { name: a.username }))) return;
        const r = await postJson(`/api/accounts/${encodeURIComponent(a.username)}/totp/reset`);
        if (!r.ok) return showError(r.body, r.status);
        accountsStatus.textContent = t('admin.resetTotpDone', { name: a.username });
        loadAccounts();
      })] : []),
      button(t('admin.resetPassword'), async () => {
        const pw = prompt(t('admin.resetPrompt', { name: a.username }));
        if (!pw) return;
        const r = await postJson(`/api/accounts/${encodeURIComponent(a.username)}/password`,
          { password: pw });
        if (!r.ok) return showError(r.body, r.status);
        accountsStatus.textContent = t('admin.resetDone', { name: a.username });
      }),
      ...(a.username === me ? [] : [button(t('admin.deleteAccount'), async () => {
        if (!confirm(t('admin.deleteAccountConfirm', { name: a.username }))) return;
        const r = await deleteJson(`/api/accounts/${encodeURIComponent(a.username)}`);
        if (!r.ok) return showError(r.body, r.status);
        accountsStatus.textContent = t('admin.deleteAccountDone', { name: a.username });
        loadAccounts();
        loadAudit();
      }, 'btn-danger')]),
    );
    tbody.append(tr);
  }
}

document.getElementById('create-account').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  const f = ev.target;
  const username = f.username.value.trim();
  const r = await postJson('/api/accounts', { username, role: f.role.value, password: f.password.value });
  if (!r.ok) return showError(r.body, r.status);
  accountsStatus.textContent = t('admin.created', { name: username });
  f.reset();
  loadAccounts();
});

// ---- stations ----

const stationsStatus = document.getElementById('stations-status');

async function loadStations() {
  const res = await getJson('/api/stations');
  if (!res.ok) return showError(res.body, res.status);
  const tbody = document.querySelector('#stations-table tbody');
  tbody.replaceChildren();
  for (const s of res.body) {
    const tr = document.createElement('tr');
    tr.dataset.stationId = String(s.id);
    cell(tr, s.name);
    cell(tr, s.hostname);
    cell(tr, s.mac || '—');
    cell(tr, t(s.revoked ? 'admin.revoked' : 'admin.enrolled'));
    const actions = cell(tr, '');
    if (!s.revoked) {
      actions.append(button(t('admin.revoke'), async () => {
        if (!confirm(t('admin.revokeConfirm', { name: s.name }))) return;
        const r = await postJson(`/api/stations/${s.id}/revoke`);
        if (!r.ok) return showError(r.body, r.status);
        stationsStatus.textContent = t('admin.revokeDone', { name: s.name });
        loadStations();
        loadAudit();
      }, 'btn-danger'));
    }
    actions.append(button(t('admin.deleteStation'), async () => {
      if (!confirm(t('admin.deleteStationConfirm', { name: s.name }))) return;
      const r = await deleteJson(`/api/stations/${s.id}`);
      if (!r.ok) return showError(r.body, r.status);
      stationsStatus.textContent = t('admin.deleteStationDone', { name: s.name });
      loadStations();
      loadAudit();
    }, 'btn-danger'));
    tbody.append(tr);
  }
  document.getElementById('stations-empty').hidden = res.body.length > 0;
}

// ---- audit ----

/** The filter form as API query parameters; dates are local days, the end day included. */
function auditQuery() {
  const f = document.getElementById('audit-filter');
  const q = new URLSearchParams();
  for (const k of ['actor', 'action', 'target']) if (f[k].value.trim()) q.set(k, f[k].value.trim());
  if (f.since.value) q.set('since_us', String(new Date(`${f.since.value}T00:00`).getTime() * 1000));
  if (f.until.value) {
    const end = new Date(`${f.until.value}T00:00`);
    end.setDate(end.getDate() + 1);
    q.set('until_us', String(end.getTime() * 1000));
  }
  return q;
}

async function loadAudit() {
  const q = auditQuery();
  const qs = q.toString() ? `?${q}` : '';
  document.getElementById('export-csv').href = `/api/audit.csv${qs}`;
  document.getElementById('export-json').href = `/api/audit${qs}`;
  q.set('limit', '200');
  const res = await getJson(`/api/audit?${q}`);
  if (!res.ok) return showError(res.body, res.status);
  const tbody = document.querySelector('#audit-table tbody');
  tbody.replaceChildren();
  const fmt = new Intl.DateTimeFormat(getLang(), { dateStyle: 'short', timeStyle: 'medium' });
  for (const r of res.body) {
    const tr = document.createElement('tr');
    cell(tr, fmt.format(new Date(r.at_us / 1000)));
    for (const k of ['actor', 'action', 'target', 'result', 'detail']) cell(tr, r[k]);
    tbody.append(tr);
  }
  document.getElementById('audit-empty').hidden = res.body.length > 0;
}

document.getElementById('audit-filter').addEventListener('submit', (ev) => {
  ev.preventDefault();
  errorBox.hidden = true;
  loadAudit();
});

// ---- room link ----

document.getElementById('regenerate-link').addEventListener('click', async () => {
  if (!confirm(t('admin.regenerateConfirm'))) return;
  const r = await postJson('/api/room/link');
  if (!r.ok) return showError(r.body, r.status);
  const a = document.getElementById('room-link-url');
  a.href = r.body.url;
  a.textContent = r.body.url;
  a.hidden = false;
  const qr = document.getElementById('room-link-qr');
  // Drawn by the box from the link; no script, no external reference.
  qr.innerHTML = r.body.qr_svg;
  qr.hidden = false;
  loadAudit();
});

// ---- screenshots ----

async function loadScreenshots() {
  const state = document.getElementById('screenshots-state');
  const list = document.getElementById('screenshots-list');
  list.replaceChildren();
  const res = await getJson('/api/screenshots');
  if (res.status === 403 && res.body?.screenshots_disabled) {
    state.textContent = t('admin.screenshotsOff');
    return;
  }
  if (!res.ok) return showError(res.body, res.status);
  state.textContent = res.body.length ? '' : t('admin.screenshotsEmpty');
  const fmt = new Intl.DateTimeFormat(getLang(), { dateStyle: 'short', timeStyle: 'medium' });
  for (const s of res.body) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `/api/screenshots/${s.id}.png`;
    a.target = '_blank';
    a.textContent = t('admin.screenshotOf', {
      station: s.station_name, by: s.taken_by, when: fmt.format(new Date(s.taken_at_us / 1000)),
    });
    li.append(a);
    list.append(li);
  }
}

async function loadAll() {
  errorBox.hidden = true;
  await Promise.all([loadAccounts(), loadStations(), loadAudit(), loadScreenshots()]);
}

onLangChange(() => {
  document.title = t('admin.title');
  loadAll();
});
mountAccount(document.getElementById('my-account'));
loadAll();
