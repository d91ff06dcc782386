// Drives Debian's chromium (headless) against camgate's recordings, for
// internal/interop/record_interop_test.go.
//
//   node browser_recording.mjs media    URL          -> a <video> plays URL (a /get answer) to its end
//   node browser_recording.mjs timeline PLAYER_URL   -> the player page's timeline is clicked and
//        plays the recording from there
//
// Prints one JSON document on stdout; exits 1 with {"error": ...} on failure.
// Nothing here talks to any address but the URL's (127.0.0.1).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [mode, url] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const flags = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

async function state(page) {
  return page.evaluate(() => {
    const v = document.getElementById('video');
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
    return {
      src: v.currentSrc || '', duration: v.duration, currentTime: v.currentTime, ended: v.ended,
      videoWidth: v.videoWidth, videoHeight: v.videoHeight, readyState: v.readyState,
      error: v.error ? v.error.code + ' ' + v.error.message : '',
      frames: q.totalVideoFrames || 0, dropped: q.droppedVideoFrames || 0,
      timeline: (() => { const s = document.getElementById('timeline'); return s ? !s.hidden : false; })(),
      spans: document.querySelectorAll('.tl-span').length,
    };
  });
}

async function waitFor(page, what, timeoutMs, cond) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await state(page);
    if (last.error) throw Object.assign(new Error('media error: ' + last.error), { last });
    if (cond(last)) return last;
    await page.waitForTimeout(100);
  }
  throw Object.assign(new Error('timed out waiting for ' + what), { last });
}

const userDataDir = mkdtempSync(join(tmpdir(), 'camgate-chromium-'));
let ctx;
const logs = [];
try {
  ctx = await chromium.launchPersistentContext(userDataDir, {
    executablePath, headless: true, args: flags, viewport: { width: 1280, height: 720 },
  });
  const page = await ctx.newPage();
  page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
  if (mode === 'media') {
    await page.setContent('<video id="video" muted autoplay playsinline></video>');
    await page.evaluate((u) => { document.getElementById('video').src = u; }, url);
    const loaded = await waitFor(page, 'the metadata', 20000, (s) => s.readyState >= 1 && s.videoWidth > 0);
    const end = await waitFor(page, 'the end', (loaded.duration + 30) * 1000, (s) => s.ended);
    process.stdout.write(JSON.stringify({ loaded, end, logs }) + '\n');
  } else if (mode === 'timeline') {
    await page.goto(url);
    const shown = await waitFor(page, 'the timeline', 20000, (s) => s.timeline && s.spans > 0);
    const box = await page.locator('.tl-span').first().boundingBox();
    await page.mouse.click(box.x + box.width / 3, box.y + box.height / 2);
    const playing = await waitFor(page, 'the recording to play', 20000,
      (s) => s.src.includes('/get?') && s.videoWidth > 0 && s.currentTime > 2 && s.frames > 25);
    const playback = await page.evaluate(() => window.camgate.playback);
    process.stdout.write(JSON.stringify({ shown, playing, playback, logs }) + '\n');
  } else {
    throw new Error('usage: browser_recording.mjs media URL | timeline PLAYER_URL');
  }
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e && e.message || e), last: e && e.last, logs }) + '\n');
  process.exitCode = 1;
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
