// Classroom controls on the room page: lock and unlock, messages, power and sessions, approved
// commands and links, for the whole room, a selection of stations, or the station in focus.
//
// The action bar sits at the bottom of the screen, under the teacher's thumb. Each action
// answers with a report panel that names every station it reached and every station it did
// not (offline stations are listed, never silently skipped); messages and commands keep their
// report up to date with read receipts and per-station results.
import { t, onLangChange } from './i18n.js';

const $ = (id) => document.getElementById(id);

/** How long a report keeps following read receipts or command results. */
const FOLLOW_MS = 5 * 60_000;
const FOLLOW_EVERY_MS = 1500;

export class Controls {
  /**
   * @param {object} room  what the room page knows: `layout()` (tiles), `view()` ('mosaic' or
   *   'focus'), `focusId()`, `onSelection()` (redraw the tiles), `onAuthLost()`.
   */
  constructor(room) {
    this.room = room;
    this.selecting = false;
    this.selected = new Set();
    this.followTimer = null; // the timer of the report being kept up to date
    this.commands = null; // the approved commands, loaded on first use
    this.pendingPower = null;

    this.bar = $('actionbar');
    this.target = $('act-target');
    this.selectBtn = $('act-select');
    this.selectbar = $('selectbar');
    this.selectCount = $('select-count');
    this.report = {
      root: $('report'),
      title: $('report-title'),
      summary: $('report-summary'),
      list: $('report-list'),
    };

    this.selectBtn.addEventListener('click', () => this.setSelecting(!this.selecting));
    $('select-all').addEventListener('click', () => {
      for (const tile of this.tiles()) this.selected.add(tile.station_id);
      this.changed();
    });
    $('select-none').addEventListener('click', () => {
      this.selected.clear();
      this.changed();
    });
    $('act-lock').addEventListener('click', () => this.lock(true));
    $('act-unlock').addEventListener('click', () => this.lock(false));
    $('act-message').addEventListener('click', () => this.openSheet('sheet-message'));
    $('act-power').addEventListener('click', () => this.openSheet('sheet-power'));
    $('act-command').addEventListener('click', () => this.openCommands());
    $('act-url').addEventListener('click', () => this.openSheet('sheet-url'));
    $('report-close').addEventListener('click', () => this.closeReport());

    for (const dialog of document.querySelectorAll('dialog.sheet')) {
      for (const b of dialog.querySelectorAll('[data-cancel]')) {
        b.addEventListener('click', () => dialog.close());
      }
    }
    this.bindMessage();
    this.bindPower();
    this.bindCommand();
    this.bindUrl();
    onLangChange(() => this.render());
  }

  tiles() {
    return this.room.layout()?.tiles ?? [];
  }

  nameOf(id) {
    return this.tiles().find((x) => x.station_id === id)?.name ?? t('room.station', { id });
  }

  /**
   * Who an action is for: the station in focus, the selection, or the whole room (null,
   * which the box also applies to stations enrolled later).
   */
  targetIds() {
    if (this.room.view() === 'focus' && this.room.focusId() !== null) return [this.room.focusId()];
    if (this.selecting && this.selected.size > 0) return [...this.selected].sort((a, b) => a - b);
    return null;
  }

  targetText() {
    const ids = this.targetIds();
    if (ids === null) return t('act.targetRoom');
    if (ids.length === 1) return t('act.targetOne', { name: this.nameOf(ids[0]) });
    return t('act.targetSome', { n: ids.length });
  }

  // ---- selection ---------------------------------------------------------------------------

  setSelecting(on) {
    this.selecting = on;
    if (!on) this.selected.clear();
    // Choosing stations starts a new action; the last report would hide tiles.
    if (on) this.closeReport();
    this.changed();
  }

  /** A tap on a tile in selection mode; returns false when the tap should open the station. */
  tap(id) {
    if (!this.selecting || this.room.view() !== 'mosaic') return false;
    if (this.selected.has(id)) this.selected.delete(id);
    else this.selected.add(id);
    this.changed();
    return true;
  }

  isSelected(id) {
    return this.selecting && this.selected.has(id);
  }

  changed() {
    // Stations that left the room cannot stay selected.
    const known = new Set(this.tiles().map((x) => x.station_id));
    for (const id of this.selected) if (!known.has(id)) this.selected.delete(id);
    this.render();
    this.room.onSelection();
  }

  render() {
    const view = this.room.view();
    this.bar.hidden = view !== 'mosaic' && view !== 'focus';
    document.body.classList.toggle('selecting', this.selecting && view === 'mosaic');
    this.selectBtn.hidden = view !== 'mosaic';
    this.selectBtn.setAttribute('aria-pressed', String(this.selecting));
    this.selectbar.hidden = !(this.selecting && view === 'mosaic');
    this.selectCount.textContent = t('act.selected', { n: this.selected.size });
    this.target.textContent = this.targetText();
    for (const el of document.querySelectorAll('dialog.sheet [data-target]')) {
      el.textContent = this.targetText();
    }
  }

  // ---- talking to the box ------------------------------------------------------------------

  /** POSTs JSON; returns the answer, or throws an Error whose message is the box's reason. */
  async post(url, body) {
    let res;
    try {
      res = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch {
      throw new Error(t('act.network'));
    }
    return this.answer(res);
  }

  async get(url) {
    let res;
    try {
      res = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
    } catch {
      throw new Error(t('act.network'));
    }
    return this.answer(res);
  }

  async answer(res) {
    if (res.status === 401) {
      this.room.onAuthLost();
      throw new Error(t('act.sessionEnded'));
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      // Some errors have no JSON body; the status says enough.
    }
    if (!res.ok) {
      const reason = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
      throw new Error(t('act.refused', { reason }));
    }
    return body;
  }

  // ---- reports -----------------------------------------------------------------------------

  closeReport() {
    if (this.followTimer) clearTimeout(this.followTimer);
    this.followTimer = null;
    this.report.root.hidden = true;
  }

  /**
   * Shows a report: a title, a one-line summary and one line per station
   * (`{ name, state, text, detail }`, state being ok, pending, offline or bad).
   */
  showReport(kind, title, summary, lines) {
    const r = this.report;
    r.root.hidden = false;
    r.root.dataset.kind = kind;
    r.title.textContent = title;
    r.summary.textContent = summary;
    r.list.replaceChildren(...lines.map((line) => {
      const li = document.createElement('li');
      li.dataset.state = line.state;
      li.dataset.station = line.name;
      const name = document.createElement('span');
      name.className = 'report-name';
      name.textContent = line.name;
      const text = document.createElement('span');
      text.className = 'report-state';
      text.textContent = line.text;
      li.append(name, text);
      if (line.detail) {
        const pre = document.createElement('pre');
        pre.className = 'report-detail';
        pre.textContent = line.detail;
        li.append(pre);
      }
      return li;
    }));
  }

  showError(title, err) {
    this.closeReport();
    this.showReport('error', title, err.message, []);
  }

  /** The common answer of orders: who got it, who is offline. */
  sentLines(report, okText, offlineText) {
    return [
      ...report.sent_to.map((name) => ({ name, state: 'ok', text: okText })),
      ...report.offline.map((name) => ({ name, state: 'offline', text: offlineText })),
    ];
  }

  sentSummary(report) {
    const summary = t('act.sentTo', { n: report.sent_to.length });
    return report.offline.length
      ? `${summary} ${t('act.offlineCount', { n: report.offline.length })}`
      : summary;
  }

  /** Re-runs `step` every few seconds while it returns true, until the report is closed. */
  keepFollowing(step) {
    const until = Date.now() + FOLLOW_MS;
    const tick = async () => {
      this.followTimer = null;
      let again = false;
      try {
        again = await step();
      } catch (e) {
        console.warn(`lanterne: ${e.message}`);
        again = true;
      }
      if (again && Date.now() < until && !this.report.root.hidden) {
        this.followTimer = setTimeout(tick, FOLLOW_EVERY_MS);
      }
    };
    this.followTimer = setTimeout(tick, FOLLOW_EVERY_MS);
  }

  /**
   * Shows the report of an order sent to stations (`sent`: id, sent_to, offline) and keeps it
   * up to date until every station that got it has answered. `fetch` returns the rows
   * `{ name, delivered, ... }` the box has now, `answered(row)` says whether a row is final,
   * `line(row)` draws a delivered row, `summary(answered, delivered)` heads the report.
   */
  follow(sent, kind, title, { answered, summary, line, fetch }) {
    const render = (rows) => {
      const delivered = rows.filter((r) => r.delivered);
      const done = delivered.filter(answered).length;
      let head = summary(done, delivered.length);
      if (sent.offline.length) head += ` ${t('act.offlineCount', { n: sent.offline.length })}`;
      this.showReport(kind, title, head, rows.map((r) => (r.delivered
        ? line(r)
        : { name: r.name, state: 'offline', text: t('act.offline') })));
      return done < delivered.length;
    };
    render([
      ...sent.sent_to.map((name) => ({ name, delivered: true })),
      ...sent.offline.map((name) => ({ name, delivered: false })),
    ]);
    this.keepFollowing(async () => {
      const rows = await fetch();
      return rows ? render(rows) : false;
    });
  }

  // ---- lock --------------------------------------------------------------------------------

  async lock(locked) {
    const stations = this.targetIds();
    const title = t(locked ? 'lock.doneTitle' : 'unlock.doneTitle');
    this.closeReport();
    try {
      const body = { locked };
      if (stations !== null) body.stations = stations;
      const report = await this.post('/api/room/lock', body);
      this.showReport('lock', title, this.sentSummary(report), this.sentLines(
        report,
        t(locked ? 'lock.sent' : 'unlock.sent'),
        t(locked ? 'lock.offline' : 'unlock.offline'),
      ));
    } catch (e) {
      this.showError(title, e);
    }
  }

  // ---- sheets ------------------------------------------------------------------------------

  openSheet(id) {
    const dialog = $(id);
    this.render();
    for (const el of dialog.querySelectorAll('[data-error]')) el.hidden = true;
    const confirm = dialog.querySelector('.confirm');
    if (confirm) confirm.hidden = true;
    dialog.showModal();
    return dialog;
  }

  sheetError(dialog, err) {
    const el = dialog.querySelector('[data-error]');
    el.textContent = err.message;
    el.hidden = false;
  }

  /** The order's body with its target added (no `stations`: the whole room). */
  withTarget(body) {
    const stations = this.targetIds();
    return stations === null ? body : { ...body, stations };
  }

  /**
   * Sends a sheet's order. On success the sheet closes and the answer is returned; on a
   * refusal the sheet stays open with the box's reason, and null is returned.
   */
  async submit(dialog, url, body) {
    try {
      const answer = await this.post(url, this.withTarget(body));
      dialog.close();
      this.closeReport();
      return answer;
    } catch (e) {
      this.sheetError(dialog, e);
      return null;
    }
  }

  // ---- messages ----------------------------------------------------------------------------

  bindMessage() {
    const dialog = $('sheet-message');
    const text = $('message-text');
    const count = $('message-count');
    const update = () => {
      count.textContent = t('msg.count', { n: text.value.length, max: 500 });
    };
    text.addEventListener('input', update);
    update();
    $('message-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const sent = await this.submit(dialog, '/api/messages', { text: text.value });
      if (!sent) return;
      text.value = '';
      update();
      this.followMessage(sent);
    });
  }

  followMessage(sent) {
    this.follow(sent, 'message', t('msg.doneTitle'), {
      answered: (x) => x.read,
      summary: (read, n) => t('msg.readCount', { read, n }),
      line: (x) => (x.read
        ? { name: x.name, state: 'ok', text: t('msg.read') }
        : { name: x.name, state: 'pending', text: t('msg.unread') }),
      fetch: async () => (await this.get('/api/messages')).find((m) => m.id === sent.id)?.targets,
    });
  }

  // ---- power and sessions ------------------------------------------------------------------

  bindPower() {
    const dialog = $('sheet-power');
    const confirm = $('power-confirm');
    for (const b of dialog.querySelectorAll('[data-power]')) {
      b.addEventListener('click', () => {
        const action = b.dataset.power;
        if (action === 'wake' || action === 'open-session') {
          this.power(dialog, action);
          return;
        }
        // Ending a student's work needs a second tap.
        this.pendingPower = action;
        const ids = this.targetIds();
        $('power-confirm-text').textContent = t(`power.confirm.${action}`, {
          target: ids === null ? t('act.targetRoomLower') : this.targetText(),
        });
        confirm.hidden = false;
        $('power-confirm-go').focus();
      });
    }
    $('power-confirm-go').addEventListener('click', () => {
      if (this.pendingPower) this.power(dialog, this.pendingPower);
    });
  }

  async power(dialog, action) {
    const title = t(`power.doneTitle.${action}`);
    this.pendingPower = null;
    if (action === 'wake') {
      const report = await this.submit(dialog, '/api/stations/wake', {});
      if (!report) return;
      this.showReport('wake', title, t('power.wakeSummary', { n: report.sent_to.length }), [
        ...report.sent_to.map((name) => ({ name, state: 'ok', text: t('power.wakeSent') })),
        ...report.no_mac.map((name) => ({ name, state: 'bad', text: t('power.noMac') })),
      ]);
      return;
    }
    const countdown = action === 'open-session' ? 0 : Number($('power-countdown').value);
    const sent = await this.submit(dialog, '/api/stations/power', { action, countdown_s: countdown });
    if (sent) this.followOrder('power', title, sent);
  }

  /** Follows a power or link order until every station has answered (done or refused). */
  followOrder(kind, title, sent) {
    this.follow(sent, kind, title, {
      answered: (r) => r.done,
      summary: (done, n) => t('order.doneCount', { done, n }),
      line: (r) => {
        if (!r.done) return { name: r.name, state: 'pending', text: t('order.pending') };
        if (r.ok) return { name: r.name, state: 'ok', text: t('order.done') };
        return { name: r.name, state: 'bad', text: t('order.failed'), detail: r.error ?? '' };
      },
      fetch: async () => (await this.get(`/api/orders/${sent.id}`)).results,
    });
  }

  // ---- approved commands -------------------------------------------------------------------

  async openCommands() {
    const dialog = this.openSheet('sheet-command');
    if (this.commands === null) {
      try {
        this.commands = await this.get('/api/commands');
      } catch (e) {
        this.sheetError(dialog, e);
        return;
      }
      this.fillCommands();
    }
  }

  fillCommands() {
    const select = $('command-name');
    const list = this.commands ?? [];
    $('command-none').hidden = list.length > 0;
    $('command-run').disabled = list.length === 0;
    select.replaceChildren(...list.map((c) => {
      const o = document.createElement('option');
      o.value = c.name;
      o.textContent = c.name;
      return o;
    }));
    select.onchange = () => this.fillArgs();
    this.fillArgs();
  }

  fillArgs() {
    const c = (this.commands ?? []).find((x) => x.name === $('command-name').value);
    const arg = $('command-arg');
    const none = document.createElement('option');
    none.value = '';
    none.textContent = t('cmd.noArg');
    arg.replaceChildren(none, ...(c?.allowed_args ?? []).map((a) => {
      const o = document.createElement('option');
      o.value = a;
      o.textContent = a;
      return o;
    }));
    arg.disabled = !c || c.allowed_args.length === 0;
    $('command-line').textContent = c ? [c.program, ...c.args].join(' ') : '';
  }

  bindCommand() {
    const dialog = $('sheet-command');
    $('command-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = $('command-name').value;
      const arg = $('command-arg').value;
      const sent = await this.submit(dialog, '/api/commands/run', { name, args: arg ? [arg] : [] });
      if (sent) this.followCommand(name, sent);
    });
  }

  followCommand(name, sent) {
    this.follow(sent, 'command', t('cmd.doneTitle', { name }), {
      answered: (r) => r.done,
      summary: (done, n) => t('cmd.doneCount', { done, n }),
      line: (r) => {
        if (!r.done) return { name: r.name, state: 'pending', text: t('cmd.running') };
        if (r.error) return { name: r.name, state: 'bad', text: r.error };
        const output = [r.stdout, r.stderr].filter((x) => x).join('\n').trim();
        return {
          name: r.name,
          state: r.exit_code === 0 ? 'ok' : 'bad',
          text: t('cmd.exit', { code: r.exit_code ?? '?' }),
          detail: output,
        };
      },
      fetch: async () => (await this.get(`/api/commands/runs/${sent.id}`)).results,
    });
  }

  // ---- links -------------------------------------------------------------------------------

  bindUrl() {
    const dialog = $('sheet-url');
    $('url-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const url = $('url-text').value.trim();
      const sent = await this.submit(dialog, '/api/stations/open-url', { url });
      if (sent) this.followOrder('url', t('url.doneTitle'), sent);
    });
  }
}
