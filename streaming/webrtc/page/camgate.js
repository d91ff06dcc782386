// camgate.js: the players of camgate's pages, inlined into each of them
// (no external assets). Camgate.Player plays one path into a <video>:
// WebRTC (WHEP) first; when WebRTC yields no frame within fallbackMs (ICE
// failed, UDP blocked, a codec the browser did not offer) it switches to
// LL-HLS on the HLS port, with the small MSE player below (Camgate.LLHLS)
// or, where the browser has no MediaSource, the browser's own HLS.
"use strict";
(function (global) {
  const authKey = 'camgate-auth';
  const Camgate = global.Camgate = {};

  // Credentials given on any of the box's pages, for this browser tab.
  Camgate.auth = () => sessionStorage.getItem(authKey) || '';
  Camgate.setAuth = (v) => { if (v) sessionStorage.setItem(authKey, v); else sessionStorage.removeItem(authKey); };
  Camgate.basic = (user, pass) => 'Basic ' + btoa(unescape(encodeURIComponent(user + ':' + pass)));

  // The HLS server listens on another port of the host the browser used.
  Camgate.hlsURL = (port, path) => port ? location.protocol + '//' + location.hostname + ':' + port + '/' + path + '/index.m3u8' : '';

  function scriptHeaders(extra) {
    const h = Object.assign({ 'X-Requested-With': 'camgate-player' }, extra || {});
    const a = Camgate.auth();
    if (a) h.Authorization = a;
    return h;
  }
  Camgate.headers = scriptHeaders;

  // ---------------------------------------------------------------- LL-HLS

  function attrs(s) {
    const o = {};
    const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
    let m;
    while ((m = re.exec(s))) o[m[1]] = m[2].replace(/^"|"$/g, '');
    return o;
  }

  function lines(text) { return text.split('\n').map((l) => l.trim()).filter((l) => l); }

  // parseMultivariant finds the variant's playlist and codecs and the
  // audio rendition's playlist (gohlslib puts each track in its own).
  function parseMultivariant(text, base) {
    const ls = lines(text);
    const out = { video: null, audio: null, codecs: [] };
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i];
      if (l.startsWith('#EXT-X-STREAM-INF:')) {
        const a = attrs(l.slice(18));
        out.codecs = (a.CODECS || '').split(',').filter((c) => c);
        for (let j = i + 1; j < ls.length; j++) {
          if (!ls[j].startsWith('#')) { out.main = new URL(ls[j], base).href; break; }
        }
      } else if (l.startsWith('#EXT-X-MEDIA:')) {
        const a = attrs(l.slice(13));
        if (a.TYPE === 'AUDIO' && a.URI && !out.audio) out.audio = new URL(a.URI, base).href;
      }
    }
    return out;
  }

  // parseMedia lists the parts a media playlist names, each with its
  // segment's media sequence number and its index in that segment.
  function parseMedia(text, base) {
    let msn = 0, n = 0;
    const out = { map: '', parts: [], hint: null };
    for (const l of lines(text)) {
      if (l.startsWith('#EXT-X-MEDIA-SEQUENCE:')) {
        msn = parseInt(l.slice(22), 10) || 0;
      } else if (l.startsWith('#EXT-X-MAP:')) {
        out.map = new URL(attrs(l.slice(11)).URI, base).href;
      } else if (l.startsWith('#EXT-X-PART:')) {
        const a = attrs(l.slice(12));
        out.parts.push({ msn, n: n++, uri: new URL(a.URI, base).href, independent: a.INDEPENDENT === 'YES' });
      } else if (l.startsWith('#EXT-X-PRELOAD-HINT:')) {
        out.hint = { msn, n };
      } else if (!l.startsWith('#')) {
        msn++; n = 0; // a segment's URI ends it
      }
    }
    return out;
  }

  function after(p, next) { return p.msn > next.msn || (p.msn === next.msn && p.n >= next.n); }

  class HTTPError extends Error {
    constructor(status, text) { super(text); this.status = status; }
  }

  // LLHLS plays gohlslib's fMP4 LL-HLS through Media Source Extensions:
  // the newest independent part first, then each next part as soon as it
  // exists (blocking playlist reload), playback rate nudged to stay at the
  // live edge. onError gets an HTTPError (status 0: not HTTP).
  class LLHLS {
    constructor(video, url, o) {
      this.video = video; this.url = url; this.o = o;
      this.abort = new AbortController();
      this.stopped = false;
      this.renditions = [];
    }

    async get(url, binary) {
      const res = await fetch(url, { headers: scriptHeaders(), signal: this.abort.signal, cache: 'no-store' });
      if (!res.ok) {
        const text = (await res.text()).trim();
        throw new HTTPError(res.status, text || res.statusText);
      }
      return binary ? new Uint8Array(await res.arrayBuffer()) : res.text();
    }

    async start() {
      try {
        const mv = parseMultivariant(await this.get(this.url), this.url);
        if (!mv.main) throw new HTTPError(0, 'no variant in the playlist');
        const vc = mv.codecs.find((c) => /^(avc|hvc|hev)/.test(c));
        const ac = mv.codecs.find((c) => /^(mp4a|opus)/i.test(c));
        const MS = global.ManagedMediaSource || global.MediaSource;
        const want = [];
        if (vc) {
          const mime = 'video/mp4; codecs="' + vc + '"';
          if (!MS.isTypeSupported(mime)) throw new HTTPError(415, 'this browser cannot decode ' + vc + ' video');
          want.push({ uri: mv.main, mime });
        }
        if (ac) {
          const mime = 'audio/mp4; codecs="' + ac + '"';
          const uri = vc ? mv.audio : mv.main;
          if (uri && MS.isTypeSupported(mime) && (this.o.audio || !vc)) want.push({ uri, mime });
        }
        if (!want.length) throw new HTTPError(415, 'no track this browser can play over hls: ' + mv.codecs.join(', '));
        const ms = this.ms = new MS();
        this.video.disableRemotePlayback = true; // ManagedMediaSource wants it
        this.objectURL = URL.createObjectURL(ms);
        this.video.src = this.objectURL;
        await new Promise((resolve) => ms.addEventListener('sourceopen', resolve, { once: true }));
        if (this.stopped) return;
        for (const w of want) this.renditions.push(new Rendition(this, w.uri, ms.addSourceBuffer(w.mime)));
        const at = await this.renditions[0].open(null);
        for (const r of this.renditions.slice(1)) await r.open(at);
        await Promise.all(this.renditions.map((r) => r.loop()));
      } catch (e) {
        if (!this.stopped) this.o.onError(e instanceof HTTPError ? e : new HTTPError(0, String(e && e.message || e)));
      }
    }

    // afterAppend starts playback once every track has data, keeps near
    // the live edge and drops what was played long ago.
    afterAppend() {
      const v = this.video, b = v.buffered;
      if (!b.length) return;
      const end = b.end(b.length - 1);
      if (!this.started) {
        this.started = true;
        v.currentTime = b.start(0);
        v.play().catch(() => {});
        return;
      }
      // Play about a quarter of a second behind the newest part: faster
      // while further behind, a jump when far behind.
      const lag = end - v.currentTime;
      if (lag > 2) {
        v.currentTime = end - 0.3;
      } else {
        v.playbackRate = lag > 0.5 ? 1.5 : (lag < 0.25 ? 1 : v.playbackRate);
      }
    }

    stop() {
      this.stopped = true;
      this.abort.abort();
      try { if (this.ms && this.ms.readyState === 'open') this.ms.endOfStream(); } catch (e) { /* closing */ }
      if (this.objectURL) URL.revokeObjectURL(this.objectURL);
    }
  }

  class Rendition {
    constructor(hls, uri, sb) { this.hls = hls; this.uri = uri; this.sb = sb; this.pending = []; this.next = null; }

    append(bytes) {
      return new Promise((resolve, reject) => {
        const sb = this.sb;
        const done = () => { sb.removeEventListener('updateend', done); sb.removeEventListener('error', fail); resolve(); };
        const fail = () => { sb.removeEventListener('updateend', done); sb.removeEventListener('error', fail); reject(new HTTPError(0, 'the browser refused the media')); };
        sb.addEventListener('updateend', done);
        sb.addEventListener('error', fail);
        try { sb.appendBuffer(bytes); } catch (e) { sb.removeEventListener('updateend', done); sb.removeEventListener('error', fail); reject(e); }
      });
    }

    // trim drops what was played more than 10 s ago.
    async trim() {
      const t = this.hls.video.currentTime, b = this.sb.buffered;
      if (b.length && t - b.start(0) > 20) {
        await new Promise((resolve) => { this.sb.addEventListener('updateend', resolve, { once: true }); this.sb.remove(0, t - 10); });
      }
    }

    // open loads the init section and picks where to start: at the part
    // `at` of the leading track, or at the newest independent part.
    async open(at) {
      const pl = parseMedia(await this.hls.get(this.uri), this.uri);
      if (!pl.map) throw new HTTPError(0, 'no init section in the playlist');
      await this.append(await this.hls.get(pl.map, true));
      let i = -1;
      if (at) i = pl.parts.findIndex((p) => p.msn === at.msn && p.n === at.n);
      if (i < 0) {
        for (let j = pl.parts.length - 1; j >= 0; j--) if (pl.parts[j].independent) { i = j; break; }
      }
      if (i < 0 && pl.hint) {
        this.next = { msn: pl.hint.msn, n: pl.hint.n };
        return this.next;
      }
      if (i < 0) throw new HTTPError(0, 'no part to start from');
      this.pending = pl.parts.slice(i);
      this.next = { msn: this.pending[0].msn, n: this.pending[0].n };
      return this.next;
    }

    async loop() {
      const hls = this.hls;
      let count = 0;
      while (!hls.stopped) {
        for (const p of this.pending) {
          await this.append(await hls.get(p.uri, true));
          this.next = { msn: p.msn, n: p.n + 1 };
          if (this === hls.renditions[0]) hls.afterAppend();
          if (++count % 25 === 0) await this.trim();
        }
        // Blocks until the next part exists.
        const q = (this.uri.includes('?') ? '&' : '?') + '_HLS_msn=' + this.next.msn + '&_HLS_part=' + this.next.n;
        const pl = parseMedia(await hls.get(this.uri + q), this.uri);
        this.pending = pl.parts.filter((p) => after(p, this.next));
        const first = this.pending[0];
        if (first && !(first.msn === this.next.msn && first.n === this.next.n) && !(first.msn === this.next.msn + 1 && first.n === 0)) {
          throw new HTTPError(0, 'fell behind the live edge');
        }
      }
    }
  }
  Camgate.LLHLS = LLHLS;

  // ---------------------------------------------------------------- Player

  // Player plays one path. o: {path, hlsPort, audio (HLS: fetch the audio
  // too; default true), fallbackMs (default 4000), onState(player)}.
  // player.state is connecting, playing, retrying, auth or error; .text
  // says it in words; .transport is webrtc, hls (the MSE player) or
  // hls-native; .why is why WebRTC was left.
  class Player {
    constructor(video, o) {
      this.video = video;
      this.path = o.path;
      this.hlsPort = o.hlsPort || 0;
      this.audio = o.audio !== false;
      this.fallbackMs = o.fallbackMs || 4000;
      this.onState = o.onState || (() => {});
      this.gen = 0;
      this.pc = null; this.sessionURL = null; this.etag = null; this.candidates = [];
      this.hls = null;
      this.timers = [];
      this.state = 'idle'; this.text = ''; this.transport = ''; this.why = ''; this.lastError = '';
      this.frames = 0; this.firstFrameAt = 0; this.postAt = 0; this.firstPostAt = 0; this.answerAt = 0;
      this.attempts = 0; this.hlsFailures = 0; this.retryDelay = 1000;
      this.stopped = true;
      this.lastFrames = 0; this.still = 0;
      const onFrame = () => {
        if (!this.stopped && this.transport) {
          this.frames++;
          if (!this.firstFrameAt) this.firstFrameAt = performance.now();
          if (this.state !== 'playing') {
            this.retryDelay = 1000;
            this.hlsFailures = 0;
            this.set('playing', this.transport === 'webrtc' ? 'playing' : 'playing over HLS' + (this.why ? ' (WebRTC: ' + this.why + ')' : ''));
          }
        }
        video.requestVideoFrameCallback(onFrame);
      };
      if (video.requestVideoFrameCallback) {
        video.requestVideoFrameCallback(onFrame);
      } else {
        video.addEventListener('timeupdate', () => { if (!video.paused) onFrame(); });
        video.requestVideoFrameCallback = () => {};
      }
      // A stream that stops delivering frames is started again.
      this.watch = setInterval(() => {
        if (this.stopped || !this.transport || this.audioOnly) return;
        if (this.frames === this.lastFrames) this.still++; else { this.still = 0; this.lastFrames = this.frames; }
        if (this.still >= 8 && this.state === 'playing') this.retry('stream stalled');
      }, 1000);
    }

    set(state, text) {
      this.state = state;
      this.text = text || state;
      if (state === 'error' || state === 'retrying') this.lastError = this.text;
      this.onState(this);
    }

    after(ms, f) { const my = this.gen; this.timers.push(setTimeout(() => { if (my === this.gen) f(); }, ms)); }

    // start plays, over WebRTC first or, with transport 'hls', over HLS
    // straight away.
    start(transport) {
      this.stopped = false;
      this.startAt = performance.now();
      if (transport === 'hls' && this.hlsPort) {
        this.why = 'HLS asked for';
        this.whyCodec = false;
        this.startHLS();
        return;
      }
      this.webrtc();
    }

    stop() { this.stopped = true; this.teardown(); this.transport = ''; }

    teardown() {
      this.gen++;
      this.timers.forEach(clearTimeout);
      this.timers = [];
      const pc = this.pc;
      if (pc) { pc.ontrack = pc.onicecandidate = pc.onconnectionstatechange = null; pc.close(); this.pc = null; }
      if (this.sessionURL) {
        fetch(this.sessionURL, { method: 'DELETE', headers: scriptHeaders(), keepalive: true }).catch(() => {});
        this.sessionURL = null;
      }
      this.candidates = [];
      if (this.hls) { this.hls.stop(); this.hls = null; }
      this.audioOnly = false;
      const v = this.video;
      if (v.srcObject || v.getAttribute('src')) {
        v.srcObject = null;
        v.removeAttribute('src');
        v.load();
      }
      v.playbackRate = 1;
    }

    retry(text, delay) {
      this.teardown();
      const d = delay || this.retryDelay;
      this.retryDelay = Math.min(this.retryDelay * 2, 10000);
      this.set('retrying', text + ' — retrying in ' + Math.round(d / 1000) + ' s');
      this.after(d, () => this.webrtc());
    }

    fail(text) {
      this.teardown();
      this.set('error', text);
      this.after(30000, () => this.webrtc()); // the path may change
    }

    needAuth() {
      this.teardown();
      this.set('auth', 'credentials needed');
    }

    // fallback leaves WebRTC for HLS, saying why.
    fallback(why) {
      this.why = why;
      if (!this.hlsPort) { this.retry(why + ' (no HLS to fall back to)'); return; }
      this.startHLS();
    }

    sendCandidates() {
      const pc = this.pc;
      if (!this.sessionURL || !this.candidates.length || !pc || !pc.localDescription) return;
      const sdp = pc.localDescription.sdp;
      const ufrag = (sdp.match(/a=ice-ufrag:(.*)/) || [])[1];
      const pwd = (sdp.match(/a=ice-pwd:(.*)/) || [])[1];
      let frag = 'a=ice-ufrag:' + (ufrag || '').trim() + '\r\na=ice-pwd:' + (pwd || '').trim() + '\r\n';
      const byMid = {};
      for (const c of this.candidates) (byMid[c.sdpMid] = byMid[c.sdpMid] || []).push(c.candidate);
      for (const mid in byMid) {
        frag += 'm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:' + mid + '\r\n';
        for (const c of byMid[mid]) frag += 'a=' + c + '\r\n';
      }
      this.candidates = [];
      const h = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
      if (this.etag) h['If-Match'] = this.etag;
      fetch(this.sessionURL, { method: 'PATCH', headers: scriptHeaders(h), body: frag }).catch(() => {});
    }

    async webrtc() {
      this.teardown();
      const my = this.gen;
      this.transport = 'webrtc';
      this.attempts++;
      this.firstFrameAt = 0;
      this.why = '';
      this.whyCodec = false;
      this.set('connecting', 'connecting…');
      let pc;
      try {
        pc = this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      } catch (e) {
        this.fallback('this browser has no WebRTC');
        return;
      }
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const ms = new MediaStream();
      pc.ontrack = (ev) => { ms.addTrack(ev.track); if (this.video.srcObject !== ms) this.video.srcObject = ms; };
      pc.onicecandidate = (ev) => { if (ev.candidate && ev.candidate.candidate) { this.candidates.push(ev.candidate); this.sendCandidates(); } };
      pc.onconnectionstatechange = () => {
        if (my !== this.gen || !this.pc) return;
        const s = pc.connectionState;
        if (s === 'failed') this.firstFrameAt ? this.retry('connection failed') : this.fallback('WebRTC connection failed');
        else if (s === 'closed') this.retry('connection closed');
      };
      // No picture within fallbackMs: UDP blocked, or nothing decodable.
      this.after(this.fallbackMs, () => { if (!this.firstFrameAt) this.fallback('no picture within ' + Math.round(this.fallbackMs / 1000) + ' s'); });
      try {
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        this.postAt = performance.now();
        if (!this.firstPostAt) this.firstPostAt = this.postAt;
        const res = await fetch('/' + this.path + '/whep', { method: 'POST', headers: scriptHeaders({ 'Content-Type': 'application/sdp' }), body: offer.sdp });
        if (my !== this.gen) return;
        const text = (await res.text()).trim();
        if (res.status === 401) { this.needAuth(); return; }
        if (res.status === 404) { this.retry('no stream: ' + (text || 'not found'), 5000); return; }
        if (res.status === 406) { this.whyCodec = true; this.fallback(text); return; }
        if (res.status === 429 || res.status === 503) { this.retry(text || 'busy', 1000 * (parseInt(res.headers.get('Retry-After'), 10) || 0) || undefined); return; }
        if (res.status !== 201) { this.fail(res.status + ': ' + (text || res.statusText)); return; }
        this.sessionURL = new URL(res.headers.get('Location'), location.href);
        this.etag = res.headers.get('ETag');
        await pc.setRemoteDescription({ type: 'answer', sdp: text + '\r\n' });
        this.answerAt = performance.now();
        this.sendCandidates();
        // The agent closes the DTLS transport when the stream ends or it
        // stops; connectionState does not always say so, the transport does.
        const tr = pc.getReceivers().map((r) => r.transport).find((x) => x);
        if (tr) tr.onstatechange = () => { if (my === this.gen && this.firstFrameAt && (tr.state === 'closed' || tr.state === 'failed')) this.retry('stream ended'); };
        const vsec = text.split('\nm=').find((x) => x.startsWith('video'));
        if (!vsec || /^video 0 /.test(vsec) || /a=inactive/.test(vsec)) {
          this.audioOnly = true;
          this.firstFrameAt = performance.now();
          this.set('playing', 'playing (audio only)');
        }
      } catch (e) {
        if (my === this.gen) this.retry(String(e && e.message || e));
      }
    }

    startHLS() {
      this.teardown();
      const my = this.gen;
      this.firstFrameAt = 0;
      const url = Camgate.hlsURL(this.hlsPort, this.path);
      const onError = (e) => {
        if (my !== this.gen) return;
        if (e.status === 401) { this.needAuth(); return; }
        if (e.status === 406 || e.status === 415) {
          // WebRTC's own refusal of the codecs says it best; otherwise both.
          this.fail(this.whyCodec ? this.why : 'WebRTC: ' + this.why + '; HLS: ' + e.message);
          return;
        }
        // After a few HLS failures in a row, WebRTC is tried again (the
        // network may have changed); until then, HLS again.
        if (++this.hlsFailures >= 3) { this.hlsFailures = 0; this.retry('HLS: ' + e.message); return; }
        this.teardown();
        this.set('retrying', 'HLS: ' + e.message + ' — retrying');
        this.after(1000, () => this.startHLS());
      };
      const MS = global.ManagedMediaSource || global.MediaSource;
      if (MS) {
        this.transport = 'hls';
        this.set('connecting', 'connecting over HLS (WebRTC: ' + this.why + ')…');
        this.hls = new LLHLS(this.video, url, { audio: this.audio, onError });
        this.hls.start();
      } else if (this.video.canPlayType('application/vnd.apple.mpegurl')) {
        this.transport = 'hls-native';
        this.set('connecting', 'connecting over HLS (WebRTC: ' + this.why + ')…');
        this.video.src = url;
        this.video.addEventListener('error', () => onError({ status: 0, message: 'the browser could not play the HLS stream' }), { once: true });
        this.video.play().catch(() => {});
      } else {
        this.fail('WebRTC: ' + this.why + '; this browser has no HLS either');
        return;
      }
      this.after(20000, () => { if (!this.firstFrameAt) onError({ status: 0, message: 'no picture within 20 s' }); });
    }
  }
  Camgate.Player = Player;

  Camgate.parseMedia = parseMedia;
  Camgate.parseMultivariant = parseMultivariant;
})(window);
