// The gateway console: the admin API, with the session cookie and the CSRF
// token of the page. Every value from the server is set as text, never as
// markup.
'use strict';

const csrf = document.querySelector('meta[name="csrf-token"]').content;

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') opts.headers['x-csrf-token'] = csrf;
  if (body !== undefined) {
    opts.headers['content-type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((data.error && data.error.message) || r.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}

const svg = (tag, attrs) => {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

// ---------------------------------------------------------------- keys

function usageCell(k) {
  const dollars = money;
  if (k.quota_micro_usd != null) {
    const share = Math.min(1, k.used_micro_usd / Math.max(1, k.quota_micro_usd));
    const bar = el('span', { class: 'bar' + (share >= 1 ? ' full' : '') }, el('span'));
    bar.firstChild.style.width = `${Math.round(share * 100)}%`;
    return el('td', { class: 'usage' }, bar, `${dollars(k.used_micro_usd)} / ${dollars(k.quota_micro_usd)} (${k.used_tokens} tokens)`);
  }
  if (k.quota_tokens == null) return el('td', { class: 'usage' }, `${k.used_tokens} tokens`);
  const share = Math.min(1, k.used_tokens / Math.max(1, k.quota_tokens));
  const bar = el('span', { class: 'bar' + (share >= 1 ? ' full' : '') }, el('span'));
  bar.firstChild.style.width = `${Math.round(share * 100)}%`;
  return el('td', { class: 'usage' }, bar, `${k.used_tokens} / ${k.quota_tokens}`);
}

function limits(k) {
  const parts = [];
  if (k.rpm != null) parts.push(`${k.rpm} rpm`);
  if (k.tpm != null) parts.push(`${k.tpm} tpm`);
  if (k.max_concurrent != null) parts.push(`${k.max_concurrent} at once`);
  if (k.expires_at != null) parts.push(`expires ${new Date(k.expires_at).toLocaleString()}`);
  if (k.ip_allow.length) parts.push(k.ip_allow.join(' '));
  if (k.guardrail) parts.push(`guardrail ${k.guardrail.id}:${k.guardrail.version}`);
  return parts.join(', ') || '—';
}

async function loadKeys() {
  const { data } = await api('GET', '/admin/keys');
  const body = document.querySelector('#key-table tbody');
  body.replaceChildren(...data.map((k) => {
    const toggle = k.disabled ? 'enable' : 'disable';
    return el('tr', { 'data-id': k.id },
      el('td', {}, k.name),
      el('td', {}, el('code', {}, k.id)),
      el('td', {}, el('code', {}, `${k.prefix}…`)),
      el('td', {}, el('span', { class: `status ${k.status}` }, k.status)),
      el('td', {}, k.models.join(', ') || 'any'),
      usageCell(k),
      el('td', {}, limits(k)),
      el('td', {},
        el('button', { class: toggle, onclick: () => act(() => api('POST', `/admin/keys/${k.id}/${toggle}`)) }, toggle === 'enable' ? 'Enable' : 'Disable'),
        ' ',
        el('button', { class: 'delete', onclick: () => confirm(`Delete key ${k.name}?`) && act(() => api('DELETE', `/admin/keys/${k.id}`)) }, 'Delete')));
  }));
}

async function act(f) {
  const err = document.getElementById('keys-error');
  err.textContent = '';
  try {
    await f();
  } catch (e) {
    err.textContent = e.message;
  }
  await loadKeys();
}

document.getElementById('new-key').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const list = (v) => (v || '').split(',').map((s) => s.trim()).filter(Boolean);
  const num = (v) => (v === '' || v == null ? undefined : Number(v));
  const days = num(f.get('expires_days'));
  const body = {
    name: f.get('name'),
    owner: f.get('owner') || undefined,
    models: list(f.get('models')),
    ip_allow: list(f.get('ip_allow')),
    quota_tokens: num(f.get('quota_tokens')),
    quota_micro_usd: num(f.get('quota_usd')) === undefined ? undefined : Math.round(num(f.get('quota_usd')) * 1e6),
    rpm: num(f.get('rpm')),
    tpm: num(f.get('tpm')),
    max_concurrent: num(f.get('max_concurrent')),
    expires_at: days === undefined ? undefined : Date.now() + Math.round(days * 86400000),
    guardrail: f.get('guardrail_id') ? { id: f.get('guardrail_id').trim(), version: (f.get('guardrail_version') || 'DRAFT').trim() } : undefined,
  };
  act(async () => {
    const k = await api('POST', '/admin/keys', body);
    document.getElementById('secret').value = k.key;
    document.getElementById('created').hidden = false;
    document.getElementById('copied').hidden = true;
    ev.target.reset();
  });
});

document.getElementById('copy').addEventListener('click', async () => {
  const s = document.getElementById('secret');
  s.select();
  try {
    await navigator.clipboard.writeText(s.value);
  } catch (_) {
    document.execCommand('copy');
  }
  document.getElementById('copied').hidden = false;
});

// ---------------------------------------------------------------- upstreams

const history = new Map();

function sparkline(values) {
  const w = 120, h = 24;
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${h - (v / max) * (h - 2) - 1}`);
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, width: w, height: h, class: 'spark' });
  s.append(svg('polyline', { points: pts.join(' ') }));
  return s;
}

async function loadUpstreams() {
  const { data } = await api('GET', '/admin/upstreams');
  const body = document.querySelector('#upstream-table tbody');
  body.replaceChildren(...data.map((u) => {
    const h = history.get(u.name) || [];
    h.push(u.ewma_ttfb_ms || 0);
    if (h.length > 30) h.shift();
    history.set(u.name, h);
    const result = el('span', { class: 'test-result' });
    const disabled = u.state === 'disabled';
    return el('tr', { 'data-name': u.name },
      el('td', {}, u.name),
      el('td', {}, el('span', { class: `status ${u.state}` }, u.state)),
      el('td', {}, `${(u.error_rate * 100).toFixed(1)} %`),
      el('td', {}, u.ewma_ttfb_ms == null ? '—' : u.ewma_ttfb_ms.toFixed(1)),
      el('td', {}, sparkline(h)),
      el('td', {}, `${u.requests} (${u.failures} failed)`),
      el('td', {},
        el('button', { class: 'test', onclick: async () => {
          result.textContent = '…';
          try {
            const t = await api('POST', `/admin/upstreams/test/${u.name}`);
            result.textContent = t.ok ? `ok ${t.status} in ${t.latency_ms} ms` : `failed ${t.status}: ${t.error}`;
          } catch (e) {
            result.textContent = e.message;
          }
        } }, 'Test'),
        ' ',
        el('button', { onclick: async () => { await api('POST', `/admin/upstreams/${disabled ? 'enable' : 'disable'}/${u.name}`); loadUpstreams(); } }, disabled ? 'Enable' : 'Disable'),
        ' ', result));
  }));
}

// ---------------------------------------------------------------- usage

// Numbers as people read them: 1,234 / 12.3k / 4.5M tokens; money in
// dollars from a cent up, in cents below ("0.42¢", never "US$0.0001").
function count(n) {
  const a = Math.abs(n);
  if (a < 1e4) return Math.round(n).toLocaleString('en-US');
  for (const [d, s] of [[1e9, 'B'], [1e6, 'M'], [1e3, 'k']]) {
    if (a >= d) return `${(n / d).toFixed(a >= d * 100 ? 0 : 1)}${s}`;
  }
  return String(n);
}

function money(micro) {
  if (!micro) return '$0';
  const sign = micro < 0 ? '−' : '';
  const usd = Math.abs(micro) / 1e6;
  if (usd < 0.01) return `${sign}${Number((usd * 100).toPrecision(2))}¢`;
  if (usd < 1e4) return `${sign}$${usd.toFixed(2)}`;
  return `${sign}$${count(usd)}`;
}

const percent = (part, whole) => (whole > 0 ? `${Math.round((part / whole) * 100)} %` : '—');

// One tooltip for every chart: the value under the pointer.
const tip = el('div', { class: 'tip', role: 'tooltip', hidden: '' });
document.body.append(tip);

function hover(node, text) {
  node.addEventListener('pointerenter', () => { tip.textContent = text; tip.hidden = false; });
  node.addEventListener('pointermove', (ev) => {
    tip.style.left = `${Math.min(ev.clientX + 12, window.innerWidth - tip.offsetWidth - 8)}px`;
    tip.style.top = `${ev.clientY + 14}px`;
  });
  node.addEventListener('pointerleave', () => { tip.hidden = true; });
  const title = svg('title', {});
  title.textContent = text;
  node.append(title);
}

// Fits `text` into `px` pixels of 11px labels, with an ellipsis.
function fit(text, px) {
  const max = Math.max(3, Math.floor(px / 6.5));
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

// A column chart in the box's own pixels (text is never stretched): every
// row a column, labels thinned to those that fit side by side.
function columns(target, rows, fmt) {
  const box = document.getElementById(target);
  if (!rows.some((r) => r.value > 0)) {
    box.replaceChildren(el('p', { class: 'empty' }, 'No requests in this period.'));
    return;
  }
  const w = Math.max(320, box.clientWidth - 16), h = 200, left = 56, bottom = 22, top = 16;
  // The scale's top a round number (1, 2, 2.5 or 5 times a power of ten).
  const peak = Math.max(1, ...rows.map((r) => r.value));
  const ten = 10 ** Math.floor(Math.log10(peak));
  const max = [1, 2, 2.5, 5, 10].map((m) => m * ten).find((m) => m >= peak);
  const bw = (w - left) / rows.length;
  const every = Math.ceil(rows.length / Math.max(1, Math.floor((w - left) / 48)));
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: 'img' });
  // Grid lines at half and full scale, labelled; the zero line is the
  // axis itself (no label where the day labels start).
  for (const f of [0, 0.5, 1]) {
    const y = h - bottom - f * (h - bottom - top);
    s.append(svg('line', { x1: left, x2: w, y1: y, y2: y, class: 'grid' }));
    if (f === 0) continue;
    const t = svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' });
    t.textContent = fmt(max * f);
    s.append(t);
  }
  rows.forEach((r, i) => {
    const bh = (r.value / max) * (h - bottom - top);
    if (bh > 0) s.append(svg('rect', { x: left + i * bw + 1, y: h - bottom - bh, width: Math.max(1, bw - 2), height: bh }));
    // The whole column answers the pointer, not only its filled part.
    const hit = svg('rect', { x: left + i * bw, y: top, width: bw, height: h - bottom - top, class: 'hit' });
    hover(hit, `${r.label}: ${fmt(r.value)}${r.detail ? ` (${r.detail})` : ''}`);
    s.append(hit);
    if (i % every === 0) {
      // Centred under its column, kept inside the plot at either end.
      const half = r.label.length * 3.5 + 2;
      const x = Math.min(Math.max(left + i * bw + bw / 2, left + half), w - half);
      const label = svg('text', { x, y: h - 6, 'text-anchor': 'middle', class: 'label' });
      label.textContent = r.label;
      s.append(label);
    }
  });
  box.replaceChildren(s);
}

// A bar per row, name on the left (cut to fit, whole on hover), value at
// the bar's end: rows never share a line, so labels cannot overlap.
function bars(target, rows, fmt) {
  const box = document.getElementById(target);
  if (!rows.length) {
    box.replaceChildren(el('p', { class: 'empty' }, 'No requests in this period.'));
    return;
  }
  const w = Math.max(320, box.clientWidth - 16), row = 24, left = 200, right = 80;
  const h = rows.length * row + 4;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: 'img' });
  rows.forEach((r, i) => {
    const y = i * row + 2;
    const bw = Math.max(1, (r.value / max) * (w - left - right));
    const name = svg('text', { x: left - 8, y: y + 16, 'text-anchor': 'end', class: 'label' });
    name.textContent = fit(r.label, left - 16);
    const rect = svg('rect', { x: left, y: y + 4, width: bw, height: row - 8 });
    const value = svg('text', { x: left + bw + 6, y: y + 16, class: 'value' });
    value.textContent = fmt(r.value);
    const hit = svg('rect', { x: 0, y, width: w, height: row, class: 'hit' });
    hover(hit, `${r.label}: ${fmt(r.value)}${r.detail ? ` (${r.detail})` : ''}`);
    s.append(name, rect, value, hit);
  });
  box.replaceChildren(s);
}

// A group's sums and the usage fields they add up.
const SUMS = {
  requests: 'requests', errors: 'errors', prompt: 'prompt_tokens', completion: 'completion_tokens',
  read: 'cache_read_tokens', written: 'cache_write_tokens', cost: 'cost_micro_usd', saved: 'saved_micro_usd',
  interventions: 'interventions', fallbacks: 'fallbacks', hits: 'affinity_hits', moves: 'affinity_moves',
};

function emptyGroup(label) {
  const g = { label, ids: new Set() };
  for (const k of Object.keys(SUMS)) g[k] = 0;
  return g;
}

// Sums usage rows by `keyOf` (model, or key name).
function group(rows, keyOf) {
  const m = new Map();
  for (const r of rows) {
    const k = keyOf(r);
    const g = m.get(k) || emptyGroup(k);
    for (const [sum, field] of Object.entries(SUMS)) g[sum] += r[field];
    if (r.key_id) g.ids.add(r.key_id);
    m.set(k, g);
  }
  return [...m.values()].sort((a, b) => b.cost - a.cost || (b.prompt + b.completion) - (a.prompt + a.completion));
}

const keyLabel = (r) => (r.key_id === '-' ? '(no key)' : r.key_name || r.key_id);

function usageTable(target, groups) {
  const affinity = (g) => (g.hits + g.moves ? `${g.hits} / ${g.moves}` : '—');
  document.querySelector(`#${target} tbody`).replaceChildren(...groups.map((g) => el('tr', { 'data-name': g.label },
    el('td', { title: [...g.ids].join(', ') }, g.label),
    el('td', { class: 'num' }, count(g.requests), g.errors ? el('span', { class: 'muted' }, ` (${count(g.errors)} failed)`) : ''),
    el('td', { class: 'num' }, `${count(g.prompt)} / ${count(g.completion)}`),
    el('td', { class: 'num cache-read' }, count(g.read), el('span', { class: 'muted' }, ` (${percent(g.read, g.prompt)})`)),
    el('td', { class: 'num cache-write' }, count(g.written)),
    el('td', { class: 'num cost' }, money(g.cost)),
    el('td', { class: 'num saved' }, money(g.saved)),
    el('td', { class: 'num interventions' }, count(g.interventions)),
    el('td', { class: 'num fallbacks' }, count(g.fallbacks)),
    el('td', { class: 'num affinity' }, affinity(g)))));
}

function card(id, label, value, note) {
  return el('div', { class: 'card', id }, el('span', { class: 'card-label' }, label), el('strong', {}, value), el('span', { class: 'muted' }, note || ''));
}

async function loadUsage() {
  const days = Number(document.getElementById('usage-days').value);
  const today = Math.floor(Date.now() / 86400000);
  const since = (today - days + 1) * 86400000;
  const [daily, totals] = await Promise.all([
    api('GET', `/admin/usage/daily?since_ms=${since}`),
    api('GET', `/admin/usage?since_ms=${since}`),
  ]);
  const all = group(totals.data, () => 'all')[0] || emptyGroup('all');
  document.getElementById('usage-cards').replaceChildren(
    card('card-requests', 'Requests', count(all.requests), all.errors ? `${count(all.errors)} failed` : ''),
    card('card-tokens', 'Tokens in / out', `${count(all.prompt)} / ${count(all.completion)}`),
    card('card-cost', 'Cost', money(all.cost), 'at the configured prices'),
    card('card-saved', 'Saved by prompt caching', money(all.saved), `${percent(all.read, all.prompt)} of prompt tokens from the cache`),
    card('card-interventions', 'Guardrail interventions', count(all.interventions)),
    card('card-fallbacks', 'Fallbacks', count(all.fallbacks), 'answered by a fallback model'),
    card('card-affinity', 'Affinity hits', percent(all.hits, all.hits + all.moves), all.hits + all.moves ? `${all.hits} kept, ${all.moves} moved` : 'no affine requests'));
  // Every day of the period, empty ones too.
  const byDay = new Map();
  for (let d = today - days + 1; d <= today; d++) byDay.set(d, { tokens: 0, cost: 0, saved: 0 });
  for (const r of daily.data) {
    const v = byDay.get(r.day);
    if (!v) continue;
    v.tokens += r.prompt_tokens + r.completion_tokens;
    v.cost += r.cost_micro_usd;
    v.saved += r.saved_micro_usd;
  }
  const dayLabel = (d) => new Date(d * 86400000).toISOString().slice(5, 10);
  columns('chart-days', [...byDay].map(([d, v]) => ({ label: dayLabel(d), value: v.tokens, detail: `${money(v.cost)}, saved ${money(v.saved)}` })), count);
  const models = group(totals.data, (r) => r.model);
  const keys = group(totals.data, keyLabel);
  const priced = models.some((g) => g.cost > 0);
  const metric = priced ? (g) => g.cost : (g) => g.prompt + g.completion;
  const fmt = priced ? money : count;
  document.getElementById('chart-unit').textContent = priced ? 'cost' : 'tokens';
  bars('chart-models', models.slice(0, 15).map((g) => ({ label: g.label, value: metric(g), detail: `${count(g.prompt + g.completion)} tokens, ${count(g.requests)} requests` })), fmt);
  bars('chart-keys', keys.slice(0, 15).map((g) => ({ label: g.label, value: metric(g), detail: `${count(g.prompt + g.completion)} tokens, ${count(g.requests)} requests` })), fmt);
  usageTable('model-usage', models);
  usageTable('key-usage', keys);
}

document.getElementById('usage-days').addEventListener('change', () => loadUsage());

// ---------------------------------------------------------------- requests

async function loadRequests() {
  const f = new FormData(document.getElementById('request-filter'));
  const q = new URLSearchParams({ limit: '100' });
  for (const k of ['model', 'key_id']) if (f.get(k)) q.set(k, f.get(k));
  const { data } = await api('GET', `/admin/requests?${q}`);
  document.querySelector('#request-table tbody').replaceChildren(...data.map((r) => el('tr', {},
    el('td', {}, new Date(r.ts_ms).toLocaleTimeString()),
    el('td', {}, r.route),
    el('td', {}, r.requested_model && r.requested_model !== r.model ? `${r.requested_model} → ${r.model}` : r.model),
    el('td', {}, r.upstream),
    el('td', { title: r.key_id || '' }, r.key_name || el('code', {}, r.key_id)),
    el('td', {}, r.status),
    el('td', {}, r.duration_ms),
    el('td', {}, count((r.prompt_tokens || 0) + (r.completion_tokens || 0)), r.cache_read_tokens ? el('span', { class: 'muted' }, ` (${count(r.cache_read_tokens)} cached)`) : ''),
    el('td', {}, r.finish_reason === 'content_filter' ? el('span', { class: 'status disabled' }, 'filtered') : r.finish_reason),
    el('td', {}, r.error))));
}

document.getElementById('request-filter').addEventListener('submit', (ev) => {
  ev.preventDefault();
  loadRequests();
});

// ---------------------------------------------------------------- tabs

const loaders = { keys: loadKeys, upstreams: loadUpstreams, usage: loadUsage, requests: loadRequests };
let current = 'keys';

function show(tab) {
  current = tab;
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const s of document.querySelectorAll('section.tab')) s.hidden = s.id !== tab;
  loaders[tab]().catch((e) => { document.getElementById('keys-error').textContent = e.message; });
}

for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => show(b.dataset.tab));
setInterval(() => { if (current === 'upstreams') loadUpstreams(); }, 5000);
// Charts are drawn in the page's pixels: a new width, a new drawing.
let resized;
window.addEventListener('resize', () => {
  clearTimeout(resized);
  resized = setTimeout(() => { if (current === 'usage') loadUsage(); }, 200);
});
show('keys');
