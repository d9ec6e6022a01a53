// The web UI's first render: milliseconds from navigation until the first torrent row is
// on the page, and how many rows the page holds (the list is virtualised).
// node first_render.mjs --url http://127.0.0.1:PORT/
import { chromium } from 'playwright-core';

const url = process.argv[process.argv.indexOf('--url') + 1];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
    await page.goto(url, { waitUntil: 'commit' });
    await page.waitForSelector('#list tbody tr[data-id]', { timeout: 60000 });
    const ms = await page.evaluate(() => performance.now());
    const rows = await page.$$eval('#list tbody tr[data-id]', (r) => r.length);
    runs.push({ ms, rows });
    await page.close();
  }
  runs.sort((a, b) => a.ms - b.ms);
  console.log(JSON.stringify({ first_render_ms: Math.round(runs[1].ms), rows_in_page: runs[1].rows }));
} finally {
  await browser.close();
}
