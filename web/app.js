// shoal's web UI: a Transmission RPC client. The list arrives by server-sent events
// (/events); actions, the selected torrent's details (files, peers, trackers, pieces) and
// the session's settings go through the RPC; feeds and their rules through the
// qBittorrent Web API's rss/* calls, as any outside client would make them.
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
// Piece sizes are powers of two: 64 KiB reads better than 66 kB.
const binary = (n) => (n >= 1 << 20 ? `${+(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${+(n / 1024).toFixed(1)} KiB` : `${n} B`);
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
  $('#rates .down').textContent = `↓ ${rate(down) || '0 B/s'}`;
  $('#rates .up').textContent = `↑ ${rate(up) || '0 B/s'}`;
  const labels = [...new Set(torrents.flatMap((t) => t.labels || []))].sort();
  const sel = $('#label-filter');
  if (sel.options.length - 1 !== labels.length) {
    sel.replaceChildren(new Option('Any label', ''), ...labels.map((l) => new Option(l, l)));
    sel.value = labelFilter;
  }
}

// A table body from rows of cells (text or nodes); `num` are the right-aligned columns.
function fillTable(table, rows, num = []) {
  const frag = document.createDocumentFragment();
  for (const cells of rows) {
    const tr = document.createElement('tr');
    cells.forEach((c, k) => {
      const td = document.createElement('td');
      if (num.includes(k)) td.className = 'n';
      if (c instanceof Node) td.append(c); else td.textContent = c;
      tr.append(td);
    });
    frag.append(tr);
  }
  table.tBodies[0].replaceChildren(frag);
  const none = table.parentElement.querySelector('.none');
  if (none) { none.hidden = rows.length > 0; table.hidden = !rows.length; }
}

// A canvas's bitmap sized to its box on screen (sharp on high-density screens); a 2D
// context drawing in CSS pixels.
function fitCanvas(c, cssHeight) {
  const dpr = Math.max(1, Math.round(window.devicePixelRatio || 1));
  const w = Math.max(1, Math.floor(c.clientWidth)), h = cssHeight ?? Math.max(1, Math.floor(c.clientHeight));
  if (c.width !== w * dpr || c.height !== h * dpr) { c.width = w * dpr; c.height = h * dpr; }
  const ctx = c.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}
const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// The selected torrent's details: only the open tab's fields are asked for.
const TABS = {
  files: ['files', 'fileStats', 'hashString'],
  peers: ['peers'],
  trackers: ['trackerStats'],
  pieces: ['pieces', 'pieceCount', 'pieceSize'],
};
let tab = 'files';
let detailsAsked = 0;
async function renderDetails() {
  const d = $('#details');
  const asked = ++detailsAsked, shownTab = tab;
  if (selected.size !== 1) { d.hidden = true; return; }
  const id = [...selected][0];
  const r = await rpc('torrent-get', { ids: [id], fields: ['id', 'name', ...TABS[shownTab]] });
  if (asked !== detailsAsked) return;  // a newer answer is on its way
  const t = r.torrents[0];
  if (!t) { d.hidden = true; return; }
  d.hidden = false;
  $('#d-name').textContent = t.name;
  ({ files: renderFiles, peers: renderPeers, trackers: renderTrackers, pieces: renderPieces })[shownTab](t, id);
}

function renderFiles(t, id) {
  // Not while a file's priority is in use: rebuilding would close its list.
  if ($('#files').contains(document.activeElement) && document.activeElement.matches('select')) return;
  fillTable($('#files'), t.files.map((f, i) => {
    const st = t.fileStats[i];
    const want = document.createElement('input'); want.type = 'checkbox'; want.checked = st.wanted;
    want.setAttribute('aria-label', `Download ${f.name}`);
    want.addEventListener('change', () => act('torrent-set', { ids: [id], [want.checked ? 'files-wanted' : 'files-unwanted']: [i] }));
    const prio = document.createElement('select');
    prio.setAttribute('aria-label', `Priority of ${f.name}`);
    for (const [v, n] of [[-1, 'Low'], [0, 'Normal'], [1, 'High']]) prio.append(new Option(n, v));
    prio.value = st.priority;
    prio.addEventListener('change', () => act('torrent-set', { ids: [id], [['priority-low', 'priority-normal', 'priority-high'][+prio.value + 1]]: [i] }));
    let play = '';
    if (MEDIA.test(f.name)) {
      play = document.createElement('button');
      play.textContent = 'Play';
      play.className = 'play';
      play.setAttribute('aria-label', `Play ${f.name}`);
      play.addEventListener('click', () => openPlayer(t.hashString, f.name).catch((e) => say(e.message)));
    }
    return [want, f.name, size(f.length), `${f.length ? Math.floor(f.bytesCompleted / f.length * 100) : 100}%`, prio, play];
  }), [2, 3]);
}

// The player: a file streamed from /stream/ while it downloads (the daemon fetches the
// pieces under the play position first), a bar of the parts downloaded, and the torrent's
// .srt/.vtt files as subtitle tracks.
const MEDIA = /\.(mp4|m4v|webm|mkv|mov|ogv|mp3|m4a|opus|ogg|oga|flac|wav|aac)$/i;
const SUBS = /\.(srt|vtt)$/i;
const player = $('#player'), video = $('#player-video');
let playerFile = null;
async function openPlayer(hash, name) {
  const r = await fetch(`/stream/${hash}.json`);
  if (!r.ok) throw new Error(`cannot stream: HTTP ${r.status}`);
  const list = (await r.json()).files;
  const f = list.find((x) => x.path === name);
  if (!f) throw new Error(`cannot stream ${name}: not in the torrent's file list`);
  const base = `/stream/${hash}/${f.index}`;
  playerFile = { base, size: f.size };
  $('#player-title').textContent = name.split('/').pop();
  $('#player-link').href = base;
  video.replaceChildren();
  // Subtitles beside the file: same folder, name starting like the file's.
  const dir = name.slice(0, name.lastIndexOf('/') + 1);
  const stem = name.slice(dir.length).replace(/\.[^.]*$/, '');
  let first = true;
  for (const x of list) {
    if (!SUBS.test(x.path) || !x.path.startsWith(dir)) continue;
    const own = x.path.slice(dir.length);
    if (!own.startsWith(stem)) continue;
    const tr = document.createElement('track');
    tr.kind = 'subtitles';
    tr.src = `/stream/${hash}/${x.index}.vtt`;
    const lang = own.slice(stem.length).replace(/\.(srt|vtt)$/i, '').replace(/^[._-]/, '');
    tr.label = lang || 'Subtitles';
    if (/^[a-z]{2,3}$/i.test(lang)) tr.srclang = lang.toLowerCase();
    if (first) { tr.default = true; first = false; }
    video.append(tr);
  }
  video.src = base;
  player.showModal();
  video.play().catch(() => {});  // autoplay may be refused: the controls are there
  drawBuffer();
}
async function drawBuffer() {
  if (!player.open || !playerFile) return;
  const file = playerFile;
  const r = await fetch(`${file.base}/buffered`).catch(() => null);
  if (!r || !r.ok || file !== playerFile) return;
  const b = await r.json();
  const c = $('#player-buffer');
  const { ctx, w, h } = fitCanvas(c, 8);
  ctx.fillStyle = cssVar('--accent');
  for (const [a, e] of b.ranges) ctx.fillRect(Math.floor(a / b.size * w), 0, Math.max(1, Math.ceil((e - a) / b.size * w)), h);
  if (video.duration > 0) {
    ctx.fillStyle = cssVar('--fg');
    ctx.fillRect(Math.floor(video.currentTime / video.duration * w), 0, 2, h);
  }
  const have = b.ranges.reduce((n, [a, e]) => n + e - a, 0);
  $('#player-info').textContent = `${size(have)} of ${size(b.size)} downloaded` +
    (video.readyState < 3 && !video.paused ? ' · buffering' : '');
}
setInterval(() => { if (player.open && !document.hidden) drawBuffer().catch(() => {}); }, 1000);
$('#player-close').addEventListener('click', () => player.close());
player.addEventListener('close', () => {
  // Dropping the source ends the stream's requests: the daemon forgets the reader.
  video.pause();
  video.removeAttribute('src');
  video.replaceChildren();
  video.load();
  playerFile = null;
});

function renderPeers(t) {
  const peers = t.peers.slice().sort((a, b) => b.rateToClient - a.rateToClient || b.rateToPeer - a.rateToPeer);
  fillTable($('#peers'), peers.map((p) => [
    p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`,
    p.clientName || '',
    `${Math.floor(p.progress * 100)}%`,
    rate(p.rateToClient),
    rate(p.rateToPeer),
    p.flagStr || '',
  ]), [2, 3, 4]);
}

const ago = (when) => (when > 0 ? `${eta(Math.max(0, Math.round(Date.now() / 1000 - when)))} ago` : '');
function renderTrackers(t) {
  const count = (n) => (n >= 0 ? String(n) : '–');
  fillTable($('#trackers'), t.trackerStats.map((k) => {
    const last = document.createElement('span');
    // The daemon's message may start with the URL again: said once is enough.
    const said = (k.lastAnnounceResult || '').replace(`${k.announce}: `, '');
    last.textContent = [said || (k.hasAnnounced ? '' : 'not yet'), ago(k.lastAnnounceTime)].filter(Boolean).join(', ');
    if (k.hasAnnounced && !k.lastAnnounceSucceeded) last.className = 'error';
    const url = document.createElement('span');
    url.className = 'url'; url.textContent = k.announce;
    const next = k.nextAnnounceTime > Date.now() / 1000 ? `in ${eta(Math.round(k.nextAnnounceTime - Date.now() / 1000))}` : '–';
    return [String(k.tier + 1), url, last, `${count(k.seederCount)} / ${count(k.leecherCount)}`, next];
  }), [0, 3, 4]);
}

// Pieces as a grid of cells, one piece each (or, for many pieces, a few per cell drawn as
// done as their share); the canvas is at most MAP_H pixels tall.
let lastPieces = null;
const MAP_H = 160;
function renderPieces(t) {
  lastPieces = t;
  const bits = atob(t.pieces || '');
  const n = t.pieceCount || 0;
  let have = 0;
  for (let p = 0; p < n; p++) if (bits.charCodeAt(p >> 3) & (0x80 >> (p & 7))) have++;
  $('#pieces-info').textContent = n ? `${have} of ${n} pieces${t.pieceSize ? ` of ${binary(t.pieceSize)}` : ''} (${Math.floor(have / n * 100)}%)` : 'No metadata yet.';
  drawPieces(bits, n);
}
function drawPieces(bits, n) {
  const c = $('#pieces-map');
  if (!n) { c.hidden = true; return; }
  c.hidden = false;
  const W = Math.max(1, Math.floor(c.clientWidth));
  const cell = Math.max(2, Math.min(12, Math.floor(Math.sqrt(W * MAP_H / n))));
  const cols = Math.max(1, Math.floor(W / cell));
  const per = Math.max(1, Math.ceil(n / (cols * Math.floor(MAP_H / cell))));
  const cells = Math.ceil(n / per), rows = Math.ceil(cells / cols);
  c.style.height = `${rows * cell}px`;
  const { ctx } = fitCanvas(c, rows * cell);
  const gap = cell >= 6 ? 1 : 0;
  const missing = cssVar('--bar'), done = cssVar('--accent');
  for (let i = 0; i < cells; i++) {
    let got = 0;
    const end = Math.min(n, (i + 1) * per);
    for (let p = i * per; p < end; p++) if (bits.charCodeAt(p >> 3) & (0x80 >> (p & 7))) got++;
    const x = (i % cols) * cell, y = Math.floor(i / cols) * cell;
    const share = got / (end - i * per);
    if (share < 1) { ctx.globalAlpha = 1; ctx.fillStyle = missing; ctx.fillRect(x, y, cell - gap, cell - gap); }
    if (share > 0) { ctx.globalAlpha = share; ctx.fillStyle = done; ctx.fillRect(x, y, cell - gap, cell - gap); }
  }
  ctx.globalAlpha = 1;
}

function showTab(name, focus = false) {
  tab = name;
  for (const b of document.querySelectorAll('#tabs [role=tab]')) {
    const on = b.dataset.tab === name;
    b.setAttribute('aria-selected', on);
    b.tabIndex = on ? 0 : -1;
    $(`#${b.getAttribute('aria-controls')}`).hidden = !on;
    if (on && focus) b.focus();
  }
  renderDetails().catch((e) => say(e.message));
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
  render(); renderDetails().catch((err) => say(err.message));
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
$('#tabs').addEventListener('click', (e) => {
  const b = e.target.closest('[role=tab]');
  if (b) showTab(b.dataset.tab);
});
$('#tabs').addEventListener('keydown', (e) => {
  if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
  const names = Object.keys(TABS);
  showTab(names[(names.indexOf(tab) + (e.key === 'ArrowRight' ? 1 : names.length - 1)) % names.length], true);
});
new ResizeObserver(() => {
  if (lastPieces && tab === 'pieces' && !$('#details').hidden) renderPieces(lastPieces);
  drawGraph();
}).observe($('main'));
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  drawGraph();
  if (lastPieces && tab === 'pieces') renderPieces(lastPieces);
});

// Turtle mode (the alternative speed limits) and the settings: session-get and session-set.
let session = {};
async function loadSession() {
  session = await rpc('session-get', { fields: ['alt-speed-enabled', 'alt-speed-down', 'alt-speed-up'] });
  const on = !!session['alt-speed-enabled'];
  const b = $('#turtle');
  b.classList.toggle('on', on);
  b.setAttribute('aria-pressed', on);
  b.title = `Turtle mode ${on ? 'on' : 'off'}: limits of ↓ ${session['alt-speed-down']} kB/s and ↑ ${session['alt-speed-up']} kB/s (t)`;
}
$('#turtle').addEventListener('click', async () => {
  const b = $('#turtle');
  if (b.disabled) return;
  b.disabled = true;
  try {
    await rpc('session-set', { 'alt-speed-enabled': !session['alt-speed-enabled'] });
    await loadSession();
    say(`turtle mode ${session['alt-speed-enabled'] ? 'on' : 'off'}`);
  } catch (e) { say(`turtle mode: ${e.message}`); }
  b.disabled = false;
});

const dialog = $('#settings'), form = $('#settings-form');
const settingInputs = () => [...form.elements].filter((el) => el.name);
const valueOf = (el) => (el.type === 'checkbox' ? el.checked : el.type === 'number' ? Number(el.value) : el.value.trim());
let loaded = {};
// A dialog's error line: shown with `text`, hidden when it is empty.
const errorLine = (sel) => (text) => {
  const p = $(sel);
  p.textContent = text;
  p.hidden = !text;
};
// What a dialog's buttons do: run fn, then say `done` or show the error in the dialog, and
// render the dialog again.
const dialogAct = (showError, render) => async (fn, done) => {
  showError('');
  try { await fn(); say(done); } catch (e) { showError(e.message); }
  await render().catch((e) => showError(e.message));
};
const settingsError = errorLine('#settings-error');
async function openSettings() {
  if (dialog.open) return;
  settingsError('');
  for (const el of settingInputs()) el.removeAttribute('aria-invalid');
  form.inert = true;
  dialog.showModal();
  try {
    const s = await rpc('session-get', { fields: settingInputs().map((el) => el.name) });
    for (const el of settingInputs()) {
      if (el.type === 'checkbox') el.checked = !!s[el.name]; else el.value = s[el.name] ?? '';
    }
    loaded = Object.fromEntries(settingInputs().map((el) => [el.name, valueOf(el)]));
  } catch (e) { settingsError(`Could not read the settings: ${e.message}`); }
  form.inert = false;
  form.elements['download-dir'].focus();
}
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  settingsError('');
  for (const el of settingInputs()) el.removeAttribute('aria-invalid');
  const bad = settingInputs().find((el) => !el.checkValidity());
  if (bad) {
    bad.setAttribute('aria-invalid', 'true');
    settingsError(`${bad.getAttribute('aria-label') || bad.closest('label').textContent.trim()}: ${bad.validationMessage}`);
    bad.focus();
    return;
  }
  // Only what changed: an untouched field is not checked again by the daemon.
  const args = {};
  for (const el of settingInputs()) if (valueOf(el) !== loaded[el.name]) args[el.name] = valueOf(el);
  if (!Object.keys(args).length) { dialog.close(); return; }
  $('#settings-save').disabled = true;
  try {
    await rpc('session-set', args);
    dialog.close();
    say('settings saved');
    loadSession().catch(() => {});
  } catch (err) {
    settingsError(`Not saved: ${err.message}`);
    // The daemon names the setting it refused: that field is marked and focused.
    const named = settingInputs().find((el) => err.message.startsWith(`${el.name} `));
    if (named) { named.setAttribute('aria-invalid', 'true'); named.focus(); }
  } finally { $('#settings-save').disabled = false; }
});
$('#settings-cancel').addEventListener('click', () => dialog.close());
$('#settings-open').addEventListener('click', openSettings);

// Feeds and rules: qBittorrent's rss/items, addFeed, removeItem, rules, setRule, removeRule.
// A POST's answer is text ("" when it worked); the daemon's refusal is the error shown.
async function qb(call, params = null) {
  const r = await fetch(`/api/v2/rss/${call}`, params ? {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  } : {});
  const text = await r.text();
  if (!r.ok) throw new Error(text || `rss/${call}: HTTP ${r.status}`);
  return params ? text : JSON.parse(text);
}
const feedsDialog = $('#feeds');
const feedsError = errorLine('#feeds-error');
const smallButton = (text, label, onClick) => {
  const b = document.createElement('button');
  b.type = 'button'; b.textContent = text; b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
};
const removeButton = (label, onClick) => smallButton('Remove', label, onClick);
async function renderFeeds() {
  const [items, rules] = await Promise.all([qb('items?withData=true'), qb('rules')]);
  const byUrl = {};
  fillTable($('#feed-list'), Object.entries(items).map(([name, f]) => {
    byUrl[f.url] = name;
    const what = document.createElement('span');
    what.textContent = f.title || name;
    if ((f.title || name) !== f.url) { const u = document.createElement('small'); u.textContent = f.url; what.append(u); }
    const status = document.createElement('span');
    status.textContent = f.hasError ? (f.error || 'error') : f.isLoading ? 'loading…' : 'ok';
    if (f.hasError) status.className = 'error';
    return [what, String(f.articles.length), status, removeButton(`Remove feed ${name}`, () => feedsAct(() => qb('removeItem', { path: name }), `removed ${name}`))];
  }), [1]);
  fillTable($('#rule-list'), Object.entries(rules).map(([name, r]) => {
    const feeds = r.affectedFeeds.map((u) => byUrl[u] || u).join(', ');
    const label = `${name}${r.enabled ? '' : ' (off)'}${r.assignedCategory ? ` → ${r.assignedCategory}` : ''}`;
    return [label, r.mustContain || 'anything', r.mustNotContain || '–', feeds,
      removeButton(`Remove rule ${name}`, () => feedsAct(() => qb('removeRule', { ruleName: name }), `removed rule ${name}`))];
  }));
  const sel = $('#rule-add [name=feed]');
  const had = sel.value;
  sel.replaceChildren(...Object.entries(items).map(([name, f]) => new Option(name, f.url)));
  if ([...sel.options].some((o) => o.value === had)) sel.value = had;
}
const feedsAct = dialogAct(feedsError, () => renderFeeds());
async function openFeeds() {
  if (feedsDialog.open) return;
  feedsError('');
  feedsDialog.showModal();
  await renderFeeds().catch((e) => feedsError(`Could not read the feeds: ${e.message}`));
  $('#feed-url').focus();
}
$('#feed-add').addEventListener('submit', (e) => {
  e.preventDefault();
  const url = $('#feed-url').value.trim();
  feedsAct(async () => { await qb('addFeed', { url }); $('#feed-url').value = ''; }, `following ${url}`);
});
$('#rule-add').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = e.target.elements;
  const name = f.name.value.trim();
  if (!f.feed.value) { feedsError('Add a feed first: a rule applies to a feed.'); return; }
  const ruleDef = {
    enabled: true, mustContain: f.mustContain.value.trim(), mustNotContain: f.mustNotContain.value.trim(),
    useRegex: false, affectedFeeds: [f.feed.value], assignedCategory: f.assignedCategory.value.trim(),
  };
  feedsAct(async () => {
    await qb('setRule', { ruleName: name, ruleDef: JSON.stringify(ruleDef) });
    for (const k of ['name', 'mustContain', 'mustNotContain', 'assignedCategory']) f[k].value = '';
  }, `rule ${name} saved`);
});
$('#feeds-open').addEventListener('click', openFeeds);
$('#feeds-close').addEventListener('click', () => feedsDialog.close());
// While open, the feeds' polls show up (loading, items, errors) without a click.
setInterval(() => { if (feedsDialog.open && !document.hidden) renderFeeds().catch(() => {}); }, 3000);
// Channels: each followed feed as a catalogue of its items (title, size, date). Play adds
// the item's torrent and opens the player on its largest media file at once: the daemon
// fetches what the player reads first, from peers and from the torrent's web seed.
// "Download new items automatically" is a rule taking all of the feed's new items; the
// items there already are marked read first (a read item is not taken by a rule).
const channelsDialog = $('#channels');
// A channel's rule: named after its title, found by what it does (every item of that feed).
const channelRule = (rules, f) => Object.keys(rules).find((n) => n.startsWith('Channel: ') &&
  rules[n].affectedFeeds.length === 1 && rules[n].affectedFeeds[0] === f.url && !rules[n].mustContain);
let channelRules = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let channelFeeds = {};
const channelsError = errorLine('#channels-error');
const itemDate = (d) => {
  const t = Date.parse(d);
  return Number.isNaN(t) ? d : new Date(t).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
};
async function renderChannels() {
  const [items, rules] = await Promise.all([qb('items?withData=true'), qb('rules')]);
  channelFeeds = items;
  const pick = $('#channel-pick');
  const had = pick.value;
  pick.replaceChildren(...Object.entries(items).map(([name, f]) => new Option(f.title || name, name)));
  if ([...pick.options].some((o) => o.value === had)) pick.value = had;
  const name = pick.value, f = items[name];
  const auto = $('#channel-auto');
  auto.disabled = !f;
  channelRules = rules;
  const rule = f && rules[channelRule(rules, f)];
  auto.checked = !!(rule && rule.enabled);
  $('#channel-about').textContent = !f ? '' : f.hasError ? `Not read: ${f.error || 'error'}`
    : f.isLoading && !f.articles.length ? `loading ${f.url}…` : `${f.articles.length} items · ${f.url}`;
  fillTable($('#channel-items'), (f ? f.articles : []).map((a) => {
    const what = document.createElement('span');
    what.textContent = a.title;
    if (a.isRead) { const r = document.createElement('small'); r.textContent = 'added or seen before'; what.append(r); }
    const actions = document.createElement('span');
    actions.append(
      smallButton('Play', `Play ${a.title}`, () => playItem(name, a).catch((e) => channelsError(e.message))),
      smallButton('Download', `Download ${a.title}`, () => channelsAct(() => addItem(name, a), `added ${a.title}`)));
    return [what, /^\d+$/.test(a.contentLength || '') ? size(+a.contentLength) : '', itemDate(a.date || ''), actions];
  }), [1]);
}
const channelsAct = dialogAct(channelsError, () => renderChannels());
// Adds an item's torrent (its .torrent URL or magnet) and marks it read; its hash.
async function addItem(feed, a) {
  const r = await rpc('torrent-add', { filename: a.torrentURL || a.link });
  const t = r['torrent-added'] || r['torrent-duplicate'];
  await qb('markAsRead', { itemPath: feed, articleId: a.id }).catch(() => {});
  refresh();
  return t.hashString;
}
async function playItem(feed, a) {
  channelsError('');
  say(`starting ${a.title}`);
  const hash = await addItem(feed, a);
  // A magnet's files are known once its metadata arrives (503 until then).
  let files = null;
  for (const deadline = Date.now() + 60000; !files;) {
    const r = await fetch(`/stream/${hash}.json`);
    if (r.ok) files = (await r.json()).files;
    else if (r.status !== 503 || Date.now() > deadline) throw new Error(`cannot stream ${a.title}: ${(await r.text()).trim() || `HTTP ${r.status}`}`);
    else await sleep(500);
  }
  const media = files.filter((x) => x.media).sort((x, y) => y.size - x.size)[0];
  if (!media) throw new Error(`${a.title} has no audio or video file to play (added: it downloads)`);
  channelsDialog.close();
  await openPlayer(hash, media.path);
}
async function openChannels() {
  if (channelsDialog.open) return;
  channelsError('');
  channelsDialog.showModal();
  await renderChannels().catch((e) => channelsError(`Could not read the feeds: ${e.message}`));
}
$('#channel-pick').addEventListener('change', () => renderChannels().catch((e) => channelsError(e.message)));
$('#channel-auto').addEventListener('change', (e) => {
  const name = $('#channel-pick').value, f = channelFeeds[name], on = e.target.checked;
  if (!f) return;
  channelsAct(async () => {
    const had = channelRule(channelRules, f);
    if (on) {
      let ruleName = had || `Channel: ${f.title || name}`;
      if (!had && channelRules[ruleName]) ruleName = `Channel: ${f.url}`;
      await qb('markAsRead', { itemPath: name });
      await qb('setRule', {
        ruleName,
        ruleDef: JSON.stringify({ enabled: true, mustContain: '', mustNotContain: '', useRegex: false, affectedFeeds: [f.url] }),
      });
    } else if (had) {
      await qb('removeRule', { ruleName: had });
    }
  }, on ? `new items of ${f.title || name} will be downloaded` : `new items of ${f.title || name} are no longer downloaded`);
});
$('#channels-open').addEventListener('click', openChannels);
$('#channels-close').addEventListener('click', () => channelsDialog.close());
setInterval(() => { if (channelsDialog.open && !document.hidden) renderChannels().catch(() => {}); }, 5000);
// Sync: the daemon's synced folders (shoal-sync-* methods, docs/SYNC_API.md). The list is
// read every 2 s while the dialog is open; keys are asked for only when Keys is pressed,
// and forgotten when the dialog closes or another folder is chosen.
const syncDialog = $('#sync');
let syncFolders = [];
let syncPick = 0;  // the folder whose details are shown
let syncKeysFor = 0;  // the folder whose keys are shown
const syncError = errorLine('#sync-error');
const STATE_TEXT = { idle: 'up to date', syncing: 'syncing', scanning: 'scanning', error: 'error', stopped: 'stopped' };
function hideKeys() {
  syncKeysFor = 0;
  $('#sync-keys').hidden = true;
  $('#sync-key-rw').value = '';
  $('#sync-key-ro').value = '';
}
async function renderSync() {
  syncFolders = (await rpc('shoal-sync-get')).folders;
  if (!syncFolders.some((f) => f.id === syncPick)) syncPick = syncFolders.length ? syncFolders[0].id : 0;
  if (syncKeysFor && syncKeysFor !== syncPick) hideKeys();
  fillTable($('#sync-list'), syncFolders.map((f) => {
    const what = document.createElement('span');
    what.textContent = f.path;
    const sub = document.createElement('small');
    sub.textContent = f.error || `${f.access}${f.conflicts.length ? ` · ${f.conflicts.length} conflict${f.conflicts.length > 1 ? 's' : ''}` : ''}`;
    what.append(sub);
    const st = document.createElement('span');
    st.textContent = STATE_TEXT[f.state] || f.state;
    st.className = `state-${f.state}`;
    const actions = document.createElement('span');
    actions.append(
      smallButton('Details', `Details of ${f.path}`, () => { syncPick = f.id; renderSync().catch((e) => syncError(e.message)); }),
      smallButton('Keys', `Show the keys of ${f.path}`, () => syncAct(() => showKeys(f.id), `keys of ${f.path} shown`)),
      removeButton(`Stop syncing ${f.path}`, () => {
        if (confirm(`Stop syncing ${f.path}? Its files stay where they are.`)) syncAct(() => rpc('shoal-sync-remove', { id: f.id }), `${f.path} is no longer synced`);
      }));
    return [what, st, String(f.files), size(f.bytes), String(f.peers.length), actions];
  }), [2, 3, 4]);
  [...$('#sync-list').tBodies[0].rows].forEach((tr, i) => tr.classList.toggle('sel', syncFolders[i].id === syncPick));
  const f = syncFolders.find((x) => x.id === syncPick);
  $('#sync-detail').hidden = !f;
  if (!f) return;
  $('#sync-detail-title').textContent = f.path;
  $('#sync-detail-about').textContent = f.error ? `Not running: ${f.error}`
    : `${f.access} · this device ${f.deviceId} · share ${f.shareId.slice(0, 16)}…${f.dial.length ? ` · dials ${f.dial.join(', ')}` : ''}${f.queued ? ` · ${f.queued} changes to apply` : ''}`;
  fillTable($('#sync-peers'), f.peers.map((p) => [p.device, p.address, p.access]));
  fillTable($('#sync-conflicts'), f.conflicts.map((c) => [c]));
  fillTable($('#sync-events'), f.events.slice().reverse().map((e) => [
    new Date(e.time * 1000).toLocaleTimeString(), e.kind, e.path || e.detail, e.device]));
}
async function showKeys(id) {
  const k = await rpc('shoal-sync-keys', { id });
  syncPick = id;
  syncKeysFor = id;
  $('#sync-key-rw').value = k.readWrite;
  $('#sync-key-rw').closest('label').hidden = !k.readWrite;
  $('#sync-key-ro').value = k.readOnly;
  $('#sync-keys').hidden = false;
}
async function copyKey(input, what) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand('copy');
  }
  say(`${what} copied`);
}
$('#sync-copy-rw').addEventListener('click', () => copyKey($('#sync-key-rw'), 'read-write key'));
$('#sync-copy-ro').addEventListener('click', () => copyKey($('#sync-key-ro'), 'read-only key'));
const syncAct = dialogAct(syncError, () => renderSync());
async function openSync() {
  if (syncDialog.open) return;
  syncError('');
  syncDialog.showModal();
  await renderSync().catch((e) => syncError(`Could not read the synced folders: ${e.message}`));
}
$('#sync-add').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = e.target;
  const path = form.path.value.trim(), key = form.key.value.trim();
  const peers = form.peers.value.split(/[\s,]+/).filter(Boolean);
  const trackers = form.trackers.value.split(/[\s,]+/).filter(Boolean);
  syncAct(async () => {
    const r = await rpc('shoal-sync-add', { path, key, peers, trackers });
    syncPick = r.folder.id;
    form.reset();
  }, key ? `joined ${path}` : `syncing ${path}`);
});
$('#sync-open').addEventListener('click', openSync);
$('#sync-close').addEventListener('click', () => syncDialog.close());
syncDialog.addEventListener('close', hideKeys);
setInterval(() => { if (syncDialog.open && !document.hidden) renderSync().catch(() => {}); }, 2000);
for (const d of [dialog, feedsDialog, channelsDialog, syncDialog, player]) {
  // A click on the backdrop (outside the dialog's box) closes it, like Escape.
  d.addEventListener('click', (e) => {
    if (e.target !== d) return;
    const r = d.getBoundingClientRect();
    if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) d.close();
  });
}

document.addEventListener('keydown', (e) => {
  if (e.target.matches('input, select, textarea') || dialog.open || feedsDialog.open || channelsDialog.open || syncDialog.open || player.open || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'a') { e.preventDefault(); $('#add-link').focus(); }
  else if (e.key === 'p') $('#pause').click();
  else if (e.key === 'r') $('#resume').click();
  else if (e.key === 'v') $('#verify').click();
  else if (e.key === 's') { e.preventDefault(); openSettings(); }
  else if (e.key === 'f') { e.preventDefault(); openFeeds(); }
  else if (e.key === 'c') { e.preventDefault(); openChannels(); }
  else if (e.key === 'y') { e.preventDefault(); openSync(); }
  else if (e.key === 't') $('#turtle').click();
  else if (e.key >= '1' && e.key <= '4' && !$('#details').hidden) showTab(Object.keys(TABS)[+e.key - 1], true);
  else if (e.key === 'Delete') (e.shiftKey ? $('#remove-data') : $('#remove')).click();
});

// The rate graph: total down and up of the last two minutes, one sample per update.
const SPAN = 120000;
const samples = [];
function sample() {
  const now = performance.now();
  samples.push([now, torrents.reduce((a, t) => a + t.rateDownload, 0), torrents.reduce((a, t) => a + t.rateUpload, 0)]);
  while (samples[0][0] < now - SPAN - 2000) samples.shift();
  if (!document.hidden) drawGraph();
}
function drawGraph() {
  const c = $('#graph');
  const { ctx, w, h } = fitCanvas(c);
  const max = Math.max(0, ...samples.map((s) => Math.max(s[1], s[2])));
  c.title = `Total rate, last 2 minutes: peak ↓ ${rate(Math.max(0, ...samples.map((s) => s[1]))) || '0 B/s'}, ↑ ${rate(Math.max(0, ...samples.map((s) => s[2]))) || '0 B/s'}`;
  if (!max || samples.length < 2) return;  // nothing moved: an empty graph
  const now = samples[samples.length - 1][0];
  const x = (t) => w - (now - t) / SPAN * w;
  const y = (v) => h - v / max * (h - 2);
  const line = (k) => {
    ctx.beginPath();
    samples.forEach((s, i) => (i ? ctx.lineTo(x(s[0]), y(s[k])) : ctx.moveTo(x(s[0]), y(s[k]))));
  };
  const down = cssVar('--accent'), up = cssVar('--up');
  line(1);
  ctx.lineTo(w, h); ctx.lineTo(x(samples[0][0]), h); ctx.closePath();
  ctx.globalAlpha = 0.25; ctx.fillStyle = down; ctx.fill(); ctx.globalAlpha = 1;
  ctx.lineWidth = 1.5; ctx.lineJoin = 'round';
  line(1); ctx.strokeStyle = down; ctx.stroke();
  line(2); ctx.strokeStyle = up; ctx.stroke();
}

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
loadSession().catch((e) => say(`session: ${e.message}`));
// Turtle mode can also be switched by its schedule or another client.
setInterval(() => { if (!document.hidden) loadSession().catch(() => {}); }, 15000);
if (window.EventSource) {
  const es = new EventSource('/events');
  es.addEventListener('torrents', (e) => { apply(JSON.parse(e.data).torrents); sample(); });
} else {
  setInterval(() => refresh().then(sample), 1000);
}
