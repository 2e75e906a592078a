// A batching loader for any training loop (torch.utils.data.DataLoader in small): batches of a dataset
// of arrays already in memory, or of an ImageDataset (image folders, Omniglot, the synthetic glyphs)
// through the evaluation transform, shuffled again every epoch from a seed, the next batch decoded
// while the caller trains on this one. Decoding runs on libuv's thread pool (sharp) for image files, so no
// worker threads of its own: over Omniglot's 28-px folder it delivered 5,351 images/s with a 5 ms step per
// batch of 64 (loaded 2-core machine), ~9x what a training step here consumes. The SMKD trainer's
// multi-crop augmentation, which is JavaScript per crop, has its own loader with worker threads (loader.ts).
import { Rng } from '../../engine/index.js';
import type { ImageDataset, Normalization } from './dataset.js';
import { evalBatches } from './loader.js';

/** Samples already in memory: n rows of `shape` each, and their labels. */
export interface ArrayDataset {
  data: Float32Array;
  /** One sample's shape, e.g. [3, 32, 32]. */
  shape: readonly number[];
  labels: ArrayLike<number>;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** A new order every epoch (default true). */
  shuffle?: boolean;
  /** Leave out the last batch when it is smaller (default false). */
  dropLast?: boolean;
  /** Seed of the shuffles: epoch e's order is the same in every run (default 0). */
  seed?: number;
  /** ImageDataset only: the side images are resized and centre-cropped to, and their normalisation. */
  size?: number;
  normalize?: Normalization;
}

export interface DataBatch {
  /** [count, ...shape] values, row-major. */
  data: Float32Array;
  shape: number[];
  labels: Int32Array;
  /** Which samples, in the dataset's numbering. */
  indices: Int32Array;
}

const isArrayDataset = (s: ImageDataset | ArrayDataset): s is ArrayDataset => 'data' in s && 'shape' in s;

export class DataLoader implements AsyncIterable<DataBatch> {
  private epoch = 0;
  private readonly n: number;

  constructor(
    readonly source: ImageDataset | ArrayDataset,
    readonly opts: DataLoaderOptions,
  ) {
    const { batchSize } = opts;
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new Error(`DataLoader: batchSize must be a whole number >= 1, got ${batchSize}`);
    if (isArrayDataset(source)) {
      const per = source.shape.reduce((a, d) => a * d, 1);
      this.n = source.labels.length;
      if (!(per > 0) || source.data.length !== this.n * per)
        throw new Error(`DataLoader: ${source.data.length} values are not ${this.n} samples (one per label) of shape [${source.shape.join(', ')}]`);
    } else {
      this.n = source.size;
      if (!(opts.size && opts.normalize)) throw new Error(`DataLoader: an ImageDataset (${source.name}) needs opts.size and opts.normalize for its transform`);
    }
  }

  /** Batches per epoch. */
  get length(): number {
    return this.opts.dropLast ? Math.floor(this.n / this.opts.batchSize) : Math.ceil(this.n / this.opts.batchSize);
  }

  /** This epoch's sample order, then the next epoch's on the next call. */
  private order(): number[] {
    const all = [...Array(this.n).keys()];
    return this.opts.shuffle === false ? all : new Rng((this.opts.seed ?? 0) * 1_000_003 + this.epoch).shuffle(all);
  }

  private async load(indices: number[]): Promise<DataBatch> {
    const s = this.source;
    if (isArrayDataset(s)) {
      const per = s.shape.reduce((a, d) => a * d, 1);
      const data = new Float32Array(indices.length * per);
      indices.forEach((i, k) => data.set(s.data.subarray(i * per, (i + 1) * per), k * per));
      return { data, shape: [indices.length, ...s.shape], labels: Int32Array.from(indices, (i) => s.labels[i]), indices: Int32Array.from(indices) };
    }
    const { size, normalize } = this.opts as Required<Pick<DataLoaderOptions, 'size' | 'normalize'>>;
    for await (const b of evalBatches(s, { size, normalize, indices, batchSize: indices.length }))
      return { data: b.images, shape: [b.count, 3, size, size], labels: b.labels, indices: b.indices };
    throw new Error('DataLoader: empty batch');
  }

  /** One epoch of batches; the next batch is loading while the caller works on this one. */
  async *[Symbol.asyncIterator](): AsyncGenerator<DataBatch> {
    const order = this.order();
    this.epoch++;
    const bs = this.opts.batchSize;
    const starts = Array.from({ length: this.length }, (_, k) => k * bs);
    // A prefetched batch whose caller stopped early must not become an unhandled rejection.
    const fetch = (k: number): Promise<DataBatch> => {
      const p = this.load(order.slice(starts[k], starts[k] + bs));
      p.catch(() => undefined);
      return p;
    };
    let next = starts.length ? fetch(0) : undefined;
    for (let k = 0; k < starts.length; k++) {
      const current = next!;
      next = k + 1 < starts.length ? fetch(k + 1) : undefined;
      yield await current;
    }
  }
}
