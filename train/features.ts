// Feature extraction for few-shot evaluation and embedding (docs/algorithm.md §8.1): images through the evaluation
// transform and the (teacher) backbone on the GPU in batches, read back once per batch; the features
// of a split are extracted once and reused by every episode, classifier and feature kind.
import { componentWidth, type FeatureComponent } from '../model/features.js';
import type { VisionTransformer } from '../model/vit.js';
import { evalBatches, type ImageDataset, type Normalization } from './data/index.js';
import type { FeatureSet } from './fewshot.js';
import type { FeatureKind } from './feature-options.js';
import { concatRows, featureComponents, inEvalMode, shiftedFeatures } from './image-features.js';

export { FEATURE_KINDS, defaultShiftRadius, shiftGrid, type FeatureKind } from './feature-options.js';
export {
  batchFeatures,
  componentsFor,
  concatRows,
  featureComponents,
  imageFeatures,
  inEvalMode,
  normalizeComponents,
  shiftedFeatures,
  shiftImages,
  type FeatureOptions,
} from './image-features.js';

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
