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
  const dollars = (m) => `US$${(m / 1e6).toFixed(4)}`;
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

function bars(target, rows) {
  const box = document.getElementById(target);
  if (!rows.length) {
    box.replaceChildren(el('p', {}, 'No requests yet.'));
    return;
  }
  const w = 800, h = 180, pad = 24;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const bw = Math.min(90, (w - pad) / rows.length);
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none', role: 'img' });
  rows.forEach((r, i) => {
    const bh = (r.value / max) * (h - 2 * pad);
    const rect = svg('rect', { x: pad + i * bw + 2, y: h - pad - bh, width: Math.max(1, bw - 4), height: bh });
    const title = svg('title', {});
    title.textContent = `${r.label}: ${r.value}`;
    rect.append(title);
    const label = svg('text', { x: pad + i * bw + bw / 2, y: h - 6, 'text-anchor': 'middle' });
    label.textContent = r.label;
    const value = svg('text', { x: pad + i * bw + bw / 2, y: h - pad - bh - 4, 'text-anchor': 'middle' });
    value.textContent = r.value;
    s.append(rect, label, value);
  });
  box.replaceChildren(s);
}

async function loadUsage() {
  const since = Date.now() - 30 * 86400000;
  const [daily, totals] = await Promise.all([
    api('GET', `/admin/usage/daily?since_ms=${since}`),
    api('GET', `/admin/usage?since_ms=${since}`),
  ]);
  const byDay = new Map();
  for (const r of daily.data) {
    const d = new Date(r.day * 86400000).toISOString().slice(5, 10);
    byDay.set(d, (byDay.get(d) || 0) + r.prompt_tokens + r.completion_tokens);
  }
  bars('chart-days', [...byDay].map(([label, value]) => ({ label, value })));
  const sum = (key) => {
    const m = new Map();
    for (const r of totals.data) m.set(r[key], (m.get(r[key]) || 0) + r.prompt_tokens + r.completion_tokens);
    return [...m].map(([label, value]) => ({ label, value })).sort((a, b) => b.value - a.value).slice(0, 20);
  };
  bars('chart-models', sum('model'));
  bars('chart-keys', sum('key_id'));
}

// ---------------------------------------------------------------- requests

async function loadRequests() {
  const f = new FormData(document.getElementById('request-filter'));
  const q = new URLSearchParams({ limit: '100' });
  for (const k of ['model', 'key_id']) if (f.get(k)) q.set(k, f.get(k));
  const { data } = await api('GET', `/admin/requests?${q}`);
  document.querySelector('#request-table tbody').replaceChildren(...data.map((r) => el('tr', {},
    el('td', {}, new Date(r.ts_ms).toLocaleTimeString()),
    el('td', {}, r.route),
    el('td', {}, r.model),
    el('td', {}, r.upstream),
    el('td', {}, el('code', {}, r.key_id)),
    el('td', {}, r.status),
    el('td', {}, r.duration_ms),
    el('td', {}, (r.prompt_tokens || 0) + (r.completion_tokens || 0)),
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
show('keys');
