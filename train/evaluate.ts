// Few-shot evaluation of a backbone on a held-out split (docs/algorithm.md §8): features extracted once on the GPU,
// then the same seeded episodes for every (feature kind, classifier, shots) asked for.
import type { VisionTransformer } from '../model/vit.js';
import type { ImageDataset, Normalization } from './data/index.js';
import { capPerClass, componentsFor, extractFeatures, pixelFeatures, selectFeatures, type ExtractedFeatures, type FeatureKind } from './features.js';
import { evaluateFewShot, type FeatureSet, type FewShotClassifier } from './fewshot.js';

export interface EvalOptions {
  /** Crop side of the evaluation transform (the training global crop size). */
  size: number;
  normalize: Normalization;
  ways: number;
  shots: readonly number[];
  /** Queries per class, or 'all' (every other image of the class, as the reference code). */
  queries: number | 'all';
  episodes: number;
  classifiers?: readonly FewShotClassifier[];
  /** Feature kinds (docs/algorithm.md §8.1), default ['concat'] (the reference code's: [cls] and pooled patch tokens). */
  features?: readonly FeatureKind[];
  /** At most this many images per class. */
  maxPerClass?: number;
  seed?: number;
  /** Images per GPU batch of the feature extraction (default 64). */
  batchSize?: number;
  /** Shorter side before the centre crop = round(size · resizeRatio); default 256/224. */
  resizeRatio?: number;
  onProgress?: (done: number, total: number) => void;
  /** Test-time shifts of every image, its feature the mean over them (ExtractOptions.shifts); default none. */
  shifts?: readonly (readonly [number, number])[];
  /** Called as each row of the table is done. */
  onRow?: (row: EvalRow) => void;
}

export interface EvalRow {
  /** The backbone's feature kind, or 'pixels' for the raw-pixel baseline. */
  features: FeatureKind | 'pixels';
  featureDim: number;
  classifier: FewShotClassifier;
  ways: number;
  shots: number;
  queries: number | 'all';
  episodes: number;
  /** Mean accuracy and 95 % half-width, in %. */
  mean: number;
  ci95: number;
  /** Time of the episodes (classifier training included). */
  seconds: number;
}

export interface EvalReport {
  dataset: string;
  images: number;
  classes: number;
  /** Width of the extracted features (all components the feature kinds need). */
  featureDim: number;
  rows: EvalRow[];
  /** Time of the feature extraction. */
  extractSeconds: number;
  seconds: number;
}

export async function evaluateBackbone(backbone: VisionTransformer, ds: ImageDataset, opts: EvalOptions): Promise<EvalReport> {
  const t0 = performance.now();
  const indices = opts.maxPerClass ? capPerClass(ds, opts.maxPerClass) : undefined;
  const components = componentsFor(opts.features ?? ['concat']);
  const feats = await extractFeatures(backbone, ds, {
    size: opts.size,
    normalize: opts.normalize,
    components,
    indices,
    batchSize: opts.batchSize,
    resizeRatio: opts.resizeRatio,
    onProgress: opts.onProgress,
    shifts: opts.shifts,
  });
  const extractSeconds = (performance.now() - t0) / 1000;
  return { ...episodesReport(feats, opts), dataset: ds.name, extractSeconds, seconds: (performance.now() - t0) / 1000 };
}

/** The raw-pixel baseline on the same episodes (same seed, classifiers and transform) as evaluateBackbone. */
export async function evaluatePixels(ds: ImageDataset, opts: EvalOptions): Promise<EvalReport> {
  const t0 = performance.now();
  const indices = opts.maxPerClass ? capPerClass(ds, opts.maxPerClass) : undefined;
  const f = await pixelFeatures(ds, { size: opts.size, normalize: opts.normalize, indices, batchSize: opts.batchSize, resizeRatio: opts.resizeRatio });
  const extractSeconds = (performance.now() - t0) / 1000;
  const rows = (opts.classifiers ?? ['prototype']).flatMap((classifier) => opts.shots.map((shots) => episodeRow(f, 'pixels', classifier, shots, opts)));
  rows.forEach((r) => opts.onRow?.(r));
  return { dataset: ds.name, images: f.labels.length, classes: new Set(f.labels).size, featureDim: f.dim, rows, extractSeconds, seconds: (performance.now() - t0) / 1000 };
}

function episodeRow(
  f: FeatureSet,
  features: EvalRow['features'],
  classifier: FewShotClassifier,
  shots: number,
  opts: Pick<EvalOptions, 'ways' | 'queries' | 'episodes' | 'seed'>,
): EvalRow {
  const t0 = performance.now();
  const r = evaluateFewShot(f, { ways: opts.ways, shots, queries: opts.queries, episodes: opts.episodes, seed: opts.seed ?? 0, classifier });
  return {
    features,
    featureDim: f.dim,
    classifier,
    ways: opts.ways,
    shots,
    queries: opts.queries,
    episodes: opts.episodes,
    mean: r.mean,
    ci95: r.ci95,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The episode table of already-extracted features (one episode stream per row, from the same seed). */
export function episodesReport(
  feats: ExtractedFeatures,
  opts: Omit<EvalOptions, 'size' | 'normalize'> & Partial<EvalOptions>,
): Omit<EvalReport, 'dataset' | 'seconds' | 'extractSeconds'> {
  const rows: EvalRow[] = [];
  for (const kind of opts.features ?? ['concat']) {
    const f = selectFeatures(feats, kind);
    for (const classifier of opts.classifiers ?? ['prototype']) {
      for (const shots of opts.shots) {
        const row = episodeRow(f, kind, classifier, shots, opts);
        rows.push(row);
        opts.onRow?.(row);
      }
    }
  }
  return { images: feats.labels.length, classes: new Set(feats.labels).size, featureDim: feats.dim, rows };
}

const COLUMNS = ['features', 'dim', 'classifier', 'ways', 'shots', 'queries', 'episodes', 'accuracy (95% CI)', 'time'] as const;

/** One table line per row: accuracy as mean ± 95 % half-width (docs/algorithm.md §8.4). */
function cells(r: EvalRow): string[] {
  return [
    r.features,
    String(r.featureDim),
    r.classifier,
    String(r.ways),
    String(r.shots),
    String(r.queries),
    String(r.episodes),
    `${r.mean.toFixed(2)}% ± ${r.ci95.toFixed(2)}`,
    `${r.seconds.toFixed(1)} s`,
  ];
}

/** The report as a terminal table. */
export function formatReport(title: string, r: EvalReport): string {
  const body = r.rows.map(cells);
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...body.map((b) => b[i].length)));
  // Text columns left-aligned, numbers right-aligned.
  const line = (cs: readonly string[]): string => `  ${cs.map((c, i) => (i === 0 || i === 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`;
  return [
    `${title}: ${r.dataset}, ${r.classes} classes, ${r.images} images; features extracted in ${r.extractSeconds.toFixed(1)} s (${r.seconds.toFixed(1)} s in all)`,
    line(COLUMNS),
    ...body.map(line),
  ].join('\n');
}
