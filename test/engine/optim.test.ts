import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { ParameterArena, type ParameterSpec } from '../../engine/arena.js';
import { AdamW, isDecayed } from '../../engine/optim/adamw.js';
import { clipGradients, clipGradNorm, type ClipResult } from '../../engine/optim/clip.js';
import { emaUpdate } from '../../engine/optim/ema.js';
import { close, gpu, randArray, rng, type F64 } from '../helpers/check.js';
import { adamwStepRef, clipGlobalRef, clipPerTensorRef, emaRef, type AdamWRefParam, type ClipRef } from '../ref/optim.js';

const test = suite('optim');
test.before(gpu);

/** Values exactly representable in f32, so the GPU and the float64 reference start equal. */
function f32Rand(n: number, r: () => number, lo = -1, hi = 1): F64 {
  return Float64Array.from(Float32Array.from(randArray(n, r, lo, hi)));
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** |a - b| <= tol |b| element by element (for norms and factors, where each value has its own scale). */
function closeEach(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= tol * Math.abs(expected[i]), `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

test('EMA of a teacher laid out like its student, one dispatch', async () => {
  const r = rng(11);
  const shapes: [string, number[]][] = [
    ['cls_token', [1, 1, 3]],
    ['masked_embed', [1, 5]],
    ['blocks.0.mlp.fc1.weight', [4, 67]],
    ['norm.bias', [1]],
  ];
  const student = new ParameterArena(
    shapes.map(([name, shape]) => ({ name, shape, init: f32Rand(size(shape), r), decay: isDecayed(name, shape) })),
    { label: 'student' },
  );
  const teacherShapes = shapes.filter(([n]) => n !== 'masked_embed');
  let expected = new Map(teacherShapes.map(([name, shape]) => [name, f32Rand(size(shape), r)]));
  const teacher = new ParameterArena(
    teacherShapes.map(([name, shape]) => ({ name, shape, init: expected.get(name)!, decay: isDecayed(name, shape) })),
    { like: student, requiresGrad: false, label: 'teacher' },
  );
  try {
    for (const m of [0.99, 0.9]) {
      const s = new Map(shapes.map(([name, shape]) => [name, f32Rand(size(shape), r)]));
      student.loadStateDict(s);
      const before = E.rt().dispatchCount;
      emaUpdate(teacher, student, m);
      assert.is(E.rt().dispatchCount - before, 1, 'EMA is one dispatch');
      expected = new Map([...expected].map(([n, t]) => [n, emaRef(t, s.get(n)!, m)]));
      const got = await teacher.stateDict();
      for (const [n, t] of expected) close(got.get(n)!, t, 1e-6, `teacher ${n} after m = ${m}`);
      close((await student.stateDict()).get('masked_embed')!, s.get('masked_embed')!, 0, 'student untouched');
    }
    assert.throws(() => emaUpdate(teacher, student, 1.5), /momentum 1.5/);
  } finally {
    teacher.dispose();
    student.dispose();
  }
});

test('AdamW matches torch.optim.AdamW: carried-over state, skipped, frozen and non-decayed parameters', async () => {
  const r = rng(21);
  const defs: [string, number[], number][] = [
    ['blocks.0.attn.qkv.weight', [7, 5], 7],
    ['blocks.0.attn.qkv.bias', [7], 7],
    ['cls_token', [1, 1, 3], 7],
    ['head.last_layer.weight_v', [3, 4], 4],
    ['norm.weight', [1], 0],
    ['pos_embed', [1, 257, 1], 2],
  ];
  const ref: AdamWRefParam[] = defs.map(([name, shape, step]) => ({
    param: f32Rand(size(shape), r),
    // a fresh parameter has zero moments; the others carry state over
    expAvg: step ? f32Rand(size(shape), r, -0.05, 0.05) : new Float64Array(size(shape)),
    expAvgSq: step ? f32Rand(size(shape), r, 0, 0.3) : new Float64Array(size(shape)),
    step,
    decay: isDecayed(name, shape),
  }));
  const specs: ParameterSpec[] = defs.map(([name, shape], k) => ({ name, shape, init: ref[k].param, decay: ref[k].decay }));
  const arena = new ParameterArena(specs, { label: 'adamw' });
  const opt = new AdamW(arena);
  const byName = <T>(f: (k: number) => T): Map<string, T> => new Map(defs.map(([name], k) => [name, f(k)]));
  opt.loadStateDict({ step: byName((k) => ref[k].step), exp_avg: byName((k) => ref[k].expAvg), exp_avg_sq: byName((k) => ref[k].expAvgSq) });
  const schedule = [
    { lr: 3e-3, weightDecay: 0.05, absent: ['cls_token'], frozen: ['head.last_layer.weight_v'] },
    { lr: 2e-3, weightDecay: 0.07, absent: [], frozen: ['head.last_layer.weight_v'] },
    { lr: 1e-2, weightDecay: 0.04, absent: ['blocks.0.attn.qkv.bias'], frozen: [] },
    { lr: 5e-3, weightDecay: 0.4, absent: [], frozen: [] },
  ];
  try {
    for (const [it, s] of schedule.entries()) {
      const grads = defs.map(([name, shape]) => (s.absent.includes(name) ? null : f32Rand(size(shape), r, -2, 2)));
      arena.setGrads(new Map(defs.flatMap(([name], k) => (grads[k] ? [[name, grads[k]!] as const] : []))));
      const before = E.rt().dispatchCount;
      opt.step({ lr: s.lr, weightDecay: s.weightDecay, frozen: (n) => s.frozen.includes(n) });
      if (it > 0) assert.is(E.rt().dispatchCount - before, 1, 'AdamW is one dispatch');
      adamwStepRef(
        ref,
        grads.map((g, k) => (s.frozen.includes(defs[k][0]) ? null : g)),
        s,
      );
    }
    const state = await opt.stateDict();
    const params = await arena.stateDict();
    defs.forEach(([name], k) => {
      assert.is(state.step.get(name), ref[k].step, `step of ${name}`);
      close(params.get(name)!, ref[k].param, 1e-6, `param ${name}`);
      close(state.exp_avg.get(name)!, ref[k].expAvg, 1e-6, `exp_avg ${name}`);
      close(state.exp_avg_sq.get(name)!, ref[k].expAvgSq, 1e-6, `exp_avg_sq ${name}`);
    });
    assert.equal([...opt.steps], [11, 10, 10, 6, 4, 6]);
  } finally {
    arena.dispose();
  }
});

test("AdamW parameter groups match torch's param_groups: per-group lr, per-group weight decay on any parameter, the step's values elsewhere", async () => {
  const r = rng(5);
  const defs: [string, number[]][] = [
    ['backbone.blocks.0.mlp.fc1.weight', [9, 5]],
    ['backbone.blocks.0.mlp.fc1.bias', [9]],
    ['backbone.norm.weight', [5]],
    ['head.weight', [3, 5]],
    ['head.bias', [3]],
  ];
  // A pretrained backbone at a tenth of the lr; the head's bias decayed as well; the rest as the step says.
  const groups = [
    { params: (n: string) => n.startsWith('backbone.'), lr: 2e-4 },
    { params: ['head.bias'], weightDecay: 0.3 },
  ];
  const ref: AdamWRefParam[] = defs.map(([name, shape]) => ({
    param: f32Rand(size(shape), r),
    expAvg: new Float64Array(size(shape)),
    expAvgSq: new Float64Array(size(shape)),
    step: 0,
    decay: isDecayed(name, shape),
    ...(name.startsWith('backbone.') ? { lr: 2e-4 } : name === 'head.bias' ? { weightDecay: 0.3 } : {}),
  }));
  const arena = new ParameterArena(
    defs.map(([name, shape], k) => ({ name, shape, init: ref[k].param, decay: ref[k].decay })),
    { label: 'groups' },
  );
  const opt = new AdamW(arena);
  try {
    for (const h of [
      { lr: 2e-3, weightDecay: 0.05 },
      { lr: 1e-3, weightDecay: 0.1 },
      { lr: 3e-3, weightDecay: 0.05 },
    ]) {
      const grads = defs.map(([, shape]) => f32Rand(size(shape), r, -2, 2));
      arena.setGrads(new Map(defs.map(([name], k) => [name, grads[k]] as const)));
      opt.step({ ...h, groups });
      adamwStepRef(ref, grads, h);
    }
    const params = await arena.stateDict();
    defs.forEach(([name], k) => close(params.get(name)!, ref[k].param, 1e-6, `param ${name}`));
    assert.throws(() => opt.step({ lr: 1e-3, weightDecay: 0, groups: [{ params: ['head.weigth'], lr: 1 }] }), /groups\[0\] names head\.weigth, not parameters of arena groups/);
    assert.throws(
      () => opt.step({ lr: 1e-3, weightDecay: 0, groups: [{ params: ['head.weight'], lr: Number.NaN }] }),
      /groups\[0\]\.lr must be a finite non-negative number, got NaN/,
    );
    assert.equal([...opt.steps], [3, 3, 3, 3, 3], 'a refused step changes nothing');
  } finally {
    arena.dispose();
  }
});

test('optimizer state to a file and back in one call: bit-identical moments and steps, then identical updates; a file of another model is refused naming it', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const dir = await mkdtemp(path.join(tmpdir(), 'optim-'));
  const r = rng(9);
  const specs: ParameterSpec[] = [
    { name: 'w', shape: [6, 7], init: f32Rand(42, r), decay: true },
    { name: 'b', shape: [7], init: f32Rand(7, r), decay: false },
  ];
  const [a, b] = [new ParameterArena(specs, { label: 'a' }), new ParameterArena(specs, { label: 'b' })];
  const [optA, optB] = [new AdamW(a), new AdamW(b)];
  const grads = (): Map<string, F64> =>
    new Map([
      ['w', f32Rand(42, r, -1, 1)],
      ['b', f32Rand(7, r, -1, 1)],
    ]);
  try {
    for (let i = 0; i < 3; i++) {
      a.setGrads(grads());
      optA.step({ lr: 1e-2, weightDecay: 0.1, frozen: i === 0 ? ['b'] : [] });
    }
    const file = path.join(dir, 'adamw.safetensors');
    await E.saveOptimizer(file, optA);
    await E.loadOptimizer(file, optB);
    b.data.write(await a.stateDict());
    const [sa, sb] = [await optA.stateDict(), await optB.stateDict()];
    assert.equal([...sb.step], [...sa.step]);
    assert.equal([...sb.step.values()], [3, 2]);
    for (const k of ['w', 'b']) {
      assert.equal(Array.from(sb.exp_avg.get(k)!), Array.from(sa.exp_avg.get(k)!), `exp_avg ${k}`);
      assert.equal(Array.from(sb.exp_avg_sq.get(k)!), Array.from(sa.exp_avg_sq.get(k)!), `exp_avg_sq ${k}`);
    }
    const g = grads();
    for (const [arena, opt] of [
      [a, optA],
      [b, optB],
    ] as const) {
      arena.setGrads(g);
      opt.step({ lr: 1e-2, weightDecay: 0.1 });
    }
    const [pa, pb] = [await a.stateDict(), await b.stateDict()];
    assert.equal(Array.from(pb.get('w')!), Array.from(pa.get('w')!), 'the next update is the same');
    const other = new ParameterArena([{ name: 'w', shape: [5], decay: true }], { label: 'other' });
    await E.loadOptimizer(file, new AdamW(other)).then(
      () => assert.unreachable('a file of another model'),
      (e: Error) => assert.match(e.message, new RegExp(`^${file.replace(/[.]/g, '\\.')}: `)),
    );
    other.dispose();
  } finally {
    a.dispose();
    b.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

/** Gradients of mixed scales: some tensors far above the threshold, some below, one absent. */
function clipCase(seed: number): { specs: ParameterSpec[]; grads: (F64 | null)[] } {
  const r = rng(seed);
  const defs: [string, number[], number | null][] = [
    ['a.weight', [1], 3],
    ['b.bias', [3], 0.01],
    ['c.weight', [1, 257], 0.5],
    ['d.weight', [10007], 0.02],
    ['e.weight', [8, 125], null],
    ['f.weight', [31, 7], 0.001],
  ];
  return {
    specs: defs.map(([name, shape]) => ({ name, shape, decay: true })),
    grads: defs.map(([, shape, scale]) => (scale === null ? null : f32Rand(size(shape), r, -scale, scale))),
  };
}

async function checkClip(arena: ParameterArena, res: ClipResult, expected: ClipRef, what: string): Promise<void> {
  closeEach(await res.norms.toArray(), expected.norms, 1e-5, `${what} norms`);
  closeEach(await res.factors.toArray(), expected.factors, 1e-5, `${what} factors`);
  closeEach([await res.totalNorm.item()], [expected.totalNorm], 1e-5, `${what} total norm`);
  const grads = await arena.grads.read();
  arena.entries.forEach((e, k) => close(grads.get(e.name)!, expected.clipped[k] ?? new Float64Array(e.size), 1e-5, `${what} clipped ${e.name}`));
  for (const t of [res.norms, res.factors, res.totalNorm]) t.dispose();
}

function setGrads(arena: ParameterArena, grads: (F64 | null)[]): void {
  arena.setGrads(new Map(arena.entries.flatMap((e, k) => (grads[k] ? [[e.name, grads[k]!] as const] : []))));
}

test('AdamW refuses bad hyper-parameters before touching a weight: a missing weightDecay, a NaN or negative lr, betas outside [0, 1)', async () => {
  const arena = new ParameterArena([{ name: 'w', shape: [2, 3], init: Float32Array.of(1, 2, 3, 4, 5, 6), decay: true }], { label: 'adamw-checks' });
  arena.setGrads(new Map([['w', Float32Array.of(1, 1, 1, 1, 1, 1)]]));
  const opt = new AdamW(arena);
  const before = await arena.stateDict();
  for (const [o, want] of [
    [{ lr: 1e-3 }, /weightDecay must be a finite non-negative number, got undefined \(pass weightDecay: 0 for none\)/],
    [{ lr: NaN, weightDecay: 0 }, /lr must be a finite non-negative number, got NaN/],
    [{ lr: -1, weightDecay: 0 }, /lr must be/],
    [{ lr: 1e-3, weightDecay: Infinity }, /weightDecay must be/],
  ] as const) {
    assert.throws(() => opt.step(o as unknown as E.AdamWStepOptions), want);
  }
  assert.is(opt.steps[0], 0, 'no step was counted');
  assert.equal(await arena.stateDict(), before);
  assert.throws(() => new AdamW(arena, { betas: [0.9, 1] }), /betas\[1\] must be in \[0, 1\), got 1/);
  assert.throws(() => new AdamW(arena, { eps: NaN }), /eps must be a non-negative number/);
  arena.dispose();
});

test('per-tensor clipping (docs/algorithm.md §7.5): factors, norms and clipped gradients, two dispatches', async () => {
  const { specs, grads } = clipCase(31);
  const arena = new ParameterArena(specs, { label: 'clip' });
  try {
    setGrads(arena, grads);
    const expected = clipPerTensorRef(grads, 0.5);
    const clipped = expected.factors.filter((f) => f < 1).length;
    assert.ok(clipped >= 2 && clipped <= 4, `the case clips some tensors, not all (${clipped})`);
    const before = E.rt().dispatchCount;
    const res = clipGradients(arena, 0.5);
    assert.is(E.rt().dispatchCount - before, 2, 'clipping is two dispatches');
    await checkClip(arena, res, expected, 'per-tensor');
  } finally {
    arena.dispose();
  }
});

test('global-norm clipping (clip_grad_norm_), clipping and not', async () => {
  const { specs, grads } = clipCase(41);
  const arena = new ParameterArena(specs, { label: 'clip-global' });
  try {
    const total = clipGlobalRef(grads, 1).totalNorm;
    for (const maxNorm of [total / 3, total * 2]) {
      setGrads(arena, grads);
      await checkClip(arena, clipGradNorm(arena, maxNorm), clipGlobalRef(grads, maxNorm), `global ${maxNorm.toFixed(3)}`);
    }
    assert.throws(() => clipGradNorm(arena, 0), /must be positive/);
  } finally {
    arena.dispose();
  }
});

test('a loop that ignores the clip results does not leak: each clip of an arena frees the previous one; dispose() is idempotent', async () => {
  const { specs, grads } = clipCase(43);
  const arena = new ParameterArena(specs, { label: 'clip-leak' });
  try {
    setGrads(arena, grads);
    clipGradNorm(arena, 1);
    await E.rt().flush();
    const live = E.rt().poolStats().liveBuffers;
    for (let i = 0; i < 5; i++) {
      setGrads(arena, grads);
      clipGradNorm(arena, 1);
      await E.rt().flush();
    }
    assert.is(E.rt().poolStats().liveBuffers, live, 'live buffers after 5 more clips whose results were ignored');
    const kept = clipGradients(arena, 1);
    kept.dispose();
    kept.dispose();
    assert.ok(kept.norms.isDisposed && kept.factors.isDisposed && kept.totalNorm.isDisposed);
    assert.is(E.rt().poolStats().liveBuffers, live - 3, 'dispose() freed the three');
  } finally {
    arena.dispose();
  }
});

test('a 3-million-element segment beside tiny ones', async () => {
  const r = rng(51);
  const shapes = [[1], [3000001], [5]];
  const grads = shapes.map((s) => f32Rand(size(s), r));
  const arena = new ParameterArena(
    shapes.map((shape, k) => ({ name: `p${k}`, shape, decay: false })),
    { label: 'big' },
  );
  try {
    setGrads(arena, grads);
    const expected = clipPerTensorRef(grads, 100);
    assert.ok(expected.factors[1] < 1 && expected.factors[0] === 1, 'the big tensor is clipped, the tiny ones not');
    await checkClip(arena, clipGradients(arena, 100), expected, '3M');
  } finally {
    arena.dispose();
  }
});

test.run();
