// Few-shot features of images held in memory, on every platform (the Node commands and the page of web/):
// the backbone's tokens made into feature components, optionally averaged over test-time shifts, one
// forward per batch and one read-back. Datasets, folders and whole splits are features.ts's part.
import { add, fromArray, noGrad, rt, tidy, type Tensor } from '../engine/api.js';
import { componentWidth, fewShotFeatures, type FeatureComponent } from '../model/features.js';
import type { VisionTransformer } from '../model/vit.js';
import { evalTransform } from './data/augment.js';
import type { Normalization, RgbImage } from './data/dataset.js';
import type { FeatureKind } from './feature-options.js';
import { checkForwardBatch } from './preflight.js';

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

export interface FeatureOptions {
  /** Crop side of the evaluation transform (the model's image size). */
  size: number;
  normalize: Normalization;
  resizeRatio: number;
  features: FeatureKind;
  batchSize?: number;
  /** Test-time shifts, the feature the mean over them (ExtractOptions.shifts); default none. */
  shifts?: readonly (readonly [number, number])[];
}

/** [n, dim] features of prepared images through the evaluation transform, in batches. */
export async function imageFeatures(backbone: VisionTransformer, images: readonly RgbImage[], opts: FeatureOptions): Promise<{ data: Float32Array; dim: number }> {
  const components = featureComponents(opts.features);
  const bs = opts.batchSize ?? 64;
  const len = 3 * opts.size * opts.size;
  const parts: Float32Array[] = [];
  let dim = 0;
  await inEvalMode(backbone, async () => {
    for (let start = 0; start < images.length; start += bs) {
      const batch = images.slice(start, start + bs);
      const input = new Float32Array(batch.length * len);
      batch.forEach((img, k) => evalTransform(img, opts.size, opts.normalize, input, k * len, opts.resizeRatio));
      const f = await shiftedFeatures(backbone, input, batch.length, opts.size, components, opts.shifts);
      dim = f.dim;
      parts.push(f.data);
    }
  });
  return { data: concatRows(parts, images.length * dim), dim };
}
