// Which images make up the batch of iteration `it`: a pure function of (seed, it), so a resumed
// run sees the same data. Orders are reshuffled per pass from keys (seed, pass).
import { indicesByClass, type ImageDataset } from './dataset.js';
import { keyedRng, STREAM } from './seed.js';

export interface BatchSampler {
  readonly batchSize: number;
  /** Batches in one pass over the data (the last incomplete one is dropped). */
  readonly batchesPerPass: number;
  /** Dataset indices of the batch of iteration `it`. */
  indicesAt(it: number): Int32Array;
}

/** Images drawn without replacement within a pass, the order reshuffled every pass (docs/algorithm.md §3.4). */
export class UniformSampler implements BatchSampler {
  readonly batchesPerPass: number;
  private cache: { pass: number; order: number[] } | null = null;

  constructor(
    private readonly size: number,
    readonly batchSize: number,
    private readonly seed: number,
  ) {
    this.batchesPerPass = Math.floor(size / batchSize);
    if (this.batchesPerPass === 0) throw new Error(`uniform sampler: batch size ${batchSize} exceeds the ${size} images of the dataset`);
  }

  indicesAt(it: number): Int32Array {
    const pass = Math.floor(it / this.batchesPerPass);
    if (this.cache?.pass !== pass) {
      this.cache = { pass, order: keyedRng(this.seed, STREAM.uniformOrder, pass).shuffle([...Array(this.size).keys()]) };
    }
    const k = it % this.batchesPerPass;
    return Int32Array.from(this.cache.order.slice(k * this.batchSize, (k + 1) * this.batchSize));
  }
}

/**
 * P classes x K images (docs/algorithm.md §3.4, §10.1), class-major: a pass visits the classes in a fresh order, P per
 * batch; each class gives K distinct images (K < class size), or all its images repeated in a
 * shuffled cycle when it has fewer (repeats get different crops). Classes with a single image
 * have no same-class partner and are left out when K > 1.
 */
export class ClassBalancedSampler implements BatchSampler {
  readonly batchSize: number;
  readonly batchesPerPass: number;
  /** Names of the classes left out (too few images). */
  readonly excludedClasses: string[];
  private readonly byClass: number[][];
  private readonly eligible: number[];
  private cache: { pass: number; order: number[] } | null = null;

  constructor(
    ds: ImageDataset,
    readonly classesPerBatch: number,
    readonly imagesPerClass: number,
    private readonly seed: number,
  ) {
    this.batchSize = classesPerBatch * imagesPerClass;
    this.byClass = indicesByClass(ds);
    const minImages = Math.min(imagesPerClass, 2);
    this.eligible = [...this.byClass.keys()].filter((c) => this.byClass[c].length >= minImages);
    this.excludedClasses = [...this.byClass.keys()].filter((c) => this.byClass[c].length < minImages).map((c) => ds.classes[c]);
    this.batchesPerPass = Math.floor(this.eligible.length / classesPerBatch);
    if (this.batchesPerPass === 0) {
      throw new Error(`P x K sampler: ${classesPerBatch} classes a batch, but ${ds.name} has only ${this.eligible.length} classes with at least ${minImages} images`);
    }
  }

  indicesAt(it: number): Int32Array {
    const pass = Math.floor(it / this.batchesPerPass);
    if (this.cache?.pass !== pass) this.cache = { pass, order: keyedRng(this.seed, STREAM.classOrder, pass).shuffle([...this.eligible]) };
    const k = it % this.batchesPerPass;
    const out = new Int32Array(this.batchSize);
    const P = this.classesPerBatch;
    const K = this.imagesPerClass;
    this.cache.order.slice(k * P, (k + 1) * P).forEach((c, p) => {
      const images = keyedRng(this.seed, STREAM.classImages, pass, c).shuffle([...this.byClass[c]]);
      for (let j = 0; j < K; j++) out[p * K + j] = images[j % images.length];
    });
    return out;
  }
}
