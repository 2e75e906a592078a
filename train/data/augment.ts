// Multi-crop augmentation (docs/algorithm.md §3) and the evaluation transform (§8.1, §10.1), on 8-bit HWC
// images in, float CHW crops out. Every random choice comes from the Rng passed in.
import type { Rng } from '../../engine/rng.js';
import type { Normalization, RgbImage } from './dataset.js';

/** A crop rectangle in source pixels. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One crop's pipeline (docs/algorithm.md §3.2): crop geometry and the probability of each random step. */
export interface CropPipeline {
  size: number;
  scale: readonly [number, number];
  ratio: readonly [number, number];
  flip: number;
  colorJitter: number;
  grayscale: number;
  blur: number;
  solarize: number;
}

export interface ColorJitterStrength {
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** Settings shared by all crops of a run. */
export interface AugmentSettings {
  normalize: Normalization;
  jitter: ColorJitterStrength;
  /** Blur sigma range in pixels at `blurRefSize`. */
  blurSigma: readonly [number, number];
  /** Sigma is scaled by crop size / this (docs/algorithm.md §10.1: 224); null keeps it in crop pixels. */
  blurRefSize: number | null;
}

export const DEFAULT_JITTER: ColorJitterStrength = { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1 };

/** The three pipelines of docs/algorithm.md §3.2 for the given crop sizes and scale ranges. */
export function multiCropPipelines(opts: {
  globalSize: number;
  localSize: number;
  globalScale?: readonly [number, number];
  localScale?: readonly [number, number];
  ratio?: readonly [number, number];
}): { global1: CropPipeline; global2: CropPipeline; local: CropPipeline } {
  const ratio = opts.ratio ?? [3 / 4, 4 / 3];
  const common = { ratio, flip: 0.5, colorJitter: 0.8, grayscale: 0.2 };
  const g = { ...common, size: opts.globalSize, scale: opts.globalScale ?? [0.25, 1] } as const;
  return {
    global1: { ...g, blur: 1, solarize: 0 },
    global2: { ...g, blur: 0.1, solarize: 0.2 },
    local: { ...common, size: opts.localSize, scale: opts.localScale ?? [0.05, 0.25], blur: 0.5, solarize: 0 },
  };
}

/** Python's round(): halves go to the even neighbour (torchvision computes crop sides with it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision's RandomResizedCrop.get_params (docs/algorithm.md §3.3). */
export function randomResizedCropBox(width: number, height: number, scale: readonly [number, number], ratio: readonly [number, number], rng: Rng): Box {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(target * aspect));
    const h = roundHalfEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) return { x: rng.int(0, width - w), y: rng.int(0, height - h), w, h };
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  else if (inRatio > Math.max(ratio[0], ratio[1])) w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), w, h };
}

/** PIL's bicubic kernel (a = -0.5). */
function bicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Resampling weights along one axis: output j reads inputs first[j] .. first[j] + count[j] - 1. */
interface AxisWeights {
  first: Int32Array;
  count: Int32Array;
  /** [outputs, taps] */
  weights: Float32Array;
  taps: number;
}

/**
 * PIL's coefficients for resizing [boxStart, boxStart + boxLen) of an axis of `inSize` pixels to
 * `outSize` pixels (support widened by the shrink factor, so shrinking is antialiased), for the
 * outputs outFirst .. outFirst + outCount - 1. Taps may reach outside the box, not the image.
 */
function axisWeights(inSize: number, boxStart: number, boxLen: number, outSize: number, outFirst: number, outCount: number): AxisWeights {
  const scale = boxLen / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outCount);
  const count = new Int32Array(outCount);
  const weights = new Float32Array(outCount * taps);
  for (let j = 0; j < outCount; j++) {
    const center = boxStart + (outFirst + j + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    let total = 0;
    for (let x = lo; x < hi; x++) {
      const w = bicubic((x - center + 0.5) / filterScale);
      weights[j * taps + x - lo] = w;
      total += w;
    }
    if (total !== 0) for (let x = lo; x < hi; x++) weights[j * taps + x - lo] /= total;
    first[j] = lo;
    count[j] = hi - lo;
  }
  return { first, count, weights, taps };
}

/**
 * Bicubic resize of `box` of an 8-bit HWC image to `sizeW x sizeH`, keeping only the window
 * [wx, wx + ww) x [wy, wy + wh) of the result, written as CHW floats in [0, 1] at `out[offset]`.
 */
export function resizeBox(img: RgbImage, box: Box, sizeW: number, sizeH: number, out: Float32Array, offset = 0, win: Box = { x: 0, y: 0, w: sizeW, h: sizeH }): void {
  const { width: W, data: src } = img;
  const ax = axisWeights(W, box.x, box.w, sizeW, win.x, win.w);
  const ay = axisWeights(img.height, box.y, box.h, sizeH, win.y, win.h);
  const rowLo = ay.first[0];
  const rowHi = ay.first[win.h - 1] + ay.count[win.h - 1];
  const rows = rowHi - rowLo;
  const ow = win.w;
  // horizontal pass over the source rows the vertical pass needs: tmp is [3, rows, ow]
  const tmp = new Float32Array(3 * rows * ow);
  const plane = rows * ow;
  for (let r = 0; r < rows; r++) {
    const rowBase = (rowLo + r) * W;
    for (let j = 0; j < ow; j++) {
      const x0 = ax.first[j];
      const n = ax.count[j];
      const wb = j * ax.taps;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      for (let t = 0; t < n; t++) {
        const w = ax.weights[wb + t];
        const p = (rowBase + x0 + t) * 3;
        s0 += w * src[p];
        s1 += w * src[p + 1];
        s2 += w * src[p + 2];
      }
      const q = r * ow + j;
      tmp[q] = s0;
      tmp[plane + q] = s1;
      tmp[2 * plane + q] = s2;
    }
  }
  const outPlane = win.w * win.h;
  for (let i = 0; i < win.h; i++) {
    const y0 = ay.first[i] - rowLo;
    const n = ay.count[i];
    const wb = i * ay.taps;
    for (let c = 0; c < 3; c++) {
      const base = c * plane;
      const o = offset + c * outPlane + i * ow;
      for (let j = 0; j < ow; j++) {
        let s = 0;
        for (let t = 0; t < n; t++) s += ay.weights[wb + t] * tmp[base + (y0 + t) * ow + j];
        const v = s / 255;
        out[o + j] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
}

/** Mirror left-right, in place, a CHW image of side `size` at `offset`. */
export function hflip(x: Float32Array, size: number, offset = 0): void {
  for (let row = 0; row < 3 * size; row++) {
    const base = offset + row * size;
    for (let i = 0, j = size - 1; i < j; i++, j--) {
      const t = x[base + i];
      x[base + i] = x[base + j];
      x[base + j] = t;
    }
  }
}

const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);
const luma = (r: number, g: number, b: number): number => 0.299 * r + 0.587 * g + 0.114 * b;

export function adjustBrightness(x: Float32Array, n: number, factor: number, offset = 0): void {
  for (let i = offset; i < offset + 3 * n; i++) x[i] = clamp01(x[i] * factor);
}

/** Blend towards the mean luma of the whole image. */
export function adjustContrast(x: Float32Array, n: number, factor: number, offset = 0): void {
  let sum = 0;
  for (let p = 0; p < n; p++) sum += luma(x[offset + p], x[offset + n + p], x[offset + 2 * n + p]);
  const mean = sum / n;
  for (let i = offset; i < offset + 3 * n; i++) x[i] = clamp01(mean + factor * (x[i] - mean));
}

/** Blend towards each pixel's luma. */
export function adjustSaturation(x: Float32Array, n: number, factor: number, offset = 0): void {
  for (let p = offset; p < offset + n; p++) {
    const l = luma(x[p], x[p + n], x[p + 2 * n]);
    for (let c = 0; c < 3; c++) x[p + c * n] = clamp01(l + factor * (x[p + c * n] - l));
  }
}

/** Rotate the HSV hue by `delta` turns. */
export function adjustHue(x: Float32Array, n: number, delta: number, offset = 0): void {
  for (let p = offset; p < offset + n; p++) {
    const r = x[p];
    const g = x[p + n];
    const b = x[p + 2 * n];
    const v = Math.max(r, g, b);
    const chroma = v - Math.min(r, g, b);
    if (chroma === 0) continue;
    const s = chroma / v;
    let h = v === r ? (g - b) / chroma : v === g ? (b - r) / chroma + 2 : (r - g) / chroma + 4;
    h = h / 6 + delta;
    h -= Math.floor(h);
    const h6 = h * 6;
    const sector = Math.floor(h6) % 6;
    const f = h6 - Math.floor(h6);
    const lo = v * (1 - s);
    const down = v * (1 - s * f);
    const up = v * (1 - s * (1 - f));
    let [nr, ng, nb] = [v, lo, down];
    if (sector === 0) [nr, ng, nb] = [v, up, lo];
    else if (sector === 1) [nr, ng, nb] = [down, v, lo];
    else if (sector === 2) [nr, ng, nb] = [lo, v, up];
    else if (sector === 3) [nr, ng, nb] = [lo, down, v];
    else if (sector === 4) [nr, ng, nb] = [up, lo, v];
    x[p] = clamp01(nr);
    x[p + n] = clamp01(ng);
    x[p + 2 * n] = clamp01(nb);
  }
}

/** torchvision's ColorJitter: a fresh order of the four adjustments and fresh factors per call. */
export function colorJitter(x: Float32Array, n: number, strength: ColorJitterStrength, rng: Rng, offset = 0): void {
  const order = rng.shuffle([0, 1, 2, 3]);
  const b = rng.uniform(1 - strength.brightness, 1 + strength.brightness);
  const c = rng.uniform(1 - strength.contrast, 1 + strength.contrast);
  const s = rng.uniform(1 - strength.saturation, 1 + strength.saturation);
  const h = rng.uniform(-strength.hue, strength.hue);
  for (const op of order) {
    if (op === 0) adjustBrightness(x, n, b, offset);
    else if (op === 1) adjustContrast(x, n, c, offset);
    else if (op === 2) adjustSaturation(x, n, s, offset);
    else adjustHue(x, n, h, offset);
  }
}

/** Luma in all three channels. */
export function grayscale(x: Float32Array, n: number, offset = 0): void {
  for (let p = offset; p < offset + n; p++) {
    const l = luma(x[p], x[p + n], x[p + 2 * n]);
    x[p] = l;
    x[p + n] = l;
    x[p + 2 * n] = l;
  }
}

/** Separable Gaussian blur of a CHW image of side `size`, radius ceil(3 sigma), edges replicated. */
export function gaussianBlur(x: Float32Array, size: number, sigma: number, offset = 0): void {
  const radius = Math.ceil(3 * sigma);
  if (radius === 0) return;
  const k = new Float32Array(2 * radius + 1);
  let total = 0;
  for (let i = -radius; i <= radius; i++) total += k[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] /= total;
  const tmp = new Float32Array(size * size);
  const last = size - 1;
  for (let c = 0; c < 3; c++) {
    const base = offset + c * size * size;
    for (let y = 0; y < size; y++) {
      for (let xx = 0; xx < size; xx++) {
        let s = 0;
        for (let t = -radius; t <= radius; t++) s += k[t + radius] * x[base + y * size + Math.min(Math.max(xx + t, 0), last)];
        tmp[y * size + xx] = s;
      }
    }
    for (let y = 0; y < size; y++) {
      for (let xx = 0; xx < size; xx++) {
        let s = 0;
        for (let t = -radius; t <= radius; t++) s += k[t + radius] * tmp[Math.min(Math.max(y + t, 0), last) * size + xx];
        x[base + y * size + xx] = s;
      }
    }
  }
}

/** Values at or above the threshold (default 128/255) become 1 - value. */
export function solarize(x: Float32Array, n: number, offset = 0, threshold = 128 / 255): void {
  for (let i = offset; i < offset + 3 * n; i++) if (x[i] >= threshold) x[i] = 1 - x[i];
}

/** (x - mean_c) / std_c in place. */
export function normalize(x: Float32Array, n: number, norm: Normalization, offset = 0): void {
  for (let c = 0; c < 3; c++) {
    const m = norm.mean[c];
    const inv = 1 / norm.std[c];
    for (let i = offset + c * n; i < offset + (c + 1) * n; i++) x[i] = (x[i] - m) * inv;
  }
}

/** One augmented, normalised crop of `img` written as [3, S, S] at `out[offset]` (in the order of docs/algorithm.md §3.2). */
export function augmentCrop(img: RgbImage, pipe: CropPipeline, settings: AugmentSettings, rng: Rng, out: Float32Array, offset = 0): void {
  const S = pipe.size;
  const n = S * S;
  const box = randomResizedCropBox(img.width, img.height, pipe.scale, pipe.ratio, rng);
  resizeBox(img, box, S, S, out, offset);
  if (rng.random() < pipe.flip) hflip(out, S, offset);
  if (rng.random() < pipe.colorJitter) colorJitter(out, n, settings.jitter, rng, offset);
  if (rng.random() < pipe.grayscale) grayscale(out, n, offset);
  if (rng.random() < pipe.blur) {
    const scale = settings.blurRefSize === null ? 1 : S / settings.blurRefSize;
    gaussianBlur(out, S, rng.uniform(settings.blurSigma[0], settings.blurSigma[1]) * scale, offset);
  }
  if (rng.random() < pipe.solarize) solarize(out, n, offset);
  normalize(out, n, settings.normalize, offset);
}

/**
 * Evaluation transform: resize the shorter side to round(S * resizeRatio) (bicubic), centre-crop
 * S x S, normalise; written as [3, S, S] at `out[offset]`.
 */
export function evalTransform(img: RgbImage, size: number, norm: Normalization, out: Float32Array, offset = 0, resizeRatio = 256 / 224): void {
  const short = Math.round(size * resizeRatio);
  if (short < size) throw new Error(`evalTransform: resize ratio ${resizeRatio} gives ${short} px, below the crop of ${size} px`);
  // torchvision Resize(int): the longer side is truncated, not rounded
  const [rw, rh] = img.width <= img.height ? [short, Math.trunc((short * img.height) / img.width)] : [Math.trunc((short * img.width) / img.height), short];
  const win = { x: roundHalfEven((rw - size) / 2), y: roundHalfEven((rh - size) / 2), w: size, h: size };
  resizeBox(img, { x: 0, y: 0, w: img.width, h: img.height }, rw, rh, out, offset, win);
  normalize(out, size * size, norm, offset);
}
