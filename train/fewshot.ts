// Few-shot evaluation (docs/algorithm.md §8.2-§8.4) on precomputed features: seeded N-way K-shot episodes, the
// prototype classifier (the reference code's 'cosine'), the classifiers trained per episode on the support set (its
// 'classifier': the cosine "distLinear" and, with loss_type 'softmax', logistic regression), and the
// mean accuracy with its 95 % interval. All on the host, in float64, because it is faster: measured
// (a throwaway script, 5-way, 301 epochs of 4-sample SGD steps, 2 busy cores, lavapipe) the CPU takes 15-40 ms
// per 1-shot and 28-60 ms per 5-shot episode at d = 128, 30-120 ms at d = 768; training all episodes
// at once on the GPU (batched over episodes, ~35 dispatches per step, manual gradients) took 11 ms per
// step for 30 episodes and 200 ms for 600 (d = 128), i.e. 88-123 s for 600 1-shot episodes against
// 16-23 s on the CPU, and 252 s against 70 s at d = 768: the 602-2,107 dependent steps, not the
// arithmetic, set the time.
import { Rng } from '../engine/api.js';

/** Feature vectors of a split: `data` row-major [n, dim] (docs/algorithm.md §8.1), `labels` [n]. */
export interface FeatureSet {
  data: Float32Array;
  dim: number;
  labels: ArrayLike<number>;
}

export interface EpisodeOptions {
  /** N classes per episode (default 5). */
  ways?: number;
  /** K support images per class (default 1). */
  shots?: number;
  /** Q queries per class (default 15), or 'all': every other image of the class (the reference code, docs/algorithm.md §11.12). */
  queries?: number | 'all';
}

/** One episode: rows of the feature set. */
export interface Episode {
  /** [N] the class of each way. */
  classes: number[];
  /** [N·K] support rows, way-major (way n holds rows n·K .. n·K + K − 1). */
  support: Int32Array;
  /** Query rows, way by way. */
  query: Int32Array;
  /** [queries] the true way of each query. */
  queryWay: Int32Array;
}

/** Draws episodes: N distinct classes uniformly, then a uniform permutation within each class (docs/algorithm.md §8.2). */
export class EpisodeSampler {
  readonly ways: number;
  readonly shots: number;
  readonly queries: number | 'all';
  private readonly byClass: number[][];
  private readonly classIds: number[];

  constructor(labels: ArrayLike<number>, opts: EpisodeOptions = {}) {
    this.ways = opts.ways ?? 5;
    this.shots = opts.shots ?? 1;
    this.queries = opts.queries ?? 15;
    const positive = (n: number | 'all'): boolean => n === 'all' || (Number.isInteger(n) && n >= 1);
    if (![this.ways, this.shots, this.queries].every(positive))
      throw new Error(`EpisodeSampler: ways ${this.ways}, shots ${this.shots} and queries ${this.queries} must be positive integers`);
    const need = this.shots + (this.queries === 'all' ? 1 : this.queries);
    const groups = new Map<number, number[]>();
    for (let i = 0; i < labels.length; i++) {
      const g = groups.get(labels[i]);
      if (g) g.push(i);
      else groups.set(labels[i], [i]);
    }
    const eligible = [...groups.entries()].filter(([, rows]) => rows.length >= need).sort((a, b) => a[0] - b[0]);
    this.classIds = eligible.map(([c]) => c);
    this.byClass = eligible.map(([, rows]) => rows);
    if (this.classIds.length < this.ways) {
      throw new Error(
        `EpisodeSampler: ${this.ways}-way ${this.shots}-shot episodes with ${this.queries} queries need ${this.ways} classes of at least ${need} images; ${this.classIds.length} of ${groups.size} classes qualify`,
      );
    }
  }

  sample(rng: Rng): Episode {
    const { ways, shots } = this;
    const picked = partialShuffle([...this.byClass.keys()], ways, rng);
    const support: number[] = [];
    const query: number[] = [];
    const queryWay: number[] = [];
    picked.forEach((k, way) => {
      const rows = this.byClass[k];
      const take = this.queries === 'all' ? rows.length : shots + this.queries;
      const order = partialShuffle([...rows], take, rng);
      support.push(...order.slice(0, shots));
      for (const r of order.slice(shots)) {
        query.push(r);
        queryWay.push(way);
      }
    });
    return { classes: picked.map((k) => this.classIds[k]), support: Int32Array.from(support), query: Int32Array.from(query), queryWay: Int32Array.from(queryWay) };
  }
}

/** The first `count` entries of a uniform random permutation of `a` (Fisher-Yates from the front). */
function partialShuffle<T>(a: T[], count: number, rng: Rng): T[] {
  for (let i = 0; i < count; i++) {
    const j = rng.int(i, a.length - 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, count);
}

function row(f: FeatureSet, r: number): Float32Array {
  return f.data.subarray(r * f.dim, (r + 1) * f.dim);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return rowDot(a, 0, b, 0, a.length);
}

/** Σ a[ao + i]·b[bo + i] for i < n (no subarray views in the classifier's inner loop). */
function rowDot(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
}

/** Index of the largest score, the lowest on ties. */
function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/**
 * Prototype classifier (docs/algorithm.md §8.3, the reference code's 'cosine'): prototype = mean of the way's support features
 * (not re-normalised), prediction = arg-max cosine to the prototypes. Returns the predicted way per query.
 */
export function prototypePredict(f: FeatureSet, support: Int32Array, ways: number, query: Int32Array): Int32Array {
  const shots = support.length / ways;
  const supportWays = Int32Array.from(support, (_, i) => Math.floor(i / shots));
  return Int32Array.from(prototypeScores(f, support, supportWays, ways, query), argmax);
}

/**
 * The prototype classifier's scores: for each query row, the cosine similarity of its feature to each
 * way's prototype, the mean of that way's support features (`supportWays[i]` is the way of support
 * row `support[i]`; ways may have different numbers of shots, at least one each).
 */
export function prototypeScores(f: FeatureSet, support: Int32Array, supportWays: ArrayLike<number>, ways: number, query: Int32Array): Float64Array[] {
  const protos = Array.from({ length: ways }, () => new Float64Array(f.dim));
  const shots = new Int32Array(ways);
  support.forEach((r, i) => {
    const w = supportWays[i];
    const x = row(f, r);
    for (let d = 0; d < f.dim; d++) protos[w][d] += x[d];
    shots[w]++;
  });
  protos.forEach((p, w) => {
    if (shots[w] === 0) throw new Error(`prototypeScores: way ${w} has no support rows`);
    for (let d = 0; d < f.dim; d++) p[d] /= shots[w];
  });
  const norms = protos.map((p) => Math.sqrt(dot(p, p)));
  return Array.from(query, (q) => {
    const x = row(f, q);
    const nx = Math.sqrt(dot(x, x));
    return Float64Array.from(protos, (p, n) => (nx > 0 && norms[n] > 0 ? dot(p, x) / (nx * norms[n]) : 0));
  });
}

/** The per-episode classifiers' training settings (docs/algorithm.md §8.3 defaults). */
export interface DistLinearOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  /** Score scale of the cosine classifier; the reference code's: 2 for at most 200 classes, 10 above. */
  scale?: number;
}

/** A trained cosine classifier: W_c = g_c·v_c/‖v_c‖, score scale·⟨W_c, x/(‖x‖ + 1e-5)⟩. */
export interface DistLinear {
  /** [ways] */
  g: Float64Array;
  /** [ways, dim] */
  v: Float64Array;
  scale: number;
}

/** A trained logistic regression: score W_c·x + b_c. */
export interface Logistic {
  /** [ways, dim] */
  w: Float64Array;
  /** [ways] */
  b: Float64Array;
}

/** x/(‖x‖ + 1e-5) of one feature row, in float64 (the reference code's distLinear input normalisation). */
function normalisedRow(f: FeatureSet, r: number): Float64Array {
  const x = Float64Array.from(row(f, r));
  const n = Math.sqrt(dot(x, x)) + 1e-5;
  return x.map((v) => v / n);
}

/**
 * The reference code's mini-batch SGD on the support set (docs/algorithm.md §8.3): each epoch a fresh permutation of the `count`
 * support rows in mini-batches of `batchSize` (the last may be smaller); `accumulate` adds the batch's
 * mean-loss gradient into `grads` (zeroed before), then torch.optim.SGD updates every parameter array.
 */
function supportSgd(count: number, params: Float64Array[], rng: Rng, opts: DistLinearOptions, accumulate: (batch: number[], grads: Float64Array[]) => void): void {
  const { epochs = 301, batchSize = 4, lr = 0.01, momentum = 0.9, dampening = 0.9, weightDecay = 0.001 } = opts;
  const grads = params.map((p) => new Float64Array(p.length));
  const bufs = params.map((p) => new Float64Array(p.length));
  let started = false;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = rng.shuffle([...Array(count).keys()]);
    for (let start = 0; start < count; start += batchSize) {
      for (const g of grads) g.fill(0);
      accumulate(order.slice(start, start + batchSize), grads);
      params.forEach((p, i) => sgdStep(p, grads[i], bufs[i], started, lr, momentum, dampening, weightDecay));
      started = true;
    }
  }
}

/** Softmax of `scores` minus the one-hot of `label`, divided by `batch`, in place: d(mean CE)/d score. */
function crossEntropyDelta(scores: Float64Array, label: number, batch: number): void {
  let m = -Infinity;
  for (const s of scores) m = Math.max(m, s);
  let z = 0;
  for (let c = 0; c < scores.length; c++) z += scores[c] = Math.exp(scores[c] - m);
  for (let c = 0; c < scores.length; c++) scores[c] = (scores[c] / z - (c === label ? 1 : 0)) / batch;
}

/**
 * The reference code's 'classifier' (docs/algorithm.md §8.3): a weight-normalised, bias-free linear layer on x/(‖x‖ + 1e-5), scores
 * scale·g_c·⟨v_c, x̂⟩/‖v_c‖, v ~ PyTorch's Linear init U(±1/√d), g = ‖v_c‖; softmax cross-entropy
 * (mean over the mini-batch), torch.optim.SGD with momentum, dampening and weight decay on g and v,
 * mini-batches from a fresh permutation every epoch (the last one may be smaller). Support rows are
 * way-major ([ways·K]); `rng` draws the initial v, then each epoch's permutation.
 */
export function trainDistLinear(f: FeatureSet, support: Int32Array, ways: number, rng: Rng, opts: DistLinearOptions = {}): DistLinear {
  const scale = opts.scale ?? (ways <= 200 ? 2 : 10);
  const d = f.dim;
  const shots = support.length / ways;
  const xs = Array.from(support, (r) => normalisedRow(f, r));
  const bound = 1 / Math.sqrt(d);
  const v = Float64Array.from({ length: ways * d }, () => rng.uniform(-bound, bound));
  const g = Float64Array.from({ length: ways }, (_, c) => Math.sqrt(rowDot(v, c * d, v, c * d, d)));
  const vNorm = new Float64Array(ways);
  const cosines = new Float64Array(ways);
  const delta = new Float64Array(ways);
  supportSgd(xs.length, [v, g], rng, opts, (batch, [gradV, gradG]) => {
    for (let c = 0; c < ways; c++) vNorm[c] = Math.sqrt(rowDot(v, c * d, v, c * d, d));
    for (const i of batch) {
      const x = xs[i];
      for (let c = 0; c < ways; c++) {
        cosines[c] = rowDot(v, c * d, x, 0, d) / vNorm[c];
        delta[c] = scale * g[c] * cosines[c];
      }
      crossEntropyDelta(delta, Math.floor(i / shots), batch.length);
      for (let c = 0; c < ways; c++) {
        gradG[c] += delta[c] * scale * cosines[c];
        // d cos/d v_c = (x − cos·v_c/‖v_c‖)/‖v_c‖
        const k = (delta[c] * scale * g[c]) / vNorm[c];
        const kc = (k * cosines[c]) / vNorm[c];
        for (let e = 0, o = c * d; e < d; e++, o++) gradV[o] += k * x[e] - kc * v[o];
      }
    }
  });
  return { g, v, scale };
}

/** Predicted way per query row: arg-max of the classifier's scores. */
export function distLinearPredict(f: FeatureSet, model: DistLinear, query: Int32Array): Int32Array {
  const ways = model.g.length;
  const d = f.dim;
  const scores = new Float64Array(ways);
  return query.map((q) => {
    const x = normalisedRow(f, q);
    for (let c = 0; c < ways; c++) {
      const v = model.v.subarray(c * d, (c + 1) * d);
      scores[c] = (model.scale * model.g[c] * dot(v, x)) / Math.sqrt(dot(v, v));
    }
    return argmax(scores);
  });
}

/**
 * Multinomial logistic regression on the support features (the reference code's classifier with loss_type 'softmax',
 * docs/algorithm.md §8.3): a Linear layer with bias on the features as they are, PyTorch's init (w, then b, both
 * U(±1/√d)), trained exactly as the cosine classifier (softmax cross-entropy, the same SGD and
 * mini-batches). Support rows are way-major ([ways·K]).
 */
export function trainLogistic(f: FeatureSet, support: Int32Array, ways: number, rng: Rng, opts: DistLinearOptions = {}): Logistic {
  const d = f.dim;
  const shots = support.length / ways;
  const xs = Array.from(support, (r) => Float64Array.from(row(f, r)));
  const bound = 1 / Math.sqrt(d);
  const w = Float64Array.from({ length: ways * d }, () => rng.uniform(-bound, bound));
  const b = Float64Array.from({ length: ways }, () => rng.uniform(-bound, bound));
  const delta = new Float64Array(ways);
  supportSgd(xs.length, [w, b], rng, opts, (batch, [gradW, gradB]) => {
    for (const i of batch) {
      const x = xs[i];
      for (let c = 0; c < ways; c++) delta[c] = rowDot(w, c * d, x, 0, d) + b[c];
      crossEntropyDelta(delta, Math.floor(i / shots), batch.length);
      for (let c = 0; c < ways; c++) {
        gradB[c] += delta[c];
        for (let e = 0, o = c * d; e < d; e++, o++) gradW[o] += delta[c] * x[e];
      }
    }
  });
  return { w, b };
}

/** Predicted way per query row: arg-max of W·x + b. */
export function logisticPredict(f: FeatureSet, model: Logistic, query: Int32Array): Int32Array {
  const ways = model.b.length;
  const d = f.dim;
  const scores = new Float64Array(ways);
  return query.map((q) => {
    for (let c = 0; c < ways; c++) scores[c] = rowDot(model.w, c * d, f.data, q * d, d) + model.b[c];
    return argmax(scores);
  });
}

/** torch.optim.SGD (no Nesterov): the first step's buffer is the raw decayed gradient, later ones are damped. */
function sgdStep(p: Float64Array, grad: Float64Array, buf: Float64Array, started: boolean, lr: number, momentum: number, dampening: number, weightDecay: number): void {
  for (let i = 0; i < p.length; i++) {
    const dp = grad[i] + weightDecay * p[i];
    buf[i] = started ? momentum * buf[i] + (1 - dampening) * dp : dp;
    p[i] -= lr * buf[i];
  }
}

/** Mean of per-episode accuracies and the 95 % half-width 1.96·std/√n, std with divisor n (docs/algorithm.md §8.4). */
export function meanConfidence(accuracies: ArrayLike<number>): { mean: number; ci95: number } {
  const n = accuracies.length;
  if (n === 0) throw new Error('meanConfidence: no accuracies');
  let mean = 0;
  for (let i = 0; i < n; i++) mean += accuracies[i];
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (accuracies[i] - mean) ** 2;
  return { mean, ci95: (1.96 * Math.sqrt(v / n)) / Math.sqrt(n) };
}

/** Percentage of queries whose predicted way is their true way. */
export function episodeAccuracy(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  let correct = 0;
  for (let i = 0; i < truth.length; i++) if (pred[i] === truth[i]) correct++;
  return (100 * correct) / truth.length;
}

/**
 * 'prototype': the reference code's 'cosine' (its README numbers); 'distLinear': its 'classifier' (cosine softmax
 * regression, its default loss_type 'dist'); 'logistic': its 'classifier' with loss_type 'softmax' (docs/algorithm.md §8.3).
 */
export type FewShotClassifier = 'prototype' | 'distLinear' | 'logistic';

export const FEW_SHOT_CLASSIFIERS: readonly FewShotClassifier[] = ['prototype', 'distLinear', 'logistic'];

export interface FewShotOptions extends EpisodeOptions, DistLinearOptions {
  /** Number of episodes (10,000, as the reference code). */
  episodes?: number;
  /** Seed of the episode stream; the same seed gives the same episodes for every classifier. */
  seed?: number;
  /** Default 'prototype'. */
  classifier?: FewShotClassifier;
}

export interface FewShotResult {
  /** Mean accuracy in %. */
  mean: number;
  /** 95 % half-width in %. */
  ci95: number;
  /** Per-episode accuracies in %. */
  accuracies: Float64Array;
}

/** Runs `episodes` seeded episodes with one classifier and reports mean ± 95 % interval. */
export function evaluateFewShot(f: FeatureSet, opts: FewShotOptions = {}): FewShotResult {
  if (f.data.length !== f.labels.length * f.dim) throw new Error(`evaluateFewShot: ${f.data.length} feature values for ${f.labels.length} labels of width ${f.dim}`);
  const sampler = new EpisodeSampler(f.labels, opts);
  const rng = new Rng(opts.seed ?? 0);
  const episodes = opts.episodes ?? 10000;
  const accuracies = new Float64Array(episodes);
  for (let e = 0; e < episodes; e++) {
    const ep = sampler.sample(rng);
    // Forked every episode, whatever the classifier, so the episode stream does not depend on it.
    const local = rng.fork();
    const pred =
      opts.classifier === 'distLinear'
        ? distLinearPredict(f, trainDistLinear(f, ep.support, sampler.ways, local, opts), ep.query)
        : opts.classifier === 'logistic'
          ? logisticPredict(f, trainLogistic(f, ep.support, sampler.ways, local, opts), ep.query)
          : prototypePredict(f, ep.support, sampler.ways, ep.query);
    accuracies[e] = episodeAccuracy(pred, ep.queryWay);
  }
  return { ...meanConfidence(accuracies), accuracies };
}
