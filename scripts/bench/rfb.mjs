// A view-only VNC (RFB 3.8) receiver for the scale benchmark: it does what a viewer does to
// the server (shared session, asks for incremental updates of the whole screen, asks again as
// soon as one is complete) and counts the bytes and updates it gets, without drawing them.
// It asks for ZRLE (zlib-compressed run-length tiles, what TigerVNC-style viewers prefer),
// CopyRect and Raw, in that order; ZRLE rectangles carry their length, so an update can be
// skipped over without decoding it.
//
//   const r = await connectRfb({ host: '127.0.0.1', port: 5900 });
//   r.stats() -> { bytes, updates }; r.close();
import net from 'node:net';

const ENC_RAW = 0;
const ENC_COPYRECT = 1;
const ENC_ZRLE = 16;
const ENC_DESKTOP_SIZE = -223;
/** Limits on what a server may announce, so a confused server cannot make us buffer forever. */
const MAX_RECT_BYTES = 256 << 20;
const MAX_TEXT = 1 << 20;

export function connectRfb({ host = '127.0.0.1', port, timeoutMs = 15_000 }) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    let bytes = 0;
    let updates = 0;
    let width = 0;
    let height = 0;
    let bpp = 4;
    let state = 'version';
    let rectsLeft = 0;
    let need = 12;
    let ready = false;
    const timer = setTimeout(() => fail(new Error(`RFB handshake with :${port} timed out`)), timeoutMs);
    const fail = (e) => {
      clearTimeout(timer);
      sock.destroy();
      if (!ready) reject(e);
    };
    const request = () => {
      const m = Buffer.alloc(10);
      m.writeUInt8(3, 0); // FramebufferUpdateRequest
      m.writeUInt8(1, 1); // incremental
      m.writeUInt16BE(0, 2);
      m.writeUInt16BE(0, 4);
      m.writeUInt16BE(width, 6);
      m.writeUInt16BE(height, 8);
      sock.write(m);
    };
    sock.on('error', fail);
    sock.on('data', (chunk) => {
      bytes += chunk.length;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      try {
        while (buf.length >= need) {
          const take = (n) => {
            const b = buf.subarray(0, n);
            buf = buf.subarray(n);
            return b;
          };
          switch (state) {
            case 'version': {
              const v = take(12).toString('latin1');
              if (!v.startsWith('RFB 003.')) throw new Error(`not an RFB server: ${JSON.stringify(v)}`);
              sock.write('RFB 003.008\n');
              state = 'sectypes-count';
              need = 1;
              break;
            }
            case 'sectypes-count': {
              const n = take(1)[0];
              if (n === 0) throw new Error('the VNC server refused the connection');
              state = 'sectypes';
              need = n;
              break;
            }
            case 'sectypes': {
              const types = [...take(need)];
              if (!types.includes(1)) throw new Error(`no "None" security type offered: ${types}`);
              sock.write(Buffer.from([1]));
              state = 'secresult';
              need = 4;
              break;
            }
            case 'secresult': {
              if (take(4).readUInt32BE(0) !== 0) throw new Error('VNC security handshake failed');
              sock.write(Buffer.from([1])); // ClientInit: shared, as every classroom viewer is
              state = 'serverinit';
              need = 24;
              break;
            }
            case 'serverinit': {
              const h = take(24);
              width = h.readUInt16BE(0);
              height = h.readUInt16BE(2);
              bpp = h[4] / 8;
              state = 'name';
              need = h.readUInt32BE(20);
              if (need > MAX_TEXT) throw new Error('server name too long');
              break;
            }
            case 'name': {
              take(need);
              const encs = [ENC_ZRLE, ENC_COPYRECT, ENC_RAW, ENC_DESKTOP_SIZE];
              const m = Buffer.alloc(4 + 4 * encs.length);
              m.writeUInt8(2, 0); // SetEncodings
              m.writeUInt16BE(encs.length, 2);
              encs.forEach((e, i) => m.writeInt32BE(e, 4 + 4 * i));
              sock.write(m);
              request();
              clearTimeout(timer);
              ready = true;
              resolve({
                stats: () => ({ bytes, updates }),
                size: () => ({ width, height }),
                close: () => sock.destroy(),
              });
              state = 'msg';
              need = 1;
              break;
            }
            case 'msg': {
              const type = buf[0];
              if (type === 0) { state = 'update'; need = 4; } else if (type === 2) { take(1); } else if (type === 3) { state = 'cuttext'; need = 8; } else throw new Error(`unexpected server message ${type}`);
              break;
            }
            case 'cuttext': {
              const len = buf.readUInt32BE(4);
              if (len > MAX_TEXT) throw new Error('cut text too long');
              if (buf.length < 8 + len) { need = 8 + len; break; }
              take(8 + len);
              state = 'msg';
              need = 1;
              break;
            }
            case 'update': {
              rectsLeft = take(4).readUInt16BE(2);
              state = rectsLeft ? 'rect' : 'msg';
              need = rectsLeft ? 12 : 1;
              if (!rectsLeft) { updates++; request(); }
              break;
            }
            case 'rect': {
              const w = buf.readUInt16BE(4);
              const h = buf.readUInt16BE(6);
              const enc = buf.readInt32BE(8);
              let body;
              if (enc === ENC_RAW) body = w * h * bpp;
              else if (enc === ENC_COPYRECT) body = 4;
              else if (enc === ENC_DESKTOP_SIZE) { body = 0; width = w; height = h; }
              else if (enc === ENC_ZRLE) {
                if (buf.length < 16) { need = 16; break; }
                body = 4 + buf.readUInt32BE(12);
              } else throw new Error(`unexpected rectangle encoding ${enc}`);
              if (body > MAX_RECT_BYTES) throw new Error(`rectangle of ${body} bytes`);
              if (buf.length < 12 + body) { need = 12 + body; break; }
              take(12 + body);
              rectsLeft--;
              if (rectsLeft === 0) {
                updates++;
                request();
                state = 'msg';
                need = 1;
              } else {
                need = 12;
              }
              break;
            }
            default:
              throw new Error(`bad state ${state}`);
          }
        }
      } catch (e) {
        fail(e);
      }
    });
  });
}
