import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { softCrossEntropy, softCrossEntropyPairs, updateCenter, useSerialSoftCrossEntropy } from '../../engine/ops/soft-cross-entropy.js';
import { awkwardDim, checkOp, close, gpu, randArray, randInt, rng, type F64 } from '../helpers/check.js';
import { softCrossEntropyGradRef, softCrossEntropyPairsGradRef, softCrossEntropyPairsRef, softCrossEntropyRef, updateCenterRef } from '../ref/distill.js';

const test = suite('soft cross-entropy');
test.before(gpu);

/** Float32-representable values in [lo, hi), so the float64 reference sees exactly what the GPU sees. */
function f32Values(n: number, r: () => number, lo: number, hi: number): F64 {
  return Float64Array.from(randArray(n, r, lo, hi), Math.fround);
}

const TEMPS: [number, number][] = [
  [0.1, 0.04],
  [0.04, 0.1],
  [0.01, 0.01],
];

// Row-wise: C in 1, 7, 65, 300, N in 1..20, each temperature pair, with and without a centre.
const CLASSES = [1, 7, 65, 300];
for (const C of CLASSES) {
  TEMPS.forEach(([studentTemp, teacherTemp], k) => {
    const centered = k !== 1;
    test(`rows C=${C} Ts=${studentTemp} Tt=${teacherTemp}${centered ? ' centred' : ''}`, async () => {
      const r = rng(C * 13 + k);
      const N = C === 300 ? randInt(r, 1, 6) : randInt(r, 1, 20);
      // Logits of a head are O(1); at 0.01 the softmaxes are almost one-hot.
      const scale = studentTemp === 0.01 ? 1 : 3;
      await checkOp({
        name: `softCrossEntropy N=${N} C=${C} Ts=${studentTemp} Tt=${teacherTemp}`,
        shapes: centered
          ? [[N, C], [N, C], [C]]
          : [
              [N, C],
              [N, C],
            ],
        gpu: ([s, t, c]) => softCrossEntropy(s, t, { studentTemp, teacherTemp, center: c }),
        ref: ([s, t, c]) => softCrossEntropyRef(s, t, C, { studentTemp, teacherTemp, center: c }),
        init: (i, n, rr) => f32Values(n, rr, i === 2 ? -0.5 : -scale, i === 2 ? 0.5 : scale),
        grad: centered ? [true, false, false] : [true, false],
        seed: C + k,
      });
    });
  });
}

test('rows with large logits at temperature 0.01 (|s / T| up to 3000)', async () => {
  for (const C of [7, 65]) {
    const N = 5;
    const o = { studentTemp: 0.01, teacherTemp: 0.01 };
    await checkOp({
      name: `large logits C=${C}`,
      shapes: [
        [N, C],
        [N, C],
      ],
      gpu: ([s, t]) => softCrossEntropy(s, t, o),
      ref: ([s, t]) => softCrossEntropyRef(s, t, C, o),
      init: (_i, n, r) => f32Values(n, r, -30, 30),
      grad: [true, false],
      seed: C,
    });
  }
});

test('rows: teacher equal to the student gives the entropy, and its gradient is zero', async () => {
  const r = rng(3);
  const C = 37;
  const x = f32Values(4 * C, r, -2, 2);
  const s = E.fromArray(x, [4, C]);
  s.requiresGrad = true;
  const loss = softCrossEntropy(s, E.fromArray(x, [4, C]), { studentTemp: 0.1, teacherTemp: 0.1 });
  close(await loss.toArray(), softCrossEntropyRef(x, x, C, { studentTemp: 0.1, teacherTemp: 0.1 }), 1e-5, 'entropy');
  E.backward(E.sum(loss));
  const g = await s.grad!.toArray();
  assert.ok(Math.max(...g.map(Math.abs)) < 1e-5, 'gradient of H(P, P) w.r.t. the student logits is not ~0');
});

test('rows: per-row weight (gradient to student and weight), leading axes [B, Np, C]', async () => {
  const [B, Np, C] = [3, 5, 29];
  const o = { studentTemp: 0.1, teacherTemp: 0.045 };
  await checkOp({
    name: 'weighted softCrossEntropy',
    shapes: [[B, Np, C], [B, Np, C], [C], [B, Np]],
    gpu: ([s, t, c, w]) => softCrossEntropy(s, t, { ...o, center: c, weight: w }),
    ref: ([s, t, c, w]) => softCrossEntropyRef(s, t, C, { ...o, center: c, weight: w }),
    // weights 0/1 like a MIM mask, and fractional ones like attention weights
    init: (i, n, r) => (i === 3 ? Float64Array.from({ length: n }, (_, k) => (k % 4 === 0 ? 0 : k % 4 === 1 ? 1 : Math.fround(r()))) : f32Values(n, r, -1, 1)),
    grad: [true, false, false, true],
    seed: 9,
  });
});

test('rows: teacher rows picked by teacherIndex', async () => {
  for (const [N, Nt, C] of [
    [11, 4, 65],
    [1, 1, 7],
    [17, 23, 130],
  ]) {
    const r = rng(N * Nt);
    const index = Int32Array.from({ length: N }, () => randInt(r, 0, Nt - 1));
    const o = { studentTemp: 0.1, teacherTemp: 0.04 };
    await checkOp({
      name: `indexed softCrossEntropy N=${N} Nt=${Nt} C=${C}`,
      shapes: [[N, C], [Nt, C], [C], [N]],
      gpu: ([s, t, c, w]) => softCrossEntropy(s, t, { ...o, center: c, weight: w, teacherIndex: E.fromArray(index, [N], 'i32') }),
      ref: ([s, t, c, w]) => softCrossEntropyRef(s, t, C, { ...o, center: c, weight: w, teacherIndex: index }),
      init: (i, n, rr) => f32Values(n, rr, i === 3 ? 0 : -1, 1),
      grad: [true, false, false, false],
      seed: N,
    });
  }
});

test('rows: C = 65536, forward and gradient against the float64 reference', async () => {
  const [N, C] = [3, 65536];
  const r = rng(65536);
  const o = { studentTemp: 0.1, teacherTemp: 0.04 };
  const sv = f32Values(N * C, r, -3, 3);
  const tv = f32Values(N * C, r, -3, 3);
  const cv = f32Values(C, r, -0.5, 0.5);
  const gv = f32Values(N, r, -1, 1);
  const s = E.fromArray(sv, [N, C]);
  s.requiresGrad = true;
  const loss = softCrossEntropy(s, E.fromArray(tv, [N, C]), { ...o, center: E.fromArray(cv, [C]) });
  close(await loss.toArray(), softCrossEntropyRef(sv, tv, C, { ...o, center: cv }), 1e-5, 'C=65536 loss');
  E.backward(loss, E.fromArray(gv, [N]));
  close(await s.grad!.toArray(), softCrossEntropyGradRef(sv, tv, C, gv, { ...o, center: cv }), 1e-4, 'C=65536 gradient');
});

test('rows: the gradient uses the centre of the forward even if updateCenter ran before backward()', async () => {
  const [N, C] = [6, 40];
  const r = rng(77);
  const o = { studentTemp: 0.1, teacherTemp: 0.04 };
  const sv = f32Values(N * C, r, -1, 1);
  const tv = f32Values(N * C, r, -1, 1);
  const cv = f32Values(C, r, -0.3, 0.3);
  const s = E.fromArray(sv, [N, C]);
  s.requiresGrad = true;
  const teacher = E.fromArray(tv, [N, C]);
  const center = E.fromArray(cv, [1, C]);
  const loss = E.sum(softCrossEntropy(s, teacher, { ...o, center }));
  updateCenter(center, teacher, 0.9);
  E.backward(loss);
  close(await s.grad!.toArray(), softCrossEntropyGradRef(sv, tv, C, new Float64Array(N).fill(1), { ...o, center: cv }), 1e-4, 'gradient with the old centre');
  close(await center.toArray(), updateCenterRef(cv, tv, 0.9), 1e-6, 'centre after the update');
});

/** A 0/1 mask with some all-zero teacher rows and student columns, or real weights. */
function pairMask(Nt: number, Ns: number, r: () => number, weights = false): F64 {
  const m = Float64Array.from({ length: Nt * Ns }, () => (weights ? Math.fround(r()) : r() < 0.5 ? 1 : 0));
  if (Nt > 1) m.fill(0, 0, Ns);
  if (Ns > 1) for (let i = 0; i < Nt; i++) m[i * Ns + Ns - 1] = 0;
  return m;
}

for (const C of CLASSES) {
  test(`pairs C=${C} against the explicit double loop (finite differences)`, async () => {
    const r = rng(C * 7 + 1);
    const Nt = C >= 65 ? randInt(r, 1, 5) : awkwardDim(r, 19);
    const Ns = C >= 65 ? randInt(r, 1, 6) : awkwardDim(r, 21);
    const [studentTemp, teacherTemp] = TEMPS[C % 3];
    const centered = C !== 7;
    const o = { studentTemp, teacherTemp };
    const mask = pairMask(Nt, Ns, r, C === 65);
    await checkOp({
      name: `softCrossEntropyPairs Nt=${Nt} Ns=${Ns} C=${C} Ts=${studentTemp} Tt=${teacherTemp}`,
      shapes: centered
        ? [[Ns, C], [Nt, C], [C]]
        : [
            [Ns, C],
            [Nt, C],
          ],
      gpu: ([s, t, c]) => softCrossEntropyPairs(s, t, E.fromArray(mask, [Nt, Ns]), { ...o, center: c }),
      ref: ([s, t, c]) => Float64Array.of(softCrossEntropyPairsRef(s, t, mask, C, { ...o, center: c })),
      init: (i, n, rr) => f32Values(n, rr, i === 2 ? -0.5 : -2, i === 2 ? 0.5 : 2),
      grad: centered ? [true, false, false] : [true, false],
      seed: C,
    });
  });
}

test('pairs across tile edges (Nt = 37, Ns = 70, C = 130): forward and analytic gradient', async () => {
  const [Nt, Ns, C] = [37, 70, 130];
  const r = rng(5);
  const o = { studentTemp: 0.1, teacherTemp: 0.04 };
  const sv = f32Values(Ns * C, r, -2, 2);
  const tv = f32Values(Nt * C, r, -2, 2);
  const cv = f32Values(C, r, -0.5, 0.5);
  const mv = pairMask(Nt, Ns, r);
  const s = E.fromArray(sv, [Ns, C]);
  s.requiresGrad = true;
  const loss = softCrossEntropyPairs(s, E.fromArray(tv, [Nt, C]), E.fromArray(mv, [Nt, Ns]), { ...o, center: E.fromArray(cv, [C]) });
  close(await loss.toArray(), [softCrossEntropyPairsRef(sv, tv, mv, C, { ...o, center: cv })], 1e-5, 'pair sum');
  E.backward(loss, E.fromArray([0.7], []));
  close(await s.grad!.toArray(), softCrossEntropyPairsGradRef(sv, tv, mv, C, 0.7, { ...o, center: cv }), 1e-4, 'pair gradient');
});

test('pairs with batch axes: one independent sum per batch entry', async () => {
  const [B, Nt, Ns, C] = [3, 9, 5, 11];
  const r = rng(8);
  const masks = Array.from({ length: B }, () => pairMask(Nt, Ns, r, true));
  const mask = Float64Array.from(masks.flatMap((m) => Array.from(m)));
  const o = { studentTemp: 0.1, teacherTemp: 0.05 };
  await checkOp({
    name: 'batched softCrossEntropyPairs',
    shapes: [[B, Ns, C], [B, Nt, C], [C]],
    gpu: ([s, t, c]) => softCrossEntropyPairs(s, t, E.fromArray(mask, [B, Nt, Ns]), { ...o, center: c }),
    ref: ([s, t, c]) =>
      Float64Array.from(masks, (m, b) => softCrossEntropyPairsRef(s.subarray(b * Ns * C, (b + 1) * Ns * C), t.subarray(b * Nt * C, (b + 1) * Nt * C), m, C, { ...o, center: c })),
    init: (_i, n, rr) => f32Values(n, rr, -2, 2),
    grad: [true, false, false],
    seed: 8,
  });
});

test('pairs: C = 65536, forward and analytic gradient', async () => {
  const [Nt, Ns, C] = [3, 4, 65536];
  const r = rng(6);
  const o = { studentTemp: 0.1, teacherTemp: 0.04 };
  const sv = f32Values(Ns * C, r, -3, 3);
  const tv = f32Values(Nt * C, r, -3, 3);
  const mv = Float64Array.from([1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0]);
  const s = E.fromArray(sv, [Ns, C]);
  s.requiresGrad = true;
  const loss = softCrossEntropyPairs(s, E.fromArray(tv, [Nt, C]), E.fromArray(mv, [Nt, Ns]), o);
  close(await loss.toArray(), [softCrossEntropyPairsRef(sv, tv, mv, C, o)], 1e-5, 'pair sum');
  E.backward(loss);
  close(await s.grad!.toArray(), softCrossEntropyPairsGradRef(sv, tv, mv, C, 1, o), 1e-4, 'pair gradient');
});

test('pairs with an all-zero mask give 0 and a zero gradient', async () => {
  const s = E.randn([5, 9], 1);
  s.requiresGrad = true;
  const loss = softCrossEntropyPairs(s, E.randn([3, 9], 2), E.zeros([3, 5]), { studentTemp: 0.1, teacherTemp: 0.04 });
  assert.is(await loss.item(), 0);
  E.backward(loss);
  assert.ok((await s.grad!.toArray()).every((v) => v === 0));
});

test('updateCenter: in place, against the reference, for the buffer shapes of the reference code', async () => {
  for (const [rows, C] of [
    [[6], 256],
    [[6, 9], 37],
    [[1], 1],
    [[3, 11], 300],
  ] as [number[], number][]) {
    const r = rng(C);
    const cv = f32Values(C, r, -0.2, 0.2);
    const tv = f32Values(rows.reduce((a, b) => a * b) * C, r, -1, 1);
    const center = E.fromArray(cv, rows.length === 1 ? [1, C] : [1, 1, C]);
    const before = center.storage.buffer;
    const same = updateCenter(center, E.fromArray(tv, [...rows, C]), 0.9);
    assert.is(same, center);
    assert.is(center.storage.buffer, before);
    close(await center.toArray(), updateCenterRef(cv, tv, 0.9), 1e-6, `centre rows=${rows} C=${C}`);
  }
});

test('errors name the op and the shapes', () => {
  const msg = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  const o = { studentTemp: 0.1, teacherTemp: 0.04 };
  const m1 = msg(() => softCrossEntropy(E.zeros([4, 8]), E.zeros([4, 9]), o));
  assert.ok(m1.includes('softCrossEntropy') && m1.includes('[4, 8]') && m1.includes('[4, 9]'), m1);
  const m2 = msg(() => softCrossEntropyPairs(E.zeros([4, 8]), E.zeros([3, 8]), E.zeros([4, 3]), o));
  assert.ok(m2.includes('softCrossEntropyPairs') && m2.includes('[4, 3]'), m2);
  const m3 = msg(() => updateCenter(E.zeros([8]), E.zeros([4, 9]), 0.9));
  assert.ok(m3.includes('updateCenter') && m3.includes('[4, 9]'), m3);
  const m4 = msg(() => softCrossEntropy(E.zeros([4, 8]), E.zeros([4, 8]), { studentTemp: 0, teacherTemp: 0.04 }));
  assert.ok(m4.includes('studentTemp'), m4);
});

// Both kernel forms on the same cases: the serial ones (software adapters, up to 1024 classes) and the
// workgroup ones (GPUs, longer rows), whichever this adapter would pick by size.
for (const serialForm of [true, false]) {
  test(`${serialForm ? 'serial' : 'workgroup'} kernels: rows (centre, weight, teacherIndex) and batched pairs across tile edges`, async () => {
    useSerialSoftCrossEntropy(serialForm);
    try {
      const [N, Nt, C] = [13, 6, 70];
      const index = Int32Array.from({ length: N }, (_, i) => (i * 5) % Nt);
      const o = { studentTemp: 0.1, teacherTemp: 0.04 };
      await checkOp({
        name: `indexed weighted softCrossEntropy N=${N} Nt=${Nt} C=${C}`,
        shapes: [[N, C], [Nt, C], [C], [N]],
        gpu: ([s, t, c, w]) => softCrossEntropy(s, t, { ...o, center: c, weight: w, teacherIndex: E.fromArray(index, [N], 'i32') }),
        ref: ([s, t, c, w]) => softCrossEntropyRef(s, t, C, { ...o, center: c, weight: w, teacherIndex: index }),
        init: (i, n, rr) => f32Values(n, rr, i === 3 ? 0 : -1, 1),
        grad: [true, false, false, true],
        seed: 31,
      });
      const [B, Ntp, Ns, Cp] = [2, 37, 70, 130];
      const r = rng(32);
      const masks = Array.from({ length: B }, (_, b) => pairMask(Ntp, Ns, r, b === 1));
      const mv = Float64Array.from(masks.flatMap((m) => Array.from(m)));
      const sv = f32Values(B * Ns * Cp, r, -2, 2);
      const tv = f32Values(B * Ntp * Cp, r, -2, 2);
      const cv = f32Values(Cp, r, -0.5, 0.5);
      const po = { studentTemp: 0.1, teacherTemp: 0.05 };
      const s = E.fromArray(sv, [B, Ns, Cp]);
      s.requiresGrad = true;
      const loss = softCrossEntropyPairs(s, E.fromArray(tv, [B, Ntp, Cp]), E.fromArray(mv, [B, Ntp, Ns]), { ...po, center: E.fromArray(cv, [Cp]) });
      const part = (a: F64, b: number, n: number): F64 => a.subarray(b * n * Cp, (b + 1) * n * Cp);
      const refs = masks.map((m, b) => softCrossEntropyPairsRef(part(sv, b, Ns), part(tv, b, Ntp), m, Cp, { ...po, center: cv }));
      close(await loss.toArray(), refs, 1e-5, 'pair sums');
      E.backward(loss, E.fromArray([0.7, -1.3], [B]));
      const grads = masks.flatMap((m, b) => Array.from(softCrossEntropyPairsGradRef(part(sv, b, Ns), part(tv, b, Ntp), m, Cp, [0.7, -1.3][b], { ...po, center: cv })));
      close(await s.grad!.toArray(), grads, 1e-4, 'pair gradients');
    } finally {
      useSerialSoftCrossEntropy();
    }
  });
}

test.run();
