// shoal's web UI: a Transmission RPC client. The list arrives by server-sent events
// (/events); actions and the selected torrent's files go through the RPC.
'use strict';
const RPC = '/transmission/rpc';
let sessionId = '';
let torrents = [];
let selected = new Set();
let filter = 'all';
let labelFilter = '';
const $ = (s) => document.querySelector(s);

async function rpc(method, args = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const r = await fetch(RPC, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Transmission-Session-Id': sessionId },
      body: JSON.stringify({ method, arguments: args }),
    });
    if (r.status === 409) { sessionId = r.headers.get('X-Transmission-Session-Id') || ''; continue; }
    if (!r.ok) throw new Error(`${method}: HTTP ${r.status}`);
    const j = await r.json();
    if (j.result !== 'success') throw new Error(j.result);
    return j.arguments;
  }
  throw new Error(`${method}: no session id`);
}

function say(text) {
  const m = $('#message');
  m.textContent = text;
  m.classList.add('show');
  clearTimeout(say.t);
  say.t = setTimeout(() => m.classList.remove('show'), 3000);
}

const STATUS = ['Paused', 'Check queued', 'Checking', 'Queued', 'Downloading', 'Seed queued', 'Seeding'];
const size = (n) => {
  if (n < 1000) return `${n} B`;
  const u = ['kB', 'MB', 'GB', 'TB']; let i = -1;
  do { n /= 1000; i++; } while (n >= 1000 && i < u.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${u[i]}`;
};
const rate = (n) => (n > 0 ? `${size(n)}/s` : '');
const eta = (s) => {
  if (s < 0) return '';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86400)} d`;
};
const state = (t) => (t.error ? 'error' : t.status === 0 ? 'paused' : t.status === 6 || t.status === 5 ? 'seeding' : 'downloading');

function shown() {
  return torrents.filter((t) => (filter === 'all' || state(t) === filter) &&
    (!labelFilter || (t.labels || []).includes(labelFilter)));
}

// Only the rows in view (and a few around) are in the page: a list of 10,000 costs what a
// screenful does. Rows have a fixed height; spacer rows stand for the rest.
const ROW = 32;
function spacer(h) {
  const tr = document.createElement('tr');
  tr.className = 'spacer';
  tr.style.height = `${h}px`;
  return tr;
}
function render() {
  const body = $('#list tbody');
  const all = shown();
  $('#empty').hidden = torrents.length > 0;
  const sc = $('#scroller');
  const first = Math.max(0, Math.floor(sc.scrollTop / ROW) - 10);
  const rows = all.slice(first, first + Math.ceil((sc.clientHeight || 800) / ROW) + 20);
  const frag = document.createDocumentFragment();
  if (first > 0) frag.append(spacer(first * ROW));
  for (const t of rows) {
    const tr = document.createElement('tr');
    tr.dataset.id = t.id;
    if (selected.has(t.id)) tr.className = 'sel';
    const pct = Math.floor(t.percentDone * 1000) / 10;
    const cells = [
      ['name', t.name],
      ['', null],
      ['n', rate(t.rateDownload)],
      ['n', rate(t.rateUpload)],
      ['n', eta(t.eta)],
      ['n', t.uploadRatio >= 0 ? t.uploadRatio.toFixed(2) : ''],
      [t.error ? 'error' : '', t.error ? t.errorString : STATUS[t.status] || ''],
    ];
    for (const [cls, text] of cells) {
      const td = document.createElement('td');
      if (cls) td.className = cls;
      if (text === null) {
        const bar = document.createElement('div'); bar.className = 'bar';
        const fill = document.createElement('span'); fill.style.width = `${pct}%`;
        const label = document.createElement('em'); label.textContent = `${pct}%`;
        bar.append(fill, label); td.append(bar);
      } else td.textContent = text;
      tr.append(td);
    }
    frag.append(tr);
  }
  const after = all.length - first - rows.length;
  if (after > 0) frag.append(spacer(after * ROW));
  body.replaceChildren(frag);
  const down = torrents.reduce((a, t) => a + t.rateDownload, 0);
  const up = torrents.reduce((a, t) => a + t.rateUpload, 0);
  $('#rates').textContent = `↓ ${rate(down) || '0 B/s'}  ↑ ${rate(up) || '0 B/s'}`;
  const labels = [...new Set(torrents.flatMap((t) => t.labels || []))].sort();
  const sel = $('#label-filter');
  if (sel.options.length - 1 !== labels.length) {
    sel.replaceChildren(new Option('Any label', ''), ...labels.map((l) => new Option(l, l)));
    sel.value = labelFilter;
  }
}

async function renderDetails() {
  const d = $('#details');
  if (selected.size !== 1) { d.hidden = true; return; }
  const id = [...selected][0];
  const r = await rpc('torrent-get', { ids: [id], fields: ['id', 'name', 'files', 'fileStats'] });
  const t = r.torrents[0];
  if (!t) { d.hidden = true; return; }
  d.hidden = false;
  $('#d-name').textContent = t.name;
  const body = $('#files tbody');
  const frag = document.createDocumentFragment();
  t.files.forEach((f, i) => {
    const st = t.fileStats[i];
    const tr = document.createElement('tr');
    const want = document.createElement('input'); want.type = 'checkbox'; want.checked = st.wanted;
    want.addEventListener('change', () => act('torrent-set', { ids: [id], [want.checked ? 'files-wanted' : 'files-unwanted']: [i] }));
    const prio = document.createElement('select');
    for (const [v, n] of [[-1, 'Low'], [0, 'Normal'], [1, 'High']]) prio.append(new Option(n, v));
    prio.value = st.priority;
    prio.addEventListener('change', () => act('torrent-set', { ids: [id], [['priority-low', 'priority-normal', 'priority-high'][+prio.value + 1]]: [i] }));
    const cells = [want, f.name, size(f.length), `${f.length ? Math.floor(f.bytesCompleted / f.length * 100) : 100}%`, prio];
    cells.forEach((c, k) => {
      const td = document.createElement('td');
      if (k === 2 || k === 3) td.className = 'n';
      if (typeof c === 'string') td.textContent = c; else td.append(c);
      tr.append(td);
    });
    frag.append(tr);
  });
  body.replaceChildren(frag);
}

async function refresh() {
  try {
    const r = await rpc('torrent-get', {
      fields: ['id', 'name', 'status', 'percentDone', 'rateDownload', 'rateUpload', 'eta', 'uploadRatio', 'error', 'errorString', 'labels'],
    });
    apply(r.torrents);
  } catch (e) { say(e.message); }
}

async function act(method, args) {
  try { await rpc(method, args); await refresh(); await renderDetails(); } catch (e) { say(e.message); }
}
const ids = () => [...selected];

async function addFiles(files) {
  for (const f of files) {
    const bytes = new Uint8Array(await f.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    try {
      const r = await rpc('torrent-add', { metainfo: btoa(bin) });
      say(r['torrent-duplicate'] ? `already there: ${r['torrent-duplicate'].name}` : `added ${r['torrent-added'].name}`);
    } catch (e) { say(`${f.name}: ${e.message}`); }
  }
  refresh();
}

$('#add').addEventListener('submit', async (e) => {
  e.preventDefault();
  const link = $('#add-link').value.trim();
  if (!link) return;
  try {
    const r = await rpc('torrent-add', { filename: link });
    say(r['torrent-duplicate'] ? 'already there' : `added ${r['torrent-added'].name}`);
    $('#add-link').value = '';
  } catch (err) { say(err.message); }
  refresh();
});
$('#add-file').addEventListener('change', (e) => addFiles(e.target.files));
document.addEventListener('dragover', (e) => { e.preventDefault(); document.body.classList.add('drop'); });
document.addEventListener('dragleave', () => document.body.classList.remove('drop'));
document.addEventListener('drop', (e) => {
  e.preventDefault(); document.body.classList.remove('drop');
  const text = e.dataTransfer.getData('text/plain');
  if (e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  else if (text) { $('#add-link').value = text; $('#add').requestSubmit(); }
});
$('#scroller').addEventListener('scroll', () => requestAnimationFrame(render), { passive: true });
$('#list tbody').addEventListener('click', (e) => {
  const tr = e.target.closest('tr');
  if (!tr || !tr.dataset.id) return;
  const id = +tr.dataset.id;
  if (e.ctrlKey || e.metaKey) { if (selected.has(id)) selected.delete(id); else selected.add(id); } else selected = new Set([id]);
  render(); renderDetails();
});
$('#filters').addEventListener('click', (e) => {
  const b = e.target.closest('button');
  if (!b) return;
  filter = b.dataset.filter;
  document.querySelectorAll('#filters button').forEach((x) => x.classList.toggle('on', x === b));
  render();
});
$('#label-filter').addEventListener('change', (e) => { labelFilter = e.target.value; render(); });
$('#resume').addEventListener('click', () => act('torrent-start', { ids: ids() }));
$('#pause').addEventListener('click', () => act('torrent-stop', { ids: ids() }));
$('#verify').addEventListener('click', () => act('torrent-verify', { ids: ids() }));
$('#remove').addEventListener('click', () => act('torrent-remove', { ids: ids() }));
$('#remove-data').addEventListener('click', () => {
  if (confirm('Remove the selected torrents and delete their data?')) act('torrent-remove', { ids: ids(), 'delete-local-data': true });
});
document.addEventListener('keydown', (e) => {
  if (e.target.matches('input, select, textarea')) return;
  if (e.key === 'a') { e.preventDefault(); $('#add-link').focus(); }
  else if (e.key === 'p') $('#pause').click();
  else if (e.key === 'r') $('#resume').click();
  else if (e.key === 'v') $('#verify').click();
  else if (e.key === 'Delete') (e.shiftKey ? $('#remove-data') : $('#remove')).click();
});
// Live updates are pushed: /events sends the list once a second (server-sent events; the
// browser reconnects by itself). Actions refresh at once through the RPC.
let ticks = 0;
function apply(list) {
  torrents = list.sort((a, b) => a.id - b.id);
  for (const id of [...selected]) if (!torrents.some((t) => t.id === id)) selected.delete(id);
  render();
  if (selected.size === 1 && !document.hidden && ticks++ % 2 === 0) renderDetails().catch((e) => say(e.message));
}
refresh();
if (window.EventSource) {
  const es = new EventSource('/events');
  es.addEventListener('torrents', (e) => apply(JSON.parse(e.data).torrents));
} else {
  setInterval(refresh, 1000);
}
