// Real H.264 for the player test: encodes solid-colour clips with GStreamer's x264enc and
// splits the Annex B byte stream into access units, the unit the box sends per message.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// The box's encoders promise no frame reordering; encode the same way so decode order is
// display order and one message yields one frame.
const ENCODE = 'x264enc tune=zerolatency bframes=0 key-int-max=10 speed-preset=ultrafast '
  + '! video/x-h264,stream-format=byte-stream,alignment=au,profile=constrained-baseline';

const hex = (rgb) => rgb.map((c) => c.toString(16).padStart(2, '0')).join('');
const solid = (rgb, w, h, fps, frames) => [
  'videotestsrc', `num-buffers=${frames}`, 'pattern=solid-color', `foreground-color=0xff${hex(rgb)}`,
  '!', `video/x-raw,width=${w},height=${h},framerate=${fps}/1`,
];

const encodeTo = (out) => [...ENCODE.split(' '), '!', 'filesink', `location=${out}`];

async function gst(args, out) {
  await run('gst-launch-1.0', ['-q', ...args], { timeout: 60_000 });
  return splitAccessUnits(await readFile(out));
}

/**
 * A mosaic clip: a grid of solid colours, cols × rows tiles of tileW × tileH, the way the box
 * composes stations' thumbnails.
 */
export async function encodeMosaic(dir, { colours, cols, tileW, tileH, fps, frames }) {
  const rows = Math.ceil(colours.length / cols);
  const pads = colours.map((_, i) => `sink_${i}::xpos=${(i % cols) * tileW} sink_${i}::ypos=${Math.floor(i / cols) * tileH}`);
  const out = path.join(dir, 'mosaic.h264');
  const args = ['compositor', 'name=c', ...pads.join(' ').split(' '), '!',
    `video/x-raw,format=I420,width=${cols * tileW},height=${rows * tileH},framerate=${fps}/1`,
    '!', ...encodeTo(out)];
  colours.forEach((rgb, i) => args.push(...solid(rgb, tileW, tileH, fps, frames), '!', `c.sink_${i}`));
  return gst(args, out);
}

/** One station's full-screen clip in a single colour. */
export async function encodeSolid(dir, name, { rgb, width, height, fps, frames }) {
  const out = path.join(dir, `${name}.h264`);
  return gst([...solid(rgb, width, height, fps, frames), '!', 'videoconvert', '!', ...encodeTo(out)], out);
}

function nalUnits(buf) {
  const starts = [];
  for (let i = 0; i + 3 <= buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      // Include a fourth leading zero in the start code, so the payload ends cleanly.
      starts.push({ code: i > 0 && buf[i - 1] === 0 ? i - 1 : i, payload: i + 3 });
      i += 2;
    }
  }
  return starts.map((s, k) => ({
    start: s.code,
    end: k + 1 < starts.length ? starts[k + 1].code : buf.length,
    type: buf[s.payload] & 0x1f,
    firstMb: (buf[s.payload + 1] & 0x80) !== 0, // ue(v) first_mb_in_slice == 0 starts with bit 1
    payload: s.payload,
  }));
}

/**
 * Splits an Annex B stream into access units (H.264 §7.4.1.2.3): a new one starts at an
 * access unit delimiter, or at SPS/PPS/SEI or a first slice once the current unit already
 * has a picture. Returns [{ data, keyframe }] and the codec string from the first SPS.
 */
export function splitAccessUnits(buf) {
  const units = [];
  let cur = null;
  let codec = null;
  for (const n of nalUnits(buf)) {
    const vcl = n.type >= 1 && n.type <= 5;
    const startsNew = !cur || n.type === 9
      || (cur.hasVcl && (n.type === 6 || n.type === 7 || n.type === 8 || (vcl && n.firstMb)));
    if (startsNew) {
      cur = { start: n.start, end: n.end, hasVcl: false, keyframe: false };
      units.push(cur);
    }
    cur.end = n.end;
    if (vcl) cur.hasVcl = true;
    if (n.type === 5) cur.keyframe = true;
    if (n.type === 7 && !codec) {
      const p = buf.subarray(n.payload + 1, n.payload + 4);
      codec = `avc1.${hex([p[0], p[1], p[2]])}`;
    }
  }
  const aus = units.filter((u) => u.hasVcl).map((u) => ({ data: buf.subarray(u.start, u.end), keyframe: u.keyframe }));
  if (!codec || aus.length === 0 || !aus[0].keyframe) {
    throw new Error('encoded clip has no SPS or does not start with a keyframe');
  }
  return { codec, aus };
}
