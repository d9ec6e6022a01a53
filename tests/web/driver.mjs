// What the web UI's Chromium tests share: their --name value arguments, a step reported as
// one JSON line on stdout (a failed step throws), polling until a value is truthy, and
// screenshots into --shots.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
if (args.shots) fs.mkdirSync(args.shots, { recursive: true });

export const step = (name, ok, detail = '') => {
  console.log(JSON.stringify({ step: name, ok, detail }));
  if (!ok) throw new Error(`${name}: ${detail}`);
};

// Polls fn every `every` ms until it returns something truthy; the last value either way.
export const until = async (fn, ms, every = 100) => {
  const deadline = Date.now() + ms;
  let v;
  do {
    v = await fn().catch(() => null);
    if (v) return v;
    await new Promise((r) => setTimeout(r, every));
  } while (Date.now() < deadline);
  return v;
};

export const shot = (page, name, full = false) =>
  page.screenshot({ path: path.join(args.shots, name), fullPage: full });

// Debian's Chromium, headless; media play without a gesture, muted.
export const launch = () => chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
});
