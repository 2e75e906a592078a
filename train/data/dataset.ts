// The dataset interface shared by the trainer and the evaluation, and the helpers around it:
// class-name subsets (splits), an in-memory dataset, channel statistics and normalisation presets.
import { Rng } from '../../engine/rng.js';

export interface RgbImage {
  width: number;
  height: number;
  /** HWC, 3 channels, 8 bits. */
  data: Uint8Array;
}

export interface ImageDataset {
  readonly name: string;
  /** Label i -> class name. */
  readonly classes: readonly string[];
  readonly size: number;
  label(i: number): number;
  /** Decoded, 3 channels. */
  load(i: number): Promise<RgbImage>;
  /** E.g. the file path, for error messages. */
  describe(i: number): string;
}

/** Per-channel (R, G, B) mean and standard deviation of values in [0, 1]. */
export interface Normalization {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** The two presets of docs/algorithm.md §3.3. */
export const NORMALIZATION = {
  /** miniImageNet, tieredImageNet (the ImageNet statistics). */
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  /** CIFAR-FS, FC100. */
  cifar: {
    mean: [129.37731888 / 255, 124.10583864 / 255, 112.47758569 / 255],
    std: [68.20947949 / 255, 65.43124043 / 255, 70.45866994 / 255],
  },
} as const satisfies Record<string, Normalization>;

/** The preset the reference code would pick from a data path (it searches the folder names, docs/algorithm.md §3.3), or null. */
export function normalizationFor(path: string): Normalization | null {
  if (/mini|tiered/i.test(path)) return NORMALIZATION.imagenet;
  if (/cifar|fc100/i.test(path)) return NORMALIZATION.cifar;
  return null;
}

/** A dataset held in memory as decoded images (synthetic sets, CIFAR records, cached folders). */
export class InMemoryDataset implements ImageDataset {
  readonly size: number;

  constructor(
    readonly name: string,
    readonly classes: readonly string[],
    private readonly images: readonly RgbImage[],
    private readonly labels: Int32Array,
    private readonly descriptions?: readonly string[],
  ) {
    if (images.length !== labels.length) throw new Error(`${name}: ${images.length} images but ${labels.length} labels`);
    for (const l of labels) if (l < 0 || l >= classes.length) throw new Error(`${name}: label ${l} outside 0..${classes.length - 1}`);
    this.size = images.length;
  }

  label(i: number): number {
    return this.labels[checkIndex(this, i)];
  }

  /** The cached image itself: callers must not modify it. */
  load(i: number): Promise<RgbImage> {
    return Promise.resolve(this.images[checkIndex(this, i)]);
  }

  describe(i: number): string {
    return this.descriptions?.[i] ?? `${this.name}[${i}] (${this.classes[this.label(i)]})`;
  }
}

export function checkIndex(ds: ImageDataset, i: number): number {
  if (!Number.isInteger(i) || i < 0 || i >= ds.size) throw new Error(`${ds.name}: index ${i} outside 0..${ds.size - 1}`);
  return i;
}

/** The dataset index of every image of each label: `byClass[label]` in dataset order. */
export function indicesByClass(ds: ImageDataset): number[][] {
  const byClass: number[][] = ds.classes.map(() => []);
  for (let i = 0; i < ds.size; i++) byClass[ds.label(i)].push(i);
  return byClass;
}

/**
 * The images of the named classes, relabelled 0..n-1 in the order of `classNames` (a split).
 * Throws naming every class that the dataset does not have.
 */
export function subsetByClasses(ds: ImageDataset, classNames: readonly string[], name = ds.name): ImageDataset {
  const pos = new Map(ds.classes.map((c, i) => [c, i]));
  const missing = classNames.filter((c) => !pos.has(c));
  if (missing.length > 0) {
    throw new Error(`${ds.name}: ${missing.length} of the requested classes are missing: ${listSome(missing)}`);
  }
  if (new Set(classNames).size !== classNames.length) throw new Error(`${ds.name}: the class list names a class twice`);
  const newLabel = new Int32Array(ds.classes.length).fill(-1);
  classNames.forEach((c, i) => (newLabel[pos.get(c)!] = i));
  const index: number[] = [];
  for (let i = 0; i < ds.size; i++) if (newLabel[ds.label(i)] >= 0) index.push(i);
  return new SubsetDataset(
    name,
    [...classNames],
    ds,
    index,
    Int32Array.from(index, (i) => newLabel[ds.label(i)]),
  );
}

/** A view of some images of another dataset, with its own labels. */
class SubsetDataset implements ImageDataset {
  readonly size: number;

  constructor(
    readonly name: string,
    readonly classes: readonly string[],
    private readonly parent: ImageDataset,
    private readonly index: readonly number[],
    private readonly labels: Int32Array,
  ) {
    this.size = index.length;
  }

  label(i: number): number {
    return this.labels[checkIndex(this, i)];
  }

  load(i: number): Promise<RgbImage> {
    return this.parent.load(this.index[checkIndex(this, i)]);
  }

  describe(i: number): string {
    return this.parent.describe(this.index[checkIndex(this, i)]);
  }
}

/**
 * Per-channel mean and standard deviation (values in [0, 1]) over a seeded sample of up to
 * `maxImages` images, all pixels weighted equally (docs/algorithm.md §9.2: computed, not hard-coded).
 */
export async function channelStats(ds: ImageDataset, opts: { maxImages?: number; seed?: number } = {}): Promise<Normalization> {
  if (ds.size === 0) throw new Error(`channelStats: dataset ${ds.name} is empty`);
  const n = Math.min(opts.maxImages ?? 1000, ds.size);
  const order = new Rng(opts.seed ?? 0).shuffle([...Array(ds.size).keys()]).slice(0, n);
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  let pixels = 0;
  for (const i of order) {
    const img = await ds.load(i);
    const d = img.data;
    for (let p = 0; p < d.length; p += 3) {
      for (let c = 0; c < 3; c++) {
        const v = d[p + c] / 255;
        sum[c] += v;
        sq[c] += v * v;
      }
    }
    pixels += img.width * img.height;
  }
  const mean = sum.map((s) => s / pixels);
  const std = sq.map((s, c) => Math.sqrt(Math.max(s / pixels - mean[c] ** 2, 0)));
  if (std.some((s) => s === 0)) throw new Error(`channelStats: dataset ${ds.name} has a constant channel (std 0)`);
  return { mean: [mean[0], mean[1], mean[2]], std: [std[0], std[1], std[2]] };
}

/** The first few items of a list, for error messages. */
export function listSome(items: readonly string[], n = 8): string {
  return items.slice(0, n).join(', ') + (items.length > n ? `, ... (${items.length - n} more)` : '');
}

/** Mean of all channels of some images, in [0, 1]. */
export function meanIntensity(images: readonly RgbImage[]): number {
  let s = 0;
  let n = 0;
  for (const img of images) {
    for (const v of img.data) s += v;
    n += img.data.length;
  }
  return n ? s / n / 255 : 0;
}

/** 'light': dark strokes on a light background (ink on paper); 'dark': bright strokes on a dark one (the Omniglot pack). */
export type Background = 'light' | 'dark';

/** The background the model was trained on: its training images' mean intensity says which. */
export function modelBackground(normalize: Normalization): Background {
  return (normalize.mean[0] + normalize.mean[1] + normalize.mean[2]) / 3 < 0.5 ? 'dark' : 'light';
}

/**
 * A warning when images are of the opposite polarity to the ones a model was trained on (e.g. black
 * strokes on white given to a model trained on bright strokes on black, as Omniglot's PNGs are to a
 * model trained on the inverted pack), judged by mean intensity against the training mean.
 */
export function polarityWarning(
  images: readonly RgbImage[],
  training: Normalization,
  where: string,
  fixes: { lighter: string; darker: string } = { lighter: 'pass --invert', darker: 'leave out --invert' },
): string | undefined {
  const m = meanIntensity(images);
  const t = (training.mean[0] + training.mean[1] + training.mean[2]) / 3;
  const flipped = 1 - m;
  if (Math.abs(m - t) > 0.35 && Math.abs(flipped - t) < Math.abs(m - t) / 2) {
    const hint = m > t ? `light backgrounds where the model saw dark ones: ${fixes.lighter}` : `dark backgrounds where the model saw light ones: ${fixes.darker}`;
    return `${where}: mean intensity ${m.toFixed(2)}, but the model was trained on images of mean ${t.toFixed(2)}; they look inverted (${hint})`;
  }
  return undefined;
}
