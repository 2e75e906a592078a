// Loss parity with PyTorch (loss_phase1 / loss_phase2.safetensors): every loss value, the gradients
// w.r.t. the student head outputs, the centres after the update, the degenerate batches of docs/algorithm.md §11.6 and
// the patch matches; then the general layout (G = 3, uneven groups, padding) against a float64
// transcription of docs/algorithm.md §5 with finite-difference gradients.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { ibotLoss, matchPatches, patchPlan, smkdLoss, updateCenters, type HeadOutputs } from '../../train/losses.js';
import { close, finiteDiff, gpu, randArray, relErr, rng, type F64 } from '../helpers/check.js';
import { Golden, needsGolden } from '../helpers/golden.js';
import { ibotLossRef, smkdLossRef, type RefInputs } from '../ref/smkd-losses.js';

const test = suite('losses golden');
test.before(gpu);
const phase1 = needsGolden(test, 'loss_phase1.safetensors');
const phase2 = needsGolden(test, 'loss_phase2.safetensors');

interface LossConfig {
  G: number;
  B?: number;
  L: number;
}

/** The README's gradient test: ‖a − b‖/‖b‖ and max|a − b|/max|b|, both within tol. */
function closeGrad(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  const normRel = Math.sqrt(num / den);
  assert.ok(normRel <= tol, `${what}: norm-relative error ${normRel.toExponential(2)} > ${tol}`);
  close(actual, expected, tol, `${what} (max-relative)`);
}

/** A pattern matching the literal parts in this order, anything between them. */
function inOrder(...parts: string[]): RegExp {
  return new RegExp(parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*'));
}

function scalarClose(actual: number, expected: number, tol: number, what: string): void {
  const e = Math.abs(actual - expected) / Math.abs(expected);
  assert.ok(e <= tol, `${what}: got ${actual}, expected ${expected} (relative error ${e.toExponential(2)})`);
}

function load(g: Golden, key: string, grad = false): E.Tensor<'f32'> {
  const t = E.fromArray(g.f32(key), g.shape(key));
  t.requiresGrad = grad;
  return t;
}

function heads(g: Golden): HeadOutputs {
  return {
    teacherCls: load(g, 'in.teacher_cls'),
    studentCls: load(g, 'in.student_cls', true),
    studentLocalCls: load(g, 'in.student_local_cls', true),
    teacherPatch: load(g, 'in.teacher_patch'),
    studentPatch: load(g, 'in.student_patch', true),
  };
}

function temps(g: Golden) {
  return {
    studentTemp: g.scalar('in.student_temp'),
    teacherTemp: g.scalar('in.teacher_temp'),
    teacherPatchTemp: g.scalar('in.teacher_patch_temp'),
    center: load(g, 'in.center'),
    center2: load(g, 'in.center2'),
  };
}

function disposeAll(...ts: (E.Tensor | undefined | null)[]): void {
  for (const t of ts) {
    t?.grad?.dispose();
    t?.dispose();
  }
}

phase1('phase 1 (iBOT): L_cls, L_mim, total, gradients, centres', async () => {
  const g = await Golden.load('loss_phase1.safetensors');
  const { G } = g.meta<LossConfig>('config');
  const x = heads(g);
  const o = temps(g);
  const loss = ibotLoss({ ...x, masks: g.ints('in.masks'), globalViews: G }, { ...o, lambda1: g.scalar('in.lambda1'), lambda3: g.scalar('in.lambda3') });
  const momentum = g.scalar('in.center_momentum');
  updateCenters(o.center, o.center2, x.teacherCls, x.teacherPatch, momentum);
  E.backward(loss.total);
  scalarClose(await loss.cls.item(), g.scalar('out.loss_cls'), 1e-5, 'loss_cls');
  scalarClose(await loss.mim.item(), g.scalar('out.loss_mim'), 1e-5, 'loss_mim');
  scalarClose(await loss.total.item(), g.scalar('out.loss'), 1e-5, 'loss');
  scalarClose(await loss.total.item(), g.scalar('out.f64.loss'), 1e-5, 'loss vs float64');
  closeGrad(await x.studentCls.grad!.toArray(), g.f32('out.grad.student_cls'), 1e-3, 'grad student_cls');
  closeGrad(await x.studentLocalCls!.grad!.toArray(), g.f32('out.grad.student_local_cls'), 1e-3, 'grad student_local_cls');
  const gp = await x.studentPatch.grad!.toArray();
  closeGrad(gp, g.f32('out.grad.student_patch'), 1e-3, 'grad student_patch');
  const masks = g.ints('in.masks');
  const K = x.studentPatch.shape[2];
  assert.ok(
    masks.every((m, r) => m !== 0 || gp.subarray(r * K, (r + 1) * K).every((v) => v === 0)),
    'unmasked positions get no gradient',
  );
  close(await o.center.toArray(), g.f32('out.center'), 1e-5, 'center');
  close(await o.center2.toArray(), g.f32('out.center2'), 1e-5, 'center2');
  disposeAll(...Object.values(x), o.center, o.center2, loss.total, loss.cls, loss.mim);
});

for (const variant of ['uniform', 'weighted'] as const) {
  phase2(`phase 2 (SMKD): L_cls, L_patch ${variant}, total, gradients, centres`, async () => {
    const g = await Golden.load('loss_phase2.safetensors');
    const x = heads(g);
    const o = temps(g);
    const labels = Int32Array.from(g.ints('in.labels'));
    const feats = { teacherFeatures: load(g, 'in.teacher_feat'), studentFeatures: load(g, 'in.student_feat'), teacherClsAttention: load(g, 'in.teacher_cls_attn') };
    const lambda1 = g.scalar('in.lambda1');
    const lambda2 = g.scalar('in.lambda2');
    const loss = smkdLoss({ ...x, ...feats, labels }, { ...o, lambda1, lambda2, patchWeighting: variant });
    updateCenters(o.center, o.center2, x.teacherCls, x.teacherPatch, g.scalar('in.center_momentum'));
    E.backward(loss.total);
    assert.is(loss.mim, undefined, 'no MIM term at lambda3 = 0');
    scalarClose(await loss.cls.item(), g.scalar('out.loss_cls'), 1e-5, 'loss_cls');
    scalarClose(await loss.patch.item(), g.scalar(`out.loss_patch_${variant}`), 1e-5, `loss_patch_${variant}`);
    scalarClose(await loss.patch.item(), g.scalar(`out.f64.loss_patch_${variant}`), 1e-5, `loss_patch_${variant} vs float64`);
    const expectedTotal = variant === 'uniform' ? g.scalar('out.loss') : lambda1 * g.scalar('out.loss_cls') + lambda2 * g.scalar('out.loss_patch_weighted');
    scalarClose(await loss.total.item(), expectedTotal, 1e-5, 'total');
    // The [cls] and patch terms read disjoint inputs, so d total splits into the stored d L_cls and d L_patch.
    closeGrad(
      await x.studentCls.grad!.toArray(),
      g.f32('out.grad.student_cls').map((v) => v * lambda1),
      1e-3,
      'grad student_cls',
    );
    closeGrad(
      await x.studentLocalCls!.grad!.toArray(),
      g.f32('out.grad.student_local_cls').map((v) => v * lambda1),
      1e-3,
      'grad student_local_cls',
    );
    closeGrad(
      await x.studentPatch.grad!.toArray(),
      g.f32(`out.grad.student_patch_${variant}`).map((v) => v * lambda2),
      1e-3,
      `grad student_patch_${variant}`,
    );
    close(await o.center.toArray(), g.f32('out.center'), 1e-5, 'center');
    close(await o.center2.toArray(), g.f32('out.center2'), 1e-5, 'center2');
    disposeAll(...Object.values(x), ...Object.values(feats), o.center, o.center2, loss.total, loss.cls, loss.patch);
  });
}

phase2('phase 2: patch matches equal out.match wherever out.match_valid', async () => {
  const g = await Golden.load('loss_phase2.safetensors');
  const labels = g.ints('in.labels');
  const [G, , B, , Np] = g.shape('out.match');
  const plan = patchPlan(labels, G);
  const tf = load(g, 'in.teacher_feat');
  const sf = load(g, 'in.student_feat');
  const match = matchPatches(plan, tf, sf);
  const got = await match.toArray();
  const expected = g.ints('out.match');
  const valid = g.ints('out.match_valid');
  const { kmax, groups, viewPairs } = plan;
  const seen = new Set<number>();
  let compared = 0;
  viewPairs.forEach(([s, t], p) =>
    groups.forEach((members, gi) => {
      const e = p * groups.length + gi;
      members.forEach((xImg, xs) =>
        members.forEach((yImg, ys) => {
          if (xImg === yImg) return;
          const pair = ((s * G + t) * B + xImg) * B + yImg;
          assert.ok(valid[pair], `(s ${s}, t ${t}, x ${xImg}, y ${yImg}) is used by the loss but not marked valid`);
          seen.add(pair);
          for (let j = 0; j < Np; j++) {
            assert.is(got[((e * kmax + xs) * kmax + ys) * Np + j], expected[pair * Np + j], `match [s ${s}, t ${t}, x ${xImg}, y ${yImg}, j ${j}]`);
            compared++;
          }
        }),
      );
    }),
  );
  assert.is(seen.size, valid.filter((v) => v !== 0).length, 'every valid pair is matched');
  assert.ok(compared > 0);
  disposeAll(tf, sf, match);
});

phase2('phase 2 degenerate batches (docs/algorithm.md §11.6): singletons and no local crops', async () => {
  const g = await Golden.load('loss_phase2.safetensors');
  const x = heads(g);
  const o = temps(g);
  const labels = g.ints('in.singletons.labels');
  const feats = { teacherFeatures: load(g, 'in.teacher_feat'), studentFeatures: load(g, 'in.student_feat'), teacherClsAttention: load(g, 'in.teacher_cls_attn') };
  for (const variant of ['uniform', 'weighted'] as const) {
    const loss = smkdLoss({ ...x, ...feats, labels }, { ...o, patchWeighting: variant });
    scalarClose(await loss.cls.item(), g.scalar('out.singletons.loss_cls'), 1e-5, 'singletons loss_cls');
    assert.is(await loss.patch.item(), g.scalar(`out.singletons.loss_patch_${variant}`), `singletons loss_patch_${variant}`);
    scalarClose(await loss.total.item(), g.scalar('out.singletons.loss_cls'), 1e-5, 'singletons total = L_cls');
    E.clearTape();
    disposeAll(loss.total, loss.cls, loss.patch);
  }
  const noLocal = smkdLoss({ ...x, ...feats, studentLocalCls: undefined, labels }, o);
  assert.is(await noLocal.cls.item(), g.scalar('out.singletons_no_local.loss_cls'), 'no local crop, no pair: L_cls = 0');
  assert.is(await noLocal.total.item(), 0);
  assert.not.ok(noLocal.total.requiresGrad, 'an all-empty loss has no graph');
  E.clearTape();
  disposeAll(...Object.values(x), ...Object.values(feats), o.center, o.center2, noLocal.total, noLocal.cls, noLocal.patch);
});

phase2('bad inputs throw errors naming the loss and the shapes', async () => {
  const g = await Golden.load('loss_phase2.safetensors');
  const x = heads(g);
  const o = temps(g);
  const labels = g.ints('in.labels');
  const B = labels.length;
  const [rows, K] = g.shape('in.teacher_cls');
  const Np = g.shape('in.teacher_patch')[1];
  const cls = `[${rows}, ${K}]`;
  const feats = { teacherFeatures: load(g, 'in.teacher_feat'), studentFeatures: load(g, 'in.student_feat') };
  assert.throws(() => smkdLoss({ ...x, ...feats, labels: labels.slice(1) }, o), inOrder(`smkdLoss(teacherCls ${cls}`, `G = ${rows / (B - 1)} `));
  assert.throws(
    () => smkdLoss({ ...x, ...feats, labels, studentPatch: x.studentCls }, o),
    inOrder('smkdLoss(', `studentPatch ${cls}`, 'studentPatch must have the shape of teacherPatch'),
  );
  assert.throws(() => smkdLoss({ ...x, ...feats, labels }, { ...o, patchWeighting: 'weighted' }), inOrder(`teacherClsAttention [G·B, Np] = [${rows}, ${Np}], got none`));
  assert.throws(() => smkdLoss({ ...x, ...feats, labels }, { ...o, lambda3: 1 }), /needs the MIM masks/);
  assert.throws(() => smkdLoss({ ...x, teacherFeatures: feats.teacherFeatures, studentFeatures: x.studentCls, labels }, o), inOrder(`studentFeatures ${cls} must be [G·B, Np, D]`));
  assert.throws(() => ibotLoss({ ...x, masks: new Uint8Array(5), globalViews: rows / B }, o), inOrder(`ibotLoss: masks hold 5 values, expected G·B·Np = ${rows / B}·${B}·${Np}`));
  assert.is(E.tapeLength(), 0, 'nothing recorded by the failed calls');
  disposeAll(...Object.values(x), ...Object.values(feats), o.center, o.center2);
});

/** Float32-representable values, so the float64 reference sees what the GPU sees. */
function f32Rand(n: number, r: () => number, lo: number, hi: number): F64 {
  return Float64Array.from(randArray(n, r, lo, hi), Math.fround);
}

/**
 * A tiny random case. Default: the general layout (G = 3, uneven groups padded to the largest, a
 * singleton); the P×K layout (G = 2, equal contiguous groups) takes the no-gather path.
 */
function randomCase(seed: number, G = 3, labels = Int32Array.from([4, 1, 4, 9, 1, 1])): RefInputs {
  const r = rng(seed);
  const L = 2;
  const B = labels.length;
  // Np·k and K multiples of 4: the aggregation matmul then shares the model's (vec4) pipeline.
  const Np = 4;
  const K = 8;
  const D = 5;
  const mask = Float64Array.from({ length: G * B * Np }, () => (r() < 0.4 ? 1 : 0));
  return {
    G,
    B,
    L,
    Np,
    K,
    D,
    labels,
    teacherCls: f32Rand(G * B * K, r, -1, 1),
    studentCls: f32Rand(G * B * K, r, -2, 2),
    studentLocalCls: f32Rand(L * B * K, r, -2, 2),
    teacherPatch: f32Rand(G * B * Np * K, r, -1, 1),
    studentPatch: f32Rand(G * B * Np * K, r, -2, 2),
    teacherFeatures: f32Rand(G * B * Np * D, r, -1, 1),
    studentFeatures: f32Rand(G * B * Np * D, r, -1, 1),
    attention: f32Rand(G * B * Np, r, 0.05, 1),
    masks: mask,
    center: f32Rand(K, r, -0.2, 0.2),
    center2: f32Rand(K, r, -0.2, 0.2),
    studentTemp: 0.1,
    teacherTemp: 0.06,
    teacherPatchTemp: 0.05,
  };
}

test('float64 reference and finite differences: iBOT loss, G = 3', async () => {
  const c = randomCase(5);
  const lambda = { lambda1: 0.7, lambda3: 1.3 };
  const ref = (xs: F64[]): F64 => Float64Array.of(ibotLossRef({ ...c, studentCls: xs[0], studentLocalCls: xs[1], studentPatch: xs[2] }, lambda).total);
  await checkLoss(c, [c.studentCls, c.studentLocalCls, c.studentPatch], ref, (x, o) => ibotLoss({ ...x, masks: c.masks, globalViews: c.G }, { ...o, ...lambda }).total);
});

const SMKD_CASES = [
  { name: 'G = 3, uneven groups', make: (seed: number) => randomCase(seed) },
  { name: 'G = 2, P×K contiguous groups', make: (seed: number) => randomCase(seed, 2, Int32Array.from([3, 3, 0, 0, 8, 8])) },
];
for (const [k, patchWeighting] of (['uniform', 'weighted'] as const).entries()) {
  for (const [m, keepGlobalSelfPairs] of [false, true].entries()) {
    const layout = SMKD_CASES[(k + m) % 2];
    test(`float64 reference and finite differences: SMKD loss, ${layout.name}, ${patchWeighting}${keepGlobalSelfPairs ? ', global self pairs kept' : ''}, MIM on`, async () => {
      const c = layout.make(7 + k + 2 * m);
      const o = { lambda1: 0.8, lambda2: 1.1, lambda3: 0.6, patchWeighting, keepGlobalSelfPairs };
      const ref = (xs: F64[]): F64 => Float64Array.of(smkdLossRef({ ...c, studentCls: xs[0], studentLocalCls: xs[1], studentPatch: xs[2] }, o).total);
      await checkLoss(c, [c.studentCls, c.studentLocalCls, c.studentPatch], ref, (x, t) => {
        const up = (a: F64, shape: number[]) => E.fromArray(a, shape);
        return smkdLoss(
          {
            ...x,
            labels: c.labels,
            teacherFeatures: up(c.teacherFeatures, [c.G * c.B, c.Np, c.D]),
            studentFeatures: up(c.studentFeatures, [c.G * c.B, c.Np, c.D]),
            teacherClsAttention: up(c.attention, [c.G * c.B, c.Np]),
            masks: c.masks,
          },
          { ...t, ...o },
        ).total;
      });
    });
  }
}

/** Loss value against the float64 reference (1e-5), gradients against its central differences (2e-3). */
async function checkLoss(c: RefInputs, xs: F64[], ref: (xs: F64[]) => F64, run: (x: HeadOutputs, o: ReturnType<typeof gpuTemps>) => E.Tensor): Promise<void> {
  const { G, B, L, Np, K } = c;
  const x: HeadOutputs = {
    teacherCls: E.fromArray(c.teacherCls, [G * B, K]),
    studentCls: E.fromArray(c.studentCls, [G * B, K]),
    studentLocalCls: E.fromArray(c.studentLocalCls, [L * B, K]),
    teacherPatch: E.fromArray(c.teacherPatch, [G * B, Np, K]),
    studentPatch: E.fromArray(c.studentPatch, [G * B, Np, K]),
  };
  const students = [x.studentCls, x.studentLocalCls!, x.studentPatch];
  for (const s of students) s.requiresGrad = true;
  const o = gpuTemps(c);
  const total = E.keep(E.tidy(() => run(x, o)));
  const expected = ref(xs)[0];
  scalarClose(await total.item(), expected, 1e-5, 'loss vs float64 reference');
  E.backward(total);
  const fd = finiteDiff(ref, xs, Float64Array.of(1), 1e-6);
  for (let k = 0; k < students.length; k++) {
    const got = await students[k].grad!.toArray();
    const e = relErr(got, fd[k]);
    assert.ok(e <= 2e-3, `gradient of student input ${k}: relative error ${e.toExponential(2)}`);
  }
  disposeAll(...Object.values(x), o.center, o.center2, total);
}

function gpuTemps(c: RefInputs) {
  return {
    studentTemp: c.studentTemp,
    teacherTemp: c.teacherTemp,
    teacherPatchTemp: c.teacherPatchTemp,
    center: E.fromArray(c.center, [1, c.K]),
    center2: E.fromArray(c.center2, [1, 1, c.K]),
  };
}

test.run();
