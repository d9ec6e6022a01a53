// Drives shoal's web UI in headless Chromium: add a magnet, watch its progress move with no
// reload (server-sent events), pause and resume, set a file's priority, a phone-sized
// viewport, remove with data. One JSON line per step on stdout; exit 1 at the first step
// that fails. Screenshots go to --shots.
//
// node ui_test.mjs --url http://127.0.0.1:PORT/ --magnet MAGNET --shots DIR
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
fs.mkdirSync(args.shots, { recursive: true });
const step = (name, ok, detail = '') => {
  console.log(JSON.stringify({ step: name, ok, detail }));
  if (!ok) throw new Error(`${name}: ${detail}`);
};

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
  await page.screenshot({ path: path.join(args.shots, 'empty.png') });

  await page.fill('#add-link', args.magnet);
  await page.click('#add button[type=submit]');
  await page.waitForSelector('#list tbody tr', { timeout: 15000 });
  step('magnet added: a row appears', true);

  // Progress as the page shows it, sampled without reloading: it must pass through
  // values below 100% and reach 100%.
  const seen = [];
  const deadline = Date.now() + 90000;
  while (Date.now() < deadline) {
    const t = await page.textContent('#list tbody tr .bar em').catch(() => null);
    if (t && seen[seen.length - 1] !== t) seen.push(t);
    if (t === '100%') break;
    await page.waitForTimeout(100);
  }
  const partial = seen.filter((v) => v !== '100%' && v !== '0%');
  step('progress moves live to 100%', seen[seen.length - 1] === '100%' && partial.length >= 1, seen.join(' '));
  await page.screenshot({ path: path.join(args.shots, 'complete.png') });

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
  const prio = await page.$eval('#files tbody tr:nth-child(1) select', (s) => s.value);
  step('file 0 set to high priority', prio === '1', prio);
  await page.screenshot({ path: path.join(args.shots, 'details.png') });
  // What the daemon itself now says (through the page's own RPC client).
  const state = await page.evaluate(() => rpc('torrent-get', { fields: ['priorities', 'percentDone', 'status'] }));
  const t = state.torrents[0];
  step('the daemon has file 0 at high priority, the torrent complete and seeding',
    t.priorities[0] === 1 && t.percentDone === 1 && t.status === 6, JSON.stringify(t));

  const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, bypassCSP: true });
  await phone.goto(args.url);
  await phone.waitForSelector('#list tbody tr', { timeout: 15000 });
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  step('phone-sized viewport: the list fits without sideways scrolling', width <= 392, `scrollWidth ${width}`);
  await phone.screenshot({ path: path.join(args.shots, 'phone.png'), fullPage: true });
  await phone.emulateMedia({ colorScheme: 'dark' });
  await phone.screenshot({ path: path.join(args.shots, 'phone-dark.png'), fullPage: true });
  await phone.close();

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
