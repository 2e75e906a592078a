// Feature extraction for few-shot evaluation and embedding (docs/algorithm.md §8.1): images through the evaluation
// transform and the (teacher) backbone on the GPU in batches, read back once per batch; the features
// of a split are extracted once and reused by every episode, classifier and feature kind.
import { add, fromArray, noGrad, rt, tidy, type Tensor } from '../engine/index.js';
import { componentWidth, fewShotFeatures, type FeatureComponent } from '../model/features.js';
import type { VisionTransformer } from '../model/vit.js';
import { evalBatches, type ImageDataset, type Normalization } from './data/index.js';
import type { FeatureSet } from './fewshot.js';
import { checkForwardBatch } from './preflight.js';
import type { FeatureKind } from './feature-options.js';

export { FEATURE_KINDS, defaultShiftRadius, shiftGrid, type FeatureKind } from './feature-options.js';

/** The backbone-output components of a feature kind, in the order they are concatenated. */
export function featureComponents(kind: FeatureKind): FeatureComponent[] {
  switch (kind) {
    case 'cls':
      return ['cls'];
    case 'pooled':
      return ['weighted'];
    case 'mean':
      return ['mean'];
    case 'concat':
      return ['cls', 'weighted'];
    case 'patches':
      return ['patches'];
    case 'tokens':
      return ['cls', 'patches'];
  }
}

/** The distinct components several feature kinds need, in a fixed order (one extraction serves all). */
export function componentsFor(kinds: readonly FeatureKind[]): FeatureComponent[] {
  const want = new Set(kinds.flatMap(featureComponents));
  return (['cls', 'weighted', 'mean', 'patches'] as const).filter((c) => want.has(c));
}

/** Features of a split as the few-shot evaluation takes them, with the dataset index of each row. */
export interface ExtractedFeatures extends FeatureSet {
  labels: Int32Array;
  indices: Int32Array;
  /** The components of each row, in order; default cls + weighted. */
  components?: readonly FeatureComponent[];
  /** Their widths; default `dim / components.length` each. */
  widths?: readonly number[];
}

export interface ExtractOptions {
  size: number;
  normalize: Normalization;
  components?: readonly FeatureComponent[];
  batchSize?: number;
  /** Shorter side before the centre crop = round(size · resizeRatio); default 256/224 (docs/algorithm.md §10.1). */
  resizeRatio?: number;
  /** Only these dataset indices (e.g. a cap per class); default all. */
  indices?: ArrayLike<number>;
  onProgress?: (done: number, total: number) => void;
  /**
   * Test-time shifts: each image also goes through the backbone moved by these [dx, dy] pixels (the
   * background fills what moves in), and its feature is the mean over the copies, each component
   * renormalised; default none (the image as it is).
   */
  shifts?: readonly (readonly [number, number])[];
}

/**
 * Images [count, 3, size, size] moved by (dx, dy) pixels (right and down when positive); what moves in
 * takes the value of each image's top-left pixel in that channel (the background, after the evaluation transform).
 */
export function shiftImages(images: Float32Array, count: number, size: number, dx: number, dy: number): Float32Array {
  const out = new Float32Array(count * 3 * size * size);
  for (let p = 0; p < count * 3; p++) {
    const plane = p * size * size;
    const fill = images[plane];
    for (let y = 0; y < size; y++) {
      const sy = y - dy;
      for (let x = 0; x < size; x++) {
        const sx = x - dx;
        out[plane + y * size + x] = sy >= 0 && sy < size && sx >= 0 && sx < size ? images[plane + sy * size + sx] : fill;
      }
    }
  }
  return out;
}

/** Rows [count, Σ widths] whose every component (of the given widths) is L2-normalised in place. */
export function normalizeComponents(data: Float32Array, count: number, widths: readonly number[]): Float32Array {
  const dim = widths.reduce((a, w) => a + w, 0);
  for (let r = 0; r < count; r++) {
    let at = r * dim;
    for (const w of widths) {
      let ss = 0;
      for (let i = at; i < at + w; i++) ss += data[i] * data[i];
      const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
      for (let i = at; i < at + w; i++) data[i] *= inv;
      at += w;
    }
  }
  return data;
}

/**
 * [count, k·D] features of a batch of transformed images ([count, 3, size, size], normalised), in
 * inference mode: the caller puts the backbone in eval mode.
 */
export async function batchFeatures(
  backbone: VisionTransformer,
  images: Float32Array,
  count: number,
  size: number,
  components: readonly FeatureComponent[],
): Promise<{ data: Float32Array; dim: number }> {
  const feats = tidy(() =>
    noGrad(() => fewShotFeatures(backbone.forward(fromArray(images, [count, 3, size, size]), { clsAttention: components.includes('weighted') }), components)),
  );
  try {
    return { data: await feats.toArray(), dim: feats.shape[1] };
  } finally {
    feats.dispose();
  }
}

/**
 * batchFeatures averaged over test-time shifts (ExtractOptions.shifts), each component renormalised;
 * no shifts: batchFeatures itself.
 */
export async function shiftedFeatures(
  backbone: VisionTransformer,
  images: Float32Array,
  count: number,
  size: number,
  components: readonly FeatureComponent[],
  shifts: readonly (readonly [number, number])[] = [],
): Promise<{ data: Float32Array; dim: number }> {
  // Before the first forward of a batch too large for the adapter.
  checkForwardBatch(backbone.config, count, size, rt().device.limits);
  if (shifts.length === 0) return batchFeatures(backbone, images, count, size, components);
  // The copies' features are summed on the GPU, each forward freed as the next is recorded, and read back once.
  let sum: Tensor<'f32'> | undefined;
  for (const [dx, dy] of shifts) {
    const input = dx === 0 && dy === 0 ? images : shiftImages(images, count, size, dx, dy);
    const prev = sum;
    sum = tidy(() =>
      noGrad(() => {
        const f = fewShotFeatures(backbone.forward(fromArray(input, [count, 3, size, size]), { clsAttention: components.includes('weighted') }), components);
        return prev ? add(prev, f) : f;
      }),
    );
    prev?.dispose();
  }
  const total = sum as Tensor<'f32'>;
  const dim = total.shape[1];
  let data: Float32Array;
  try {
    data = await total.toArray();
  } finally {
    total.dispose();
  }
  const { embedDim, patchSize } = backbone.config;
  const widths = components.map((c) => componentWidth(c, embedDim, Math.floor(size / patchSize) ** 2));
  return { data: normalizeComponents(data, count, widths), dim };
}

/** Runs `fn` with the backbone in eval mode (no drop path), restoring its mode after. */
export async function inEvalMode<T>(backbone: VisionTransformer, fn: () => Promise<T>): Promise<T> {
  const wasTraining = backbone.training;
  backbone.eval();
  try {
    return await fn();
  } finally {
    backbone.train(wasTraining);
  }
}

export async function extractFeatures(backbone: VisionTransformer, ds: ImageDataset, opts: ExtractOptions): Promise<ExtractedFeatures> {
  const components = opts.components ?? ['cls', 'weighted'];
  const total = opts.indices ? opts.indices.length : ds.size;
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  const indices: number[] = [];
  let dim = 0;
  await inEvalMode(backbone, async () => {
    for await (const b of evalBatches(ds, { size: opts.size, normalize: opts.normalize, batchSize: opts.batchSize ?? 64, indices: opts.indices, resizeRatio: opts.resizeRatio })) {
      const f = await shiftedFeatures(backbone, b.images, b.count, opts.size, components, opts.shifts);
      dim = f.dim;
      rows.push(f.data);
      labels.push(...b.labels);
      indices.push(...b.indices);
      opts.onProgress?.(indices.length, total);
    }
  });
  const { embedDim, patchSize } = backbone.config;
  const widths = components.map((c) => componentWidth(c, embedDim, Math.floor(opts.size / patchSize) ** 2));
  return { data: concatRows(rows, indices.length * dim), dim, labels: Int32Array.from(labels), indices: Int32Array.from(indices), components, widths };
}

/**
 * The raw-pixel baseline: each image through the same evaluation transform as the backbone's input
 * (resize, crop, normalisation), flattened to [3 * size * size] and L2-normalised.
 */
export async function pixelFeatures(ds: ImageDataset, opts: Omit<ExtractOptions, 'components'>): Promise<FeatureSet & { labels: Int32Array }> {
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  const dim = 3 * opts.size * opts.size;
  for await (const b of evalBatches(ds, { size: opts.size, normalize: opts.normalize, batchSize: opts.batchSize ?? 64, indices: opts.indices, resizeRatio: opts.resizeRatio })) {
    const x = b.images.slice(0, b.count * dim);
    for (let r = 0; r < b.count; r++) {
      const row = x.subarray(r * dim, (r + 1) * dim);
      let ss = 0;
      for (const v of row) ss += v * v;
      const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
      for (let i = 0; i < dim; i++) row[i] *= inv;
    }
    rows.push(x);
    labels.push(...b.labels);
    opts.onProgress?.(labels.length, opts.indices ? opts.indices.length : ds.size);
  }
  return { data: concatRows(rows, labels.length * dim), dim, labels: Int32Array.from(labels) };
}

/** Row blocks joined into one array of `length` values. */
export function concatRows(rows: readonly Float32Array[], length: number): Float32Array {
  const data = new Float32Array(length);
  let at = 0;
  for (const r of rows) {
    data.set(r, at);
    at += r.length;
  }
  return data;
}

/**
 * The features of one kind from features extracted with more components: the kind's columns, taken
 * as they are (every component is L2-normalised on its own, so a subset needs no renormalising).
 */
export function selectFeatures(feats: ExtractedFeatures, kind: FeatureKind): ExtractedFeatures {
  const have = feats.components ?? ['cls', 'weighted'];
  const want = featureComponents(kind);
  const missing = want.filter((c) => !have.includes(c));
  if (missing.length > 0) throw new Error(`selectFeatures: '${kind}' needs the component(s) ${missing.join(', ')}, extracted were ${have.join(', ')}`);
  if (want.length === have.length && want.every((c, i) => c === have[i])) return feats;
  const widths = feats.widths ?? have.map(() => feats.dim / have.length);
  const starts = widths.map((_, i) => widths.slice(0, i).reduce((a, w) => a + w, 0));
  const pick = want.map((c) => have.indexOf(c));
  const n = feats.labels.length;
  const dim = pick.reduce((a, k) => a + widths[k], 0);
  const data = new Float32Array(n * dim);
  for (let r = 0; r < n; r++) {
    let at = r * dim;
    for (const k of pick) {
      const from = r * feats.dim + starts[k];
      data.set(feats.data.subarray(from, from + widths[k]), at);
      at += widths[k];
    }
  }
  return { data, dim, labels: feats.labels, indices: feats.indices, components: want, widths: pick.map((k) => widths[k]) };
}

/** At most `perClass` indices of each class (the first ones, deterministic), for short evaluations. */
export function capPerClass(ds: ImageDataset, perClass: number): Int32Array {
  const seen = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < ds.size; i++) {
    const l = ds.label(i);
    const n = seen.get(l) ?? 0;
    if (n < perClass) out.push(i);
    seen.set(l, n + 1);
  }
  return Int32Array.from(out);
}
