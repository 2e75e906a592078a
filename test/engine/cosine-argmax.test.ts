import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { cosineArgmax, MATMUL_PATH_WORK } from '../../engine/ops/cosine-argmax.js';
import { gpu, randArray, randInt, rng } from '../helpers/check.js';
import { cosineArgmaxRef } from '../ref/distill.js';

const test = suite('cosine argmax');
test.before(gpu);

/** Float32-representable values, so the float64 reference sees exactly what the GPU sees. */
function f32Values(n: number, r: () => number): Float64Array {
  return Float64Array.from(randArray(n, r), Math.fround);
}

/** Exact match except where the float64 best and runner-up are closer than float32 can tell apart. */
async function expectMatches(a: Float64Array, b: Float64Array, G: number, N: number, M: number, D: number, what: string): Promise<void> {
  const got = await cosineArgmax(E.fromArray(a, [G, N, D]), E.fromArray(b, [G, M, D])).toArray();
  const ref = cosineArgmaxRef(a, b, G, N, M, D);
  let skipped = 0;
  for (let i = 0; i < G * N; i++) {
    if (ref.margin[i] < 1e-5) {
      skipped++;
      continue;
    }
    if (got[i] !== ref.index[i]) assert.unreachable(`${what}: row ${i} matched ${got[i]}, expected ${ref.index[i]} (margin ${ref.margin[i]})`);
  }
  assert.ok(skipped <= Math.max(1, (G * N) / 50), `${what}: ${skipped} of ${G * N} rows were near-ties, the test data says little`);
}

const SIZES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [1, 7, 1, 3],
  [2, 1, 9, 17],
  [3, 65, 63, 100],
  [2, 130, 71, 33],
  [1, 196, 196, 384],
  [2, 37, 200, 768],
];

for (const [G, N, M, D] of SIZES) {
  test(`random G=${G} N=${N} M=${M} D=${D} against the float64 brute force`, async () => {
    const r = rng(G * 1000 + N * 7 + M + D);
    await expectMatches(f32Values(G * N * D, r), f32Values(G * M * D, r), G, N, M, D, `G=${G} N=${N} M=${M} D=${D}`);
  });
}

// The second shape is past MATMUL_PATH_WORK: scores from the matmul kernel, then a row argmax.
for (const [G, N, M, D] of [
  [2, 41, 140, 19],
  [1, 60, 180, 400],
])
  test(`exact ties (duplicate rows, in one tile and across tiles) resolve to the lowest index, G=${G} N=${N} M=${M} D=${D}`, async () => {
    assert.ok(N * M * D >= MATMUL_PATH_WORK === (D === 400), 'the shapes cover both paths');
    const r = rng(11);
    const b = f32Values(G * M * D, r);
    const a = new Float64Array(G * N * D);
    const expected = new Int32Array(G * N);
    for (let g = 0; g < G; g++) {
      // disjoint (lower, higher) index pairs from a shuffled 0..M-1; the higher row becomes a copy of the lower
      const perm = Array.from({ length: M }, (_, i) => i);
      for (let i = M - 1; i > 0; i--) {
        const j = randInt(r, 0, i);
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      const pairs: [number, number][] = [];
      for (let k = 0; k + 1 < M; k += 2) pairs.push([Math.min(perm[k], perm[k + 1]), Math.max(perm[k], perm[k + 1])]);
      for (const [lo, hi] of pairs) b.copyWithin((g * M + hi) * D, (g * M + lo) * D, (g * M + lo + 1) * D);
      for (let n = 0; n < N; n++) {
        // a is a positive multiple of a duplicated row: cosine 1 with both copies
        const [lo] = pairs[randInt(r, 0, pairs.length - 1)];
        const scale = 0.5 + 2 * r();
        for (let d = 0; d < D; d++) a[(g * N + n) * D + d] = Math.fround(b[(g * M + lo) * D + d] * scale);
        expected[g * N + n] = lo;
      }
    }
    const got = await cosineArgmax(E.fromArray(a, [G, N, D]), E.fromArray(b, [G, M, D])).toArray();
    assert.equal(Array.from(got), Array.from(expected));
    assert.equal(Array.from(cosineArgmaxRef(a, b, G, N, M, D).index), Array.from(expected), 'reference');
  });

for (const D of [7, 10000])
  test(`all rows of b equal: index 0 for every row of a, D=${D}`, async () => {
    const r = rng(12);
    const [N, M] = [5, 90];
    const row = f32Values(D, r);
    const b = Float64Array.from({ length: M * D }, (_, i) => row[i % D]);
    const got = await cosineArgmax(E.fromArray(f32Values(N * D, r), [N, D]), E.fromArray(b, [M, D])).toArray();
    assert.equal(Array.from(got), new Array(N).fill(0));
  });

test('zero vectors have cosine 0', async () => {
  const D = 6;
  const u = [1, -2, 0.5, 3, 0, -1];
  const neg = u.map((x) => -x);
  const zero = new Array(D).fill(0);
  const other = [0.3, 0.1, -0.2, 0.4, 1, 0.2];
  // a rows: u (only negative cosines and one zero row to choose from), a zero vector, and `other`
  const a = [...u, ...zero, ...other];
  // b rows: -u (cos -1), -u slightly bent (cos ~ -1), zero (cos 0), -u again
  const b = [...neg, ...neg.map((x, i) => x + (i === 4 ? 0.3 : 0)), ...zero, ...neg];
  const got = await cosineArgmax(E.fromArray(a, [3, D]), E.fromArray(b, [4, D])).toArray();
  const ref = cosineArgmaxRef(a, b, 1, 3, 4, D);
  assert.is(got[0], 2, 'the zero row of b (cosine 0) beats negative cosines');
  assert.is(got[1], 0, 'a zero row of a has cosine 0 with everything: lowest index');
  assert.equal(Array.from(got), Array.from(ref.index));
});

test('neither path records on the autograd tape, even for inputs that require gradients', async () => {
  const r = rng(13);
  for (const [N, M, D] of [
    [9, 11, 5],
    [60, 180, 400],
  ]) {
    const a = E.fromArray(f32Values(N * D, r), [N, D]);
    const b = E.fromArray(f32Values(M * D, r), [M, D]);
    a.requiresGrad = true;
    b.requiresGrad = true;
    const before = E.tapeLength();
    const idx = cosineArgmax(a, b);
    assert.is(E.tapeLength(), before, `N=${N} M=${M} D=${D}: tape grew`);
    assert.is((await idx.toArray()).length, N);
    for (const t of [a, b, idx]) t.dispose();
  }
});

test('errors name the op and the shapes', () => {
  let msg = '';
  try {
    cosineArgmax(E.zeros([2, 5, 8]), E.zeros([3, 5, 8]));
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.ok(msg.includes('cosineArgmax') && msg.includes('[2, 5, 8]') && msg.includes('[3, 5, 8]'), msg);
});

test.run();
