import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { attentionPlans, clsAttention, scaledDotProductAttention, scaledDotProductAttentionPacked, useAttentionPlans } from '../../engine/ops/attention.js';
import { checkOp, close, finiteDiff, gpu, randArray, rng, type F64 } from '../helpers/check.js';
import { attentionBackwardRef, attentionRef, clsAttentionRef, type AttnDims, type AttnRefOptions } from '../ref/attention.js';

const test = suite('attention');
test.before(gpu);

type Mask = { data: Float64Array; shape: number[] };

/** Uniform values rounded to f32, so the float64 reference sees exactly what the GPU gets. */
function f32Rand(n: number, r: () => number, amp = 1): F64 {
  return randArray(n, r, -amp, amp).map(Math.fround);
}

function shapes(d: AttnDims): number[][] {
  return [
    [d.B, d.H, d.Tq, d.Dh],
    [d.B, d.H, d.Tk, d.Dh],
    [d.B, d.H, d.Tk, d.Dh],
  ];
}

function gpuMask(m?: Mask): E.Tensor | undefined {
  return m && E.fromArray(m.data, m.shape);
}

/** Forward against the float64 reference and gradients of q, k, v against finite differences. */
async function checkAttention(name: string, d: AttnDims, opts: { mask?: Mask; scale?: number; seed?: number } = {}): Promise<void> {
  const ref: AttnRefOptions = { mask: opts.mask, scale: opts.scale };
  await checkOp({
    name: `${name} ${JSON.stringify(d)}`,
    shapes: shapes(d),
    gpu: ([q, k, v]) => scaledDotProductAttention(q, k, v, { mask: gpuMask(opts.mask), scale: opts.scale }),
    ref: ([q, k, v]) => attentionRef(q, k, v, d, ref),
    init: (_k, n, r) => f32Rand(n, r),
    seed: opts.seed ?? 7,
  });
}

interface Run {
  out: Float32Array;
  grads: Float32Array[];
  q: F64;
  k: F64;
  v: F64;
  g: F64;
}

/** One forward (and, with `backward`, one backward for a random output gradient) on the GPU. */
async function run(d: AttnDims, seed: number, opts: { amp?: number; mask?: Mask; backward?: boolean } = {}): Promise<Run> {
  const r = rng(seed);
  const [sq, sk, sv] = shapes(d);
  const q = f32Rand(
    sq.reduce((a, b) => a * b),
    r,
    opts.amp,
  );
  const k = f32Rand(
    sk.reduce((a, b) => a * b),
    r,
    opts.amp,
  );
  const v = f32Rand(
    sv.reduce((a, b) => a * b),
    r,
  );
  const g = f32Rand(q.length, r);
  const ts = [E.fromArray(q, sq), E.fromArray(k, sk), E.fromArray(v, sv)];
  for (const t of ts) t.requiresGrad = !!opts.backward;
  const y = scaledDotProductAttention(ts[0], ts[1], ts[2], { mask: gpuMask(opts.mask) });
  const out = await y.toArray();
  const grads: Float32Array[] = [];
  if (opts.backward) {
    E.backward(y, E.fromArray(g, y.shape));
    for (const t of ts) grads.push(await t.grad!.toArray());
  }
  return { out, grads, q, k, v, g };
}

function assertFinite(xs: ArrayLike<number>, what: string): void {
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i])) assert.unreachable(`${what}: element ${i} is ${xs[i]}`);
}

test('reference backward agrees with finite differences of the reference forward', () => {
  const d = { B: 1, H: 2, Tq: 3, Tk: 4, Dh: 4 };
  const r = rng(3);
  const mask = { data: Float64Array.from([0, -Infinity, 0.5, 0]), shape: [4] };
  const xs = shapes(d).map((s) =>
    randArray(
      s.reduce((a, b) => a * b),
      r,
    ),
  );
  const g = randArray(xs[0].length, r);
  const fd = finiteDiff(([q, k, v]) => attentionRef(q, k, v, d, { mask }), xs, g);
  const an = attentionBackwardRef(xs[0], xs[1], xs[2], g, d, { mask });
  an.forEach((a, i) => close(a, fd[i], 1e-6, `reference gradient ${i}`));
});

test('B=2 H=3 T=17 Dh=16: forward and gradients', async () => {
  await checkAttention('sdpa', { B: 2, H: 3, Tq: 17, Tk: 17, Dh: 16 });
});

test('T=5 Dh=32 and T=1 Dh=16: forward and gradients', async () => {
  await checkAttention('sdpa', { B: 1, H: 2, Tq: 5, Tk: 5, Dh: 32 }, { seed: 2 });
  await checkAttention('sdpa', { B: 3, H: 1, Tq: 1, Tk: 1, Dh: 16 }, { seed: 3 });
});

test('head dims that are not a multiple of 4 (Dh = 1, 6, 13) run zero-padded: forward and gradients', async () => {
  await checkAttention('sdpa', { B: 2, H: 3, Tq: 9, Tk: 9, Dh: 6 }, { seed: 5 });
  await checkAttention('sdpa', { B: 1, H: 2, Tq: 5, Tk: 11, Dh: 13 }, { seed: 6, scale: 0.4 });
  await checkAttention('sdpa', { B: 1, H: 1, Tq: 3, Tk: 4, Dh: 1 }, { seed: 8 });
});

test('cross-attention Tq=7 Tk=12 with a custom scale', async () => {
  await checkAttention('sdpa', { B: 2, H: 1, Tq: 7, Tk: 12, Dh: 16 }, { scale: 0.3, seed: 4 });
});

test('key mask [B, 1, 1, T] with -inf; a fully masked entry gives zero output and gradients', async () => {
  const d = { B: 2, H: 2, Tq: 13, Tk: 13, Dh: 16 };
  const data = new Float64Array(2 * 13);
  for (const j of [2, 5, 11, 12]) data[j] = -Infinity;
  data.fill(-Infinity, 13);
  const mask = { data, shape: [2, 1, 1, 13] };
  await checkAttention('key mask', d, { mask, seed: 5 });
  const res = await run(d, 5, { mask, backward: true });
  assertFinite(res.out, 'output');
  const half = res.out.length / 2;
  assert.ok(
    res.out.subarray(half).every((x) => x === 0),
    'the fully masked batch entry is not all zeros',
  );
  for (const gr of res.grads) {
    assertFinite(gr, 'gradient');
    assert.ok(
      gr.subarray(gr.length / 2).every((x) => x === 0),
      'gradients of the fully masked entry are not zero',
    );
  }
});

test('additive bias [1, H, T, T] and a causal [T, T] mask', async () => {
  const T = 11;
  const r = rng(6);
  const bias = { data: randArray(3 * T * T, r, -2, 2), shape: [1, 3, T, T] };
  await checkAttention('bias mask', { B: 2, H: 3, Tq: T, Tk: T, Dh: 16 }, { mask: bias, seed: 6 });
  const causal = { data: Float64Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? -Infinity : 0)), shape: [T, T] };
  await checkAttention('causal mask', { B: 1, H: 2, Tq: T, Tk: T, Dh: 16 }, { mask: causal, seed: 7 });
});

test('Dh=64 at T=65 and T=197: forward within 1e-5 of float64, gradients against the analytic reference', async () => {
  for (const [d, backward] of [
    [{ B: 2, H: 3, Tq: 65, Tk: 65, Dh: 64 }, true],
    [{ B: 1, H: 2, Tq: 197, Tk: 197, Dh: 64 }, false],
  ] as const) {
    const res = await run(d, 11, { backward });
    close(res.out, attentionRef(res.q, res.k, res.v, d), 1e-5, `forward ${JSON.stringify(d)}`);
    if (!backward) continue;
    const expected = attentionBackwardRef(res.q, res.k, res.v, res.g, d);
    expected.forEach((e, i) => close(res.grads[i], e, 1e-5, `gradient ${'qkv'[i]} ${JSON.stringify(d)}`));
  }
});

test('large logits (scores ~1e3): finite and matching the reference', async () => {
  const d = { B: 1, H: 2, Tq: 33, Tk: 33, Dh: 16 };
  const res = await run(d, 12, { amp: 40, backward: true });
  const scores = attentionScoreRange(res.q, res.k, d);
  assert.ok(scores > 500, `the test does not reach large scores (max |score| ${scores})`);
  assertFinite(res.out, 'output');
  close(res.out, attentionRef(res.q, res.k, res.v, d), 1e-4, 'forward');
  const expected = attentionBackwardRef(res.q, res.k, res.v, res.g, d);
  expected.forEach((e, i) => {
    assertFinite(res.grads[i], `gradient ${'qkv'[i]}`);
    close(res.grads[i], e, 1e-3, `gradient ${'qkv'[i]}`);
  });
});

function attentionScoreRange(q: F64, k: F64, d: AttnDims): number {
  let max = 0;
  const scale = 1 / Math.sqrt(d.Dh);
  for (let bh = 0; bh < d.B * d.H; bh++) {
    for (let i = 0; i < d.Tq; i++) {
      for (let j = 0; j < d.Tk; j++) {
        let s = 0;
        for (let e = 0; e < d.Dh; e++) s += q[(bh * d.Tq + i) * d.Dh + e] * k[(bh * d.Tk + j) * d.Dh + e];
        max = Math.max(max, Math.abs(s * scale));
      }
    }
  }
  return max;
}

/** Run `f` with every attention kernel on workgroup-memory staging of `lanes` lanes (the automatic plans restored after). */
async function withWorkgroupStaging(lanes: number, f: () => Promise<void>): Promise<void> {
  const plan = { staging: 'workgroup', lanes, rowsPerLane: 1 } as const;
  useAttentionPlans({ forward: plan, gradQ: plan, gradKV: plan });
  try {
    await f();
  } finally {
    useAttentionPlans();
  }
}

test('workgroup-memory staging (adapters without a fixed subgroup size)', async () => {
  const auto = attentionPlans(16);
  await withWorkgroupStaging(32, () => checkAttention('workgroup staging', { B: 1, H: 2, Tq: 37, Tk: 37, Dh: 16 }, { seed: 8 }));
  assert.equal(attentionPlans(16), auto);
});

test('clsAttention: head-averaged attention of query 0 to keys 1..T-1', async () => {
  const cases: [AttnDims, Mask | undefined][] = [
    [{ B: 2, H: 3, Tq: 17, Tk: 17, Dh: 16 }, undefined],
    [
      { B: 2, H: 3, Tq: 17, Tk: 17, Dh: 16 },
      { data: Float64Array.from({ length: 34 }, (_, i) => (i % 5 === 3 ? -Infinity : 0)), shape: [2, 1, 1, 17] },
    ],
    [{ B: 2, H: 6, Tq: 197, Tk: 197, Dh: 64 }, undefined],
    [{ B: 3, H: 2, Tq: 1, Tk: 1, Dh: 16 }, undefined],
    [{ B: 2, H: 5, Tq: 10, Tk: 10, Dh: 6 }, undefined],
  ];
  for (const [d, mask] of cases) {
    const r = rng(d.Tk + d.H);
    const q = f32Rand(d.B * d.H * d.Tq * d.Dh, r, 2);
    const k = f32Rand(d.B * d.H * d.Tk * d.Dh, r, 2);
    const y = clsAttention(E.fromArray(q, shapes(d)[0]), E.fromArray(k, shapes(d)[1]), { mask: gpuMask(mask) });
    assert.equal(y.shape, [d.B, d.Tk - 1]);
    close(await y.toArray(), clsAttentionRef(q, k, d, { mask }), 1e-5, `clsAttention ${JSON.stringify(d)}${mask ? ' masked' : ''}`);
  }
});

test('no gradient is recorded under noGrad or for constant inputs', async () => {
  const x = E.fromArray(f32Rand(2 * 3 * 16, rng(1)), [1, 2, 3, 16]);
  x.requiresGrad = true;
  const before = E.tapeLength();
  const y = E.noGrad(() => scaledDotProductAttention(x, x, x));
  assert.is(E.tapeLength(), before);
  assert.is(y.requiresGrad, false);
  const c = E.fromArray(f32Rand(2 * 3 * 16, rng(2)), [1, 2, 3, 16]);
  assert.is(scaledDotProductAttention(c, c, c).requiresGrad, false);
});

/** Float64 q, k, v [B, H, T, Dh] of a packed qkv [B, T, 3·H·Dh] (feature = part·H·Dh + h·Dh + e). */
function unpackRef(qkv: F64, d: AttnDims): [F64, F64, F64] {
  const { B, H, Tq: T, Dh } = d;
  const parts: [F64, F64, F64] = [new Float64Array(B * H * T * Dh), new Float64Array(B * H * T * Dh), new Float64Array(B * H * T * Dh)];
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let p = 0; p < 3; p++)
        for (let h = 0; h < H; h++) for (let e = 0; e < Dh; e++) parts[p][((b * H + h) * T + t) * Dh + e] = qkv[((b * T + t) * 3 + p) * H * Dh + h * Dh + e];
  return parts;
}

/** [B, H, T, Dh] -> [B, T, H·Dh] in float64. */
function mergeRef(x: F64, d: AttnDims): F64 {
  const { B, H, Tq: T, Dh } = d;
  const out = new Float64Array(x.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let e = 0; e < Dh; e++) out[((b * T + t) * H + h) * Dh + e] = x[((b * H + h) * T + t) * Dh + e];
  return out;
}

/** The packed op's forward against float64 and its qkv gradient against finite differences of the reference. */
async function checkPacked(name: string, d: AttnDims, opts: { mask?: Mask; seed?: number } = {}): Promise<void> {
  await checkOp({
    name: `packed ${name} ${JSON.stringify(d)}`,
    shapes: [[d.B, d.Tq, 3 * d.H * d.Dh]],
    gpu: ([qkv]) => scaledDotProductAttentionPacked(qkv, d.H, { mask: gpuMask(opts.mask) }),
    ref: ([qkv]) => mergeRef(attentionRef(...unpackRef(qkv, d), d, { mask: opts.mask }), d),
    init: (_k, n, r) => f32Rand(n, r),
    seed: opts.seed ?? 9,
  });
}

test('packed qkv [B, T, 3·H·Dh] -> [B, T, H·Dh]: forward and gradient, sequences shorter and longer than a subgroup, a key mask, workgroup staging', async () => {
  await checkPacked('T=5 Dh=32 (the omniglot preset)', { B: 3, H: 2, Tq: 5, Tk: 5, Dh: 32 });
  await checkPacked('T=19 Dh=8', { B: 2, H: 3, Tq: 19, Tk: 19, Dh: 8 }, { seed: 10 });
  await checkPacked('T=1', { B: 2, H: 1, Tq: 1, Tk: 1, Dh: 4 }, { seed: 11 });
  const data = new Float64Array(2 * 9);
  for (const j of [1, 4, 8, 9 + 3]) data[j] = -Infinity;
  await checkPacked('key mask', { B: 2, H: 2, Tq: 9, Tk: 9, Dh: 12 }, { mask: { data, shape: [2, 1, 1, 9] }, seed: 12 });
  // Dh not a multiple of 4: through splitHeads, the padded kernels and mergeHeads.
  await checkPacked('Dh=6', { B: 1, H: 2, Tq: 7, Tk: 7, Dh: 6 }, { seed: 13 });
  await withWorkgroupStaging(8, () => checkPacked('workgroup staging', { B: 2, H: 2, Tq: 21, Tk: 21, Dh: 16 }, { seed: 14 }));
});

test('packed attention at T=65 Dh=64 (rows per lane > 1): forward and gradient against the analytic float64 reference', async () => {
  const d = { B: 2, H: 3, Tq: 65, Tk: 65, Dh: 64 };
  const r = rng(15);
  const qkv = f32Rand(d.B * d.Tq * 3 * d.H * d.Dh, r);
  const g = f32Rand(d.B * d.Tq * d.H * d.Dh, r);
  const x = E.fromArray(qkv, [d.B, d.Tq, 3 * d.H * d.Dh]);
  x.requiresGrad = true;
  const y = scaledDotProductAttentionPacked(x, d.H);
  const [q, k, v] = unpackRef(qkv, d);
  close(await y.toArray(), mergeRef(attentionRef(q, k, v, d), d), 1e-5, 'packed forward');
  E.backward(y, E.fromArray(g, y.shape));
  // dq, dk, dv of the reference, for the output gradient split into heads, packed back like qkv.
  const gHeads = new Float64Array(g.length);
  const { B, H, Tq: T, Dh } = d;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let e = 0; e < Dh; e++) gHeads[((b * H + h) * T + t) * Dh + e] = g[((b * T + t) * H + h) * Dh + e];
  const grads = attentionBackwardRef(q, k, v, gHeads, d);
  const expected = new Float64Array(qkv.length);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let p = 0; p < 3; p++)
        for (let h = 0; h < H; h++) for (let e = 0; e < Dh; e++) expected[((b * T + t) * 3 + p) * H * Dh + h * Dh + e] = grads[p][((b * H + h) * T + t) * Dh + e];
  close(await x.grad!.toArray(), expected, 1e-4, 'packed dqkv');
});

test('bad shapes throw errors naming the op and the shapes', () => {
  const q = E.zeros([2, 3, 5, 16]);
  const expectThrow = (f: () => unknown, ...parts: string[]): void => {
    let msg = '';
    try {
      f();
    } catch (e) {
      msg = (e as Error).message;
    }
    for (const p of parts) assert.ok(msg.includes(p), `message "${msg}" does not mention "${p}"`);
  };
  expectThrow(() => scaledDotProductAttention(q, E.zeros([2, 3, 5, 8]), E.zeros([2, 3, 5, 8])), 'scaledDotProductAttention', '[2, 3, 5, 16]', '[2, 3, 5, 8]');
  expectThrow(() => scaledDotProductAttention(q, q, E.zeros([2, 3, 4, 16])), 'scaledDotProductAttention', '[2, 3, 4, 16]');
  expectThrow(() => scaledDotProductAttention(E.zeros([1, 1, 3, 130]), E.zeros([1, 1, 3, 130]), E.zeros([1, 1, 3, 130])), 'head dim 130', '1 to 128');
  expectThrow(() => scaledDotProductAttention(q, q, q, { mask: E.zeros([2, 1, 1, 4]) }), 'mask', '[2, 1, 1, 4]', '[2, 3, 5, 5]');
  expectThrow(() => clsAttention(E.zeros([2, 15]), q), 'clsAttention', '[2, 15]');
  expectThrow(() => scaledDotProductAttentionPacked(E.zeros([2, 5, 40]), 3), 'scaledDotProductAttentionPacked', '[2, 5, 40]', 'heads = 3');
  expectThrow(() => scaledDotProductAttentionPacked(E.zeros([2, 5, 48]), 2, { mask: E.zeros([2, 1, 1, 4]) }), 'mask', '[2, 1, 1, 4]', '[2, 2, 5, 5]');
});

test.run();
