import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { awkwardDim, checkOp, gpu, rng, type F64 } from '../helpers/check.js';
import { erf, gelu, zipBroadcast } from '../ref/basic.js';

const test = suite('elementwise');
test.before(gpu);

/** A random shape pair that broadcasts: some axes of b are 1 or missing. */
function broadcastPair(seed: number): [number[], number[]] {
  const r = rng(seed);
  const rank = 1 + Math.floor(r() * 4);
  const a = Array.from({ length: rank }, () => awkwardDim(r, 9));
  let b = a.map((d) => (r() < 0.35 ? 1 : d));
  if (r() < 0.3) b = b.slice(Math.floor(r() * rank));
  return r() < 0.5 ? [a, b] : [b, a];
}

const binary: [string, (a: E.Tensor, b: E.Tensor) => E.Tensor, (a: number, b: number) => number][] = [
  ['add', E.add, (a, b) => a + b],
  ['sub', E.sub, (a, b) => a - b],
  ['mul', E.mul, (a, b) => a * b],
  ['div', E.div, (a, b) => a / b],
  ['maximum', E.maximum, Math.max],
  ['minimum', E.minimum, Math.min],
];

for (const [name, op, f] of binary) {
  for (let seed = 1; seed <= 4; seed++) {
    test(`${name} broadcast #${seed}`, async () => {
      const [sa, sb] = broadcastPair(seed * 31 + name.length);
      await checkOp({
        name: `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`,
        shapes: [sa, sb],
        gpu: ([a, b]) => op(a, b),
        ref: ([a, b]) =>
          zipBroadcast(
            [
              { data: a, shape: sa },
              { data: b, shape: sb },
            ],
            f,
          ).data,
        // keep divisors away from 0 and maximum/minimum away from ties
        init: (k, n, r) => Float64Array.from({ length: n }, () => (name === 'div' && k === 1 ? (r() < 0.5 ? -1 : 1) * (0.5 + r()) : 2 * r() - 1)),
        seed,
      });
    });
  }
}

const unary: [string, (x: E.Tensor) => E.Tensor, (x: number) => number, [number, number]?][] = [
  ['neg', E.neg, (x) => -x],
  ['exp', E.exp, Math.exp, [-3, 3]],
  ['log', E.log, Math.log, [0.2, 4]],
  ['sqrt', E.sqrt, Math.sqrt, [0.2, 4]],
  ['rsqrt', E.rsqrt, (x) => 1 / Math.sqrt(x), [0.2, 4]],
  ['tanh', E.tanh, Math.tanh, [-3, 3]],
  ['gelu', E.gelu, gelu, [-4, 4]],
  ['sigmoid', E.sigmoid, (x) => 1 / (1 + Math.exp(-x)), [-4, 4]],
  ['pow 3', (x) => E.pow(x, 3), (x) => x ** 3, [-2, 2]],
  ['pow -1.5', (x) => E.pow(x, -1.5), (x) => x ** -1.5, [0.3, 3]],
  ['pow 0.5', (x) => E.pow(x, 0.5), Math.sqrt, [0.3, 3]],
  ['clamp', (x) => E.clamp(x, -0.3, 0.5), (x) => Math.min(0.5, Math.max(-0.3, x))],
  ['add scalar', (x) => E.add(x, 2.5), (x) => x + 2.5],
  ['rsub scalar', (x) => E.sub(1, x), (x) => 1 - x],
  ['div scalar', (x) => E.div(x, 4), (x) => x / 4],
  ['abs', E.abs, Math.abs],
  ['sin', E.sin, Math.sin, [-7, 7]],
  ['cos', E.cos, Math.cos, [-7, 7]],
];

for (const [name, op, f, range] of unary) {
  test(`${name}`, async () => {
    const r = rng(name.length * 7);
    const shape = [awkwardDim(r, 50), awkwardDim(r, 13)];
    const [lo, hi] = range ?? [-2, 2];
    await checkOp({
      name,
      shapes: [shape],
      gpu: ([x]) => op(x),
      ref: ([x]) => x.map(f),
      // keep clamp/abs inputs away from their kinks, where finite differences are meaningless
      init: (_k, n, rr) =>
        Float64Array.from({ length: n }, () => {
          let v = lo + (hi - lo) * rr();
          while (Math.abs(v - 0.5) < 1e-3 || Math.abs(v + 0.3) < 1e-3 || Math.abs(v) < 1e-3) v = lo + (hi - lo) * rr();
          return v;
        }),
      fwdTol: name === 'gelu' ? 2e-6 : 1e-5,
    });
  });
}

test('gelu matches exact erf GELU to 1e-6 absolute over a wide range', async () => {
  const xs = Float64Array.from({ length: 2001 }, (_, i) => -10 + i * 0.01);
  const got = await E.gelu(E.fromArray(xs, [xs.length])).toArray();
  let worst = 0;
  xs.forEach((x, i) => (worst = Math.max(worst, Math.abs(got[i] - gelu(Math.fround(x))))));
  if (worst > 1e-6) throw new Error(`gelu max abs error ${worst}`);
  if (Math.abs(erf(0.5) - 0.5204998778130465) > 1e-15) throw new Error('reference erf is wrong');
});

test('where and maskedFill', async () => {
  const r = rng(5);
  const sc = [3, 1, 5];
  const sa = [3, 4, 5];
  const cond = Float64Array.from({ length: 15 }, () => (r() < 0.5 ? 1 : 0));
  await checkOp({
    name: 'where',
    shapes: [sa, [4, 1]],
    gpu: ([a, b]) => E.where(E.fromArray(cond, sc), a, b),
    ref: ([a, b]) =>
      zipBroadcast(
        [
          { data: cond, shape: sc },
          { data: a, shape: sa },
          { data: b, shape: [4, 1] },
        ],
        (c, x, y) => (c ? x : y),
      ).data,
  });
  await checkOp({
    name: 'maskedFill',
    shapes: [sa],
    gpu: ([a]) => E.maskedFill(a, E.fromArray(cond, sc), -7),
    ref: ([a]) =>
      zipBroadcast(
        [
          { data: cond, shape: sc },
          { data: a, shape: sa },
        ],
        (c, x) => (c ? -7 : x),
      ).data,
  });
});

test('comparisons and casts', async () => {
  const a = E.fromArray([1, 2, 3, 4], [4]);
  const b = E.fromArray([2, 2, 2, 2], [4]);
  const eq = await E.compare('eq', a, b).toArray();
  const gt = await E.compare('gt', a, b).toArray();
  if (eq.join() !== '0,1,0,0' || gt.join() !== '0,0,1,1') throw new Error(`compare: ${eq} ${gt}`);
  const ints = await E.cast(E.fromArray([-2.7, 0.5, 3.9], [3]), 'i32').toArray();
  if (ints.join() !== '-2,0,3') throw new Error(`cast to i32: ${ints}`);
  const labels = E.fromArray([3, 1, 3], [3], 'i32');
  const same = await E.compare('eq', E.reshape(labels, [3, 1]), E.reshape(labels, [1, 3])).toArray();
  if (same.join() !== '1,0,1,0,1,0,1,0,1') throw new Error(`label equality: ${same}`);
});

test('a shape mismatch names both shapes', async () => {
  const a = E.zeros([2, 3]);
  const b = E.zeros([4, 3]);
  let msg = '';
  try {
    E.add(a, b);
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg.includes('[2, 3]') || !msg.includes('[4, 3]')) throw new Error(`message does not name both shapes: "${msg}"`);
});

export type { F64 };
test.run();
