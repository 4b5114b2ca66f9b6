// One live H.264 stream from the box (the class mosaic or one station's focus view): the
// WebSocket with reconnect and backoff, the box's binary framing, a WebCodecs VideoDecoder
// and the canvas it paints, plus the latency statistics in window.lanterneStats.

const HEADER_LEN = 20;
const UPDATE_LEN = 10;
/** Frames the decoder may hold before we stop feeding it delta frames; more is lag. */
const MAX_DECODE_QUEUE = 3;
/** Past this even keyframes are too late: the decoder is reset to drop its backlog. */
const HARD_DECODE_QUEUE = 12;
/** seq → metadata entries kept for frames still inside the decoder. */
const MAX_PENDING_META = 64;
const LATENCY_SAMPLES = 2000;
const BACKOFF_MIN_MS = 500;
// A box that restarts is back within seconds, and the teacher is waiting for the class to
// come back: one tablet trying every 3 s at most costs the box nothing.
const BACKOFF_MAX_MS = 3_000;
/**
 * Least time between two keyframe requests to the box. A station's full stream carries a
 * keyframe only every minute unless one is asked for, so a decoder that dropped frames asks;
 * the box rate-limits too.
 */
const KEYFRAME_REQUEST_GAP_MS = 500;

/** The stats object tests and the benchmark read; one per page, describing the current view. */
export const stats = (window.lanterneStats = {
  view: 'mosaic',
  framesDecoded: 0,
  keyframesDecoded: 0,
  decodeErrors: 0,
  droppedFrames: 0,
  keyframeRequests: 0,
  reconnects: 0,
  connection: 'connecting',
  latencyMs: [],
  decodeMs: [],
});

/** Starts counting afresh for a new view, so numbers never mix mosaic and focus frames. */
export function resetStats(view) {
  Object.assign(stats, {
    view,
    framesDecoded: 0,
    keyframesDecoded: 0,
    decodeErrors: 0,
    droppedFrames: 0,
    keyframeRequests: 0,
    reconnects: 0,
    latencyMs: [],
    decodeMs: [],
  });
}

function pushSample(ring, ms) {
  if (ring.length >= LATENCY_SAMPLES) ring.splice(0, ring.length - LATENCY_SAMPLES + 1);
  ring.push(ms);
}

export function webCodecsAvailable() {
  return typeof window.VideoDecoder === 'function' && typeof window.EncodedVideoChunk === 'function';
}

/**
 * Decodes one binary video message. Throws on anything malformed: the sizes come from the
 * network, so each one is checked against the bytes actually received.
 */
export function parseVideoMessage(buf) {
  if (buf.byteLength < HEADER_LEN) throw new Error(`video message too short (${buf.byteLength} bytes)`);
  const v = new DataView(buf);
  const version = v.getUint8(0);
  if (version !== 1) throw new Error(`unknown video message version ${version}`);
  const flags = v.getUint8(1);
  const seq = v.getBigUint64(2);
  const captureUs = Number(v.getBigUint64(10));
  const n = v.getUint16(18);
  const dataStart = HEADER_LEN + n * UPDATE_LEN;
  if (buf.byteLength < dataStart) throw new Error(`video message claims ${n} updates but is ${buf.byteLength} bytes`);
  const updates = new Array(n);
  for (let i = 0; i < n; i++) {
    const off = HEADER_LEN + i * UPDATE_LEN;
    updates[i] = { tile: v.getUint16(off), captureUs: Number(v.getBigUint64(off + 2)) };
  }
  return {
    keyframe: (flags & 1) === 1,
    seq,
    captureUs,
    updates,
    data: new Uint8Array(buf, dataStart),
  };
}

function nowUs() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/**
 * A live stream into a canvas.
 *
 * Callbacks: onState(state) with 'connecting' | 'live' | 'reconnecting' | 'ended';
 * onLayout(layout) for mosaic layout messages; onEnded(reason) when the box says the stream
 * is over (no reconnect then); onAuthLost() when the session is gone; onRefused() when the
 * box refused the connection outright (the handshake failed), which may resolve to a reason
 * to end with instead of retrying (an offline or unknown station, say).
 */
export class VideoStream {
  constructor({ path, canvas, onState = () => {}, onLayout = () => {}, onEnded = () => {}, onAuthLost = () => {}, onRefused = async () => null }) {
    this.path = path;
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { alpha: false });
    this.onState = onState;
    this.onLayout = onLayout;
    this.onEnded = onEnded;
    this.onAuthLost = onAuthLost;
    this.onRefused = onRefused;
    this.ws = null;
    this.decoder = null;
    this.config = null;
    this.needKeyframe = true;
    this.meta = new Map();
    this.stopped = false;
    this.backoffMs = BACKOFF_MIN_MS;
    this.retryTimer = null;
    this.liveSinceConnect = false;
    this.state = null;
    this.lastKeyframeRequest = -Infinity;
  }

  start() {
    this.setState('connecting');
    this.connect();
  }

  /** Closes everything for good; safe to call twice. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.closeDecoder();
  }

  /** Retries at once instead of waiting out the backoff, e.g. when the tablet wakes up. */
  retryNow() {
    if (this.stopped || this.ws || !this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    stats.connection = state;
    this.onState(state);
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}${this.path}`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.liveSinceConnect = false;
    this.opened = false;
    ws.onopen = () => { this.opened = true; };
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = () => this.onClose();
    // onerror is always followed by onclose, which does the work.
  }

  async onClose() {
    this.ws = null;
    if (this.stopped) return;
    const refused = !this.opened;
    // A fresh connection starts with a keyframe; anything the decoder holds is stale.
    this.closeDecoder();
    this.config = null;
    this.setState('reconnecting');
    // The handshake's HTTP status is hidden from scripts, so ask whether the session is
    // still valid before hammering the box with doomed reconnects.
    try {
      const me = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' });
      if (me.status === 401) {
        this.stopped = true;
        this.onAuthLost();
        return;
      }
      if (me.ok && refused) {
        const reason = await this.onRefused();
        if (this.stopped) return;
        if (reason !== null) {
          this.end(reason);
          return;
        }
      }
    } catch {
      // Box unreachable: keep retrying with backoff.
    }
    if (this.stopped) return;
    const delay = this.backoffMs * (0.75 + Math.random() * 0.5);
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    stats.reconnects++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  onMessage(data) {
    if (typeof data === 'string') {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        console.warn('lanterne: ignoring a text message that is not JSON');
        return;
      }
      this.onControl(msg);
      return;
    }
    let frame;
    try {
      frame = parseVideoMessage(data);
    } catch (e) {
      console.warn(`lanterne: ${e.message}`);
      stats.droppedFrames++;
      return;
    }
    this.decode(frame);
  }

  onControl(msg) {
    switch (msg.type) {
      case 'config':
        this.configure(msg);
        break;
      case 'layout':
        this.onLayout(msg);
        break;
      case 'ended':
        this.end(typeof msg.reason === 'string' ? msg.reason : '');
        break;
      default:
        // Newer boxes may send more; an older page must keep working.
        break;
    }
  }

  end(reason) {
    this.stop();
    this.setState('ended');
    this.onEnded(reason);
  }

  configure(cfg) {
    if (typeof cfg.codec !== 'string') return;
    const same = this.config && this.decoder && this.config.codec === cfg.codec
      && this.config.width === cfg.width && this.config.height === cfg.height;
    this.config = { codec: cfg.codec, width: cfg.width, height: cfg.height };
    if (same) return;
    this.openDecoder();
  }

  openDecoder() {
    this.closeDecoder();
    if (!this.config) return;
    const decoder = new VideoDecoder({
      output: (f) => this.onFrame(f),
      error: (e) => this.onDecoderError(decoder, e),
    });
    try {
      // No description: chunks carry SPS/PPS in-band (Annex B), as the box sends them.
      decoder.configure({ codec: this.config.codec, optimizeForLatency: true });
    } catch (e) {
      console.error(`lanterne: decoder rejected ${this.config.codec}: ${e.message}`);
      stats.decodeErrors++;
      return;
    }
    this.decoder = decoder;
    this.needKeyframe = true;
  }

  closeDecoder() {
    if (this.decoder && this.decoder.state !== 'closed') this.decoder.close();
    this.decoder = null;
    this.meta.clear();
    this.needKeyframe = true;
  }

  onDecoderError(decoder, e) {
    if (decoder !== this.decoder) return; // an old decoder we already replaced
    console.warn(`lanterne: decoder error, waiting for the next keyframe: ${e.message}`);
    stats.decodeErrors++;
    // An errored decoder is closed for good; a new one resumes at the next keyframe.
    this.openDecoder();
  }

  /**
   * Asks the box for a keyframe: this decoder dropped frames and can only resume at one.
   * At most every KEYFRAME_REQUEST_GAP_MS; a request on a closed socket is simply lost (a
   * new connection starts at a keyframe anyway).
   */
  requestKeyframe() {
    const now = performance.now();
    if (now - this.lastKeyframeRequest < KEYFRAME_REQUEST_GAP_MS) return;
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    this.lastKeyframeRequest = now;
    stats.keyframeRequests++;
    this.ws.send(JSON.stringify({ type: 'keyframe' }));
  }

  decode(frame) {
    const decoder = this.decoder;
    if (!decoder || decoder.state !== 'configured') {
      stats.droppedFrames++;
      return;
    }
    if (!frame.keyframe) {
      if (this.needKeyframe) {
        // Waiting for a keyframe (after a lag or a decoder error): make sure one comes.
        stats.droppedFrames++;
        this.requestKeyframe();
        return;
      }
      if (decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
        // The device cannot keep up: skip to the next keyframe rather than fall behind.
        this.needKeyframe = true;
        stats.droppedFrames++;
        this.requestKeyframe();
        return;
      }
    } else if (decoder.decodeQueueSize > HARD_DECODE_QUEUE) {
      decoder.reset();
      decoder.configure({ codec: this.config.codec, optimizeForLatency: true });
      this.meta.clear();
    }
    this.needKeyframe = false;
    // seq as the timestamp lets the output callback find this frame's capture times.
    const timestamp = Number(frame.seq);
    this.meta.set(timestamp, {
      keyframe: frame.keyframe, captureUs: frame.captureUs, updates: frame.updates, receivedUs: nowUs(),
    });
    if (this.meta.size > MAX_PENDING_META) {
      // Frames the decoder silently dropped never come out; forget the oldest entry.
      this.meta.delete(this.meta.keys().next().value);
    }
    try {
      decoder.decode(new EncodedVideoChunk({
        type: frame.keyframe ? 'key' : 'delta',
        timestamp,
        data: frame.data,
      }));
    } catch (e) {
      this.meta.delete(timestamp);
      this.onDecoderError(decoder, e);
    }
  }

  onFrame(videoFrame) {
    const now = nowUs();
    try {
      const w = videoFrame.displayWidth;
      const h = videoFrame.displayHeight;
      if (this.canvas.width !== w || this.canvas.height !== h) {
        this.canvas.width = w;
        this.canvas.height = h;
      }
      this.ctx.drawImage(videoFrame, 0, 0, w, h);
      const meta = this.meta.get(videoFrame.timestamp);
      this.meta.delete(videoFrame.timestamp);
      stats.framesDecoded++;
      if (meta) {
        if (meta.keyframe) stats.keyframesDecoded++;
        // The browser's share of the latency, to tell it apart from the box's and network's.
        pushSample(stats.decodeMs, (now - meta.receivedUs) / 1000);
        if (meta.updates.length > 0) {
          for (const u of meta.updates) if (u.captureUs > 0) pushSample(stats.latencyMs, (now - u.captureUs) / 1000);
        } else if (meta.captureUs > 0) {
          // A focus frame (no per-tile updates) carries its station frame's capture time.
          pushSample(stats.latencyMs, (now - meta.captureUs) / 1000);
        }
      }
    } finally {
      videoFrame.close();
    }
    if (!this.liveSinceConnect) {
      this.liveSinceConnect = true;
      this.backoffMs = BACKOFF_MIN_MS;
      this.setState('live');
    }
  }
}
