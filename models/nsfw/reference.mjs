// The reference: the nsfwjs package's own classifier on TensorFlow.js's pure-JavaScript CPU
// backend, fed by decoders without native code: JPEG by
// libjpeg-turbo (mozjpeg, as WebAssembly: @jsquash/jpeg), which is what Chromium decodes JPEG with,
// so the reference sees the pixels the package sees in a browser; PNG by pngjs, GIF by omggif. Prints one JSON line per
// image: {file, scores: [drawing, hentai, neutral, porn, sexy], ms} or {file, error}; then one
// line {load_ms}. Used by libs/nsfw/tests/reference.rs and the benchmark.
//
// Preparation, the same rule as the Rust engine's: decode; turn as the JPEG's EXIF Orientation
// (APP1, tag 0x0112, values 1–8) says, as browsers do; drop alpha; the package's infer() then
// divides by 255 and resizes bilinearly to 224 × 224 (alignCorners = true).
//
//   node reference.mjs FILE...
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import decodeJpeg, { init as initJpeg } from '@jsquash/jpeg/decode.js';

const require = createRequire(import.meta.url);
// Only this script's JSON lines on stdout: TensorFlow.js and nsfwjs print banners there.
const emit = (v) => process.stdout.write(JSON.stringify(v) + '\n');
console.log = console.info = console.warn = (...a) => process.stderr.write(a.join(' ') + '\n');
const tf = require('@tensorflow/tfjs');
const nsfwjs = require('nsfwjs');
const { PNG } = require('pngjs');
const { GifReader } = require('omggif');

/** The EXIF orientation (1–8) of a JPEG, 1 when it has none. */
function orientation(buf) {
  if (buf[0] !== 0xff || buf[1] !== 0xd8) return 1;
  let at = 2;
  while (at + 4 <= buf.length && buf[at] === 0xff) {
    const marker = buf[at + 1];
    const len = buf.readUInt16BE(at + 2);
    if (marker === 0xda) break;
    if (marker === 0xe1 && buf.toString('latin1', at + 4, at + 10) === 'Exif\0\0') {
      const t = at + 10;
      const le = buf.toString('latin1', t, t + 2) === 'II';
      const u16 = (o) => (le ? buf.readUInt16LE(t + o) : buf.readUInt16BE(t + o));
      const u32 = (o) => (le ? buf.readUInt32LE(t + o) : buf.readUInt32BE(t + o));
      const ifd = u32(4);
      const n = u16(ifd);
      for (let i = 0; i < n; i++) {
        const e = ifd + 2 + i * 12;
        if (u16(e) === 0x0112) {
          const v = u16(e + 8);
          return v >= 1 && v <= 8 ? v : 1;
        }
      }
      return 1;
    }
    at += 2 + len;
  }
  return 1;
}

/** RGBA pixels → turned RGB pixels (Int32Array) and the turned size. */
function turn(rgba, w, h, o) {
  const swap = o >= 5;
  const [ow, oh] = swap ? [h, w] : [w, h];
  const out = new Int32Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      let rx, ry;
      switch (o) {
        case 2: [rx, ry] = [w - 1 - x, y]; break;
        case 3: [rx, ry] = [w - 1 - x, h - 1 - y]; break;
        case 4: [rx, ry] = [x, h - 1 - y]; break;
        case 5: [rx, ry] = [y, x]; break;
        case 6: [rx, ry] = [y, h - 1 - x]; break;
        case 7: [rx, ry] = [w - 1 - y, h - 1 - x]; break;
        case 8: [rx, ry] = [w - 1 - y, x]; break;
        default: [rx, ry] = [x, y];
      }
      const s = (ry * w + rx) * 4;
      const d = (y * ow + x) * 3;
      out[d] = rgba[s];
      out[d + 1] = rgba[s + 1];
      out[d + 2] = rgba[s + 2];
    }
  }
  return { data: out, w: ow, h: oh };
}

async function decode(buf) {
  if (buf[0] === 0xff && buf[1] === 0xd8) {
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const img = await decodeJpeg(ab, { preserveOrientation: false });
    return turn(img.data, img.width, img.height, orientation(buf));
  }
  if (buf.toString('latin1', 1, 4) === 'PNG') {
    const img = PNG.sync.read(buf);
    return turn(img.data, img.width, img.height, 1);
  }
  if (buf.toString('latin1', 0, 3) === 'GIF') {
    const r = new GifReader(new Uint8Array(buf));
    const px = new Uint8Array(r.width * r.height * 4);
    r.decodeAndBlitFrameRGBA(0, px);
    return turn(px, r.width, r.height, 1);
  }
  throw new Error('not a JPEG, PNG or GIF');
}

await tf.setBackend('cpu');
const here = new URL('.', import.meta.url).pathname;
await initJpeg(await WebAssembly.compile(readFileSync(here + 'node_modules/@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
const started = performance.now();
const model = await nsfwjs.load('MobileNetV2', { size: 224 });
emit({ load_ms: performance.now() - started });
for (const file of process.argv.slice(2)) {
  try {
    const t0 = performance.now();
    const { data, w, h } = await decode(readFileSync(file));
    const t1 = performance.now();
    const input = tf.tensor3d(data, [h, w, 3], 'int32');
    const out = model.infer(input);
    const scores = Array.from(await out.data());
    input.dispose();
    out.dispose();
    const t2 = performance.now();
    emit({ file, scores, decode_ms: t1 - t0, classify_ms: t2 - t1 });
  } catch (e) {
    emit({ file, error: String(e.message || e) });
  }
}
