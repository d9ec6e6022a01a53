// A channel in the web UI, in headless Chromium, as a user meets it: the feed of a
// `shoal publish` folder followed under Feeds; Channels lists its items with title, size and
// date; Play on the video item adds its torrent and the <video> reaches a playing state
// while the torrent is incomplete (the daemon has no peer: the bytes come from the web seed
// alone); then "Download new items automatically" is switched on, and after the publisher
// adds an item (the test driver's part, signalled through --new-item-file) only that new
// item is added. One JSON line per step on stdout; exit 1 at the first step that fails.
//
// node channel_test.mjs --url http://127.0.0.1:PORT/ --feed FEED_URL --video TITLE
//   --video-size BYTES --other TITLE --ready FILE --published FILE --new TITLE --shots DIR
import fs from 'node:fs';

import { args, launch, shot, step, until } from './driver.mjs';

const video = (page) => page.$eval('#player-video', (v) => ({
  t: v.currentTime, d: v.duration, paused: v.paused, ready: v.readyState, err: v.error ? v.error.code : 0,
}));
const torrentsNow = (page) => page.evaluate(() => rpc('torrent-get', {
  fields: ['name', 'percentDone', 'peersConnected', 'webseedsSendingToUs'],
}).then((r) => r.torrents));
const row = (page, title) => page.$$eval('#channel-items tbody tr', (rows, t) => {
  const r = rows.find((x) => x.cells[0].firstChild.firstChild.textContent === t);  // the title, not its note
  return r ? [...r.cells].map((c) => c.textContent) : null;
}, title);

const browser = await launch();
let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await page.goto(args.url);
  // Follow the feed as a user does: Feeds, its URL, Add feed.
  await page.click('#feeds-open');
  await page.fill('#feed-url', args.feed);
  await page.click('#feed-add button[type=submit]');
  const followed = await until(async () => (await page.$$('#feed-list tbody tr')).length === 1, 10000);
  step('the feed is followed under Feeds', !!followed);
  await page.click('#feeds-close');

  await page.click('#channels-open');
  const listed = await until(async () => (await row(page, args.video)) && (await row(page, args.other)), 30000);
  step('Channels lists the feed\'s items', !!listed);
  const cells = await row(page, args.video);
  const shownSize = cells[1];
  const expect = await page.evaluate((n) => size(n), Number(args['video-size']));
  step('an item shows its size (without pad files) and its date', shownSize === expect && /\d/.test(cells[2]),
    JSON.stringify(cells));
  const picked = await page.$eval('#channel-pick', (s) => s.options[s.selectedIndex].textContent);
  step('the channel is named by the feed\'s title', picked === 'site', picked);
  await shot(page, 'channel-catalogue.png');

  const clicked = Date.now();
  await page.click(`#channel-items button[aria-label="Play ${args.video}"]`);
  const dlg = await until(() => page.$eval('#player', (d) => d.open), 20000);
  step('Play opens the player', !!dlg);
  const playing = await until(async () => {
    const v = await video(page);
    return v.err === 0 && !v.paused && v.ready >= 3 && v.t > 1 ? v : null;
  }, 60000);
  const during = (await torrentsNow(page)).find((t) => t.name === args.video);
  step('the item plays', !!playing, `${((Date.now() - clicked) / 1000).toFixed(1)} s after Play: ` +
    JSON.stringify(playing || await video(page)));
  step('it plays while its torrent is incomplete', during && during.percentDone < 1, JSON.stringify(during));
  step('from the web seed alone (no peer connected)', during && during.peersConnected === 0 &&
    during.webseedsSendingToUs >= 0, JSON.stringify(during));
  await shot(page, 'channel-playing.png');
  await page.click('#player-close');

  // Only new items: those listed now are marked read, then the rule takes the next one.
  await page.click('#channels-open');
  await until(async () => (await row(page, args.other)), 10000);
  await page.check('#channel-auto');
  const ruled = await until(() => page.evaluate(() => qb('rules').then((r) => r['Channel: site'] || null)), 10000);
  step('"Download new items automatically" is a rule on the feed', ruled && ruled.enabled &&
    ruled.affectedFeeds.includes(args.feed), JSON.stringify(ruled));
  fs.writeFileSync(args.ready, 'go');  // the driver publishes a new item now
  const published = await until(async () => fs.existsSync(args.published), 120000);
  step('the publisher added an item', !!published);
  await page.evaluate(() => qb('refreshItem', { itemPath: $('#channel-pick').value }));
  const added = await until(async () => {
    const names = (await torrentsNow(page)).map((t) => t.name);
    return names.includes(args.new) ? names : null;
  }, 30000);
  step('the new item is added by itself', !!added, JSON.stringify(added || (await torrentsNow(page)).map((t) => t.name)));
  // The poll that took the new item saw the older one too: taken, it would be listed now.
  const names = (await torrentsNow(page)).map((t) => t.name);
  step('an item listed before the switch is not added', !names.includes(args.other), JSON.stringify(names));
  const newRow = await until(async () => row(page, args.new), 10000);
  step('the new item is listed in the channel', !!newRow, JSON.stringify(newRow));
  await page.click('#channels-close');
} catch (e) {
  console.log(JSON.stringify({ step: 'error', ok: false, detail: String(e && e.message || e) }));
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
