import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { linear, linearGelu, matmul, matmulTiles, useMatmulTiles } from '../../engine/ops/matmul.js';
import { launch } from '../../engine/ops/launch.js';
import { GPU_TILES, LAVAPIPE_TILES, matmulGroups, matmulKernel, matmulUniforms, type MatmulTiles } from '../../kernels/matmul.js';
import { fixedSubgroupSize } from '../../engine/tuning.js';
import { awkwardDim, checkOp, close, gpu, randArray, rng } from '../helpers/check.js';
import { numel } from '../../engine/shape.js';
import { linearRef, matmulGradRef, matmulRef } from '../ref/matmul.js';

const test = suite('matmul');
test.before(gpu);

const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];
const tag = (ta: boolean, tb: boolean): string => `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`;

/** Stored shape of an operand whose logical (op applied) matrix is rows x cols. */
const stored = (batch: number[], rows: number, cols: number, trans: boolean): number[] => [...batch, ...(trans ? [cols, rows] : [rows, cols])];

function matmulCase(name: string, sa: number[], sb: number[], ta: boolean, tb: boolean, seed: number): Promise<void> {
  return checkOp({
    name: `${name} ${JSON.stringify(sa)}${ta ? '^T' : ''} x ${JSON.stringify(sb)}${tb ? '^T' : ''}`,
    shapes: [sa, sb],
    gpu: ([a, b]) => matmul(a, b, { transA: ta, transB: tb }),
    ref: ([a, b]) => matmulRef(a, sa, b, sb, ta, tb).data,
    seed,
  });
}

for (const [ta, tb] of TRANSPOSES) {
  test(`matmul ${tag(ta, tb)}: random small shapes, gradients by finite differences`, async () => {
    for (let seed = 1; seed <= 3; seed++) {
      const r = rng(seed * 17 + (ta ? 2 : 0) + (tb ? 1 : 0));
      const [M, N, K] = [awkwardDim(r, 19), awkwardDim(r, 19), awkwardDim(r, 19)];
      const batch = seed === 3 ? [awkwardDim(r, 3)] : [];
      await matmulCase(tag(ta, tb), stored(batch, M, K, ta), stored(batch, K, N, tb), ta, tb, seed);
    }
  });

  test(`matmul ${tag(ta, tb)}: sizes around the tiles (1, 17, 63, 65, 70, and multiples of 4), gradients by the float64 reference`, async () => {
    const sizes: [number, number, number][] = [
      [1, 65, 17],
      [63, 1, 70],
      [65, 17, 1],
      [17, 70, 63],
      [70, 65, 63],
      // every axis a multiple of 4: the vec4 paths, over several tiles
      [68, 64, 72],
    ];
    for (const [M, N, K] of sizes) {
      const r = rng(M * 7 + N * 3 + K);
      const sa = stored([], M, K, ta);
      const sb = stored([], K, N, tb);
      const av = randArray(numel(sa), r);
      const bv = randArray(numel(sb), r);
      const gv = randArray(M * N, r);
      const a = E.fromArray(av, sa);
      const b = E.fromArray(bv, sb);
      a.requiresGrad = b.requiresGrad = true;
      const y = matmul(a, b, { transA: ta, transB: tb });
      const what = `${tag(ta, tb)} M=${M} N=${N} K=${K}`;
      close(await y.toArray(), matmulRef(av, sa, bv, sb, ta, tb).data, 1e-5, `${what} forward`);
      E.backward(y, E.fromArray(gv, [M, N]));
      const [da, db] = matmulGradRef(av, sa, bv, sb, gv, ta, tb);
      close(await a.grad!.toArray(), da, 1e-5, `${what} dA`);
      close(await b.grad!.toArray(), db, 1e-5, `${what} dB`);
      for (const t of [a, b, y, a.grad!, b.grad!]) t.dispose();
    }
  });
}

test('matmul broadcasts batch dimensions (and sums their gradients)', async () => {
  await matmulCase('[B,M,K] x [K,N]', [3, 5, 7], [7, 4], false, false, 1);
  await matmulCase('[B,M,K] x [N,K]^T', [3, 6, 5], [2, 5], false, true, 2);
  await matmulCase('[B,K,M]^T x [K,N]', [2, 5, 6], [5, 3], true, false, 3);
  await matmulCase('[1,M,K] x [B,K,N]', [1, 4, 6], [3, 6, 5], false, false, 4);
  await matmulCase('[M,K]^T x [B,N,K]^T', [6, 4], [3, 5, 6], true, true, 5);
  await matmulCase('[2,1,M,K] x [3,K,N]', [2, 1, 3, 4], [3, 4, 5], false, false, 6);
  await matmulCase('[2,3,M,K] x [1,3,K,N]', [2, 3, 3, 4], [1, 3, 4, 2], false, false, 7);
});

test('matmul with vectors, as torch.matmul', async () => {
  await matmulCase('vector-matrix', [6], [6, 5], false, false, 1);
  await matmulCase('matrix-vector', [4, 6], [6], false, false, 2);
  await matmulCase('batched matrix-vector', [3, 4, 6], [6], false, false, 3);
  await matmulCase('dot', [7], [7], false, false, 4);
  const y = matmul(E.zeros([2, 3, 4]), E.zeros([4]));
  assert.equal(y.shape, [2, 3]);
});

test('matmul of a tensor with itself accumulates both gradients (x @ x^T)', async () => {
  const s = [5, 7];
  await checkOp({
    name: 'x @ x^T',
    shapes: [s],
    gpu: ([x]) => matmul(x, x, { transB: true }),
    ref: ([x]) => matmulRef(x, s, x, s, false, true).data,
  });
});

test('linear with and without bias, any leading dims', async () => {
  const r = rng(11);
  for (const [xs, outF, bias] of [
    [[2, 5, 7], 6, true],
    [[9, 3], 4, false],
    [[5], 3, true],
  ] as [number[], number, boolean][]) {
    const inF = xs[xs.length - 1];
    const ws = [outF, inF];
    await checkOp({
      name: `linear x${JSON.stringify(xs)} w${JSON.stringify(ws)}${bias ? ' +bias' : ''}`,
      shapes: bias ? [xs, ws, [outF]] : [xs, ws],
      gpu: ([x, w, b]) => linear(x, w, b),
      ref: ([x, w, b]) => linearRef(x, xs, w, ws, b),
      seed: Math.floor(r() * 1000),
    });
  }
});

test('linear with a residual added in the kernel: forward and backward of every input', async () => {
  const r = rng(12);
  // out features 6 and 8: the epilogue's scalar and vec4 paths; with and without bias.
  for (const [xs, outF, bias] of [
    [[2, 5, 7], 6, true],
    [[37, 9], 8, false],
    [[3, 11], 8, true],
  ] as [number[], number, boolean][]) {
    const inF = xs[xs.length - 1];
    const ws = [outF, inF];
    const rs = [...xs.slice(0, -1), outF];
    await checkOp({
      name: `linear + residual x${JSON.stringify(xs)} w${JSON.stringify(ws)}${bias ? ' +bias' : ''}`,
      shapes: bias ? [xs, ws, [outF], rs] : [xs, ws, rs],
      gpu: (t) => (bias ? linear(t[0], t[1], t[2], t[3]) : linear(t[0], t[1], undefined, t[2])),
      ref: (t) => {
        const y = linearRef(t[0], xs, t[1], ws, bias ? t[2] : undefined);
        const res = t[bias ? 3 : 2];
        return y.map((v, i) => v + res[i]);
      },
      seed: Math.floor(r() * 1000),
    });
  }
});

test('linear with a residual keeps no memory after backward (the residual gradient is the output gradient, not a copy)', async () => {
  const w = E.randn([8, 6], 1);
  const b = E.randn([8], 2);
  const x0 = E.randn([3, 5, 6], 3);
  for (const t of [w, b, x0]) t.requiresGrad = true;
  const run = (): void => {
    const loss = E.tidy(() => {
      const x = E.add(x0, 1); // a non-leaf used twice: the product's input and the residual
      return E.sum(linear(E.mul(x, 2), w, b, E.narrow(E.concat([x, x], 2), 2, 0, 8)));
    });
    E.backward(loss);
    loss.dispose();
    for (const t of [w, b, x0]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  try {
    run();
    await E.rt().sync();
    const before = E.rt().poolStats().liveBytes;
    run();
    await E.rt().sync();
    assert.is(E.rt().poolStats().liveBytes - before, 0, 'live bytes after a second forward and backward');
  } finally {
    for (const t of [w, b, x0]) t.dispose();
  }
});

test('linearGelu: fused bias + exact GELU, forward and backward', async () => {
  const r = rng(12);
  for (const [xs, outF, bias] of [
    [[3, 4, 9], 5, true],
    [[7, 6], 3, false],
  ] as [number[], number, boolean][]) {
    const inF = xs[xs.length - 1];
    const ws = [outF, inF];
    await checkOp({
      name: `linearGelu x${JSON.stringify(xs)} w${JSON.stringify(ws)}${bias ? ' +bias' : ''}`,
      shapes: bias ? [xs, ws, [outF]] : [xs, ws],
      gpu: ([x, w, b]) => linearGelu(x, w, b),
      ref: ([x, w, b]) => linearRef(x, xs, w, ws, b, true),
      // pre-activations of a few units: the whole curved part of GELU
      init: (_k, n, rr) => randArray(n, rr, -1.5, 1.5),
      seed: Math.floor(r() * 1000),
    });
  }
  // Without autograd the kernel writes no pre-activation; the values must not change.
  const xs = [10, 66];
  const ws = [67, 66];
  const xv = randArray(numel(xs), r);
  const wv = randArray(numel(ws), r, -0.3, 0.3);
  const bv = randArray(67, r);
  const y = E.noGrad(() => linearGelu(E.fromArray(xv, xs), E.fromArray(wv, ws), E.fromArray(bv, [67])));
  close(await y.toArray(), linearRef(xv, xs, wv, ws, bv, true), 1e-5, 'linearGelu under noGrad');
});

test('a larger product matches the float64 reference ([2, 197, 64] x [64, 197], q @ k^T)', async () => {
  const r = rng(99);
  const cases: [number[], number[], boolean][] = [
    [[2, 197, 64], [64, 197], false],
    [[2, 197, 64], [2, 197, 64], true],
  ];
  for (const [sa, sb, tb] of cases) {
    const av = randArray(numel(sa), r);
    const bv = randArray(numel(sb), r);
    const y = matmul(E.fromArray(av, sa), E.fromArray(bv, sb), { transB: tb });
    const ref = matmulRef(av, sa, bv, sb, false, tb);
    assert.equal(y.shape, ref.shape);
    close(await y.toArray(), ref.data, 1e-5, `${JSON.stringify(sa)} x ${JSON.stringify(sb)}${tb ? '^T' : ''}`);
  }
});

test('an empty inner dimension gives zeros (plus the bias)', async () => {
  const y = matmul(E.zeros([3, 0]), E.zeros([0, 2]));
  assert.equal([...(await y.toArray())], [0, 0, 0, 0, 0, 0]);
  const z = linear(E.zeros([2, 0]), E.zeros([3, 0]), E.fromArray([1, 2, 3], [3]));
  assert.equal([...(await z.toArray())], [1, 2, 3, 1, 2, 3]);
});

test('the kernel with a 2-D grid of threads per workgroup (the GPU-style configuration)', async () => {
  // The op uses one row of threads (fast on lavapipe); a GPU would use several: same generator, ty != 0.
  const tiles = { tm: 16, tn: 16, tk: 8, rm: 8, rn: 4 };
  const r = rng(21);
  for (const [ta, tb, M, N, K] of [
    [false, false, 37, 21, 19],
    [true, true, 36, 20, 12],
    [true, false, 17, 24, 40],
  ] as [boolean, boolean, number, number, number][]) {
    const sa = stored([2], M, K, ta);
    const sb = stored([], K, N, tb);
    const av = randArray(numel(sa), r);
    const bv = randArray(numel(sb), r);
    const biasv = randArray(N, r);
    const out = E.empty([2, M, N], 'f32', 'test');
    const vec = { vecA: (ta ? M : K) % 4 === 0, vecB: (tb ? K : N) % 4 === 0, vecC: N % 4 === 0 };
    const kernel = matmulKernel({ transA: ta, transB: tb, bias: true, gelu: 'none', ...vec, tiles });
    const inputs = [E.fromArray(av, sa), E.fromArray(bv, sb), E.fromArray(biasv, [N])];
    launch(kernel, matmulUniforms(M, N, K, [2], [M * K], [0]), [out], inputs, matmulGroups('test', M, N, 2, tiles), 'test');
    const ref = matmulRef(av, sa, bv, sb, ta, tb).data.map((v, i) => v + biasv[i % N]);
    close(await out.toArray(), ref, 1e-5, `2-D tiles ${tag(ta, tb)} M=${M} N=${N} K=${K}`);
  }
});

test('every tile configuration (plain, subgroup broadcasts of 4-32 rows, staged) matches float64, all layouts, with bias and GELU, and the bias gradient from row sums', async () => {
  const sg = fixedSubgroupSize();
  const configs: [string, MatmulTiles][] = [
    ['lavapipe', LAVAPIPE_TILES],
    ['gpu', GPU_TILES],
    ...(sg ? [4, 8, 16, 32].map((rm): [string, MatmulTiles] => [`sg${sg} ${rm}x4`, { tm: rm, tn: sg * 4, tk: 0, rm, rn: 4, sg }]) : []),
  ];
  assert.ok(
    sg === undefined || matmulTiles().sg === sg || !E.rt().gpu.info.isSoftware || process.env.SMKD_HARDWARE_PATHS,
    'a software adapter with fixed subgroups uses the subgroup tiles',
  );
  const r = rng(33);
  try {
    for (const [name, tiles] of configs) {
      useMatmulTiles(tiles);
      for (const [ta, tb] of TRANSPOSES) {
        // Awkward sizes (partial tiles, no vec4) and multiples of 4 (vec4 paths), batched.
        for (const [M, N, K] of [
          [37, 21, 19],
          [68, 40, 36],
          [5, 3, 70],
        ] as [number, number, number][]) {
          const sa = stored([2], M, K, ta);
          const sb = stored([2], K, N, tb);
          const av = randArray(numel(sa), r);
          const bv = randArray(numel(sb), r);
          const y = matmul(E.fromArray(av, sa), E.fromArray(bv, sb), { transA: ta, transB: tb });
          close(await y.toArray(), matmulRef(av, sa, bv, sb, ta, tb).data, 1e-5, `${name} ${tag(ta, tb)} M=${M} N=${N} K=${K}`);
          y.dispose();
        }
      }
      // The fused epilogue through linearGelu ([rows, in] x [out, in]^T + bias, GELU).
      const [rows, inF, outF] = [43, 36, 24];
      const xv = randArray(rows * inF, r);
      const wv = randArray(outF * inF, r);
      const bv = randArray(outF, r);
      const y = linearGelu(E.fromArray(xv, [rows, inF]), E.fromArray(wv, [outF, inF]), E.fromArray(bv, [outF]));
      close(await y.toArray(), linearRef(xv, [rows, inF], wv, [outF, inF], bv, true), 1e-5, `${name} linearGelu`);
      y.dispose();
      // Backward: the bias gradient comes from the dweight product's row sums (rowSums) with tiles of up to
      // 16 rows, from a column-sum dispatch with 32 (engine/ops/matmul.ts): both against float64.
      const wt = E.fromArray(wv, [outF, inF]);
      const bt = E.fromArray(bv, [outF]);
      wt.requiresGrad = true;
      bt.requiresGrad = true;
      const gv = randArray(rows * outF, r);
      E.backward(linear(E.fromArray(xv, [rows, inF]), wt, bt), E.fromArray(gv, [rows, outF]));
      const dbRef = new Float64Array(outF);
      const dwRef = new Float64Array(outF * inF);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < outF; j++) {
          dbRef[j] += gv[i * outF + j];
          for (let k = 0; k < inF; k++) dwRef[j * inF + k] += gv[i * outF + j] * xv[i * inF + k];
        }
      }
      close(await bt.grad!.toArray(), dbRef, 1e-5, `${name} linear dbias`);
      close(await wt.grad!.toArray(), dwRef, 1e-5, `${name} linear dweight`);
    }
  } finally {
    useMatmulTiles(undefined);
  }
});

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
}

test('shape errors name both shapes', async () => {
  assert.is(
    message(() => matmul(E.zeros([2, 3]), E.zeros([4, 5]))),
    'matmul: inner dimensions differ, [2, 3] x [4, 5]',
  );
  assert.is(
    message(() => matmul(E.zeros([2, 3]), E.zeros([4, 5]), { transB: true })),
    'matmul: inner dimensions differ, [2, 3] x [4, 5]^T',
  );
  assert.is(
    message(() => matmul(E.zeros([3]), E.zeros([4, 5]))),
    'matmul: inner dimensions differ, [3] x [4, 5]',
  );
  const batch = message(() => matmul(E.zeros([2, 3, 4]), E.zeros([5, 4, 6])));
  assert.ok(batch.includes('[2, 3, 4]') && batch.includes('[5, 4, 6]'), batch);
  const lin = message(() => linear(E.zeros([2, 3]), E.zeros([4, 5])));
  assert.ok(lin.startsWith('linear:') && lin.includes('[2, 3]') && lin.includes('[4, 5]'), lin);
  const big = message(() => matmul(E.zeros([70000, 1, 1]), E.zeros([1, 1])));
  assert.ok(big.includes('70000') && big.includes('65535'), big);
});

test.run();
