import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/rng.js';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  augmentCrop,
  colorJitter,
  DEFAULT_JITTER,
  evalTransform,
  gaussianBlur,
  grayscale,
  hflip,
  multiCropPipelines,
  randomResizedCropBox,
  resizeBox,
  solarize,
  type AugmentSettings,
  type CropPipeline,
} from '../../../train/data/augment.js';
import { NORMALIZATION, type RgbImage } from '../../../train/data/dataset.js';
import { blurRef, hsvToRgb, resizeRef, rgbToHsv } from '../../ref/image.js';

const test = suite('augment');

function randomImage(width: number, height: number, seed: number): RgbImage {
  const rng = new Rng(seed);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(0, 255)) };
}

function randomChw(size: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: 3 * size * size }, () => rng.random());
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length, 'lengths');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const identity = { mean: [0, 0, 0], std: [1, 1, 1] } as const;
const plain: AugmentSettings = { normalize: identity, jitter: DEFAULT_JITTER, blurSigma: [0.1, 2], blurRefSize: 224 };
/** A pipeline with every random step switched off but the crop. */
function cropOnly(size: number, scale: readonly [number, number] = [0.25, 1]): CropPipeline {
  return { size, scale, ratio: [3 / 4, 4 / 3], flip: 0, colorJitter: 0, grayscale: 0, blur: 0, solarize: 0 };
}

test('bicubic resize matches a direct 2-D reference: up, down, boxes and windows', () => {
  const cases = [
    { w: 13, h: 9, box: { x: 0, y: 0, w: 13, h: 9 }, out: [7, 5] },
    { w: 13, h: 9, box: { x: 2, y: 1, w: 5, h: 6 }, out: [16, 16] },
    { w: 40, h: 31, box: { x: 3, y: 4, w: 33, h: 25 }, out: [8, 8] },
    { w: 17, h: 23, box: { x: 0, y: 0, w: 17, h: 23 }, out: [21, 29], win: { x: 2, y: 6, w: 17, h: 17 } },
    { w: 1, h: 1, box: { x: 0, y: 0, w: 1, h: 1 }, out: [3, 3] },
  ];
  cases.forEach((c, k) => {
    const img = randomImage(c.w, c.h, 10 + k);
    const win = c.win ?? { x: 0, y: 0, w: c.out[0], h: c.out[1] };
    const out = new Float32Array(3 * win.w * win.h + 5).fill(-7);
    resizeBox(img, c.box, c.out[0], c.out[1], out, 5, win);
    const ref = resizeRef(img.data, c.w, c.h, c.box, c.out[0], c.out[1], win);
    assert.ok(maxDiff(out.subarray(5), ref) < 1e-5, `case ${k}: ${maxDiff(out.subarray(5), ref)}`);
    assert.ok(
      out.subarray(0, 5).every((v) => v === -7),
      'wrote before its offset',
    );
  });
});

test('resize keeps a constant image constant and a linear ramp linear', () => {
  const img: RgbImage = { width: 20, height: 20, data: new Uint8Array(1200).fill(90) };
  const out = new Float32Array(3 * 7 * 7);
  resizeBox(img, { x: 3, y: 2, w: 15, h: 11 }, 7, 7, out);
  assert.ok(out.every((v) => Math.abs(v - 90 / 255) < 1e-6));
  // bicubic reproduces linear functions away from the borders (upsampling, interior window)
  const ramp: RgbImage = { width: 16, height: 4, data: new Uint8Array(16 * 4 * 3) };
  for (let y = 0; y < 4; y++) for (let x = 0; x < 16; x++) ramp.data.fill(x * 10, (y * 16 + x) * 3, (y * 16 + x) * 3 + 3);
  const up = new Float32Array(3 * 32 * 8);
  resizeBox(ramp, { x: 0, y: 0, w: 16, h: 4 }, 32, 8, up);
  for (let j = 6; j < 26; j++) {
    const expected = ((j + 0.5) / 2 - 0.5) * 10;
    assert.ok(Math.abs(up[3 * 32 + j] * 255 - expected) < 1e-3, `ramp at ${j}: ${up[3 * 32 + j] * 255} vs ${expected}`);
  }
});

test('random resized crop: boxes inside the image, area and aspect within the ranges, fallback', () => {
  const rng = new Rng(3);
  for (const [W, H, scale] of [
    [480, 360, [0.25, 1]],
    [32, 32, [0.05, 0.25]],
    [105, 105, [0.25, 1]],
  ] as const) {
    let minA = Infinity;
    let maxA = 0;
    for (let i = 0; i < 3000; i++) {
      const b = randomResizedCropBox(W, H, scale, [3 / 4, 4 / 3], rng);
      assert.ok(b.x >= 0 && b.y >= 0 && b.w >= 1 && b.h >= 1 && b.x + b.w <= W && b.y + b.h <= H, `box ${JSON.stringify(b)} outside ${W}x${H}`);
      const frac = (b.w * b.h) / (W * H);
      minA = Math.min(minA, frac);
      maxA = Math.max(maxA, frac);
      // sides are rounded, so allow one pixel of slack on each
      const loose = ((b.w + 1) * (b.h + 1)) / (W * H);
      const tight = (Math.max(b.w - 1, 0) * Math.max(b.h - 1, 0)) / (W * H);
      assert.ok(loose >= scale[0] && tight <= scale[1], `area fraction ${frac} outside ${scale} (${W}x${H})`);
      assert.ok((b.w + 1) / Math.max(b.h - 1, 1) >= 3 / 4 && (b.w - 1) / (b.h + 1) <= 4 / 3, `aspect ${b.w}/${b.h}`);
    }
    // the draws cover the range
    assert.ok(minA < scale[0] + 0.1 * (scale[1] - scale[0]) + 0.02, `${W}x${H}: smallest area ${minA}`);
    assert.ok(maxA > scale[1] - 0.1 * (scale[1] - scale[0]), `${W}x${H}: largest area ${maxA}`);
  }
  // a very wide image with a scale forcing failures falls back to the largest centred crop of ratio 4/3
  const b = randomResizedCropBox(400, 10, [1, 1], [3 / 4, 4 / 3], new Rng(1));
  assert.equal(b, { x: Math.floor((400 - 13) / 2), y: 0, w: 13, h: 10 });
});

test('flip is a mirror, and the flip step of a crop mirrors that crop exactly', () => {
  const S = 5;
  const x = randomChw(S, 1);
  const y = x.slice();
  hflip(y, S);
  for (let c = 0; c < 3; c++) for (let r = 0; r < S; r++) for (let j = 0; j < S; j++) assert.is(y[c * 25 + r * S + j], x[c * 25 + r * S + S - 1 - j]);
  const img = randomImage(30, 24, 2);
  const a = new Float32Array(3 * 12 * 12);
  const b = new Float32Array(3 * 12 * 12);
  augmentCrop(img, cropOnly(12), plain, new Rng(8), a);
  augmentCrop(img, { ...cropOnly(12), flip: 1 }, plain, new Rng(8), b);
  hflip(b, 12);
  assert.is(maxDiff(a, b), 0);
});

test('grayscale: equal channels holding the luma', () => {
  const x = randomChw(6, 4);
  const y = x.slice();
  grayscale(y, 36);
  for (let p = 0; p < 36; p++) {
    const l = 0.299 * x[p] + 0.587 * x[36 + p] + 0.114 * x[72 + p];
    assert.ok(Math.abs(y[p] - l) < 1e-6 && y[p] === y[36 + p] && y[p] === y[72 + p]);
  }
});

test('solarise: values at or above 128/255 become 1 - v, the rest unchanged', () => {
  const x = Float32Array.from([0, 127 / 255, 128 / 255, 0.7, 1, 0.3]);
  const y = x.slice();
  solarize(y, 2);
  const expected = [0, 127 / 255, 1 - 128 / 255, 0.3, 0, 0.3];
  assert.ok(maxDiff(y, expected) < 1e-6, `${[...y]}`);
});

test('colour adjustments match their formulas; hue matches a colorsys reference', () => {
  const n = 49;
  const x = randomChw(7, 5);
  const luma = (v: Float32Array, p: number) => 0.299 * v[p] + 0.587 * v[n + p] + 0.114 * v[2 * n + p];
  const b = x.slice();
  adjustBrightness(b, n, 1.3);
  assert.ok(
    maxDiff(
      b,
      Array.from(x, (v) => Math.min(1, v * 1.3)),
    ) < 1e-6,
  );
  const c = x.slice();
  adjustContrast(c, n, 0.7);
  let m = 0;
  for (let p = 0; p < n; p++) m += luma(x, p) / n;
  assert.ok(
    maxDiff(
      c,
      Array.from(x, (v) => Math.min(1, Math.max(0, m + 0.7 * (v - m)))),
    ) < 1e-6,
  );
  const s = x.slice();
  adjustSaturation(s, n, 1.2);
  const sRef = Array.from(x, (v, i) => {
    const l = luma(x, i % n);
    return Math.min(1, Math.max(0, l + 1.2 * (v - l)));
  });
  assert.ok(maxDiff(s, sRef) < 1e-6);
  for (const delta of [0.07, -0.1, 0.5]) {
    const h = x.slice();
    adjustHue(h, n, delta);
    const ref = new Float64Array(3 * n);
    for (let p = 0; p < n; p++) {
      const [hh, ss, vv] = rgbToHsv(x[p], x[n + p], x[2 * n + p]);
      const rgb = hsvToRgb((((hh + delta) % 1) + 1) % 1, ss, vv);
      for (let k = 0; k < 3; k++) ref[k * n + p] = rgb[k];
    }
    assert.ok(maxDiff(h, ref) < 1e-5, `hue ${delta}: ${maxDiff(h, ref)}`);
  }
});

test('colour jitter on a gray image keeps it gray (only brightness and contrast act)', () => {
  const rng = new Rng(6);
  for (let k = 0; k < 20; k++) {
    const x = randomChw(6, 20 + k);
    grayscale(x, 36);
    colorJitter(x, 36, DEFAULT_JITTER, rng);
    for (let p = 0; p < 36; p++) assert.ok(Math.abs(x[p] - x[36 + p]) < 1e-6 && Math.abs(x[p] - x[72 + p]) < 1e-6);
    assert.ok(x.every((v) => v >= 0 && v <= 1));
  }
});

test('gaussian blur matches a direct 2-D reference with clamped edges', () => {
  for (const sigma of [0.3, 1, 2.2]) {
    const x = randomChw(9, 7);
    const y = x.slice();
    gaussianBlur(y, 9, sigma);
    assert.ok(maxDiff(y, blurRef(x, 9, sigma)) < 1e-5, `sigma ${sigma}`);
  }
});

test('augmentCrop: shape and offset, value range before normalisation, determinism', () => {
  const { global1, global2, local } = multiCropPipelines({ globalSize: 32, localSize: 16 });
  const img = randomImage(45, 40, 9);
  for (const pipe of [global1, global2, local]) {
    const len = 3 * pipe.size * pipe.size;
    const out = new Float32Array(len + 10).fill(NaN);
    augmentCrop(img, pipe, plain, new Rng(1), out, 10);
    assert.ok(out.subarray(0, 10).every(Number.isNaN), 'wrote before its offset');
    assert.ok(
      out.subarray(10).every((v) => v >= 0 && v <= 1),
      'identity normalisation keeps values in [0, 1]',
    );
    const again = new Float32Array(len + 10).fill(NaN);
    augmentCrop(img, pipe, plain, new Rng(1), again, 10);
    assert.is(maxDiff(out.subarray(10), again.subarray(10)), 0);
  }
});

test('normalisation: (x - mean) / std per channel, and the evaluation output of a dataset-like image is standardised', () => {
  const img = randomImage(40, 30, 11);
  const a = new Float32Array(3 * 16 * 16);
  const b = new Float32Array(3 * 16 * 16);
  augmentCrop(img, cropOnly(16), plain, new Rng(2), a);
  const norm = NORMALIZATION.cifar;
  augmentCrop(img, cropOnly(16), { ...plain, normalize: norm }, new Rng(2), b);
  for (let i = 0; i < a.length; i++) {
    const c = Math.floor(i / 256);
    assert.ok(Math.abs(b[i] - (a[i] - norm.mean[c]) / norm.std[c]) < 1e-5);
  }
  // uniform noise in [0, 255]: mean 0.5, std about 0.29 (the evaluation resize smooths a little)
  const big = randomImage(64, 64, 12);
  const out = new Float32Array(3 * 56 * 56);
  evalTransform(big, 56, { mean: [0.5, 0.5, 0.5], std: [0.2887, 0.2887, 0.2887] }, out);
  const mean = out.reduce((s, v) => s + v, 0) / out.length;
  assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
});

test('evaluation transform: shorter side to round(S * 256/224), centre crop S', () => {
  for (const [w, h, S] of [
    [105, 105, 32],
    [50, 40, 32],
    [30, 70, 16],
    [84, 84, 84],
  ] as const) {
    const img = randomImage(w, h, w + h);
    const out = new Float32Array(3 * S * S);
    evalTransform(img, S, identity, out);
    const R = Math.round((S * 256) / 224);
    const [rw, rh] = w <= h ? [R, Math.floor((R * h) / w)] : [Math.floor((R * w) / h), R];
    // torchvision's CenterCrop rounds with Python's round (halves to even)
    const half = (v: number) => (v % 1 === 0.5 ? 2 * Math.round(v / 2) : Math.round(v));
    const win = { x: half((rw - S) / 2), y: half((rh - S) / 2), w: S, h: S };
    const ref = resizeRef(img.data, w, h, { x: 0, y: 0, w, h }, rw, rh, win);
    assert.ok(maxDiff(out, ref) < 1e-5, `${w}x${h} -> ${S}: ${maxDiff(out, ref)}`);
  }
});

test.run();
