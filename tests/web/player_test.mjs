// The web UI's player in headless Chromium: the torrent's row selected, Play on its WebM
// file, the <video> reaches a playing state while the daemon is still downloading (the
// daemon's RPC says so at that moment), the buffer bar draws the downloaded parts, the
// .srt beside the file is a subtitle track; then a seek near the end plays again. One JSON
// line per step on stdout; exit 1 at the first step that fails.
//
// node player_test.mjs --url http://127.0.0.1:PORT/ --name NAME --file FILE --shots DIR
import { args, launch, shot, step, until } from './driver.mjs';

const video = (page) => page.$eval('#player-video', (v) => ({
  t: v.currentTime, d: v.duration, paused: v.paused, ready: v.readyState, err: v.error ? v.error.code : 0,
  tracks: v.textTracks.length,
}));
const percentDone = (page) => page.evaluate(() => rpc('torrent-get', { fields: ['percentDone'] })
  .then((r) => r.torrents[0].percentDone));

const browser = await launch();
let code = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await page.goto(args.url);
  const row = await until(async () => (await page.$$('#list tbody tr')).length > 0, 20000);
  step('the torrent is listed', !!row);
  await page.click('#list tbody tr');
  const play = await until(() => page.$(`#files button[aria-label="Play ${args.file}"]`), 20000);
  step('the media file has a Play button', !!play, args.file);
  const before = await percentDone(page);
  step('the download is still running when Play is clicked', before < 0.5, `percentDone ${before}`);
  const clicked = Date.now();
  await play.click();
  const dlg = await until(() => page.$eval('#player', (d) => d.open), 5000);
  step('the player opens', !!dlg);
  const playing = await until(async () => {
    const v = await video(page);
    return v.err === 0 && !v.paused && v.ready >= 3 && v.t > 1 ? v : null;
  }, 60000);
  const during = await percentDone(page);
  step('the video plays', !!playing, `${((Date.now() - clicked) / 1000).toFixed(1)} s after Play: ` +
    JSON.stringify(playing || await video(page)));
  step('it plays while the torrent is incomplete', during < 1, `percentDone ${during}`);
  await shot(page, 'player-playing.png');
  const bar = await until(() => page.$eval('#player-buffer', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let drawn = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) drawn++;
    return drawn > 0 ? drawn : null;
  }), 10000);
  step('the buffer bar shows the downloaded parts', !!bar);
  const info = await page.textContent('#player-info');
  step('the player says how much is downloaded', / of /.test(info), info);
  step('the .srt beside the file is a subtitle track', playing.tracks >= 1, `${playing.tracks} tracks`);
  // A seek near the end: the daemon fetches the pieces there first.
  const target = playing.d - 4;
  await page.$eval('#player-video', (v, t) => { v.currentTime = t; }, target);
  const again = await until(async () => {
    const v = await video(page);
    return v.err === 0 && !v.paused && v.ready >= 3 && v.t > target + 1 ? v : null;
  }, 60000);
  step('after a seek near the end it plays again', !!again, JSON.stringify(again || await video(page)));
  await shot(page, 'player-seeked.png');
  await page.click('#player-close');
  const closed = await until(async () => !(await page.$eval('#player', (d) => d.open)), 5000);
  step('Close closes the player', !!closed);
} catch (e) {
  console.log(JSON.stringify({ step: 'error', ok: false, detail: String(e && e.message || e) }));
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
