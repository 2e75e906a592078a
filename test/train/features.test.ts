// Few-shot features beyond the reference code's (docs/algorithm.md §8.1): every patch token flattened ('patches') and [cls] with them
// ('tokens'), against float64 normalisation of the backbone's own tokens; components of unequal widths
// selected from one extraction; and the raw-pixel baseline against the evaluation transform itself.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fromArray, noGrad } from '../../engine/index.js';
import { Rng } from '../../engine/rng.js';
import { vitConfig } from '../../model/configs.js';
import { fewShotFeatures } from '../../model/features.js';
import { VisionTransformer } from '../../model/vit.js';
import { evalTransform, InMemoryDataset, NORMALIZATION, type RgbImage } from '../../train/data/index.js';
import { evaluatePixels } from '../../train/evaluate.js';
import { batchFeatures, extractFeatures, pixelFeatures, selectFeatures, shiftImages } from '../../train/features.js';
import { evaluateFewShot } from '../../train/fewshot.js';
import { close, gpu } from '../helpers/check.js';

const test = suite('features');
test.before(gpu);

function unit(v: ArrayLike<number>): Float64Array {
  let ss = 0;
  for (let i = 0; i < v.length; i++) ss += v[i] * v[i];
  const n = Math.max(Math.sqrt(ss), 1e-12);
  return Float64Array.from(v, (x) => x / n);
}

function dataset(n: number, classes: number, size: number, seed: number): InMemoryDataset {
  const rng = new Rng(seed);
  const images: RgbImage[] = Array.from({ length: n }, () => ({ width: size, height: size, data: Uint8Array.from({ length: size * size * 3 }, () => rng.int(0, 255)) }));
  return new InMemoryDataset(
    'random',
    Array.from({ length: classes }, (_, c) => `c${c}`),
    images,
    Int32Array.from({ length: n }, (_, i) => i % classes),
  );
}

test("'patches' and 'tokens': the patch tokens flattened in raster order and [cls], each L2-normalised (grid 3x3, D 24)", async () => {
  const vit = new VisionTransformer(vitConfig('tiny', { imgSize: 21, patchSize: 7, embedDim: 24, depth: 1, numHeads: 2 })).build({ seed: 3 });
  const rng = new Rng(4);
  const x = Float32Array.from({ length: 5 * 3 * 21 * 21 }, () => rng.uniform(-1, 1));
  const out = noGrad(() => vit.forward(fromArray(x, [5, 3, 21, 21])));
  const f = noGrad(() => fewShotFeatures(out, ['cls', 'patches']));
  const tokens = await out.tokens.toArray();
  const feats = await f.toArray();
  out.tokens.dispose();
  f.dispose();
  const T = 10;
  const D = 24;
  const want = new Float64Array(5 * T * D);
  for (let b = 0; b < 5; b++) {
    want.set(unit(tokens.subarray(b * T * D, b * T * D + D)), b * T * D);
    want.set(unit(tokens.subarray(b * T * D + D, (b + 1) * T * D)), b * T * D + D);
  }
  close(feats, want, 1e-5, 'tokens features');
  vit.dispose();
});

test('one extraction of [cls], pooled and patches serves every kind, with the columns of each (unequal widths)', async () => {
  const vit = new VisionTransformer(vitConfig('tiny', { imgSize: 14, patchSize: 7, embedDim: 12, depth: 1, numHeads: 3 })).build({ seed: 5 });
  const ds = dataset(9, 3, 14, 6);
  const opts = { size: 14, normalize: NORMALIZATION.imagenet, resizeRatio: 1, batchSize: 4 };
  const all = await extractFeatures(vit, ds, { ...opts, components: ['cls', 'weighted', 'patches'] });
  assert.equal(all.widths, [12, 12, 48]);
  for (const [kind, components] of [
    ['tokens', ['cls', 'patches']],
    ['patches', ['patches']],
    ['pooled', ['weighted']],
  ] as const) {
    const direct = await extractFeatures(vit, ds, { ...opts, components: [...components] });
    const picked = selectFeatures(all, kind);
    assert.is(picked.dim, direct.dim, kind);
    close(picked.data, direct.data, 1e-6, kind);
  }
  vit.dispose();
});

test('raw pixels: each image through the evaluation transform, flattened, L2-normalised; the report scores them on the seeded episodes', async () => {
  const ds = dataset(24, 4, 17, 7);
  const norm = { mean: [0.2, 0.3, 0.4], std: [0.5, 0.6, 0.7] } as const;
  const f = await pixelFeatures(ds, { size: 15, normalize: norm, resizeRatio: 17 / 15, batchSize: 5 });
  assert.is(f.dim, 3 * 15 * 15);
  for (let i = 0; i < ds.size; i++) {
    const x = new Float32Array(f.dim);
    evalTransform(await ds.load(i), 15, norm, x, 0, 17 / 15);
    close(f.data.subarray(i * f.dim, (i + 1) * f.dim), unit(x), 1e-6, `image ${i}`);
    assert.is(f.labels[i], ds.label(i));
  }
  const rep = await evaluatePixels(ds, { size: 15, normalize: norm, resizeRatio: 17 / 15, ways: 3, shots: [1, 2], queries: 2, episodes: 20, seed: 8 });
  assert.equal(
    rep.rows.map((r) => [r.features, r.shots]),
    [
      ['pixels', 1],
      ['pixels', 2],
    ],
  );
  for (const r of rep.rows) assert.is(r.mean, evaluateFewShot(f, { ways: 3, shots: r.shots, queries: 2, episodes: 20, seed: 8, classifier: 'prototype' }).mean);
});

test('shiftImages moves each plane by (dx, dy) and fills from its top-left pixel (odd size, both signs)', () => {
  const size = 5;
  const rng = new Rng(11);
  const x = Float32Array.from({ length: 2 * 3 * size * size }, () => rng.uniform(-1, 1));
  for (const [dx, dy] of [
    [2, -1],
    [-3, 4],
    [0, 0],
    [6, 0],
  ] as const) {
    const y = shiftImages(x, 2, size, dx, dy);
    for (let p = 0; p < 6; p++)
      for (let r = 0; r < size; r++)
        for (let c = 0; c < size; c++) {
          const sr = r - dy;
          const sc = c - dx;
          const want = sr >= 0 && sr < size && sc >= 0 && sc < size ? x[p * 25 + sr * 5 + sc] : x[p * 25];
          assert.is(y[p * 25 + r * 5 + c], want, `shift ${dx},${dy} plane ${p} (${r}, ${c})`);
        }
  }
});

test("test-time shifts: the feature is the mean of the shifted copies' features, each component renormalised (float64 reference)", async () => {
  const vit = new VisionTransformer(vitConfig('tiny', { imgSize: 14, patchSize: 7, embedDim: 12, depth: 1, numHeads: 3 })).build({ seed: 9 });
  const ds = dataset(7, 3, 14, 10);
  const opts = { size: 14, normalize: NORMALIZATION.imagenet, resizeRatio: 1, batchSize: 3, components: ['cls', 'patches'] as const };
  const shifts = [
    [0, 0],
    [2, 1],
    [-1, -3],
  ] as const;
  const got = await extractFeatures(vit, ds, { ...opts, components: [...opts.components], shifts });
  const widths = [12, 48];
  for (let i = 0; i < ds.size; i++) {
    const x = new Float32Array(3 * 14 * 14);
    evalTransform(await ds.load(i), 14, NORMALIZATION.imagenet, x, 0, 1);
    const sum = new Float64Array(60);
    for (const [dx, dy] of shifts) {
      const f = await batchFeatures(vit, shiftImages(x, 1, 14, dx, dy), 1, 14, opts.components);
      f.data.forEach((v, k) => (sum[k] += v));
    }
    const want = new Float64Array(60);
    want.set(unit(sum.subarray(0, widths[0])), 0);
    want.set(unit(sum.subarray(widths[0])), widths[0]);
    close(got.data.subarray(i * 60, (i + 1) * 60), want, 1e-5, `image ${i}`);
  }
  const plain = await extractFeatures(vit, ds, { ...opts, components: [...opts.components] });
  let diff = 0;
  for (let k = 0; k < plain.data.length; k++) diff = Math.max(diff, Math.abs(plain.data[k] - got.data[k]));
  assert.ok(diff > 1e-3, `shifted features differ from the plain ones (max diff ${diff})`);
  vit.dispose();
});

test.run();
