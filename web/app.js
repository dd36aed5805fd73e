/* bcdr dashboard: reads the agent's HTTP API (/api/v1) every second and draws
 * the plan's health. Plain JS, no build step; Chart.js draws the history.
 * The API token (for ack, silence, drain, switchover) lives in sessionStorage and is sent
 * only in the Authorization header: never in a URL, never logged. */
'use strict';
(() => {
  const API = 'api/v1';        // relative: works behind a path prefix too
  const POLL_MS = 1000;        // a change shows within 2 s
  const HIDDEN_POLL_MS = 5000; // a background tab polls less
  const TOKEN_KEY = 'bcdr.token';
  const STATES = ['critical', 'warning', 'unknown', 'ok'];
  const EVENT_KINDS = ['state', 'action', 'notification', 'backup', 'copy', 'drill', 'lb', 'cluster', 'agent'];
  const RANGES = [['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400], ['7d', 604800]];

  const $ = (sel, root = document) => root.querySelector(sel);
  const main = $('#main');
  const live = $('#live');
  const banner = $('#banner');

  let generation = 0;   // bumps on each route change; late answers are dropped
  let timer = null;
  let lastUpdate = null;
  let chart = null;
  let view = null;      // the current page: {name, refresh(gen)}
  const missing = new Set(); // endpoints this agent does not serve (404)

  /* ---------- small helpers ---------- */

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }
  function unlocked() { return token() !== ''; }

  function parseTime(s) {
    if (!s) return null;
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : t;
  }

  function fmtDuration(sec) {
    if (sec === null || sec === undefined || !Number.isFinite(Number(sec))) return '—';
    sec = Math.max(0, Math.round(Number(sec)));
    const d = Math.floor(sec / 86400), hr = Math.floor(sec % 86400 / 3600);
    const m = Math.floor(sec % 3600 / 60), s = sec % 60;
    const two = (a, ua, b, ub) => b ? `${a}${ua} ${b}${ub}` : `${a}${ua}`;
    if (d) return two(d, 'd', hr, 'h');
    if (hr) return two(hr, 'h', m, 'm');
    if (m) return two(m, 'm', s, 's');
    return `${s}s`;
  }

  function pad(n) { return String(n).padStart(2, '0'); }
  function fmtClock(t) {
    const d = new Date(t);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtDate(t) {
    const d = new Date(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(t)}`;
  }

  /* A <time> showing "3m 20s ago", the exact local time on hover and for
   * screen readers' "datetime". */
  function ago(iso, suffix = ' ago') {
    const t = parseTime(iso);
    if (t === null) return h('span', { class: 'muted' }, '—');
    const sec = (Date.now() - t) / 1000;
    const text = sec >= 0 ? fmtDuration(sec) + suffix : 'in ' + fmtDuration(-sec);
    return h('time', { datetime: iso, title: fmtDate(t) }, text);
  }

  function fmtNumber(v) {
    if (v === null || v === undefined || v === '') return '—';
    const n = Number(v);
    if (!Number.isFinite(n)) return String(v);
    if (Math.abs(n) >= 1000 || Number.isInteger(n)) return n.toLocaleString('en-US', { maximumFractionDigits: 1 });
    return n.toPrecision(4).replace(/\.?0+$/, '');
  }
  function fmtValue(v, unit) {
    if (v === null || v === undefined) return '—';
    if (unit === 's' && Math.abs(Number(v)) < 1) return fmtNumber(Number(v) * 1000) + ' ms';
    if (unit === 'bytes' || unit === 'B') return fmtBytes(v);
    return fmtNumber(v) + (unit ? ' ' + unit : '');
  }
  function fmtBytes(n) {
    if (n === null || n === undefined || !Number.isFinite(Number(n))) return '—';
    n = Number(n);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
  }
  function fmtPercent(f, digits = 3) {
    if (f === null || f === undefined || !Number.isFinite(Number(f))) return '—';
    return (Number(f) * 100).toFixed(digits).replace(/\.?0+$/, '') + '%';
  }

  function stateClass(s) {
    s = String(s || 'unknown').toLowerCase();
    if (s === 'ok' || s === 'ready' || s === 'up' || s === 'resolved') return 'ok';
    if (s === 'warning' || s === 'drain' || s === 'draining' || s === 'pending') return 'warning';
    if (s === 'critical' || s === 'down' || s === 'firing' || s === 'failed') return 'critical';
    return 'unknown';
  }
  function badge(text, cls) {
    const label = text === null || text === undefined || text === '' ? 'unknown' : String(text);
    return h('span', { class: 'badge ' + (cls || stateClass(label)) }, label);
  }
  function okBadge(ok, yes = 'ok', no = 'failed') {
    if (ok === null || ok === undefined) return badge('n/a', 'neutral');
    return ok ? badge(yes, 'ok') : badge(no, 'critical');
  }

  function checkLink(name) {
    return h('a', { href: '#/check/' + encodeURIComponent(name), 'data-key': 'check-link-' + name }, name);
  }

  function labelsOf(obj, skip = []) {
    const l = Object.entries((obj && obj.labels) || {}).filter(([k]) => !skip.includes(k));
    if (!l.length) return null;
    return h('span', { class: 'labels' }, l.map(([k, v]) => h('span', {}, `${k}=${v}`)));
  }

  function table(headers, rows, opts = {}) {
    return h('div', { class: 'table-wrap' },
      h('table', {},
        opts.caption ? h('caption', { class: 'sr' }, opts.caption) : null,
        h('thead', {}, h('tr', {}, headers.map(c => {
          const [text, cls] = Array.isArray(c) ? c : [c, null];
          return h('th', { scope: 'col', class: cls }, text);
        }))),
        h('tbody', {}, rows)));
  }

  function panel(id, title, count, body, opts = {}) {
    return h('section', { class: 'panel' + (opts.wide ? ' wide' : ''), id, 'aria-labelledby': id + '-h' },
      h('header', {}, h('h2', { id: id + '-h' }, title),
        count !== null && count !== undefined ? h('span', { class: 'count' }, count) : null,
        opts.tools || null),
      body);
  }

  function empty(text) { return h('p', { class: 'empty' }, text); }

  /* Replaces container's content when it changed, keeping keyboard focus on
   * the element with the same data-key so a live update never steals it. */
  function update(container, node) {
    if (!container) return;
    const next = h('div', {}, node);
    if (container.innerHTML === next.innerHTML) return;
    const active = document.activeElement;
    const key = active && container.contains(active) ? active.getAttribute('data-key') : null;
    container.replaceChildren(...next.childNodes);
    if (key) {
      const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (again) again.focus();
    }
  }

  /* ---------- the API ---------- */

  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  async function api(path, opts = {}) {
    const headers = { Accept: 'application/json' };
    if (token()) headers.Authorization = 'Bearer ' + token();
    const init = { method: opts.method || 'GET', headers, cache: 'no-store', credentials: 'omit' };
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (e) {
      throw new ApiError('cannot reach the agent', 0);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : `${res.status} ${res.statusText}`;
      throw new ApiError(msg, res.status);
    }
    return data;
  }

  /* GET of an optional endpoint: null when this agent does not serve it, so
   * its section stays hidden (and it is not asked again). */
  async function optional(path) {
    const base = path.split('?')[0];
    if (missing.has(base)) return null;
    try {
      return await api(path);
    } catch (e) {
      if (e.status === 404 || e.status === 501) { missing.add(base); return null; }
      throw e;
    }
  }

  function asList(x) { return Array.isArray(x) ? x : []; }

  /* ---------- token and confirmation dialogs ---------- */

  const tokenDialog = $('#token-dialog');
  const tokenInput = $('#token-input');
  const tokenButton = $('#token-button');
  let tokenWaiter = null;

  function showTokenState() {
    tokenButton.textContent = unlocked() ? 'Lock' : 'Unlock actions';
    tokenButton.setAttribute('aria-pressed', unlocked() ? 'true' : 'false');
    document.body.classList.toggle('unlocked', unlocked());
  }

  function askToken() {
    return new Promise(resolve => {
      tokenWaiter = resolve;
      tokenInput.value = '';
      tokenDialog.showModal();
      tokenInput.focus();
    });
  }

  $('#token-form').addEventListener('submit', ev => {
    ev.preventDefault();
    const t = tokenInput.value.trim();
    if (!t) return;
    sessionStorage.setItem(TOKEN_KEY, t);
    tokenInput.value = '';
    tokenDialog.close('ok');
  });
  tokenDialog.addEventListener('close', () => {
    showTokenState();
    if (tokenWaiter) { tokenWaiter(unlocked()); tokenWaiter = null; }
    refreshNow();
  });
  tokenButton.addEventListener('click', () => {
    if (unlocked()) {
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenState();
      refreshNow();
    } else {
      askToken();
    }
  });

  const confirmDialog = $('#confirm-dialog');
  const confirmForm = $('#confirm-form');
  let confirmRun = null;

  /* Asks before a write; run() does it and may throw ApiError, shown in the
   * dialog. The dialog stays open until the write succeeds or is cancelled. */
  async function confirmAction({ title, text, extra, ok, danger, run }) {
    if (!unlocked() && !(await askToken())) return;
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-extra').replaceChildren(...(extra ? [extra] : []));
    $('#confirm-error').textContent = '';
    const okButton = $('#confirm-ok');
    okButton.textContent = ok || 'Confirm';
    okButton.className = danger ? 'danger' : '';
    okButton.disabled = false;
    confirmRun = run;
    confirmDialog.showModal();
    const first = confirmDialog.querySelector('#confirm-extra input, #confirm-extra select');
    (first || okButton).focus();
  }

  confirmForm.addEventListener('submit', async ev => {
    ev.preventDefault();
    if (!confirmRun) return;
    const okButton = $('#confirm-ok');
    okButton.disabled = true;
    try {
      const message = await confirmRun();
      confirmRun = null;
      confirmDialog.close('ok');
      say(message || 'done');
      refreshNow();
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        sessionStorage.removeItem(TOKEN_KEY);
        showTokenState();
        $('#confirm-error').textContent = 'The agent refused the token: unlock again with the right one.';
      } else {
        $('#confirm-error').textContent = 'Failed: ' + e.message;
      }
      okButton.disabled = false;
    }
  });
  for (const b of document.querySelectorAll('dialog [data-close]')) {
    b.addEventListener('click', () => b.closest('dialog').close('cancel'));
  }

  /* For screen readers: what changed, not the clock ticking every second. */
  function announce(text) {
    const el = $('#announce');
    el.textContent = '';
    setTimeout(() => { el.textContent = text; }, 50);
  }

  const lastStates = new Map();
  function announceChanges(checks) {
    const changes = [];
    for (const c of checks) {
      const before = lastStates.get(c.name);
      if (before !== undefined && before !== c.state) changes.push(`${c.name} is now ${c.state}`);
      lastStates.set(c.name, c.state);
    }
    if (changes.length) announce(changes.join('; '));
  }

  let sayTimer = null;
  let sayText = '';
  function say(text) {
    announce(text);
    sayText = text;
    clearTimeout(sayTimer);
    sayTimer = setTimeout(() => { sayText = ''; }, 4000);
    showLive();
  }

  /* ---------- writes ---------- */

  function ackAlert(check) {
    confirmAction({
      title: 'Acknowledge alert',
      text: `Acknowledge the alert of check "${check}"? Notifications stop repeating; the alert stays until the check recovers.`,
      ok: 'Acknowledge',
      run: async () => {
        await api('/alerts/ack', { method: 'POST', body: { check } });
        return `acknowledged ${check}`;
      },
    });
  }

  function silenceForm(check) {
    const durations = [['15 minutes', 900], ['1 hour', 3600], ['2 hours', 7200], ['4 hours', 14400],
      ['1 day', 86400], ['1 week', 604800]];
    return h('div', {},
      h('label', { for: 'silence-check' }, 'Check', h('input', { id: 'silence-check', name: 'check', value: check || '', required: true, autocomplete: 'off' })),
      h('label', { for: 'silence-duration' }, 'Duration',
        h('select', { id: 'silence-duration', name: 'duration' },
          durations.map(([t, s]) => h('option', { value: s, selected: s === 7200 }, t)))),
      h('label', { for: 'silence-comment' }, 'Comment',
        h('input', { id: 'silence-comment', name: 'comment', placeholder: 'why, and who', autocomplete: 'off' })));
  }

  function silence(check) {
    const form = silenceForm(check);
    confirmAction({
      title: 'Silence notifications',
      text: 'Alerts matching this check keep their state but send no notification until the silence ends.',
      extra: form,
      ok: 'Silence',
      run: async () => {
        const name = $('#silence-check', form).value.trim();
        if (!name) throw new ApiError('name the check to silence', 0);
        const duration = Number($('#silence-duration', form).value);
        const comment = $('#silence-comment', form).value.trim() || 'silenced from the dashboard';
        const r = await api('/silences', {
          method: 'POST',
          body: { matchers: { check: name }, duration_s: duration, comment, created_by: 'dashboard' },
        });
        return `silenced ${name} for ${fmtDuration(duration)}` + (r && r.id !== undefined ? ` (id ${String(r.id).slice(0, 8)})` : '');
      },
    });
  }

  function expireSilence(s) {
    confirmAction({
      title: 'Expire silence',
      text: `End silence ${s.id} (${matchersText(s.matchers)}) now? Notifications resume.`,
      ok: 'Expire', danger: true,
      run: async () => {
        await api('/silences/' + encodeURIComponent(s.id), { method: 'DELETE' });
        return `silence ${s.id} expired`;
      },
    });
  }

  function setBackend(balancer, backend, state) {
    const verb = { drain: 'Drain', ready: 'Put back', maint: 'Put in maintenance' }[state] || state;
    const text = state === 'drain'
      ? `Drain backend "${backend}" of "${balancer}"? It gets no new connections; open ones finish.`
      : `Set backend "${backend}" of "${balancer}" to ${state}?`;
    confirmAction({
      title: `${verb} backend`, text, ok: verb, danger: state !== 'ready',
      run: async () => {
        await api(`/lb/${encodeURIComponent(balancer)}/${encodeURIComponent(backend)}`,
          { method: 'POST', body: { state } });
        return `${balancer}/${backend}: ${state}`;
      },
    });
  }

  function resetAction(name) {
    confirmAction({
      title: 'Reset action',
      text: `Reset the limits of action "${name}" so it may run again?`,
      ok: 'Reset',
      run: async () => {
        await api('/actions/' + encodeURIComponent(name) + '/reset', { method: 'POST' });
        return `action ${name} reset`;
      },
    });
  }

  /* A switchover: to a ready standby the operator picks, or the best one. */
  function switchover(s) {
    const ready = asList(s.standbys).filter(sb => sb.ready).map(sb => sb.member);
    const form = h('div', {},
      h('label', { for: 'switchover-to' }, 'New leader',
        h('select', { id: 'switchover-to', name: 'to' },
          h('option', { value: '' }, 'the best ready standby'),
          ready.map(m => h('option', { value: m }, m)))));
    confirmAction({
      title: 'Switch over service',
      text: `Move service "${s.name}" from "${s.leader}" to another member? "${s.leader}" runs its demote and lets the key go, then the new leader promotes with a new fencing token.`,
      extra: form,
      ok: 'Switch over', danger: true,
      run: async () => {
        const to = $('#switchover-to', form).value;
        const r = await api('/cluster/switchover', { method: 'POST', body: to ? { service: s.name, to } : { service: s.name } });
        return `switchover of ${s.name} from ${r.from} to ${r.to} under way`;
      },
    });
  }

  function writeButton(label, key, onclick, cls) {
    if (!unlocked()) return null;
    return h('button', { type: 'button', class: 'small ' + (cls || 'ghost'), 'data-key': key, onclick }, label);
  }

  /* ---------- overview ---------- */

  function matchersText(m) {
    if (!m) return '';
    if (Array.isArray(m)) return m.map(x => `${x.name}${x.isEqual === false ? '!=' : '='}${x.value}`).join(', ');
    return Object.entries(m).map(([k, v]) => `${k}=${v}`).join(', ');
  }

  function stateRank(s) {
    const i = STATES.indexOf(String(s || 'unknown').toLowerCase());
    return i < 0 ? 2 : i;
  }

  function summaryTiles(status, checks, alerts) {
    const counts = { ok: 0, warning: 0, critical: 0, unknown: 0 };
    if (status && status.checks) Object.assign(counts, status.checks);
    else for (const c of checks) counts[stateClass(c.state)]++;
    const firing = status && Number.isFinite(status.alerts_firing)
      ? status.alerts_firing : alerts.filter(a => a.state === 'firing').length;
    const tile = (n, label, cls) => h('div', { class: 'tile ' + (n > 0 ? cls : ''), 'data-tile': label },
      h('div', { class: 'n' }, String(n)), h('div', { class: 'l' }, label));
    return h('div', { class: 'summary', role: 'group', 'aria-label': 'Summary' },
      tile(counts.critical, 'critical', 'crit'), tile(counts.warning, 'warning', 'warn'),
      tile(counts.unknown, 'unknown', 'warn'), tile(counts.ok, 'ok', ''),
      tile(firing, 'alerts firing', 'crit'));
  }

  function checksPanel(checks, alerts) {
    const firing = new Set(alerts.filter(a => a.state === 'firing' && !a.acked)
      .map(a => a.labels && a.labels.check));
    const sorted = [...checks].sort((a, b) =>
      stateRank(a.state) - stateRank(b.state) || String(a.name).localeCompare(String(b.name)));
    const rows = sorted.map(c => h('tr', { class: 'row-' + stateClass(c.state), 'data-check': c.name, 'data-state': c.state },
      h('td', {}, checkLink(c.name), h('span', { class: 'sub' }, c.kind || '')),
      h('td', {}, badge(c.state)),
      h('td', { class: 'hide-narrow' }, c.severity || '—'),
      h('td', {}, ago(c.since, '')),
      h('td', { class: 'num' }, fmtValue(c.value, c.unit)),
      h('td', { class: 'hide-narrow' }, c.message || ''),
      unlocked() ? h('td', { class: 'actions-cell' },
        firing.has(c.name) ? writeButton('Ack', 'ack-' + c.name, () => ackAlert(c.name)) : null,
        writeButton('Silence', 'silence-' + c.name, () => silence(c.name))) : null));
    const headers = ['Check', 'State', ['Severity', 'hide-narrow'], 'For', ['Value', 'num'],
      ['Message', 'hide-narrow']];
    if (unlocked()) headers.push(h('span', { class: 'sr' }, 'Actions'));
    const failing = checks.filter(c => stateClass(c.state) !== 'ok').length;
    return panel('checks', 'Checks', checks.length ? `${checks.length} · ${failing} not ok` : null,
      checks.length ? table(headers, rows) : empty('The plan has no checks.'), { wide: true });
  }

  function alertsPanel(alerts) {
    const active = alerts.filter(a => a.state !== 'resolved');
    const rows = active.map(a => {
      const check = (a.labels && a.labels.check) || '';
      return h('tr', { 'data-alert': check, 'data-state': a.state },
        h('td', {}, check ? checkLink(check) : '—', labelsOf(a, ['check', 'severity', 'alertname', 'host'])),
        h('td', {}, badge(a.state), a.silenced ? h('span', { class: 'sub' }, 'silenced') : null,
          a.acked ? h('span', { class: 'sub' }, 'acknowledged') : null),
        h('td', {}, (a.labels && a.labels.severity) || '—'),
        h('td', {}, ago(a.starts_at, '')),
        h('td', { class: 'hide-narrow' }, (a.annotations && (a.annotations.summary || a.annotations.message)) || ''),
        unlocked() ? h('td', { class: 'actions-cell' },
          !a.acked && check ? writeButton('Ack', 'alert-ack-' + check, () => ackAlert(check)) : null,
          !a.silenced && check ? writeButton('Silence', 'alert-silence-' + check, () => silence(check)) : null) : null);
    });
    const headers = ['Alert', 'State', 'Severity', 'For', ['Summary', 'hide-narrow']];
    if (unlocked()) headers.push(h('span', { class: 'sr' }, 'Actions'));
    return panel('alerts', 'Alerts', String(active.length),
      active.length ? table(headers, rows) : empty('No alert is firing.'));
  }

  function silencesPanel(silences) {
    const activeSilences = silences.filter(s => s.active !== false &&
      (!s.state || s.state === 'active' || s.state === 'pending'));
    const rows = activeSilences.map(s => h('tr', { 'data-silence': s.id },
      h('td', { class: 'mono' }, matchersText(s.matchers)),
      h('td', {}, s.ends_at ? ago(s.ends_at, '') : '—'),
      h('td', {}, s.comment || '', s.created_by ? h('span', { class: 'sub' }, s.created_by) : null),
      unlocked() ? h('td', { class: 'actions-cell' },
        writeButton('Expire', 'expire-' + s.id, () => expireSilence(s))) : null));
    const headers = ['Matches', 'Ends', 'Comment'];
    if (unlocked()) headers.push(h('span', { class: 'sr' }, 'Actions'));
    const tools = writeButton('New silence', 'new-silence', () => silence(''));
    return panel('silences', 'Silences', String(activeSilences.length),
      activeSilences.length ? table(headers, rows) : empty('No silence is active.'), { tools });
  }

  function meter(fraction, cls, label) {
    const pct = Math.max(0, Math.min(1, Number(fraction) || 0)) * 100;
    return h('div', { class: 'meter ' + (cls || ''), role: 'img', 'aria-label': label },
      h('span', { style: `width:${pct.toFixed(1)}%` }));
  }

  /* The job's copies: (3-2-1): each with its RPO and its last copy. */
  function copiesCell(b) {
    const copies = asList(b.copies);
    if (!copies.length) return h('span', { class: 'muted' }, 'none');
    return copies.map(c => {
      const last = c.last_copy || null;
      return h('div', { 'data-copy': c.name },
        c.rpo_ok === null || c.rpo_ok === undefined ? badge(c.name, 'neutral')
          : okBadge(c.rpo_ok, c.name, c.name + ': RPO missed'),
        ' ', c.newest_snapshot ? ago(c.newest_snapshot) : h('span', { class: 'muted' }, 'no snapshot'),
        c.copying ? h('span', { class: 'sub' }, 'copying…') : null,
        last && !last.ok ? h('span', { class: 'sub' }, last.message) : null);
    });
  }

  function backupsPanel(backups) {
    const rows = backups.map(b => {
      const ageFrac = b.rpo_s ? b.age_s / b.rpo_s : 0;
      const rpoCls = b.rpo_ok === false ? 'critical' : ageFrac > 0.8 ? 'warning' : 'ok';
      const drill = b.last_drill || null;
      const run = b.last_run || null;
      return h('tr', { 'data-backup': b.name },
        h('td', {}, b.name, h('span', { class: 'sub' }, b.repository || '')),
        h('td', {},
          b.newest_snapshot ? ago(b.newest_snapshot) : h('span', {}, 'no snapshot'),
          b.rpo_s ? h('span', { class: 'sub' }, `RPO ${fmtDuration(b.rpo_s)}`) : null,
          b.rpo_s ? meter(ageFrac, rpoCls, `age ${fmtDuration(b.age_s)} of RPO ${fmtDuration(b.rpo_s)}`) : null),
        h('td', {}, b.rpo_ok === undefined || b.rpo_ok === null ? badge('n/a', 'neutral')
          : b.rpo_ok && b.rpo_met === false ? badge('a copy is behind', 'warning')
          : okBadge(b.rpo_ok, 'within RPO', 'RPO missed')),
        h('td', { class: 'hide-narrow' }, run ? [okBadge(run.ok), ' ', ago(run.time),
          run.message ? h('span', { class: 'sub' }, run.message) : null] : '—'),
        h('td', {}, copiesCell(b)),
        h('td', {}, drill && drill.time ? [
          okBadge(drill.ok && (!drill.rto_s || drill.duration_s <= drill.rto_s), 'within RTO',
            drill.ok ? 'over RTO' : 'failed'),
          h('span', { class: 'sub' }, `${fmtDuration(drill.duration_s)} of RTO ${fmtDuration(drill.rto_s)}, `, ago(drill.time)),
          drill.repository ? h('span', { class: 'sub' }, `from ${drill.repository}`) : null]
          : h('span', { class: 'muted' }, 'no drill yet')));
    });
    return panel('backups', 'Backups', String(backups.length),
      table(['Job', 'Newest snapshot', 'RPO', ['Last run', 'hide-narrow'], 'Copies (RPO)', 'Last drill (RTO)'], rows),
      { wide: true });
  }

  function backendsOf(lb) { return asList(lb.backends || lb.servers); }
  function num(...vals) {
    for (const v of vals) if (v !== undefined && v !== null && Number.isFinite(Number(v))) return Number(v);
    return null;
  }

  /* lb_status_json(): "state" is what the balancer does with the backend
   * (up, down, drain...), "admin" the operator's choice (ready, drain, maint). */
  function balancersPanel(balancers) {
    const body = balancers.map(lb => {
      const name = lb.name || '';
      const rows = backendsOf(lb).map(be => {
        const admin = be.admin || (['ready', 'drain', 'maint'].includes(be.state) ? be.state : '');
        const state = be.state && be.state !== admin ? be.state : be.health || '';
        const beName = be.name || be.address || '';
        const lat = be.latency || {};
        const p99 = num(lat.response_p99_ms, lat.connect_p99_ms);
        const weight = num(be.weight);
        const eff = num(be.effective_weight);
        return h('tr', { 'data-backend': `${name}/${beName}`, 'data-admin': admin, 'data-state': state },
          h('td', {}, beName, be.address && be.address !== beName ? h('span', { class: 'sub mono' }, be.address) : null),
          h('td', {}, state ? badge(state) : null,
            admin && admin !== 'ready' ? [' ', badge(admin, 'warning')] : null,
            be.backup ? [' ', badge('standby', 'neutral')] : null,
            be.last_check && state !== 'up' ? h('span', { class: 'sub' }, be.last_check) : null),
          h('td', { class: 'num hide-narrow' }, fmtNumber(weight),
            eff !== null && eff !== weight ? h('span', { class: 'sub' }, `now ${fmtNumber(eff)}`) : null),
          h('td', { class: 'num' }, fmtNumber(num(be.active, be.connections_active, be.connections))),
          h('td', { class: 'num hide-narrow' }, fmtNumber(num(be.total, be.connections_total))),
          h('td', { class: 'num hide-narrow' }, p99 === null ? '—' : fmtNumber(p99) + ' ms'),
          h('td', { class: 'num hide-narrow' }, fmtBytes(num(be.bytes_in)) + ' / ' + fmtBytes(num(be.bytes_out))),
          unlocked() ? h('td', { class: 'actions-cell' },
            admin !== 'drain' ? writeButton('Drain', `drain-${name}-${beName}`, () => setBackend(name, beName, 'drain')) : null,
            admin && admin !== 'ready' ? writeButton('Ready', `ready-${name}-${beName}`, () => setBackend(name, beName, 'ready')) : null) : null);
      });
      const headers = ['Backend', 'State', ['Weight', 'num hide-narrow'], ['Active', 'num'],
        ['Total', 'num hide-narrow'], ['p99', 'num hide-narrow'], ['In / out', 'num hide-narrow']];
      if (unlocked()) headers.push(h('span', { class: 'sr' }, 'Actions'));
      const listen = Array.isArray(lb.listen) ? lb.listen.join(', ') : lb.listen || '';
      const totals = [listen, lb.algorithm || '',
        num(lb.connections) !== null ? `${fmtNumber(lb.connections)} open` : '',
        num(lb.accepted) !== null ? `${fmtNumber(lb.accepted)} accepted` : '',
        num(lb.refused) ? `${fmtNumber(lb.refused)} refused` : ''].filter(Boolean).join(' · ');
      return h('div', { class: 'lb' },
        h('h3', {}, name, ' ', h('span', { class: 'count' }, totals)),
        rows.length ? table(headers, rows) : empty('No backends.'));
    });
    return panel('balancers', 'Balancers', String(balancers.length), body, { wide: true });
  }

  function availabilityPanel(av) {
    const target = num(av.target);
    const budget = num(av.budget_left_s);
    const row = (label, v, extra) => [h('dt', {}, label), h('dd', {}, v, extra || null)];
    const cmp = v => target === null || v === null ? null
      : [' ', v >= target ? badge('meets target', 'ok') : badge('below target', 'critical')];
    return panel('availability', 'Availability', null,
      h('dl', { class: 'kv' },
        row('Target', fmtPercent(target)),
        row('Modelled', fmtPercent(num(av.modelled)), cmp(num(av.modelled))),
        row('Measured', fmtPercent(num(av.measured)), cmp(num(av.measured))),
        budget !== null ? row('Error budget left', budget > 0 ? fmtDuration(budget) : 'spent',
          budget <= 0 ? [' ', badge('exhausted', 'critical')] : null) : null,
        av.window_s ? row('Window', fmtDuration(av.window_s)) : null));
  }

  function forecastText(f) {
    if (!f || typeof f !== 'object') return '';
    const parts = [];
    for (const [k, v] of Object.entries(f)) {
      if (v === null || v === undefined || typeof v === 'object') continue;
      if (/_s$/.test(k) && Number.isFinite(Number(v))) parts.push(`${k.replace(/_s$/, '').replace(/_/g, ' ')} ${fmtDuration(v)}`);
      else if (typeof v === 'string' && parseTime(v) !== null && /\d{4}-\d\d-\d\dT/.test(v)) parts.push(`${k.replace(/_/g, ' ')} ${fmtDate(parseTime(v))}`);
      else parts.push(`${k.replace(/_/g, ' ')} ${typeof v === 'number' ? fmtNumber(v) : v}`);
    }
    return parts.join(' · ');
  }

  function hasForecast(c) { return c.forecast && typeof c.forecast === 'object' && Object.keys(c.forecast).length > 0; }

  function predictionsPanel(checks) {
    const rows = checks
      .filter(c => Number.isFinite(c.anomaly_score) || hasForecast(c))
      .sort((a, b) => (b.anomaly_score || 0) - (a.anomaly_score || 0))
      .map(c => {
        const s = Number.isFinite(c.anomaly_score) ? c.anomaly_score : null;
        const cls = s === null ? '' : s >= 0.9 ? 'critical' : s >= 0.6 ? 'warning' : 'ok';
        return h('tr', { 'data-prediction': c.name },
          h('td', {}, checkLink(c.name)),
          h('td', {}, s === null ? '—' : [fmtNumber(s), meter(s, cls, `anomaly score ${fmtNumber(s)}`)]),
          h('td', {}, hasForecast(c) ? forecastText(c.forecast) : '—'));
      });
    return panel('predictions', 'Predictions and anomalies', String(rows.length),
      table(['Check', 'Anomaly score', 'Forecast'], rows));
  }

  function overview() {
    main.replaceChildren(
      h('h1', { class: 'sr' }, 'Overview'),
      h('div', { id: 'ov-degraded' }),
      h('div', { id: 'ov-summary' }),
      h('div', { class: 'grid' },
        h('div', { id: 'ov-checks', class: 'slot wide' }),
        h('div', { id: 'ov-alerts', class: 'slot' }),
        h('div', { id: 'ov-silences', class: 'slot' }),
        h('div', { id: 'ov-backups', class: 'slot wide' }),
        h('div', { id: 'ov-balancers', class: 'slot wide' }),
        h('div', { id: 'ov-availability', class: 'slot' }),
        h('div', { id: 'ov-predictions', class: 'slot' })));
    return {
      name: 'overview',
      async refresh(gen) {
        const [status, checks, alerts, silences] = await Promise.all([
          api('/status'), api('/checks'), optional('/alerts'), optional('/silences')]);
        if (gen !== generation) return;
        const cl = asList(checks), al = asList(alerts), sl = asList(silences);
        showHeader(status, cl);
        announceChanges(cl);
        update($('#ov-degraded'), status && status.degraded
          ? h('div', { class: 'banner', role: 'status' }, h('strong', {}, 'Degraded: '),
            asList(status.reasons).join('; ') || 'see the events') : null);
        update($('#ov-summary'), summaryTiles(status, cl, al));
        update($('#ov-checks'), checksPanel(cl, al));
        update($('#ov-alerts'), alerts === null ? null : alertsPanel(al));
        update($('#ov-silences'), silences === null ? null : silencesPanel(sl));
        const backups = asList(status && status.backups);
        update($('#ov-backups'), backups.length ? backupsPanel(backups) : null);
        const balancers = asList(status && status.balancers);
        update($('#ov-balancers'), balancers.length ? balancersPanel(balancers) : null);
        const av = status && status.availability;
        const hasAv = av && ['modelled', 'measured', 'budget_left_s'].some(k => num(av[k]) !== null);
        update($('#ov-availability'), hasAv ? availabilityPanel(av) : null);
        const hasPred = cl.some(c => Number.isFinite(c.anomaly_score) || hasForecast(c));
        update($('#ov-predictions'), hasPred ? predictionsPanel(cl) : null);
      },
    };
  }

  /* ---------- one check ---------- */

  const STATE_LEVEL = { ok: 0, warning: 1, critical: 2, unknown: null };

  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  /* The chart starts at the range's start, or at the first sample if later. */
  function xMin(points, range) {
    const start = Date.now() - range * 1000;
    return points.length ? Math.max(start, points[0].x) : start;
  }

  /* Draws (or updates in place) the history chart. Points and line take
   * the colour of their state; Chart.js thins thousands of samples (LTTB). */
  function drawChart(canvas, history, unit, range) {
    const numeric = history.some(p => p.value !== null && p.value !== undefined && Number.isFinite(Number(p.value)));
    const points = [];
    for (const p of history) {
      const x = parseTime(p.time);
      if (x === null) continue;
      const y = numeric ? (p.value === null || p.value === undefined ? null : Number(p.value))
        : STATE_LEVEL[stateClass(p.state)];
      const state = stateClass(p.state);
      const last = points[points.length - 1];
      if (last && last.x === x) {
        /* Samples in the same second (the API's resolution): their mean, and
         * the worst state. */
        if (y !== null) { last.sum += y; last.n++; last.y = last.sum / last.n; }
        if (stateRank(state) < stateRank(last.state)) last.state = state;
        if (!numeric) last.y = STATE_LEVEL[last.state];
        continue;
      }
      points.push({ x, y, state, sum: y || 0, n: y === null ? 0 : 1 });
    }
    const yTitle = numeric ? (unit || 'value') : 'state';
    if (chart && chart.canvas === canvas && chart.$numeric === numeric) {
      chart.data.datasets[0].data = points;
      chart.data.datasets[0].pointRadius = points.length > 120 ? 0 : 2.5;
      chart.options.scales.y.title.text = yTitle;
      chart.options.scales.x.min = xMin(points, range);
      chart.options.scales.x.max = Date.now();
      chart.update('none');
      return;
    }
    if (chart) chart.destroy();
    chart = null;
    if (typeof Chart === 'undefined') return;
    const colour = { ok: cssVar('--chart-line'), warning: cssVar('--warn'), critical: cssVar('--crit'), unknown: cssVar('--unk') };
    const dot = { ok: cssVar('--ok'), warning: cssVar('--warn'), critical: cssVar('--crit'), unknown: cssVar('--unk') };
    const pointColour = ctx => dot[(ctx.raw && ctx.raw.state) || 'unknown'];
    const grid = cssVar('--chart-grid'), fg = cssVar('--muted');
    chart = new Chart(canvas, {
      type: 'line',
      data: {
        datasets: [{
          label: yTitle, data: points, parsing: false, normalized: true, indexAxis: 'x',
          borderColor: colour.ok, borderWidth: 2, stepped: !numeric, spanGaps: false,
          segment: { borderColor: ctx => colour[(ctx.p1 && ctx.p1.raw && ctx.p1.raw.state) || 'ok'] },
          pointRadius: points.length > 120 ? 0 : 2.5, pointHitRadius: 6,
          pointBackgroundColor: pointColour, pointBorderColor: pointColour,
        }],
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        plugins: {
          legend: { display: false },
          decimation: { enabled: numeric, algorithm: 'lttb', samples: 600 },
          tooltip: {
            callbacks: {
              title: items => items.length ? fmtDate(items[0].parsed.x) : '',
              label: item => numeric ? `${fmtValue(item.parsed.y, unit)} (${item.raw.state})` : item.raw.state,
            },
          },
        },
        scales: {
          x: {
            type: 'linear', grid: { color: grid }, min: xMin(points, range), max: Date.now(),
            ticks: {
              color: fg, maxTicksLimit: 8, maxRotation: 0,
              callback(v) { /* this: the scale */
                const span = this.max - this.min;
                return span > 86400e3 ? fmtDate(v).slice(5, 16) : span < 600e3 ? fmtClock(v) : fmtClock(v).slice(0, 5);
              },
            },
          },
          y: {
            grid: { color: grid }, title: { display: true, text: yTitle, color: fg },
            ticks: numeric ? { color: fg } : { color: fg, stepSize: 1, callback: v => ['ok', 'warning', 'critical'][v] || '' },
            min: numeric ? undefined : 0, max: numeric ? undefined : 2,
          },
        },
      },
    });
    chart.$numeric = numeric;
  }

  function incidentRows(incidents) {
    return incidents.map(i => {
      const start = i.started_at || i.start || i.started;
      const end = i.ended_at || i.end || i.ended;
      const dur = num(i.duration_s) !== null ? num(i.duration_s)
        : parseTime(start) !== null ? ((end ? parseTime(end) : Date.now()) - parseTime(start)) / 1000 : null;
      return h('tr', { 'data-incident': i.id },
        h('td', {}, start ? h('time', { datetime: start }, fmtDate(parseTime(start))) : '—'),
        h('td', {}, end ? badge('resolved', 'ok') : badge('open', 'critical')),
        h('td', {}, i.severity || '—'),
        h('td', { class: 'num' }, fmtDuration(dur)));
    });
  }

  /* The actions the check names in the plan, and any that last ran for it. */
  function actionsOf(actions, check) {
    const named = asList(check.actions);
    return actions.filter(a => a && (named.includes(a.name) || a.check === check.name ||
      (a.last_run && a.last_run.check === check.name)));
  }

  function actionRows(actions) {
    return actions.map(a => h('tr', { 'data-action': a.name },
      h('td', {}, a.name || '—', h('span', { class: 'sub' }, a.kind || a.type || '')),
      h('td', {}, a.state ? badge(a.state, { ready: 'ok', running: 'warning', escalated: 'critical' }[a.state]) : '—'),
      h('td', { class: 'num' }, fmtNumber(num(a.runs_in_window, a.runs)),
        a.limit && num(a.limit.count) !== null ? h('span', { class: 'sub' },
          `of ${fmtNumber(a.limit.count)} per ${fmtDuration(a.limit.window_s)}`) : null),
      h('td', {}, a.last_run ? ago(a.last_run.time || a.last_run) : '—',
        a.last_run && a.last_run.ok !== undefined ? [' ', okBadge(a.last_run.ok)] : null,
        a.last_run && a.last_run.message ? h('span', { class: 'sub' }, a.last_run.message) : null),
      unlocked() ? h('td', { class: 'actions-cell' },
        writeButton('Reset', 'reset-' + a.name, () => resetAction(a.name))) : null));
  }

  /* The message without the check's name in front: the link shows it. */
  function eventText(e) {
    const m = String(e.message || '');
    if (e.check && m.startsWith(e.check + ':')) return m.slice(e.check.length + 1).trim();
    return m;
  }

  function byNewest(list) {
    return [...list].sort((a, b) => (parseTime(b.time) || 0) - (parseTime(a.time) || 0) || (b.id || 0) - (a.id || 0));
  }

  function eventItem(e) {
    const t = parseTime(e.time);
    const cls = e.kind === 'state' && e.data && e.data.to ? stateClass(e.data.to) : 'neutral';
    return h('li', { 'data-event': e.id, 'data-kind': e.kind },
      h('time', { datetime: e.time, title: t ? fmtDate(t) : '' }, t ? fmtDate(t) : '—'),
      h('span', {}, badge(e.kind, cls)),
      h('span', { class: 'msg' }, e.check ? [checkLink(e.check), ' '] : null, eventText(e)));
  }

  function checkPage(name) {
    let range = Number(sessionStorage.getItem('bcdr.range')) || 3600;
    const rangeButtons = h('div', { class: 'ranges', role: 'group', 'aria-label': 'History range' },
      RANGES.map(([label, sec]) => h('button', {
        type: 'button', class: 'small', 'aria-pressed': sec === range ? 'true' : 'false', 'data-range': sec,
        onclick: ev => {
          range = sec;
          sessionStorage.setItem('bcdr.range', String(sec));
          for (const b of rangeButtons.children) b.setAttribute('aria-pressed', b === ev.currentTarget ? 'true' : 'false');
          refreshNow();
        },
      }, label)));
    const canvas = h('canvas', { id: 'history-chart', role: 'img', 'aria-label': `History of ${name}` });
    main.replaceChildren(
      h('p', {}, h('a', { href: '#/' }, '← Overview')),
      h('div', { id: 'ck-head' }, h('h1', {}, name)),
      h('div', { class: 'grid' },
        h('div', { id: 'ck-now', class: 'slot' }),
        h('section', { class: 'panel', id: 'history', 'aria-labelledby': 'history-h' },
          h('header', {}, h('h2', { id: 'history-h' }, 'History'), rangeButtons),
          h('div', { class: 'chart-box' }, canvas),
          h('p', { class: 'empty', id: 'history-empty', hidden: true }, 'No samples in this range yet.')),
        h('div', { id: 'ck-incidents', class: 'slot' }),
        h('div', { id: 'ck-actions', class: 'slot' }),
        h('div', { id: 'ck-events', class: 'slot wide' })));
    chart = null;
    /* The samples shown, oldest first: the first poll fetches the range, the
     * next ones only what is new since the newest sample. */
    let samples = [];
    let samplesRange = 0;
    return {
      name: 'check',
      async refresh(gen) {
        const q = encodeURIComponent(name);
        const askedRange = range;
        const newest = samplesRange === range && samples.length ? samples[samples.length - 1].time : null;
        const since = newest ? encodeURIComponent(newest) : String(range);
        const [c, status, incidents, actions, events, alerts] = await Promise.all([
          api(`/checks/${q}?since=${since}`).catch(e => { if (e.status === 404) return false; throw e; }),
          api('/status'),
          optional(`/incidents?since=${encodeURIComponent(new Date(Date.now() - 30 * 86400e3).toISOString())}`),
          optional('/actions'),
          optional(`/events?check=${q}&limit=50`),
          optional('/alerts')]);
        if (gen !== generation) return;
        showHeader(status);
        if (c === false) {
          update($('#ck-head'), [h('h1', {}, name), empty(`The plan has no check named "${name}".`)]);
          return;
        }
        announceChanges([c]);
        const firing = asList(alerts).find(a => a.labels && a.labels.check === name && a.state === 'firing');
        update($('#ck-head'), h('h1', { 'data-check': name, 'data-state': c.state }, name, ' ', badge(c.state),
          ' ', unlocked() && firing && !firing.acked ? writeButton('Ack', 'ck-ack', () => ackAlert(name)) : null,
          ' ', writeButton('Silence', 'ck-silence', () => silence(name))));
        const score = Number.isFinite(c.anomaly_score) ? c.anomaly_score : null;
        update($('#ck-now'), panel('now', 'Now', null, h('dl', { class: 'kv' },
          h('dt', {}, 'State'), h('dd', {}, badge(c.state), ' since ', ago(c.since, '')),
          h('dt', {}, 'Severity'), h('dd', {}, c.severity || '—'),
          h('dt', {}, 'Value'), h('dd', {}, fmtValue(c.value, c.unit)),
          h('dt', {}, 'Message'), h('dd', {}, c.message || '—'),
          h('dt', {}, 'Kind'), h('dd', {}, c.kind || '—'),
          h('dt', {}, 'Last run'), h('dd', {}, ago(c.last_run)),
          labelsOf(c, ['check']) ? [h('dt', {}, 'Labels'), h('dd', {}, labelsOf(c, ['check']))] : null,
          score !== null ? [h('dt', {}, 'Anomaly score'), h('dd', {}, fmtNumber(score))] : null,
          hasForecast(c) ? [h('dt', {}, 'Forecast'), h('dd', {}, forecastText(c.forecast))] : null,
          firing ? [h('dt', {}, 'Alert'), h('dd', {}, badge('firing'), firing.acked ? ' acknowledged' : '',
            firing.silenced ? ' silenced' : '')] : null)));
        if (askedRange === range) {
          const fresh = asList(c.history);
          if (newest) {
            const cut = parseTime(newest);
            const oldest = Date.now() - range * 1000;
            samples = samples.filter(p => { const t = parseTime(p.time); return t < cut && t >= oldest; })
              .concat(fresh);
          } else {
            samples = fresh;
            samplesRange = range;
          }
          $('#history-empty').hidden = samples.length > 0;
          drawChart(canvas, samples, c.unit, range);
        }
        if (incidents !== null) {
          const mine = asList(incidents).filter(i => (i.check_name || i.check) === name)
            .sort((a, b) => (parseTime(b.started_at || b.start || b.started) || 0) - (parseTime(a.started_at || a.start || a.started) || 0));
          update($('#ck-incidents'), panel('incidents', 'Incidents (30 days)', String(mine.length),
            mine.length ? table(['Started', 'State', 'Severity', ['Lasted', 'num']], incidentRows(mine.slice(0, 50)))
              : empty('No incident in the last 30 days.')));
        }
        if (actions !== null) {
          const mine = actionsOf(asList(actions), c);
          const headers = ['Action', 'State', ['Runs', 'num'], 'Last run'];
          if (unlocked()) headers.push(h('span', { class: 'sr' }, 'Actions'));
          update($('#ck-actions'), panel('actions', 'Actions', String(mine.length),
            mine.length ? table(headers, actionRows(mine)) : empty('No action is tied to this check.')));
        }
        if (events !== null) {
          const list = byNewest(asList(events));
          update($('#ck-events'), panel('check-events', 'What happened', String(list.length),
            list.length ? h('ol', { class: 'timeline', reversed: true }, list.map(eventItem))
              : empty('No event for this check yet.'), { wide: true }));
        }
      },
    };
  }

  /* ---------- cluster ---------- */

  /* The nav link shows once the agent serves /cluster (its plan has one). */
  function showClusterNav(cluster) {
    const a = $('[data-nav="cluster"]');
    if (a) a.hidden = !cluster;
  }

  function roleBadge(role) {
    const cls = { leader: 'ok', standby: 'neutral', promoting: 'warning', demoting: 'warning' }[role];
    return badge(role || 'unknown', cls || 'unknown');
  }

  /* Per service: its leader (or none), token, standbys and a switchover. */
  function clusterServicesPanel(c) {
    const self = c.self || {};
    const mine = self.services || {};
    const rows = asList(c.services).map(s => {
      const me = mine[s.name] || {};
      const so = s.switchover && typeof s.switchover === 'object' ? s.switchover : null;
      return h('tr', { 'data-service': s.name, 'data-leader': s.leader || '' },
        h('td', {}, s.name),
        h('td', {}, s.leader ? [h('strong', {}, s.leader), ' ', ago(s.since, '')] : badge('no leader', 'critical'),
          so ? h('span', { class: 'sub' }, `switchover to ${so.to} under way`) : null,
          s.leader && !so && asList(s.standbys).some(sb => sb.ready) && !c.paused
            ? [' ', writeButton('Switch over', `switchover-${s.name}`, () => switchover(s))] : null),
        h('td', { class: 'num' }, s.leader ? fmtNumber(s.fencing_token) : '—'),
        h('td', {}, asList(s.standbys).length ? asList(s.standbys).map((sb, i) =>
          [i ? ', ' : '', sb.member, ' ', sb.ready ? badge('ready', 'ok') : badge('not ready', 'warning')])
          : h('span', { class: 'muted' }, 'none')),
        h('td', { class: 'hide-narrow' }, roleBadge(me.role),
          Number.isFinite(me.leader_changes) ? h('span', { class: 'sub' }, `${me.leader_changes} leader change${me.leader_changes === 1 ? '' : 's'} seen`) : null));
    });
    return panel('cl-services', 'Services', String(rows.length),
      rows.length ? table(['Service', 'Leader', ['Fencing token', 'num'], 'Standbys', [`This member (${self.member || '?'})`, 'hide-narrow']], rows)
        : empty('The plan has no services.'), { wide: true });
  }

  function clusterMembersPanel(c) {
    const leads = m => asList(m.leads);
    const rows = asList(c.members).map(m => h('tr', { 'data-member': m.member },
      h('td', {}, m.member, m.member === (c.self || {}).member ? h('span', { class: 'sub' }, 'this agent') : null),
      h('td', { class: 'hide-narrow' }, m.host || '—', m.api ? h('span', { class: 'sub mono' }, m.api) : null),
      h('td', {}, leads(m).length ? leads(m).join(', ') : h('span', { class: 'muted' }, '—')),
      h('td', {}, Object.entries(m.checks || {}).map(([k, v], i) => [i ? ' ' : '', h('span', { class: 'nowrap' }, k, ' ', badge(v))])),
      h('td', { class: 'hide-narrow' }, m.version || '—', m.started ? h('span', { class: 'sub' }, 'up ', ago(m.started, '')) : null)));
    return panel('cl-members', 'Members', String(rows.length),
      rows.length ? table(['Member', ['Host, API', 'hide-narrow'], 'Leads', 'Checks', ['Version', 'hide-narrow']], rows)
        : empty('No member is alive (none has a lease in etcd).'), { wide: true });
  }

  function clusterPage() {
    main.replaceChildren(
      h('h1', { id: 'cl-title' }, 'Cluster'),
      h('div', { id: 'cl-state' }),
      h('div', { class: 'grid' },
        h('div', { id: 'cl-services', class: 'slot wide' }),
        h('div', { id: 'cl-members', class: 'slot wide' }),
        h('div', { id: 'cl-events', class: 'slot wide' })));
    return {
      name: 'cluster',
      async refresh(gen) {
        const status = await api('/status');
        /* asked only when the agent has a cluster: no 404 in the console */
        const [c, events] = status && status.cluster ? await Promise.all([optional('/cluster'),
          optional('/events?kind=cluster&limit=50')]) : [null, null];
        if (gen !== generation) return;
        showHeader(status);
        if (!c) {
          update($('#cl-state'), empty('This agent runs no cluster: its plan has no cluster: section (docs/cluster.md).'));
          return;
        }
        const self = c.self || {};
        update($('#cl-title'), ['Cluster ', h('span', { class: 'mono' }, c.cluster || '')]);
        update($('#cl-state'), [
          c.paused ? h('div', { class: 'banner', role: 'status', id: 'cl-paused' }, h('strong', {}, 'Paused (maintenance): '),
            `nobody takes over or steps down on its checks; by ${(c.pause || {}).by || '?'} `, ago((c.pause || {}).since),
            '. bcdr cluster resume ends it.') : null,
          h('p', { class: 'muted', id: 'cl-etcd' }, 'etcd ', self.etcd_reachable ? badge('reachable', 'ok') : badge('unreachable', 'critical'),
            ` ${c.etcd || ''} · revision ${fmtNumber(c.revision)}`,
            self.lease && Number.isFinite(self.renewed_ago_s) ? ` · lease renewed ${fmtNumber(self.renewed_ago_s)} s ago (ttl ${fmtNumber(self.ttl_s)} s)` : ' · no lease')]);
        update($('#cl-services'), clusterServicesPanel(c));
        update($('#cl-members'), clusterMembersPanel(c));
        if (events !== null) {
          const list = byNewest(asList(events));
          update($('#cl-events'), panel('cl-timeline', 'Leader changes and cluster events', String(list.length),
            list.length ? h('ol', { class: 'timeline', reversed: true }, list.map(eventItem))
              : empty('No cluster event yet.'), { wide: true }));
        }
      },
    };
  }

  /* ---------- events timeline ---------- */

  const SINCE_CHOICES = [['15 minutes', 900], ['1 hour', 3600], ['6 hours', 21600], ['1 day', 86400],
    ['7 days', 604800], ['30 days', 2592000]];

  function eventsPage(params) {
    const filters = {
      kind: params.get('kind') || '',
      check: params.get('check') || '',
      since: Number(params.get('since')) || 86400,
      limit: Number(params.get('limit')) || 200,
    };
    const onChange = () => {
      filters.kind = $('#f-kind').value;
      filters.check = $('#f-check').value;
      filters.since = Number($('#f-since').value);
      filters.limit = Number($('#f-limit').value);
      const q = new URLSearchParams();
      if (filters.kind) q.set('kind', filters.kind);
      if (filters.check) q.set('check', filters.check);
      if (filters.since !== 86400) q.set('since', filters.since);
      if (filters.limit !== 200) q.set('limit', filters.limit);
      const s = q.toString();
      history.replaceState(null, '', '#/events' + (s ? '?' + s : ''));
      refreshNow();
    };
    const checkSelect = h('select', { id: 'f-check', onchange: onChange },
      h('option', { value: '' }, 'all checks'),
      filters.check ? h('option', { value: filters.check, selected: true }, filters.check) : null);
    main.replaceChildren(
      h('h1', {}, 'Events'),
      h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter events', onsubmit: ev => ev.preventDefault() },
        h('label', { for: 'f-kind' }, 'Kind', h('select', { id: 'f-kind', onchange: onChange },
          h('option', { value: '' }, 'all kinds'),
          EVENT_KINDS.map(k => h('option', { value: k, selected: k === filters.kind }, k)))),
        h('label', { for: 'f-check' }, 'Check', checkSelect),
        h('label', { for: 'f-since' }, 'Since', h('select', { id: 'f-since', onchange: onChange },
          SINCE_CHOICES.map(([t, s]) => h('option', { value: s, selected: s === filters.since }, 'last ' + t)))),
        h('label', { for: 'f-limit' }, 'Show', h('select', { id: 'f-limit', onchange: onChange },
          [50, 200, 1000].map(n => h('option', { value: n, selected: n === filters.limit }, `${n} newest`))))),
      h('div', { id: 'ev-list' }));
    let knownChecks = '';
    return {
      name: 'events',
      async refresh(gen) {
        const q = new URLSearchParams();
        q.set('since', new Date(Date.now() - filters.since * 1000).toISOString());
        if (filters.kind) q.set('kind', filters.kind);
        if (filters.check) q.set('check', filters.check);
        q.set('limit', String(filters.limit));
        const [status, checks, events] = await Promise.all([api('/status'), api('/checks'), api('/events?' + q)]);
        if (gen !== generation) return;
        showHeader(status);
        const names = asList(checks).map(c => c.name).sort();
        if (names.join('\n') !== knownChecks) {
          knownChecks = names.join('\n');
          const keep = checkSelect.value;
          checkSelect.replaceChildren(h('option', { value: '' }, 'all checks'),
            names.map(n => h('option', { value: n }, n)));
          if (keep && !names.includes(keep)) checkSelect.append(h('option', { value: keep }, keep));
          checkSelect.value = keep;
        }
        const list = byNewest(asList(events));
        update($('#ev-list'), h('section', { class: 'panel', 'aria-label': 'Events' },
          h('p', { class: 'count' }, `${list.length} event${list.length === 1 ? '' : 's'}` +
            (list.length >= filters.limit ? ` (the ${filters.limit} newest)` : '')),
          list.length ? h('ol', { class: 'timeline', reversed: true }, list.map(eventItem))
            : empty('No event matches these filters.')));
      },
    };
  }

  /* ---------- header, live status, polling ---------- */

  function showHeader(status) {
    if (!status) return;
    showClusterNav(status.cluster === true);
    $('#host').textContent = status.host || '';
    const counts = status.checks || {};
    const bad = ['critical', 'warning'].filter(k => counts[k] > 0).map(k => `${counts[k]} ${k}`);
    document.title = `${bad.length ? '(' + bad.join(', ') + ') ' : ''}bcdr · ${status.host || 'agent'}`;
    $('#version').textContent = `bcdr ${status.version || ''}` +
      (Number.isFinite(status.uptime_s) ? ` · agent up ${fmtDuration(status.uptime_s)}` : '');
  }

  function showLive(error) {
    if (error) {
      live.classList.add('stale');
      live.textContent = lastUpdate ? `offline · last update ${fmtClock(lastUpdate)}` : 'offline';
    } else {
      live.classList.remove('stale');
      live.textContent = sayText || (lastUpdate ? `live · ${fmtClock(lastUpdate)}` : 'connecting…');
    }
  }

  function showBanner(node) {
    if (!node) { banner.hidden = true; banner.replaceChildren(); return; }
    update(banner, node);
    banner.hidden = false;
  }

  let running = false;
  async function refresh() {
    if (running || !view) return;
    running = true;
    const gen = generation;
    try {
      await view.refresh(gen);
      if (gen === generation) {
        lastUpdate = Date.now();
        showBanner(null);
        showLive();
      }
    } catch (e) {
      if (gen === generation) {
        showLive(e);
        if (e.status === 401 || e.status === 403) {
          showBanner(h('span', {}, 'The agent needs the API token to show its data. ',
            h('button', { type: 'button', class: 'small', onclick: () => askToken() }, 'Enter token')));
        } else {
          showBanner(h('span', {}, `Cannot read the agent's API: ${e.message}. Retrying every second.`));
        }
      }
    } finally {
      running = false;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      await refresh();
      schedule();
    }, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }

  function refreshNow() {
    refresh().then(schedule);
  }

  function route() {
    generation++;
    if (chart) { chart.destroy(); chart = null; }
    const hash = location.hash.replace(/^#/, '') || '/';
    const [path, query] = hash.split('?');
    const params = new URLSearchParams(query || '');
    let navName = 'overview';
    const m = path.match(/^\/check\/(.+)$/);
    if (m) {
      let name;
      try { name = decodeURIComponent(m[1]); } catch (e) { name = m[1]; }
      view = checkPage(name);
      navName = 'check';
    } else if (path === '/events') {
      view = eventsPage(params);
      navName = 'events';
    } else if (path === '/cluster') {
      view = clusterPage();
      navName = 'cluster';
    } else {
      view = overview();
    }
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === navName) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    refreshNow();
  }

  window.addEventListener('hashchange', () => { route(); main.focus({ preventScroll: true }); });
  /* The chart takes its colours from the scheme: redraw it when that changes. */
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if (chart) { chart.destroy(); chart = null; }
    refreshNow();
  });
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshNow(); });
  showTokenState();
  route();
})();
