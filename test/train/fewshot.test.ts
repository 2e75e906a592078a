// Few-shot evaluation (docs/algorithm.md §8): the golden prototype episodes of fewshot_eval.safetensors (predictions
// exact, accuracies, mean and interval to 1e-6), seeded episodes, separable and random features, the
// cosine classifier and logistic regression against finite-difference float64 references, and the
// feature kinds taken from one extraction.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { toTypedArray } from '../../engine/index.js';
import { Rng } from '../../engine/rng.js';
import { episodesReport } from '../../train/evaluate.js';
import { componentsFor, featureComponents, selectFeatures, type ExtractedFeatures, type FeatureKind } from '../../train/features.js';
import {
  distLinearPredict,
  episodeAccuracy,
  EpisodeSampler,
  evaluateFewShot,
  logisticPredict,
  meanConfidence,
  prototypePredict,
  trainDistLinear,
  trainLogistic,
  type FeatureSet,
} from '../../train/fewshot.js';
import { close } from '../helpers/check.js';
import { Golden, needsGolden } from '../helpers/golden.js';
import { trainDistLinearRef, trainLogisticRef } from '../ref/fewshot.js';

const test = suite('fewshot');

/** A stored float64 array at full precision. */
function f64(g: Golden, key: string): Float64Array {
  const t = g.file.tensors.get(key);
  if (!t || t.dtype !== 'F64') throw new Error(`${g.name}: no F64 tensor '${key}'`);
  return toTypedArray(t) as Float64Array;
}

needsGolden(test, 'fewshot_eval.safetensors')('golden prototype episodes: predictions, accuracies, mean and 95 % interval', async () => {
  const g = await Golden.load('fewshot_eval.safetensors');
  const [n, dim] = g.shape('in.features');
  const f: FeatureSet = { data: g.f32('in.features'), dim, labels: g.ints('in.labels') };
  assert.is(f.labels.length, n);
  const shots = g
    .keys('in.shot')
    .filter((k) => k.endsWith('.support_idx'))
    .map((k) => Number(/shot(\d+)/.exec(k)![1]));
  assert.ok(shots.length >= 2);
  for (const K of shots) {
    const [E, N] = g.shape(`in.shot${K}.support_idx`);
    const Q = g.shape(`in.shot${K}.query_idx`)[2];
    const support = g.ints(`in.shot${K}.support_idx`);
    const query = g.ints(`in.shot${K}.query_idx`);
    const predWant = g.ints(`out.shot${K}.pred`);
    const accWant = f64(g, `out.shot${K}.acc`);
    const acc = new Float64Array(E);
    for (let e = 0; e < E; e++) {
      const q = Int32Array.from(query.slice(e * N * Q, (e + 1) * N * Q));
      const s = Int32Array.from(support.slice(e * N * K, (e + 1) * N * K));
      for (let w = 0; w < N; w++) for (let k = 0; k < K; k++) assert.is(f.labels[s[w * K + k]], f.labels[s[w * K]], 'a way holds one class');
      const pred = prototypePredict(f, s, N, q);
      assert.equal(Array.from(pred), predWant.slice(e * N * Q, (e + 1) * N * Q), `${K}-shot episode ${e} predictions`);
      acc[e] = episodeAccuracy(
        pred,
        Int32Array.from({ length: N * Q }, (_, i) => Math.floor(i / Q)),
      );
      assert.ok(Math.abs(acc[e] - accWant[e]) <= 1e-6, `${K}-shot episode ${e}: accuracy ${acc[e]} vs ${accWant[e]}`);
    }
    const { mean, ci95 } = meanConfidence(acc);
    assert.ok(Math.abs(mean - g.scalar(`out.shot${K}.mean`)) <= 1e-6, `${K}-shot mean ${mean}`);
    assert.ok(Math.abs(ci95 - g.scalar(`out.shot${K}.ci95`)) <= 1e-6, `${K}-shot ci95 ${ci95}`);
  }
  const given = meanConfidence(f64(g, 'in.acc_vector'));
  assert.ok(Math.abs(given.mean - g.scalar('out.acc_vector.mean')) <= 1e-6, 'acc_vector mean');
  assert.ok(Math.abs(given.ci95 - g.scalar('out.acc_vector.ci95')) <= 1e-6, 'acc_vector ci95');
});

/** Gaussian clusters: `classes` × `perClass` rows of width `dim`, class means N(0, 1), noise N(0, noise²). */
function clusters(classes: number, perClass: number, dim: number, noise: number, seed: number): FeatureSet {
  const rng = new Rng(seed);
  const means = Array.from({ length: classes }, () => Array.from({ length: dim }, () => rng.normal()));
  const data = new Float32Array(classes * perClass * dim);
  const labels = new Int32Array(classes * perClass);
  for (let i = 0; i < classes * perClass; i++) {
    labels[i] = 3 * (i % classes) + 1;
    for (let d = 0; d < dim; d++) data[i * dim + d] = means[i % classes][d] + noise * rng.normal();
  }
  return { data, dim, labels };
}

test('episodes: distinct classes, disjoint support and queries of the right classes, reproducible from the seed', () => {
  const f = clusters(9, 8, 4, 0.1, 1);
  for (const queries of [3, 'all'] as const) {
    const sampler = new EpisodeSampler(f.labels, { ways: 4, shots: 2, queries });
    const a = new Rng(42);
    const b = new Rng(42);
    for (let e = 0; e < 50; e++) {
      const ep = sampler.sample(a);
      assert.equal(sampler.sample(b), ep, 'same seed, same episode');
      assert.is(new Set(ep.classes).size, 4);
      assert.is(ep.support.length, 8);
      assert.is(ep.query.length, queries === 'all' ? 4 * 6 : 4 * 3);
      assert.is(new Set([...ep.support, ...ep.query]).size, ep.support.length + ep.query.length, 'no image twice');
      ep.support.forEach((r, i) => assert.is(f.labels[r], ep.classes[Math.floor(i / 2)]));
      ep.query.forEach((r, i) => assert.is(f.labels[r], ep.classes[ep.queryWay[i]]));
    }
  }
  assert.throws(() => new EpisodeSampler(f.labels, { ways: 10 }), /10-way/);
  assert.throws(() => new EpisodeSampler(f.labels, { ways: 5, shots: 5, queries: 4 }), /at least 9 images/);
  assert.throws(() => new EpisodeSampler(f.labels, { ways: 3, shots: 0 }), /positive integers/);
  assert.throws(() => new EpisodeSampler(f.labels, { ways: 3, queries: 1.5 }), /positive integers/);
});

test('every class and image is drawn about uniformly', () => {
  const f = clusters(6, 5, 2, 0.1, 2);
  const sampler = new EpisodeSampler(f.labels, { ways: 3, shots: 1, queries: 1 });
  const rng = new Rng(3);
  const classHits = new Map<number, number>();
  const supportHits = new Float64Array(f.labels.length);
  const runs = 6000;
  for (let e = 0; e < runs; e++) {
    const ep = sampler.sample(rng);
    for (const c of ep.classes) classHits.set(c, (classHits.get(c) ?? 0) + 1);
    for (const r of ep.support) supportHits[r]++;
  }
  // Each class is in an episode with probability 1/2, each image is a class's support with probability 1/5.
  for (const h of classHits.values()) assert.ok(Math.abs(h / runs - 0.5) < 0.03, `class frequency ${h / runs}`);
  for (const h of supportHits) assert.ok(Math.abs(h / runs - 0.1) < 0.02, `support frequency ${h / runs}`);
});

test('separable features: 100 % with the prototype, the cosine classifier and logistic regression', () => {
  const f = clusters(8, 20, 16, 0.05, 4);
  for (const shots of [1, 5]) {
    const proto = evaluateFewShot(f, { ways: 5, shots, queries: 10, episodes: 40, seed: 5 });
    assert.is(proto.mean, 100);
    assert.is(proto.ci95, 0);
    for (const classifier of ['distLinear', 'logistic'] as const) {
      const r = evaluateFewShot(f, { ways: 5, shots, queries: 10, episodes: 4, seed: 5, classifier });
      assert.is(r.mean, 100, `${shots}-shot ${classifier}`);
    }
  }
});

test('random features: chance accuracy within the interval, for every classifier', () => {
  const rng = new Rng(6);
  const n = 400;
  const dim = 8;
  const f: FeatureSet = { data: Float32Array.from({ length: n * dim }, () => rng.normal()), dim, labels: Int32Array.from({ length: n }, () => rng.int(0, 19)) };
  for (const [classifier, episodes] of [
    ['prototype', 600],
    ['distLinear', 150],
    ['logistic', 150],
  ] as const) {
    const res = evaluateFewShot(f, { ways: 5, shots: 1, queries: 5, episodes, seed: 7, classifier, epochs: classifier === 'prototype' ? undefined : 50 });
    assert.is(res.accuracies.length, episodes);
    assert.ok(res.ci95 > 0 && res.ci95 < 6, `${classifier} ci95 ${res.ci95}`);
    assert.ok(Math.abs(res.mean - 20) < 3 * res.ci95, `${classifier}: mean ${res.mean} ± ${res.ci95} is not chance (20 %)`);
  }
});

test('evaluateFewShot is reproducible from the seed, and the episodes do not depend on the classifier', () => {
  const f = clusters(10, 12, 6, 1.2, 8);
  const o = { ways: 5, shots: 1, queries: 4, episodes: 30 };
  const a = evaluateFewShot(f, { ...o, seed: 11 });
  assert.equal(evaluateFewShot(f, { ...o, seed: 11 }).accuracies, a.accuracies);
  assert.not.equal(evaluateFewShot(f, { ...o, seed: 12 }).accuracies, a.accuracies);
  // Same episodes whatever the classifier: a 0-epoch cosine classifier still sees the same queries.
  const lin = evaluateFewShot(f, { ...o, seed: 11, classifier: 'distLinear', epochs: 0, episodes: 30 });
  assert.equal(evaluateFewShot(f, { ...o, seed: 11, classifier: 'distLinear', epochs: 0 }).accuracies, lin.accuracies);
  const sampler = new EpisodeSampler(f.labels, o);
  const r1 = new Rng(11);
  const r2 = new Rng(11);
  for (let e = 0; e < 5; e++) {
    assert.equal(sampler.sample(r1), sampler.sample(r2));
    r1.fork();
    r2.fork();
  }
});

test('cosine classifier: weights equal a finite-difference float64 SGD reference (momentum, dampening, decay)', () => {
  const f = clusters(3, 4, 5, 0.8, 9);
  const ways = 3;
  const shots = 3;
  const support = Int32Array.from({ length: ways * shots }, (_, i) => 3 * (i % shots) + Math.floor(i / shots));
  const o = { epochs: 4, batchSize: 4, lr: 0.5, momentum: 0.9, dampening: 0.9, weightDecay: 0.001, scale: 2 };
  const got = trainDistLinear(f, support, ways, new Rng(13), o);
  const xs = Array.from(support, (r) => Array.from(f.data.subarray(r * f.dim, (r + 1) * f.dim)));
  const ys = Array.from(support, (_, i) => Math.floor(i / shots));
  const want = trainDistLinearRef(xs, ys, ways, new Rng(13), o);
  close(got.g, want.g, 1e-6, 'g');
  close(got.v, want.v, 1e-6, 'v');
  const init = trainDistLinear(f, support, ways, new Rng(13), { ...o, epochs: 0 });
  assert.ok(Math.max(...got.v.map((v, i) => Math.abs(v - init.v[i]))) > 1e-2, 'training moved the weights');
});

test('cosine classifier with the settings of docs/algorithm.md §8.3 learns noisy clusters better than the prototype is wrong', () => {
  const f = clusters(6, 20, 12, 0.6, 14);
  const sampler = new EpisodeSampler(f.labels, { ways: 5, shots: 5, queries: 10 });
  const rng = new Rng(15);
  const accs: number[] = [];
  const started = performance.now();
  for (let e = 0; e < 3; e++) {
    const ep = sampler.sample(rng);
    accs.push(episodeAccuracy(distLinearPredict(f, trainDistLinear(f, ep.support, 5, rng.fork()), ep.query), ep.queryWay));
  }
  const perEpisode = (performance.now() - started) / 3;
  assert.ok(meanConfidence(accs).mean >= 90, `cosine classifier accuracy ${accs}`);
  assert.ok(perEpisode < 2000, `${perEpisode.toFixed(0)} ms per 5-way 5-shot episode`);
});

test('logistic regression: weights equal a finite-difference float64 SGD reference; predictions are arg-max W·x + b', () => {
  const f = clusters(3, 4, 5, 0.8, 16);
  const ways = 3;
  const shots = 3;
  const support = Int32Array.from({ length: ways * shots }, (_, i) => 3 * (i % shots) + Math.floor(i / shots));
  const o = { epochs: 5, batchSize: 4, lr: 0.3, momentum: 0.9, dampening: 0.9, weightDecay: 0.001 };
  const got = trainLogistic(f, support, ways, new Rng(17), o);
  const xs = Array.from(support, (r) => Array.from(f.data.subarray(r * f.dim, (r + 1) * f.dim)));
  const ys = Array.from(support, (_, i) => Math.floor(i / shots));
  const want = trainLogisticRef(xs, ys, ways, new Rng(17), o);
  close(got.w, want.w, 1e-6, 'w');
  close(got.b, want.b, 1e-6, 'b');
  const init = trainLogistic(f, support, ways, new Rng(17), { ...o, epochs: 0 });
  assert.ok(Math.max(...got.w.map((v, i) => Math.abs(v - init.w[i]))) > 1e-2, 'training moved the weights');
  const query = Int32Array.from({ length: f.labels.length }, (_, i) => i);
  const pred = logisticPredict(f, got, query);
  query.forEach((q, i) => {
    const scores = Array.from({ length: ways }, (_, c) => xs[0].reduce((acc, _x, e) => acc + want.w[c * f.dim + e] * f.data[q * f.dim + e], want.b[c]));
    assert.is(pred[i], scores.indexOf(Math.max(...scores)), `query ${q}`);
  });
});

test('feature kinds: one extraction serves all, each kind is its columns, and every row sees the same episodes', () => {
  assert.equal(componentsFor(['cls', 'concat']), ['cls', 'weighted']);
  assert.equal(componentsFor(['mean', 'pooled']), ['weighted', 'mean']);
  assert.equal(featureComponents('concat'), ['cls', 'weighted']);
  const D = 3;
  const base = clusters(6, 8, 3 * D, 0.3, 18);
  const feats: ExtractedFeatures = {
    ...base,
    labels: Int32Array.from(base.labels),
    indices: Int32Array.from({ length: base.labels.length }, (_, i) => i),
    components: ['cls', 'weighted', 'mean'],
  };
  const cols = (f: FeatureSet, r: number) => Array.from(f.data.subarray(r * f.dim, (r + 1) * f.dim));
  const concat = selectFeatures(feats, 'concat');
  const mean = selectFeatures(feats, 'mean');
  assert.is(concat.dim, 2 * D);
  assert.is(mean.dim, D);
  for (let r = 0; r < feats.labels.length; r++) {
    assert.equal(cols(concat, r), cols(feats, r).slice(0, 2 * D));
    assert.equal(cols(mean, r), cols(feats, r).slice(2 * D));
  }
  assert.throws(() => selectFeatures({ ...feats, components: ['cls'], dim: 3 * D }, 'pooled'), /weighted/);
  const o = { ways: 4, shots: [1, 2], queries: 3, episodes: 12, seed: 19, features: ['mean', 'concat'] as const, classifiers: ['prototype', 'logistic'] as const };
  const rep = episodesReport(feats, o);
  assert.is(rep.rows.length, 8);
  assert.is(rep.featureDim, 3 * D);
  for (const row of rep.rows) {
    const f = selectFeatures(feats, row.features as FeatureKind);
    const want = evaluateFewShot(f, { ways: 4, shots: row.shots, queries: 3, episodes: 12, seed: 19, classifier: row.classifier });
    assert.is(row.mean, want.mean, `${row.features} ${row.classifier} ${row.shots}-shot`);
    assert.is(row.ci95, want.ci95);
    assert.is(row.featureDim, f.dim);
  }
});

test.run();
