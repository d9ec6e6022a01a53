// Drives shoal's web UI in headless Chromium: the turtle toggle, add a magnet, watch its
// progress move with no reload (server-sent events), the Peers, Trackers and Pieces tabs and
// the rate graph while it downloads, pause and resume, set a file's priority, the settings
// dialog (a value saved, an error shown), the Feeds dialog (a feed and a rule added, listed
// and removed), a phone-sized viewport (light and dark), remove with data. One JSON line per
// step on stdout; exit 1 at the first step that fails. Screenshots go to --shots.
//
// node ui_test.mjs --url http://127.0.0.1:PORT/ --magnet MAGNET --feed FEED_URL --shots DIR
import { chromium } from 'playwright-core';
import path from 'node:path';

import { args, shot, step, until as poll } from './driver.mjs';

const announce = new URLSearchParams(args.magnet.slice(args.magnet.indexOf('?') + 1)).get('tr');
// Polls fn until it returns something truthy; the last value either way.
const until = (fn, ms) => poll(fn, ms, 150);

// A canvas read back: pixels drawn at all, those in the page's accent colour (opaque), the rest.
const canvasPixels = (page, sel) => page.$eval(sel, (c) => {
  const hex = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim();
  const acc = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, accent = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (!d[i + 3]) continue;
    drawn++;
    if (d[i + 3] === 255 && acc.every((v, k) => Math.abs(d[i + k] - v) <= 6)) accent++;
  }
  return { drawn, accent, other: drawn - accent, size: `${c.width}x${c.height}` };
});
const progress = (page) => page.textContent('#list tbody tr .bar em');
const downloading = async (page) => { const p = await progress(page); return p !== null && p !== '100%'; };
const daemon = (page, method, a = {}) => page.evaluate(([m, x]) => rpc(m, x), [method, a]);
// The daemon's rss/* answers, through the page's own qBittorrent API client.
const rss = (page, call) => page.evaluate((c) => qb(c), call);
const rows = (page, sel) => page.$$eval(`${sel} tbody tr`, (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
let code = 0;
try {
  // The page's CSP forbids eval, which playwright's waitForFunction uses: bypassed for the driver only.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(args.url);
  await page.waitForSelector('#empty:not([hidden])', { timeout: 10000 });
  step('empty list on first load', true);
  await shot(page, 'empty.png');

  // Turtle mode: a click turns it on, the key t turns it off; the daemon is asked each time.
  await page.waitForSelector('#turtle[aria-pressed=false][title^="Turtle mode off"]', { timeout: 10000 });
  await page.click('#turtle');
  await page.waitForSelector('#turtle[aria-pressed=true].on', { timeout: 10000 });
  let s = await daemon(page, 'session-get', { fields: ['alt-speed-enabled'] });
  step('turtle button: on, and the daemon has alt-speed-enabled', s['alt-speed-enabled'] === true, JSON.stringify(s));
  await shot(page, 'turtle.png');
  await page.keyboard.press('t');
  await page.waitForSelector('#turtle[aria-pressed=false]:not(.on)', { timeout: 10000 });
  s = await daemon(page, 'session-get', { fields: ['alt-speed-enabled'] });
  step('key t: turtle off again, in the daemon too', s['alt-speed-enabled'] === false, JSON.stringify(s));

  // The progress the page shows, recorded in the page every 100 ms while the steps below run.
  await page.evaluate(() => {
    window.seenProgress = [];
    setInterval(() => {
      const t = document.querySelector('#list tbody tr .bar em')?.textContent;
      if (t && window.seenProgress[window.seenProgress.length - 1] !== t) window.seenProgress.push(t);
    }, 100);
  });
  await page.fill('#add-link', args.magnet);
  await page.click('#add button[type=submit]');
  await page.waitForSelector('#list tbody tr', { timeout: 15000 });
  step('magnet added: a row appears', true);

  // While it downloads (the daemon is held to a slow rate): peers, pieces, the graph, trackers.
  await page.click('#list tbody tr');
  await page.waitForSelector('#details:not([hidden])', { timeout: 10000 });
  await page.keyboard.press('2');
  const peer = await until(async () => {
    const rows = await page.$$eval('#peers tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    const seeder = rows.find((r) => r[0].startsWith('127.0.0.1:'));
    // Its share of the pieces, the rate it sends at, D: we download from it.
    const live = seeder && /^\d+%$/.test(seeder[2]) && /B\/s$/.test(seeder[3]) && seeder[5].includes('D');
    return live && (await downloading(page)) ? seeder : null;
  }, 30000);
  step('Peers tab (key 2) lists the libtorrent seeder at 127.0.0.1 with its rate and flags while downloading', !!peer,
    JSON.stringify(peer) + ` at ${await progress(page)}`);
  await shot(page, 'peers.png');

  await page.click('#tab-pieces');
  const partial = await until(async () => {
    const px = await canvasPixels(page, '#pieces-map');
    return px.accent > 0 && px.other > 0 && (await downloading(page)) ? px : null;
  }, 20000);
  step('Pieces tab: the map has done and missing pieces drawn while downloading', !!partial,
    JSON.stringify(partial) + ` ${await page.textContent('#pieces-info')}`);
  await shot(page, 'pieces.png');

  const graph = await until(async () => {
    const px = await canvasPixels(page, '#graph');
    return px.drawn > 40 && (await downloading(page)) ? px : null;
  }, 15000);
  step('the rate graph draws the download while it runs', !!graph, JSON.stringify(graph));

  await page.keyboard.press('3');
  const tracker = await until(async () => {
    const rows = await page.$$eval('#trackers tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    const r = rows.find((x) => x[1] === announce);
    return r && r[2] && r[2] !== 'not yet' ? r : null;
  }, 20000);
  step('Trackers tab (key 3) shows the opentracker announce URL and its last announce', !!tracker,
    `${JSON.stringify(tracker)} want ${announce}`);
  await shot(page, 'trackers.png');

  // Progress as the page showed it, without reloading: values below 100%, then 100%.
  await until(() => page.evaluate(() => window.seenProgress.includes('100%')), 120000);
  const seen = await page.evaluate(() => window.seenProgress);
  const midway = seen.filter((v) => v !== '100%' && v !== '0%');
  step('progress moves live to 100%', seen[seen.length - 1] === '100%' && midway.length >= 1, seen.join(' '));

  await page.keyboard.press('4');
  const full = await until(async () => {
    const px = await canvasPixels(page, '#pieces-map');
    return px.accent > 0 && px.other === 0 ? px : null;
  }, 10000);
  step('key 4: the pieces map is all done once complete', !!full,
    JSON.stringify(full) + ` ${await page.textContent('#pieces-info')}`);
  await page.keyboard.press('1');
  await page.waitForSelector('#pane-files:not([hidden]) #files tbody tr', { timeout: 10000 });
  await shot(page, 'complete.png');

  await page.click('#list tbody tr');
  await page.click('#pause');
  await page.waitForFunction(() => document.querySelector('#list tbody tr td:last-child')?.textContent === 'Paused',
    null, { timeout: 15000 });
  step('pause: the state says Paused', true);
  await page.click('#resume');
  await page.waitForFunction(() => document.querySelector('#list tbody tr td:last-child')?.textContent === 'Seeding',
    null, { timeout: 15000 });
  step('resume: the state says Seeding', true);

  await page.waitForSelector('#details:not([hidden]) #files tbody tr', { timeout: 15000 });
  const files = await page.$$eval('#files tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
  step('details list the files', files.length >= 2, files.join(', '));
  await page.selectOption('#files tbody tr:nth-child(1) select', '1');
  await page.waitForTimeout(1500);
  const prio = await page.$eval('#files tbody tr:nth-child(1) select', (el) => el.value);
  step('file 0 set to high priority', prio === '1', prio);
  await page.click('#d-name');  // the select let go of, so the list may be redrawn
  await shot(page, 'details.png');
  // What the daemon itself now says (through the page's own RPC client).
  const state = await daemon(page, 'torrent-get', { fields: ['priorities', 'percentDone', 'status'] });
  const t = state.torrents[0];
  step('the daemon has file 0 at high priority, the torrent complete and seeding',
    t.priorities[0] === 1 && t.percentDone === 1 && t.status === 6, JSON.stringify(t));

  // Settings: the key s opens them with the daemon's values; a new download limit is saved.
  const keys = ['download-dir', 'speed-limit-down', 'speed-limit-down-enabled', 'peer-port', 'download-queue-size', 'seedRatioLimit'];
  const before = await daemon(page, 'session-get', { fields: keys });
  await page.keyboard.press('s');
  await page.waitForSelector('#settings[open]', { timeout: 5000 });
  const form = await until(async () => {
    const v = await page.$$eval('#settings-form [name]', (els) => Object.fromEntries(els.map((el) => [el.name, el.type === 'checkbox' ? el.checked : el.value])));
    return v['download-dir'] ? v : null;
  }, 10000);
  step('key s: the settings show the daemon\'s values',
    form && form['download-dir'] === before['download-dir'] && +form['speed-limit-down'] === before['speed-limit-down'] &&
    form['speed-limit-down-enabled'] === before['speed-limit-down-enabled'] && +form['peer-port'] === before['peer-port'] &&
    +form['download-queue-size'] === before['download-queue-size'] && +form.seedRatioLimit === before.seedRatioLimit,
    `${JSON.stringify(form)} vs ${JSON.stringify(before)}`);
  await shot(page, 'settings.png');
  await page.fill('#settings [name=speed-limit-down]', '777');
  await page.click('#settings-save');
  await page.waitForSelector('#settings', { state: 'hidden', timeout: 10000 });
  s = await daemon(page, 'session-get', { fields: keys });
  step('settings: a new download limit saved is what session-get returns',
    s['speed-limit-down'] === 777 && s['download-dir'] === before['download-dir'], JSON.stringify(s));

  // An error from the daemon is shown in the dialog, which stays open; nothing changes.
  await page.click('#settings-open');
  await page.waitForSelector('#settings[open]', { timeout: 5000 });
  await until(() => page.$eval('#settings [name=speed-limit-down]', (el) => el.value === '777'), 10000);
  await page.fill('#settings [name=download-dir]', 'not/an/absolute/path');
  await page.fill('#settings [name=alt-speed-down]', '33');
  await page.click('#settings-save');
  await page.waitForSelector('#settings-error:not([hidden])', { timeout: 10000 });
  const shownError = await page.textContent('#settings-error');
  s = await daemon(page, 'session-get', { fields: ['download-dir', 'alt-speed-down'] });
  step('settings: the daemon\'s refusal of a relative folder is shown, the field marked, nothing saved',
    /download-dir/.test(shownError) && (await page.$('#settings[open] [name=download-dir][aria-invalid=true]')) !== null &&
    s['download-dir'] === before['download-dir'] && s['alt-speed-down'] !== 33, `${shownError} ${JSON.stringify(s)}`);
  await shot(page, 'settings-error.png');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#settings', { state: 'hidden', timeout: 5000 });
  await page.keyboard.press('s');
  await page.waitForSelector('#settings[open]', { timeout: 5000 });
  const reopened = await until(() => page.$eval('#settings [name=download-dir]', (el) => el.value || null), 10000);
  step('Escape closes the settings unsaved; they open again with the daemon\'s folder',
    reopened === before['download-dir'], reopened);
  await page.click('#settings-cancel');
  await page.waitForSelector('#settings', { state: 'hidden', timeout: 5000 });

  // Feeds: the key f opens them; a feed added is listed once polled (its title, URL, items);
  // a rule added is listed; the daemon's rss/items and rss/rules agree.
  await page.keyboard.press('f');
  await page.waitForSelector('#feeds[open] #feed-list + .none:not([hidden])', { timeout: 10000 });
  step('key f: the Feeds dialog opens, no feeds yet', true);
  await page.fill('#feed-url', args.feed);
  await page.click('#feed-add button[type=submit]');
  const feedRow = await until(async () => {
    const r = (await rows(page, '#feed-list')).find((x) => x[0].includes(args.feed));
    return r && r[1] === '2' && r[2] === 'ok' ? r : null;
  }, 20000);
  step('a feed added in the Feeds dialog is listed with its title, URL, 2 items and no error',
    !!feedRow && feedRow[0].startsWith('Test releases'), JSON.stringify(feedRow ?? await rows(page, '#feed-list')));
  await page.fill('#rule-add [name=name]', 'TV');
  await page.fill('#rule-add [name=mustContain]', 'show s01');
  await page.fill('#rule-add [name=mustNotContain]', 'sample');
  await page.fill('#rule-add [name=assignedCategory]', 'tv');
  await page.click('#rule-add button[type=submit]');
  const ruleRow = await until(async () => (await rows(page, '#rule-list')).find((x) => x[0].startsWith('TV')), 10000);
  const [items, rules] = [await rss(page, 'items'), await rss(page, 'rules')];
  const feedName = Object.keys(items)[0];
  step('a rule added is listed with its patterns and feed, and the daemon has both (rss/items, rss/rules)',
    ruleRow && ruleRow[0] === 'TV → tv' && ruleRow[1] === 'show s01' && ruleRow[2] === 'sample' && ruleRow[3] === feedName &&
    items[feedName]?.url === args.feed && rules.TV?.mustContain === 'show s01' &&
    JSON.stringify(rules.TV?.affectedFeeds) === JSON.stringify([args.feed]),
    `${JSON.stringify(ruleRow)} ${JSON.stringify(items)} ${JSON.stringify(rules)}`);
  await shot(page, 'feeds.png');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#feeds', { state: 'hidden', timeout: 5000 });

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, bypassCSP: true });
  phone.on('pageerror', (e) => errors.push(String(e)));
  await phone.goto(args.url);
  await phone.waitForSelector('#list tbody tr', { timeout: 15000 });
  const fits = () => phone.evaluate(() => document.documentElement.scrollWidth);
  let width = await fits();
  step('phone-sized viewport: the list fits without sideways scrolling', width <= 392, `scrollWidth ${width}`);
  await phone.screenshot({ path: path.join(args.shots, 'phone.png'), fullPage: true });
  await phone.tap('#list tbody tr');
  await phone.waitForSelector('#details:not([hidden]) #files tbody tr', { timeout: 10000 });
  const tabs = await phone.$eval('#tabs', (el) => [el.scrollWidth, el.clientWidth, el.getBoundingClientRect().right]);
  const widths = {};
  for (const name of ['files', 'peers', 'trackers', 'pieces']) {
    await phone.tap(`#tab-${name}`);
    await phone.waitForSelector(`#pane-${name}:not([hidden])`, { timeout: 5000 });
    await phone.waitForTimeout(300);
    widths[name] = [await fits(), await phone.$eval(`#pane-${name}`, (el) => el.scrollWidth - el.clientWidth)];
    if (name !== 'files') await phone.screenshot({ path: path.join(args.shots, `phone-${name}.png`), fullPage: true });
  }
  step('phone: the four tabs fit in 390 px, and each pane without sideways scrolling',
    tabs[0] <= tabs[1] && tabs[2] <= 390 && Object.values(widths).every(([w, over]) => w <= 392 && over <= 1),
    `tabs ${tabs} panes ${JSON.stringify(widths)}`);
  await phone.tap('#settings-open');
  await phone.waitForSelector('#settings[open]', { timeout: 5000 });
  await until(() => phone.$eval('#settings [name=download-dir]', (el) => el.value || null), 10000);
  const box = await phone.$eval('#settings', (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, over: el.scrollWidth - el.clientWidth, formOver: el.firstElementChild.scrollWidth - el.firstElementChild.clientWidth };
  });
  step('phone: the settings dialog fits in 390 px', box.left >= 0 && box.right <= 390 && box.over <= 1 && box.formOver <= 1,
    JSON.stringify(box));
  await phone.screenshot({ path: path.join(args.shots, 'phone-settings.png') });
  await phone.emulateMedia({ colorScheme: 'dark' });
  await phone.screenshot({ path: path.join(args.shots, 'phone-settings-dark.png') });
  await phone.click('#settings-cancel');
  await phone.waitForSelector('#settings', { state: 'hidden', timeout: 5000 });
  await phone.emulateMedia({ colorScheme: 'light' });
  await phone.tap('#feeds-open');
  await phone.waitForSelector('#feeds[open] #rule-list tbody tr', { timeout: 10000 });
  const feedsBox = await phone.$eval('#feeds', (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, right: r.right, over: el.scrollWidth - el.clientWidth, page: document.documentElement.scrollWidth };
  });
  step('phone: the Feeds dialog fits in 390 px', feedsBox.left >= 0 && feedsBox.right <= 390 && feedsBox.over <= 1,
    JSON.stringify(feedsBox));
  await phone.tap('#feeds-title');  // the Feeds button's tap highlight, drawn over the dialog, let go of
  await phone.screenshot({ path: path.join(args.shots, 'phone-feeds.png') });
  await phone.emulateMedia({ colorScheme: 'dark' });
  await phone.screenshot({ path: path.join(args.shots, 'phone-feeds-dark.png') });
  await phone.click('#feeds-close');
  await phone.waitForSelector('#feeds', { state: 'hidden', timeout: 5000 });
  await phone.screenshot({ path: path.join(args.shots, 'phone-dark.png'), fullPage: true });
  await phone.tap('#tab-pieces');
  await phone.waitForTimeout(2500);
  const darkMap = await canvasPixels(phone, '#pieces-map');
  step('dark: the pieces map is drawn in the dark accent colour', darkMap.accent > 0 && darkMap.other === 0, JSON.stringify(darkMap));
  await phone.screenshot({ path: path.join(args.shots, 'phone-pieces-dark.png'), fullPage: true });
  await phone.close();

  // The rule and the feed removed in the dialog: gone from it and from the daemon.
  await page.click('#feeds-open');
  await page.waitForSelector('#feeds[open] #rule-list tbody tr', { timeout: 10000 });
  await page.click('#rule-list tbody tr button');
  await page.waitForSelector('#rule-list + .none:not([hidden])', { timeout: 10000 });
  await page.click('#feed-list tbody tr button');
  await page.waitForSelector('#feed-list + .none:not([hidden])', { timeout: 10000 });
  const [left, leftRules] = [await rss(page, 'items'), await rss(page, 'rules')];
  step('the rule and the feed removed in the dialog are gone from the daemon too',
    !Object.keys(left).length && !Object.keys(leftRules).length, `${JSON.stringify(left)} ${JSON.stringify(leftRules)}`);
  await page.click('#feeds-close');
  await page.waitForSelector('#feeds', { state: 'hidden', timeout: 5000 });

  page.on('dialog', (d) => d.accept());
  await page.click('#list tbody tr');
  await page.click('#remove-data');
  await page.waitForSelector('#list tbody tr', { state: 'detached', timeout: 15000 });
  step('remove with data: the row is gone', true);
  step('no script errors on the page', errors.length === 0, errors.join('; '));
} catch (e) {
  console.log(JSON.stringify({ step: 'aborted', ok: false, detail: String(e) }));
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
