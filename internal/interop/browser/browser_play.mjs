// Drives Debian's chromium (headless) against camgate's player page with
// playwright-core, for internal/interop/browser_interop_test.go.
//
//   node browser_play.mjs play      URL SCREENSHOT  -> checks that frames are decoded
//   node browser_play.mjs measure   URL RUNS        -> POST-to-first-frame times
//   node browser_play.mjs login     URL USER:PASS   -> the page asks for credentials, then plays
//   node browser_play.mjs wall      URL N SHOT      -> the console: N tiles each decoding frames
//   node browser_play.mjs error     URL             -> the player page shows an error; its text
//   node browser_play.mjs firstframe URL RUNS       -> player-start-to-first-frame times
//   node browser_play.mjs latency   URL SECONDS     -> glass-to-glass latency of a clock camera's
//        picture (internal/interop/clockcam.go): the time it was drawn, read from the
//        picture, against when the browser shows it
//   node browser_play.mjs reconnect URL             -> prints {"event":"playing"}, waits for a
//        line on stdin (the test stops and restarts the agent meanwhile), then waits for
//        the page to lose the stream and to play again by itself
//
// Prints one JSON document on stdout; exits 1 with {"error": ...} on failure.
// Nothing here talks to any address but the URL's (127.0.0.1).
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [mode, url, arg] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const flags = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

// fail ends the run with an error document; the browser is still closed
// (finally below) so no chromium outlives this script.
class Failure extends Error {
  constructor(msg, extra) { super(msg); this.extra = extra; }
}
function fail(msg, extra) {
  throw new Failure(msg, extra);
}

async function videoState(page) {
  return page.evaluate(async () => {
    const v = document.getElementById('video');
    const cg = window.camgate || {};
    let framesDecoded = 0, codec = '', jitterMs = 0;
    if (!cg.pc && v.getVideoPlaybackQuality) {
      // HLS: frames the media element decoded.
      framesDecoded = v.getVideoPlaybackQuality().totalVideoFrames;
    }
    if (cg.pc) {
      const st = await cg.pc.getStats();
      const codecs = {};
      st.forEach((r) => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
      st.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          framesDecoded = r.framesDecoded || 0;
          codec = codecs[r.codecId] || '';
          // Mean time a frame spent in the jitter buffer: the playout delay.
          if (r.jitterBufferEmittedCount) jitterMs = 1000 * r.jitterBufferDelay / r.jitterBufferEmittedCount;
        }
      });
    }
    return {
      state: cg.state, status: document.getElementById('state').textContent,
      videoWidth: v.videoWidth, videoHeight: v.videoHeight, currentTime: v.currentTime,
      framesDecoded, codec, jitterMs,
      firstFrameMs: cg.firstFrameAt && cg.postAt ? cg.firstFrameAt - cg.postAt : 0,
      // From the page's first POST, so a retry counts in full.
      pageFirstFrameMs: cg.firstFrameAt && cg.firstPostAt ? cg.firstFrameAt - cg.firstPostAt : 0,
      attempts: cg.attempts,
      answerMs: cg.answerAt && cg.postAt ? cg.answerAt - cg.postAt : 0,
      transport: cg.transport || '', frames: cg.frames || 0, text: cg.text || '',
      // From the player's start, whatever the transport.
      startFirstFrameMs: cg.firstFrameAt && cg.startAt ? cg.firstFrameAt - cg.startAt : 0,
    };
  });
}

async function waitFor(page, what, timeoutMs, cond) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await videoState(page);
    if (cond(last)) return last;
    await page.waitForTimeout(50);
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
  if (mode === 'play') {
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
    await page.goto(url);
    const a = await waitFor(page, 'a decoded picture', 30000, (s) => s.videoWidth > 0 && s.framesDecoded > 0 && s.currentTime > 0 && (s.firstFrameMs > 0 || s.startFirstFrameMs > 0));
    await page.waitForTimeout(2000);
    const b = await videoState(page);
    await page.screenshot({ path: arg });
    const out = { first: a, later: b, logs };
    if (!(b.currentTime > a.currentTime) || !(b.framesDecoded > a.framesDecoded)) {
      fail('video did not advance', { last: b, ...out });
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  } else if (mode === 'wall') {
    const want = Number(arg), shot = process.argv[5];
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
    await page.goto(url);
    const tiles = () => page.evaluate(() => {
      const w = window.camgateWall;
      if (!w) return [];
      return [...w.tiles.entries()].map(([name, t]) => ({
        name, state: t.player.state, transport: t.player.transport, text: t.player.text,
        frames: t.player.frames, width: t.video.videoWidth, currentTime: t.video.currentTime,
        decoded: t.video.getVideoPlaybackQuality ? t.video.getVideoPlaybackQuality().totalVideoFrames : 0,
      }));
    });
    const deadline = Date.now() + 60000;
    let a = [];
    while (Date.now() < deadline) {
      a = await tiles();
      if (a.length >= want && a.every((t) => t.frames > 0 && t.width > 0)) break;
      await page.waitForTimeout(200);
    }
    if (!(a.length >= want && a.every((t) => t.frames > 0 && t.width > 0))) fail('timed out waiting for ' + want + ' playing tiles', { tiles: a, logs });
    await page.waitForTimeout(3000);
    const b = await tiles();
    const box = await page.evaluate(() => [...document.querySelectorAll('#box div')].map((d) => d.dataset.key + '=' + d.querySelector('span').textContent));
    await page.screenshot({ path: shot });
    const out = { first: a, later: b, box, logs };
    for (const t of b) {
      const t0 = a.find((x) => x.name === t.name);
      if (!t0 || !(t.frames > t0.frames) || !(t.currentTime > t0.currentTime)) fail('tile ' + t.name + ' did not advance', out);
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  } else if (mode === 'error') {
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
    await page.goto(url);
    const s = await waitFor(page, 'the page to give up with a message', 60000, (s) => s.state === 'error');
    const msg = await page.evaluate(() => document.getElementById('msg').innerText);
    await page.screenshot({ path: arg });
    process.stdout.write(JSON.stringify({ last: s, msg, logs }) + '\n');
  } else if (mode === 'firstframe') {
    const runs = Number(arg || 5);
    const times = [], transports = [];
    for (let i = 0; i < runs; i++) {
      const page = await ctx.newPage();
      await page.goto(url);
      const s = await waitFor(page, 'the first frame', 30000, (s) => s.startFirstFrameMs > 0);
      times.push(Math.round(s.startFirstFrameMs));
      transports.push(s.transport);
      await page.close({ runBeforeUnload: true });
    }
    const sorted = [...times].sort((x, y) => x - y);
    process.stdout.write(JSON.stringify({ times, transports, median: (sorted[(runs - 1) >> 1] + sorted[runs >> 1]) / 2 }) + '\n');
  } else if (mode === 'latency') {
    const seconds = Number(arg || 15);
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
    await page.goto(url);
    await waitFor(page, 'a decoded picture', 30000, (s) => s.videoWidth > 0 && s.framesDecoded > 0);
    // Two rows of 20 blocks, 16x32 px each, on a 320x240 picture: the low
    // 20 bits of the epoch milliseconds at which the picture was drawn,
    // then the same bits inverted (a read that disagrees is thrown away).
    await page.evaluate(() => {
      const v = document.getElementById('video');
      const c = document.createElement('canvas');
      c.width = 320; c.height = 240;
      const g = c.getContext('2d', { willReadFrequently: true });
      window.latencies = []; window.unreadable = 0;
      const f = (now, meta) => {
        g.drawImage(v, 0, 0, 320, 240);
        const d = g.getImageData(0, 0, 320, 64).data;
        let x = 0, ok = true;
        for (let i = 0; i < 20; i++) {
          const px = (y) => d[(y * 320 + i * 16 + 8) * 4];
          const b1 = px(16) > 128, b2 = px(48) > 128;
          if (b1 === b2) ok = false;
          x = x * 2 + (b1 ? 1 : 0);
        }
        if (ok) {
          const shown = Math.round(performance.timeOrigin + (meta.expectedDisplayTime || now));
          window.latencies.push(((shown % 1048576) - x + 1048576) % 1048576);
        } else {
          window.unreadable++;
        }
        v.requestVideoFrameCallback(f);
      };
      v.requestVideoFrameCallback(f);
    });
    await page.waitForTimeout(seconds * 1000);
    const r = await page.evaluate(() => ({ l: window.latencies, bad: window.unreadable }));
    const st = await videoState(page);
    const sorted = [...r.l].sort((x, y) => x - y);
    const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    const out = { n: sorted.length, unreadable: r.bad, median: q(0.5), p10: q(0.1), p90: q(0.9), transport: st.transport };
    if (sorted.length < 10) fail('too few readable frames', { ...out, logs });
    process.stdout.write(JSON.stringify(out) + '\n');
  } else if (mode === 'measure') {
    const runs = Number(arg || 10);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const page = await ctx.newPage();
      page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
      await page.goto(url.replace('{i}', String(i)));
      const s = await waitFor(page, 'the first frame', 30000, (s) => s.firstFrameMs > 0 && s.framesDecoded > 0);
      times.push(Math.round(s.pageFirstFrameMs));
      if (s.attempts > 1) logs.push('run ' + i + ': ' + s.attempts + ' attempts');
      await page.close({ runBeforeUnload: true });
    }
    const sorted = [...times].sort((x, y) => x - y);
    const median = (sorted[(runs - 1) >> 1] + sorted[runs >> 1]) / 2;
    process.stdout.write(JSON.stringify({ times, median, logs: logs.filter((l) => l.startsWith('run ')) }) + '\n');
  } else if (mode === 'login') {
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
    await page.goto(url);
    await page.waitForSelector('#login form', { state: 'visible', timeout: 20000 });
    const asked = await videoState(page);
    const [user, pass] = arg.split(':');
    await page.fill('#user', user);
    await page.fill('#pass', pass);
    await page.click('#login button[type=submit]');
    const a = await waitFor(page, 'a decoded picture after login', 20000, (s) => s.videoWidth > 0 && s.framesDecoded > 0);
    await page.waitForTimeout(1000);
    const b = await videoState(page);
    const out = { asked, first: a, later: b, logs };
    if (!(b.framesDecoded > a.framesDecoded)) fail('video did not advance after login', out);
    process.stdout.write(JSON.stringify(out) + '\n');
  } else if (mode === 'reconnect') {
    const page = await ctx.newPage();
    page.on('console', (m) => logs.push(m.type() + ': ' + m.text()));
    await page.goto(url);
    const a = await waitFor(page, 'a decoded picture', 20000, (s) => s.state === 'playing' && s.framesDecoded > 0);
    process.stdout.write(JSON.stringify({ event: 'playing', state: a }) + '\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    const lost = await waitFor(page, 'the page to notice the agent went away', 30000, (s) => s.state !== 'playing');
    const b = await waitFor(page, 'the page to play again by itself', 60000, (s) => s.state === 'playing' && s.framesDecoded > 0);
    await page.waitForTimeout(1000);
    const c = await videoState(page);
    const out = { lost, again: b, later: c, logs };
    if (!(c.framesDecoded > b.framesDecoded)) fail('video did not advance after reconnecting', out);
    process.stdout.write(JSON.stringify(out) + '\n');
  } else {
    fail('usage: browser_play.mjs play URL SCREENSHOT | measure URL RUNS');
  }
} catch (e) {
  const extra = e instanceof Failure ? e.extra : { last: e && e.last, logs };
  process.stdout.write(JSON.stringify({ error: String(e && e.message || e), ...extra }) + '\n');
  process.exitCode = 1;
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
