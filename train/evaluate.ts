// Few-shot evaluation of a backbone on a held-out split (spec 8): features extracted once on the GPU,
// then seeded episodes for every (shots, classifier) asked for.
import type { VisionTransformer } from '../model/vit.js';
import type { ImageDataset, Normalization } from './data/index.js';
import { capPerClass, extractFeatures, type ExtractedFeatures } from './features.js';
import { evaluateFewShot } from './fewshot.js';

export interface EvalOptions {
  /** Crop side of the evaluation transform (the training global crop size). */
  size: number;
  normalize: Normalization;
  ways: number;
  shots: readonly number[];
  queries: number;
  episodes: number;
  classifiers?: readonly ('prototype' | 'distLinear')[];
  /** At most this many images per class. */
  maxPerClass?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalRow {
  ways: number;
  shots: number;
  classifier: 'prototype' | 'distLinear';
  episodes: number;
  /** Mean accuracy and 95 % half-width, in %. */
  mean: number;
  ci95: number;
}

export interface EvalReport {
  dataset: string;
  images: number;
  classes: number;
  featureDim: number;
  rows: EvalRow[];
  seconds: number;
}

export async function evaluateBackbone(backbone: VisionTransformer, ds: ImageDataset, opts: EvalOptions): Promise<EvalReport> {
  const t0 = performance.now();
  const indices = opts.maxPerClass ? capPerClass(ds, opts.maxPerClass) : undefined;
  const feats = await extractFeatures(backbone, ds, { size: opts.size, normalize: opts.normalize, indices, onProgress: opts.onProgress });
  return { ...episodesReport(feats, opts), dataset: ds.name, seconds: (performance.now() - t0) / 1000 };
}

/** The episode table of already-extracted features. */
export function episodesReport(feats: ExtractedFeatures, opts: EvalOptions): Omit<EvalReport, 'dataset' | 'seconds'> {
  const rows: EvalRow[] = [];
  for (const classifier of opts.classifiers ?? ['prototype']) {
    for (const shots of opts.shots) {
      const r = evaluateFewShot(feats, { ways: opts.ways, shots, queries: opts.queries, episodes: opts.episodes, seed: opts.seed ?? 0, classifier });
      rows.push({ ways: opts.ways, shots, classifier, episodes: opts.episodes, mean: r.mean, ci95: r.ci95 });
    }
  }
  return { images: feats.labels.length, classes: new Set(feats.labels).size, featureDim: feats.dim, rows };
}

/** The report as a terminal table. */
export function formatReport(title: string, r: EvalReport): string {
  const lines = [`${title}: ${r.dataset}, ${r.classes} classes, ${r.images} images, features of ${r.featureDim} (${r.seconds.toFixed(1)} s)`];
  for (const row of r.rows) {
    lines.push(`  ${row.ways}-way ${row.shots}-shot ${row.classifier.padEnd(10)} ${row.mean.toFixed(2).padStart(6)}% ± ${row.ci95.toFixed(2)}  (${row.episodes} episodes)`);
  }
  return lines.join('\n');
}
