// Training batches of multi-crop views and block masks (docs/algorithm.md §3.4, §4), augmented on worker threads
// and prefetched; the batch of iteration `it` depends only on (seed, it), so resuming is exact.
// Also the evaluation batches: every image of a dataset through the evaluation transform.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MaskOptions } from '../../model/masking.js';
import { DEFAULT_JITTER, evalTransform, multiCropPipelines, type ColorJitterStrength } from './augment.js';
import { augmentChunk, type CropChunk, type CropConfig } from './crop-batch.js';
import type { ChunkTask } from './crop-worker.js';
import type { ImageDataset, Normalization, RgbImage } from './dataset.js';
import { ClassBalancedSampler, UniformSampler, type BatchSampler } from './sampler.js';

export interface CropBatch {
  /** G arrays, each [B, 3, Sg, Sg], normalised. */
  globals: Float32Array[];
  /** L arrays, each [B, 3, Sl, Sl]. */
  locals: Float32Array[];
  /** [B] */
  labels: Int32Array;
  /** G arrays, each [B, gh * gw], 1 = masked; all zeros while epoch < predStartEpoch. */
  masks: Uint8Array[];
  /** Dataset indices of the B images. */
  indices: Int32Array;
}

export interface MultiCropLoaderOptions {
  batchSize: number;
  /** G, default 2. */
  globalCrops?: number;
  /** L, default 10 (the reference code's). */
  localCrops?: number;
  globalSize: number;
  localSize: number;
  globalScale?: readonly [number, number];
  localScale?: readonly [number, number];
  /** Patch size: the mask grid is (Sg / p)^2. */
  patchSize: number;
  mask?: MaskOptions;
  /** Masks are empty (all zeros) in epochs before this one. Default 0. */
  predStartEpoch?: number;
  /** 'uniform' (docs/algorithm.md §3.4) or 'pk' (P classes x K images, §10.1). Default 'uniform'. */
  sampler?: 'uniform' | 'pk';
  /** K of the P x K sampler (P = batchSize / K). Default 2. */
  imagesPerClass?: number;
  /** Iterations per virtual epoch (docs/algorithm.md §10.1). */
  itersPerEpoch: number;
  seed?: number;
  normalize: Normalization;
  jitter?: ColorJitterStrength;
  blurSigma?: readonly [number, number];
  /** Blur sigma is scaled by crop size / this; null: not scaled. Default 224 (docs/algorithm.md §10.1). */
  blurRefSize?: number | null;
  /** Stroke augmentation (affine warps of the character, train/data/affine.ts) instead of the multi-crop pipelines (docs/algorithm.md §3.5). */
  strokes?: { rotation: number; scale: number; shift: number; localWindow: readonly [number, number] };
  /** Worker threads; 0 augments on the main thread. Default min(2, cores). */
  workers?: number;
  /** Batches prepared ahead of the one asked for (with workers). Default 2. */
  prefetch?: number;
}

export class MultiCropLoader {
  readonly sampler: BatchSampler;
  readonly batchSize: number;
  readonly config: CropConfig;
  private readonly labels: Int32Array;
  private readonly pool: CropPool | null;
  private readonly prefetch: number;
  private readonly inflight = new Map<number, Promise<CropBatch>>();
  private closed = false;

  constructor(
    readonly dataset: ImageDataset,
    readonly opts: MultiCropLoaderOptions,
  ) {
    const B = opts.batchSize;
    if (!Number.isInteger(B) || B < 1) throw new Error(`MultiCropLoader: batch size ${B} must be a positive integer`);
    if (opts.globalSize % opts.patchSize !== 0) throw new Error(`MultiCropLoader: global crop ${opts.globalSize} px is not a multiple of patch ${opts.patchSize}`);
    if (!(opts.itersPerEpoch >= 1)) throw new Error(`MultiCropLoader: itersPerEpoch ${opts.itersPerEpoch} must be at least 1`);
    const seed = opts.seed ?? 0;
    if (opts.sampler === 'pk') {
      const K = opts.imagesPerClass ?? 2;
      if (B % K !== 0) throw new Error(`MultiCropLoader: batch size ${B} is not a multiple of imagesPerClass ${K} (P x K sampler)`);
      this.sampler = new ClassBalancedSampler(dataset, B / K, K, seed);
    } else {
      this.sampler = new UniformSampler(dataset.size, B, seed);
    }
    this.batchSize = B;
    this.labels = Int32Array.from({ length: dataset.size }, (_, i) => dataset.label(i));
    const grid = opts.globalSize / opts.patchSize;
    this.config = {
      seed,
      globalCrops: opts.globalCrops ?? 2,
      localCrops: opts.localCrops ?? 10,
      ...multiCropPipelines(opts),
      settings: {
        normalize: opts.normalize,
        jitter: opts.jitter ?? DEFAULT_JITTER,
        blurSigma: opts.blurSigma ?? [0.1, 2],
        blurRefSize: opts.blurRefSize === undefined ? 224 : opts.blurRefSize,
      },
      gridH: grid,
      gridW: grid,
      mask: opts.mask ?? {},
    };
    const st = opts.strokes;
    if (st) {
      const ranges = { rotation: st.rotation, scale: st.scale, shift: st.shift };
      this.config.strokes = { global: { ...ranges, size: opts.globalSize, window: [1, 1] }, local: { ...ranges, size: opts.localSize, window: st.localWindow } };
    }
    if (this.config.globalCrops < 1) throw new Error('MultiCropLoader: at least one global crop is needed');
    const workers = opts.workers ?? Math.min(2, availableParallelism());
    this.pool = workers > 0 ? new CropPool(workers, this.config) : null;
    this.prefetch = workers > 0 ? (opts.prefetch ?? 2) : 0;
  }

  /** The virtual epoch of an iteration. */
  epochOf(it: number): number {
    return Math.floor(it / this.opts.itersPerEpoch);
  }

  /** Dataset indices of the batch of iteration `it`. */
  indicesAt(it: number): Int32Array {
    return this.sampler.indicesAt(it);
  }

  /** The batch of iteration `it` (any `it`: a resumed run starts anywhere); prefetches the next ones. */
  batchAt(it: number): Promise<CropBatch> {
    if (this.closed) return Promise.reject(new Error('MultiCropLoader: batchAt after close()'));
    if (!Number.isInteger(it) || it < 0) return Promise.reject(new Error(`MultiCropLoader: iteration ${it} must be a non-negative integer`));
    const batch = this.request(it);
    for (const k of [...this.inflight.keys()]) if (k <= it || k > it + this.prefetch) this.inflight.delete(k);
    for (let k = 1; k <= this.prefetch; k++) void this.request(it + k);
    return batch;
  }

  /** Batches of iterations start, start + 1, ... until `end` (exclusive) or forever. */
  async *batches(start = 0, end = Infinity): AsyncGenerator<CropBatch & { it: number }> {
    for (let it = start; it < end; it++) yield { ...(await this.batchAt(it)), it };
  }

  /** Stop the workers; pending batches are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    this.inflight.clear();
    await this.pool?.close();
  }

  private request(it: number): Promise<CropBatch> {
    let p = this.inflight.get(it);
    if (!p) {
      p = this.build(it);
      // a prefetched batch nobody asks for must not surface as an unhandled rejection
      p.catch(() => undefined);
      this.inflight.set(it, p);
    }
    return p;
  }

  private async build(it: number): Promise<CropBatch> {
    const indices = this.sampler.indicesAt(it);
    const images = await Promise.all(Array.from(indices, (i) => this.dataset.load(i)));
    const masked = this.epochOf(it) >= (this.opts.predStartEpoch ?? 0);
    const labels = Int32Array.from(indices, (i) => this.labels[i]);
    if (!this.pool) return { ...augmentChunk(this.config, it, 0, images, masked), labels, indices };
    const parts = this.pool.size;
    const ranges = Array.from({ length: parts }, (_, k) => [Math.round((k * images.length) / parts), Math.round(((k + 1) * images.length) / parts)]);
    const chunks = await Promise.all(ranges.filter(([s, e]) => e > s).map(([s, e]) => this.pool!.run(it, s, images.slice(s, e), masked)));
    return { ...concatChunks(chunks), labels, indices };
  }
}

function concatChunks(chunks: CropChunk[]): CropChunk {
  if (chunks.length === 1) return chunks[0];
  const join = <T extends Float32Array | Uint8Array>(parts: T[], make: (n: number) => T): T => {
    const out = make(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };
  const f32 = (n: number) => new Float32Array(n);
  const u8 = (n: number) => new Uint8Array(n);
  return {
    globals: chunks[0].globals.map((_, g) =>
      join(
        chunks.map((c) => c.globals[g]),
        f32,
      ),
    ),
    locals: chunks[0].locals.map((_, l) =>
      join(
        chunks.map((c) => c.locals[l]),
        f32,
      ),
    ),
    masks: chunks[0].masks.map((_, g) =>
      join(
        chunks.map((c) => c.masks[g]),
        u8,
      ),
    ),
  };
}

/**
 * A worker started on crop-worker.ts. Node 20 does not apply `--import tsx` in workers (tsx only
 * registers its hooks on the main thread there), so a .ts worker registers tsx itself first.
 */
function startWorker(config: CropConfig): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./crop-worker.js', here), { workerData: config });
  const entry = new URL('./crop-worker.ts', here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: config });
}

interface Job {
  resolve: (c: CropChunk) => void;
  reject: (e: Error) => void;
}

/**
 * A few workers; each job goes straight to the worker with the fewest jobs in flight, so workers
 * keep going through their queues even while the main thread is busy (e.g. recording a step).
 */
class CropPool {
  private readonly workers: { worker: Worker; jobs: Map<number, Job> }[];
  private nextId = 0;
  private failure: Error | null = null;

  constructor(count: number, config: CropConfig) {
    this.workers = Array.from({ length: count }, () => {
      const slot = { worker: startWorker(config), jobs: new Map<number, Job>() };
      slot.worker.unref(); // an idle pool must not keep the process alive
      slot.worker.on('message', (msg: { id: number; chunk?: CropChunk; error?: string }) => {
        if (this.failure) return; // closing: keep the worker ref'd until it has exited
        const job = slot.jobs.get(msg.id);
        slot.jobs.delete(msg.id);
        if (slot.jobs.size === 0) slot.worker.unref();
        if (msg.error !== undefined) job?.reject(new Error(`crop worker: ${msg.error}`));
        else job?.resolve(msg.chunk!);
      });
      slot.worker.on('error', (e) => this.fail(new Error(`crop worker failed: ${e.stack ?? e.message}`)));
      slot.worker.on('exit', (code) => this.fail(new Error(`crop worker exited with code ${code}`)));
      return slot;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  run(it: number, start: number, images: RgbImage[], masked: boolean): Promise<CropChunk> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      // a view into a larger buffer would be cloned whole: send compact copies
      const compact = images.map((im) => (im.data.byteLength === im.data.buffer.byteLength ? im : { ...im, data: im.data.slice() }));
      const slot = this.workers.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
      const task: ChunkTask = { id: this.nextId++, it, start, images: compact, masked };
      slot.jobs.set(task.id, { resolve, reject });
      slot.worker.ref();
      slot.worker.postMessage(task);
    });
  }

  async close(): Promise<void> {
    this.fail(new Error('MultiCropLoader closed'));
    // ref: an unref'd worker's exit alone would not keep the process waiting for it
    await Promise.all(this.workers.map((w) => (w.worker.ref(), w.worker.terminate())));
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const slot of this.workers) {
      for (const job of slot.jobs.values()) job.reject(e);
      slot.jobs.clear();
    }
  }
}

export interface EvalBatch {
  /** [count, 3, S, S], normalised. */
  images: Float32Array;
  labels: Int32Array;
  indices: Int32Array;
  count: number;
}

/**
 * Every image of `ds` (or the given indices), in order, through the evaluation transform
 * (shorter side to round(S * resizeRatio), centre crop S, normalise), in chunks of `batchSize`.
 */
export async function* evalBatches(
  ds: ImageDataset,
  opts: { size: number; normalize: Normalization; batchSize?: number; resizeRatio?: number; indices?: ArrayLike<number> },
): AsyncGenerator<EvalBatch> {
  const all = opts.indices ? Array.from(opts.indices) : [...Array(ds.size).keys()];
  const bs = opts.batchSize ?? 64;
  const len = 3 * opts.size * opts.size;
  for (let s = 0; s < all.length; s += bs) {
    const indices = Int32Array.from(all.slice(s, s + bs));
    const imgs = await Promise.all(Array.from(indices, (i) => ds.load(i)));
    const images = new Float32Array(indices.length * len);
    imgs.forEach((img, k) => evalTransform(img, opts.size, opts.normalize, images, k * len, opts.resizeRatio));
    yield { images, labels: Int32Array.from(indices, (i) => ds.label(i)), indices, count: indices.length };
  }
}
