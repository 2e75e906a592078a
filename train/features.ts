// Feature extraction for few-shot evaluation (spec 8.1): every image of a dataset through the
// evaluation transform and the (teacher) backbone on the GPU in batches, read back once.
import { fromArray, noGrad, tidy } from '../engine/index.js';
import { fewShotFeatures, type FeatureComponent } from '../model/features.js';
import type { VisionTransformer } from '../model/vit.js';
import { evalBatches, type ImageDataset, type Normalization } from './data/index.js';
import type { FeatureSet } from './fewshot.js';

/** Features of a split as the few-shot evaluation takes them, with the dataset index of each row. */
export interface ExtractedFeatures extends FeatureSet {
  labels: Int32Array;
  indices: Int32Array;
}

export interface ExtractOptions {
  size: number;
  normalize: Normalization;
  components?: readonly FeatureComponent[];
  batchSize?: number;
  /** Only these dataset indices (e.g. a cap per class); default all. */
  indices?: ArrayLike<number>;
  onProgress?: (done: number, total: number) => void;
}

export async function extractFeatures(backbone: VisionTransformer, ds: ImageDataset, opts: ExtractOptions): Promise<ExtractedFeatures> {
  const total = opts.indices ? opts.indices.length : ds.size;
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  const indices: number[] = [];
  let dim = 0;
  const wasTraining = backbone.training;
  backbone.eval();
  try {
    for await (const b of evalBatches(ds, { size: opts.size, normalize: opts.normalize, batchSize: opts.batchSize ?? 64, indices: opts.indices })) {
      const feats = tidy(() =>
        noGrad(() => {
          const images = fromArray(b.images, [b.count, 3, opts.size, opts.size]);
          return fewShotFeatures(backbone.forward(images, { clsAttention: true }), opts.components);
        }),
      );
      dim = feats.shape[1];
      rows.push(await feats.toArray());
      feats.dispose();
      labels.push(...b.labels);
      indices.push(...b.indices);
      opts.onProgress?.(indices.length, total);
    }
  } finally {
    backbone.train(wasTraining);
  }
  const data = new Float32Array(indices.length * dim);
  let at = 0;
  for (const r of rows) {
    data.set(r, at);
    at += r.length;
  }
  return { data, dim, labels: Int32Array.from(labels), indices: Int32Array.from(indices) };
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
