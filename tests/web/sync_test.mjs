// The web UI's Sync page in headless Chromium, as a user meets it: Sync lists no folder;
// a folder added there (a new one) is listed with its state; Keys reveals its read-write
// and read-only keys (the read-write one is handed to the test driver through --key-out,
// which joins a `shoal sync run` device with it and writes that device's id to --device);
// the device appears among the folder's peers with read-write access, and the file it had
// is counted in the folder's files and listed in its recent events. One JSON line per step
// on stdout; exit 1 at the first step that fails.
//
// node sync_test.mjs --url http://127.0.0.1:PORT/ --folder DIR --key-out FILE --device FILE
//   --file NAME --shots DIR
import fs from 'node:fs';

import { args, launch, shot, step, until } from './driver.mjs';

const rows = (page, table) => page.$$eval(`${table} tbody tr`, (trs) => trs.map((r) => [...r.cells].map((c) => c.textContent)));

const browser = await launch();
let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(args.url).origin });
  await page.goto(args.url);
  await page.click('#sync-open');
  const empty = await until(() => page.$eval('#sync-list + .none', (p) => !p.hidden), 10000);
  step('Sync lists no folder at first', !!empty);

  await page.fill('#sync-add [name=path]', args.folder);
  await page.click('#sync-add button[type=submit]');
  const listed = await until(async () => {
    const r = await rows(page, '#sync-list');
    return r.length === 1 && r[0][0].startsWith(args.folder) ? r[0] : null;
  }, 20000);
  step('the folder added is listed with its state', !!listed && /up to date|scanning|syncing/.test(listed[1]),
    JSON.stringify(listed));
  const err = await page.$eval('#sync-error', (p) => (p.hidden ? '' : p.textContent));
  step('no error is shown', !err, err);

  const hidden = await page.$eval('#sync-keys', (d) => d.hidden);
  step('the keys are hidden until asked for', hidden);
  await page.click(`#sync-list button[aria-label="Show the keys of ${args.folder}"]`);
  const keys = await until(async () => {
    const rw = await page.$eval('#sync-key-rw', (i) => i.value);
    const ro = await page.$eval('#sync-key-ro', (i) => i.value);
    const shown = await page.$eval('#sync-keys', (d) => !d.hidden);
    return shown && rw && ro ? { rw, ro } : null;
  }, 10000);
  step('Keys reveals the read-write and the read-only key', !!keys && keys.rw.length === 59 && keys.ro.length === 59 &&
    keys.rw !== keys.ro, keys ? `${keys.rw.length} and ${keys.ro.length} characters` : 'none');
  await page.click('#sync-copy-ro');
  // The message line said "keys of ... shown" a moment ago: wait for the copy's own.
  const said = await until(() => page.$eval('#message', (m) => (m.classList.contains('show') && m.textContent === 'read-only key copied' ? m.textContent : '')), 5000);
  const copied = await page.evaluate(() => navigator.clipboard.readText()).catch((e) => `unreadable: ${e.message}`);
  step('Copy copies a key', said === 'read-only key copied' && copied === keys.ro,
    `${said || await page.$eval('#message', (m) => m.textContent)}; clipboard: ${copied.length} characters`);
  await shot(page, 'sync-keys.png');
  fs.writeFileSync(args['key-out'], keys.rw);

  // The driver joins a device with the key and runs it; it writes the device's id.
  const device = await until(async () => (fs.existsSync(args.device) ? fs.readFileSync(args.device, 'utf8').trim() : ''), 60000, 200);
  step('the test driver started a device', !!device);
  const peer = await until(async () => {
    const r = await rows(page, '#sync-peers');
    return r.find((p) => p[0] === device) || null;
  }, 60000);
  step('the device appears among the folder\'s peers, read-write', !!peer && peer[2] === 'read-write', JSON.stringify(peer));
  const counted = await until(async () => {
    const r = await rows(page, '#sync-list');
    return r.length === 1 && Number(r[0][2]) >= 1 && r[0][4] === '1' ? r[0] : null;
  }, 60000);
  step('the synced file is counted, with one peer', !!counted, JSON.stringify(counted || await rows(page, '#sync-list')));
  const event = await until(async () => {
    const r = await rows(page, '#sync-events');
    return r.find((e) => e[1] === 'sync' && e[2] === args.file && e[3] === device) || null;
  }, 30000);
  step('the recent events list the file taken from the device', !!event, JSON.stringify(await rows(page, '#sync-events')));
  await shot(page, 'sync-folder.png', true);
  await page.click('#sync-close');
  // The dialog's close event (which forgets them) is a task queued after close().
  const gone = await until(async () => (await page.$eval('#sync-key-rw', (i) => i.value)) === '', 5000, 50);
  step('closing the page forgets the keys shown', !!gone);
} catch (e) {
  console.error(e.stack || String(e));
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
