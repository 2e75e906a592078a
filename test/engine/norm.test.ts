import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { layerNorm, l2Normalize } from '../../engine/ops/norm.js';
import { checkOp, close, finiteDiff, gpu, randArray, rng, type F64 } from '../helpers/check.js';
import * as ref from '../ref/norm.js';

const test = suite('norm');
test.before(gpu);

const ROW_LENGTHS = [1, 3, 17, 63, 65, 129, 385];
const numelOf = (s: number[]): number => s.reduce((a, b) => a * b, 1);

for (const d of ROW_LENGTHS) {
  test(`layerNorm with weight and bias, rows of ${d}`, async () => {
    const shape = ref.rowShape(rng(d), d);
    await checkOp({
      name: `layerNorm affine ${JSON.stringify(shape)}`,
      shapes: [shape, [d], [d]],
      gpu: ([x, w, b]) => layerNorm(x, w, b),
      ref: ([x, w, b]) => ref.layerNorm(x, d, w, b, 1e-5),
      // offset rows, so the mean does not happen to be near 0
      init: (k, n, r) => randArray(n, r, k === 0 ? 1 : -1.5, k === 0 ? 4 : 1.5),
      seed: d,
    });
  });

  test(`layerNorm without affine parameters, eps 1e-6, rows of ${d}`, async () => {
    const shape = ref.rowShape(rng(d + 100), d);
    await checkOp({
      name: `layerNorm plain ${JSON.stringify(shape)}`,
      shapes: [shape],
      gpu: ([x]) => layerNorm(x, null, null, 1e-6),
      ref: ([x]) => ref.layerNorm(x, d, null, null, 1e-6),
      seed: d + 100,
    });
  });
}

test('layerNorm of a residual stream: the gradient x already has from its skip is added in the backward kernel', async () => {
  // y = layerNorm(h, w, b) * c + h * 3 with h = x + 0 (a non-leaf used twice; the skip's use is later on the
  // tape, so its gradient is pending when layerNorm's rule runs), and the same without the fold for comparison.
  const [rows, d] = [37, 19];
  const c = randArray(rows * d, rng(5));
  const f64 = ([x, w, b]: F64[]): F64 => {
    const ln = ref.layerNorm(x, d, w, b, 1e-5);
    return ln.map((v, i) => v * c[i] + x[i] * 3);
  };
  await checkOp({
    name: 'layerNorm + skip',
    shapes: [[rows, d], [d], [d]],
    gpu: ([x, w, b]) => {
      const h = E.add(x, 0);
      return E.add(E.mul(layerNorm(h, w, b), E.fromArray(c, [rows, d])), E.mul(h, 3));
    },
    ref: f64,
    seed: 7,
  });
  // The fold saves the add: count the dispatches of a backward with and without a pending gradient.
  const count = (skip: boolean): number => {
    const x = E.randn([rows, d], 1);
    x.requiresGrad = true;
    const loss = E.tidy(() => {
      const h = E.add(x, 0);
      const y = layerNorm(h, null, null);
      return E.sum(skip ? E.add(y, E.mul(h, 3)) : E.add(y, E.mul(E.add(x, 0), 3)));
    });
    const before = E.rt().dispatchCount;
    E.backward(loss);
    const n = E.rt().dispatchCount - before;
    loss.dispose();
    x.grad?.dispose();
    x.dispose();
    return n;
  };
  // Same ops but for one tensor used twice: with the fold, no extra add.
  assert.is(count(true), count(false) - 1, 'a residual stream costs one dispatch less than two separate tensors');
});

test('layerNorm with weight only and with bias only', async () => {
  const shape = [4, 7, 19];
  await checkOp({
    name: 'layerNorm weight only',
    shapes: [shape, [19]],
    gpu: ([x, w]) => layerNorm(x, w),
    ref: ([x, w]) => ref.layerNorm(x, 19, w, null, 1e-5),
  });
  await checkOp({
    name: 'layerNorm bias only',
    shapes: [shape, [19]],
    gpu: ([x, b]) => layerNorm(x, null, b),
    ref: ([x, b]) => ref.layerNorm(x, 19, null, b, 1e-5),
  });
});

test('layerNorm is exact for rows with a large offset (no E[x^2] - E[x]^2 cancellation)', async () => {
  const d = 96;
  const r = rng(7);
  const x = Float64Array.from({ length: 5 * d }, () => Math.fround(1e4 + r()));
  const got = await layerNorm(E.fromArray(x, [5, d])).toArray();
  // f32 holds the mean only to ulp(1e4) = 1e-3 against deviations of ~0.3; the naive formula is off by ~100%.
  close(got, ref.layerNorm(x, d, null, null, 1e-5), 1e-2, 'layerNorm at offset 1e4');
});

test('analytic layerNorm gradients agree with finite differences (checks the reference)', () => {
  const r = rng(3);
  const d = 6;
  const [x, w, g] = [randArray(4 * d, r), randArray(d, r), randArray(4 * d, r)];
  const an = ref.layerNormBackward(x, g, d, w, 1e-5);
  const [fdx, fdw, fdb] = finiteDiff(([xx, ww, bb]) => ref.layerNorm(xx, d, ww, bb, 1e-5), [x, w, randArray(d, r)], g);
  close(an.dx, fdx, 1e-6, 'dx');
  close(an.dw, fdw, 1e-6, 'dw');
  close(an.db, fdb, 1e-6, 'db');
});

/** Forward and backward of layerNorm on `shape` against the analytic float64 reference. */
async function layerNormAgainstAnalytic(shape: number[], seed: number): Promise<void> {
  const d = shape[shape.length - 1];
  const n = numelOf(shape);
  const r = rng(seed);
  const [x, w, b, g] = [randArray(n, r), randArray(d, r), randArray(d, r), randArray(n, r)];
  const [tx, tw, tb] = [E.fromArray(x, shape), E.fromArray(w, [d]), E.fromArray(b, [d])];
  for (const t of [tx, tw, tb]) t.requiresGrad = true;
  const y = layerNorm(tx, tw, tb);
  close(await y.toArray(), ref.layerNorm(x, d, w, b, 1e-5), 1e-5, `layerNorm ${JSON.stringify(shape)} forward`);
  E.backward(y, E.fromArray(g, shape));
  const an = ref.layerNormBackward(x, g, d, w, 1e-5);
  close(await tx.grad!.toArray(), an.dx, 1e-4, 'dx');
  close(await tw.grad!.toArray(), an.dw, 1e-4, 'dweight');
  close(await tb.grad!.toArray(), an.db, 1e-4, 'dbias');
  for (const t of [tx, tw, tb, y]) {
    t.grad?.dispose();
    t.dispose();
  }
}

test('layerNorm over 1,000 rows of 385 (chunked dweight/dbias sums)', async () => {
  await layerNormAgainstAnalytic([1000, 385], 11);
});

test('layerNorm over 530,001 rows (a 2-D grid of workgroups)', async () => {
  await layerNormAgainstAnalytic([530001, 3], 12);
});

test('layerNorm on rows of 700, 1500 and 4096 (64, 128 and 256 threads a row)', async () => {
  await layerNormAgainstAnalytic([5, 700], 13);
  await layerNormAgainstAnalytic([3, 1500], 14);
  await layerNormAgainstAnalytic([3, 4096], 15);
});

test('layerNorm names both shapes when the weight does not fit', () => {
  const x = E.zeros([4, 5]);
  const w = E.ones([6]);
  assert.throws(
    () => layerNorm(x, w),
    (e: Error) => e.message.includes('[4, 5]') && e.message.includes('[6]') && e.message.includes('layerNorm'),
  );
  assert.throws(
    () => layerNorm(x, null, E.zeros([5, 1])),
    (e: Error) => e.message.includes('[4, 5]') && e.message.includes('[5, 1]'),
  );
});

for (const d of ROW_LENGTHS.filter((v) => v > 1)) {
  test(`l2Normalize along the last axis, rows of ${d}`, async () => {
    const shape = ref.rowShape(rng(d + 200), d);
    await checkOp({
      name: `l2Normalize ${JSON.stringify(shape)}`,
      shapes: [shape],
      gpu: ([x]) => l2Normalize(x),
      ref: ([x]) => ref.l2Normalize(x, shape, -1, 1e-12),
      seed: d + 200,
    });
  });
}

/** Values in [-1, 1), none within 1e-3 of ±eps (finite differences across the clamp are meaningless). */
function awayFrom(eps: number, scales: (i: number) => number): (k: number, n: number, r: () => number) => F64 {
  return (_k, n, r) =>
    Float64Array.from({ length: n }, (_, i) => {
      let v = 0;
      do v = (2 * r() - 1) * scales(i);
      while (Math.abs(Math.abs(v) - eps) < 1e-3);
      return v;
    });
}

test('l2Normalize below eps: divides by eps, gradient g / eps', async () => {
  // Rows of 1: |x| < 0.5 divides by eps; other rows are x / |x| with zero gradient.
  await checkOp({
    name: 'l2Normalize rows of 1, eps 0.5',
    shapes: [[23, 1]],
    gpu: ([x]) => l2Normalize(x, -1, 0.5),
    ref: ([x]) => ref.l2Normalize(x, [23, 1], -1, 0.5),
    init: awayFrom(0.5, () => 1),
  });
  // Rows of 4: every other row scaled down below eps.
  await checkOp({
    name: 'l2Normalize rows of 4, eps 0.3',
    shapes: [[10, 4]],
    gpu: ([x]) => l2Normalize(x, -1, 0.3),
    ref: ([x]) => ref.l2Normalize(x, [10, 4], -1, 0.3),
    init: (_k, n, r) => Float64Array.from({ length: n }, (_, i) => (2 * r() - 1) * (Math.floor(i / 4) % 2 ? 0.05 : 1.5)),
  });
});

for (const [shape, axis] of [
  [[5, 17, 3], 1],
  [[6, 4, 9], 0],
  [[3, 1, 65, 2], -2],
] as [number[], number][]) {
  test(`l2Normalize along axis ${axis} of ${JSON.stringify(shape)}`, async () => {
    await checkOp({
      name: `l2Normalize axis ${axis} ${JSON.stringify(shape)}`,
      shapes: [shape],
      gpu: ([x]) => l2Normalize(x, axis),
      ref: ([x]) => ref.l2Normalize(x, shape, axis, 1e-12),
    });
  });
}

test.run();
