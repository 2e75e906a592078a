// `smkd show embedding`: the held-out classes' few-shot features (as `smkd eval` extracts them) laid out
// in 2-D with UMAP (umap-js), one colour per class, a thumbnail of the first image of a few classes at
// its point; an SVG rendered headless with vega-lite, as the training curves.
import type * as vegaLite from 'vega-lite';
import { Rng } from '../../engine/index.js';
import type { VisionTransformer } from '../../model/vit.js';
import { loadBackbone, type LoadedBackbone, type Network } from '../backbone-file.js';
import { dataOverrides, resolveConfig, type DeepPartial, type PresetName, type TrainConfig } from '../config.js';
import type { ImageDataset, Normalization } from '../data/index.js';
import { extractFeatures, featureComponents, selectFeatures, type FeatureKind } from '../features.js';
import { openSplits, type DataSplits } from '../sources.js';
import { loadUmap, vegaLiteSvg } from '../optional-deps.js';
import { checkOutputFile, writeOutputFile } from '../output-file.js';
import { pngDataUri } from './input.js';

export interface EmbeddingOptions {
  /** Crop side of the evaluation transform. */
  size: number;
  normalize: Normalization;
  features: FeatureKind;
  resizeRatio?: number;
  /** The first this many classes of the split. */
  classes: number;
  /** At most this many images of each (0: all). */
  perClass: number;
  /** Thumbnails of the first image of this many classes. */
  thumbnails: number;
  /** Seed of UMAP's random initialisation and sampling. */
  seed: number;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EmbeddingPoint {
  x: number;
  y: number;
  /** The class's name in the dataset. */
  className: string;
  /** The image's index in the dataset. */
  index: number;
}

export interface EmbeddingMap {
  points: EmbeddingPoint[];
  /** The classes shown, in dataset label order. */
  classes: string[];
  thumbnails: { x: number; y: number; className: string; uri: string }[];
  featureDim: number;
}

/** Dataset indices of the first `classes` labels, at most `perClass` each (0: all), in dataset order. */
export function embeddingIndices(ds: ImageDataset, classes: number, perClass: number): Int32Array {
  const count = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < ds.size; i++) {
    const l = ds.label(i);
    if (l >= classes) continue;
    const n = count.get(l) ?? 0;
    if (perClass === 0 || n < perClass) out.push(i);
    count.set(l, n + 1);
  }
  return Int32Array.from(out);
}

/**
 * 2-D UMAP of n rows of `dim` features (Euclidean, which on L2-normalised parts orders neighbours as
 * cosine does), seeded. UMAP needs a neighbourhood: 15 neighbours, fewer for small sets.
 */
export async function umap2d(data: Float32Array, n: number, dim: number, seed: number): Promise<[number, number][]> {
  if (n < 3) throw new Error(`show embedding: ${n} image(s); a 2-D map needs at least 3`);
  const rng = new Rng(seed);
  const rows = Array.from({ length: n }, (_, i) => Array.from(data.subarray(i * dim, (i + 1) * dim)));
  const UMAP = await loadUmap();
  const umap = new UMAP({ nComponents: 2, nNeighbors: Math.min(15, n - 1), random: () => rng.random() });
  return umap.fit(rows).map((p) => [p[0], p[1]]);
}

/** The features of the split's first classes, their UMAP layout and the thumbnails. */
export async function embeddingMap(backbone: VisionTransformer, ds: ImageDataset, o: EmbeddingOptions): Promise<EmbeddingMap> {
  const indices = embeddingIndices(ds, o.classes, o.perClass);
  const extracted = await extractFeatures(backbone, ds, {
    size: o.size,
    normalize: o.normalize,
    components: featureComponents(o.features),
    indices,
    resizeRatio: o.resizeRatio,
    batchSize: o.batchSize,
    onProgress: o.onProgress,
  });
  const feats = selectFeatures(extracted, o.features);
  const n = feats.labels.length;
  const xy = await umap2d(feats.data, n, feats.dim, o.seed);
  const points = xy.map(([x, y], r) => ({ x, y, className: ds.classes[feats.labels[r]], index: feats.indices[r] }));
  const classes = [...new Set(Array.from(feats.labels))].sort((a, b) => a - b).map((l) => ds.classes[l]);
  const thumbnails: EmbeddingMap['thumbnails'] = [];
  for (const name of classes.slice(0, o.thumbnails)) {
    const p = points.find((q) => q.className === name)!;
    thumbnails.push({ x: p.x, y: p.y, className: name, uri: await pngDataUri(await ds.load(p.index)) });
  }
  return { points, classes, thumbnails, featureDim: feats.dim };
}

/** Side of a thumbnail in the SVG, in pixels. */
export const THUMBNAIL_PX = 28;

/** The map as an SVG: a point per image coloured by class (legend), thumbnails over their points. */
export async function embeddingSvg(map: EmbeddingMap, title: string): Promise<string> {
  const axis = (t: string) => ({ type: 'quantitative' as const, title: t, axis: { labels: false, ticks: false, grid: false }, scale: { zero: false } });
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 560,
    height: 460,
    layer: [
      {
        data: { values: map.points },
        mark: { type: 'point', filled: true, size: 40, opacity: 0.85 },
        encoding: {
          x: { field: 'x', ...axis('UMAP 1') },
          y: { field: 'y', ...axis('UMAP 2') },
          color: { field: 'className', type: 'nominal', title: 'class', sort: map.classes, scale: { scheme: 'tableau20' }, legend: { symbolLimit: 0, labelLimit: 240 } },
        },
      },
      {
        // A frame in the class colour under each thumbnail says whose image it is.
        data: { values: map.thumbnails },
        mark: { type: 'square', filled: true, size: (THUMBNAIL_PX + 6) ** 2, opacity: 1 },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, color: { field: 'className', type: 'nominal', sort: map.classes } },
      },
      {
        data: { values: map.thumbnails },
        // The data URI in every image's accessibility label would double the file for nothing.
        mark: { type: 'image', width: THUMBNAIL_PX, height: THUMBNAIL_PX, aria: false },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' }, url: { field: 'uri', type: 'nominal' } },
      },
    ],
  };
  return vegaLiteSvg(spec);
}

export interface ShowEmbeddingOptions {
  checkpoint: string;
  output: string;
  preset?: PresetName;
  config?: string;
  data?: string;
  dataKind?: TrainConfig['data']['kind'];
  split?: 'test' | 'val';
  features?: FeatureKind;
  classes?: number;
  perClass?: number;
  thumbnails?: number;
  seed?: number;
  batchSize?: number;
  network?: Network;
  numHeads?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * The data and evaluation settings `smkd eval` uses for a checkpoint: the run's config (or the preset)
 * with the data flags, and for a bare file the preprocessing in its metadata.
 */
export async function evaluationSetup(
  loaded: LoadedBackbone,
  o: Pick<ShowEmbeddingOptions, 'preset' | 'config' | 'data' | 'dataKind' | 'seed'>,
): Promise<{ cfg: TrainConfig; splits: DataSplits; size: number }> {
  const data = dataOverrides(o);
  const flags: DeepPartial<TrainConfig> = { data, ...(o.seed !== undefined && { seed: o.seed }) };
  const pre = loaded.runConfig ? undefined : loaded.preprocessing;
  if (pre) {
    flags.data = {
      ...data,
      normalize: { mean: [...pre.normalize.mean] as [number, number, number], std: [...pre.normalize.std] as [number, number, number] },
      ...(o.data ? {} : { imageSize: pre.imageSize }),
    };
    flags.eval = { resizeRatio: pre.resizeRatio, features: pre.features };
  }
  const cfg = await resolveConfig(o.preset ?? 'omniglot', 1, o.config ?? loaded.runConfig, flags);
  const size = loaded.config.imgSize;
  // Decode at the evaluation resize when the dataset's stored size is below it (a 224-px model).
  const dataCfg = size > cfg.data.imageSize ? { ...cfg.data, imageSize: Math.round((size * 256) / 224) } : cfg.data;
  return { cfg, splits: await openSplits(dataCfg, cfg.seed), size };
}

/** The command: the SVG written to `o.output`; returns the map. */
export async function showEmbedding(o: ShowEmbeddingOptions): Promise<EmbeddingMap & { dataset: string }> {
  checkOutputFile('show embedding', '-o', o.output);
  for (const [flag, v] of [
    ['--classes', o.classes],
    ['--per-class', o.perClass],
    ['--thumbnails', o.thumbnails],
  ] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= (flag === '--classes' ? 1 : 0)))
      throw new Error(`show embedding: ${flag} ${v}: expected an integer ${flag === '--classes' ? 'of at least 1' : 'of at least 0'}`);
  }
  const loaded = await loadBackbone(o.checkpoint, { network: o.network, numHeads: o.numHeads });
  try {
    const { cfg, splits, size } = await evaluationSetup(loaded, o);
    const ds = splits[o.split ?? 'test'];
    const features = o.features ?? cfg.eval.features;
    const map = await embeddingMap(loaded.backbone, ds, {
      size,
      normalize: splits.normalize,
      features,
      resizeRatio: cfg.eval.resizeRatio,
      classes: o.classes ?? 20,
      perClass: o.perClass ?? cfg.eval.maxPerClass,
      thumbnails: o.thumbnails ?? 10,
      seed: o.seed ?? cfg.seed,
      batchSize: o.batchSize,
      onProgress: o.onProgress,
    });
    const title = `${ds.name}: ${features} features of ${map.points.length} images of ${map.classes.length} of ${ds.classes.length} classes (UMAP)`;
    await writeOutputFile(o.output, await embeddingSvg(map, title));
    return { ...map, dataset: ds.name };
  } finally {
    loaded.backbone.dispose();
  }
}
