import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { awkwardDim, checkOp, gpu, rng } from '../helpers/check.js';
import { reduceAxes } from '../ref/basic.js';

const test = suite('reduce');
test.before(gpu);

function randomCase(seed: number): { shape: number[]; axes: number[] } {
  const r = rng(seed);
  const rank = 1 + Math.floor(r() * 4);
  const shape = Array.from({ length: rank }, () => awkwardDim(r, rank > 2 ? 9 : 40));
  const axes = [...shape.keys()].filter(() => r() < 0.5);
  return { shape, axes: axes.length ? axes : [rank - 1] };
}

const ops = [
  { name: 'sum', op: E.sum, init: 0, f: (a: number, v: number) => a + v, post: (x: number) => x },
  { name: 'max', op: E.max, init: -Infinity, f: Math.max, post: (x: number) => x },
  { name: 'min', op: E.min, init: Infinity, f: Math.min, post: (x: number) => x },
];

for (const { name, op, init, f } of ops) {
  for (let seed = 1; seed <= 6; seed++) {
    const { shape, axes } = randomCase(seed * 13 + name.length);
    const keepdim = seed % 2 === 0;
    test(`${name} ${JSON.stringify(shape)} axes ${JSON.stringify(axes)} keepdim=${keepdim}`, async () => {
      await checkOp({
        name: `${name} ${JSON.stringify(shape)} over ${axes}`,
        shapes: [shape],
        gpu: ([x]) => op(x, axes, keepdim),
        ref: ([x]) => reduceAxes(x, shape, axes, init, f),
        seed,
      });
    });
  }
}

test('mean over all axes and over leading axes', async () => {
  const shape = [7, 5, 3];
  await checkOp({
    name: 'mean all',
    shapes: [shape],
    gpu: ([x]) => E.mean(x),
    ref: ([x]) => Float64Array.of(x.reduce((a, v) => a + v, 0) / x.length),
  });
  await checkOp({
    name: 'mean [0,1]',
    shapes: [shape],
    gpu: ([x]) => E.mean(x, [0, 1], true),
    ref: ([x]) => reduceAxes(x, shape, [0, 1], 0, (a, v) => a + v).map((v) => v / 35),
  });
});

test('max gradient is shared between ties', async () => {
  const x = E.fromArray([1, 3, 3, 2, 5, 5, 5, 0], [2, 4]);
  x.requiresGrad = true;
  const y = E.max(x, 1);
  E.backward(E.sum(y));
  const g = await x.grad!.toArray();
  const want = [0, 0.5, 0.5, 0, 1 / 3, 1 / 3, 1 / 3, 0];
  want.forEach((w, i) => {
    if (Math.abs(g[i] - w) > 1e-6) throw new Error(`max tie gradient ${Array.from(g)} vs ${want}`);
  });
});

test('large row and column reductions', async () => {
  const r = rng(3);
  const n = 300_001;
  const data = Float64Array.from({ length: n }, () => r());
  const s = await E.sum(E.fromArray(data, [n])).item();
  const ref = data.reduce((a, v) => a + Math.fround(v), 0);
  if (Math.abs(s - ref) / ref > 1e-5) throw new Error(`sum of ${n}: ${s} vs ${ref}`);
  const cols = await E.sum(E.fromArray(data.subarray(0, 3000 * 97), [3000, 97]), 0).toArray();
  const refCols = reduceAxes(data.subarray(0, 3000 * 97).map(Math.fround), [3000, 97], [0], 0, (a, v) => a + v);
  cols.forEach((c, i) => {
    if (Math.abs(c - refCols[i]) > 1e-3) throw new Error(`column ${i}: ${c} vs ${refCols[i]}`);
  });
});

test('sumTo undoes broadcasting', async () => {
  const g = E.fromArray(
    Array.from({ length: 24 }, (_, i) => i),
    [2, 3, 4],
  );
  const s = await E.sumTo(g, [3, 1]).toArray();
  // sum over axis 0 and 2 of i: rows j -> sum_{a,k} (12a + 4j + k)
  const want = [0, 1, 2].map((j) => [0, 1].reduce((acc, a) => acc + [0, 1, 2, 3].reduce((t, k) => t + 12 * a + 4 * j + k, 0), 0));
  if (s.join() !== want.join()) throw new Error(`sumTo ${Array.from(s)} vs ${want}`);
});

test.run();
