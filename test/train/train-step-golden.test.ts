// One whole phase-2 step against PyTorch (train_step.safetensors): loss, every gradient, clipping,
// AdamW from a fresh state, EMA, centres — through the trainer's own step functions.
import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import type { HostTensor } from '../../engine/nn/module.js';
import { vitConfig } from '../../model/configs.js';
import { StudentTeacher } from '../../model/smkd.js';
import { preset, validateConfig } from '../../train/config.js';
import { recordStep, updateStep } from '../../train/trainer.js';
import { close, gpu } from '../helpers/check.js';
import { Golden, needsGolden, type VitMeta, type HeadMeta } from '../helpers/golden.js';

const test = suite('train step golden');
test.before(gpu);
const golden = needsGolden(test, 'train_step.safetensors');

function views(all: Float32Array, count: number): Float32Array[] {
  const per = all.length / count;
  return Array.from({ length: count }, (_, v) => all.slice(v * per, (v + 1) * per));
}

golden('a phase-2 step matches PyTorch: loss, gradients, clip factors, AdamW, EMA, centres', async () => {
  const g = await Golden.load('train_step.safetensors');
  const vm = g.meta<VitMeta>('vit');
  const hm = g.meta<HeadMeta>('head');
  const labels = Int32Array.from(g.ints('in.labels'));
  const B = labels.length;
  const [GB, , S] = g.shape('in.global_crops');
  const [LB, , s] = g.shape('in.local_crops');
  const G = GB / B;
  const L = LB / B;
  const vit = vitConfig('tiny', {
    imgSize: vm.img_size,
    patchSize: vm.patch_size,
    embedDim: vm.embed_dim,
    depth: vm.depth,
    numHeads: vm.num_heads,
    mlpRatio: vm.mlp_ratio,
    lnEps: vm.ln_eps,
  });
  const models = new StudentTeacher({ vit, head: { hiddenDim: hm.hidden_dim, bottleneckDim: hm.bottleneck_dim, outDim: hm.out_dim, normLastLayer: hm.norm_last_layer } });
  const load = (m: StudentTeacher['student'], prefix: string): void => {
    const w = new Map<string, HostTensor>();
    for (const e of m.arena.entries) w.set(e.name, { data: g.f32(`${prefix}.${e.name}`), shape: g.shape(`${prefix}.${e.name}`) });
    m.loadStateDict(w);
  };
  load(models.student, 'student');
  load(models.teacher, 'teacher');
  E.assign(models.center, E.fromArray(g.f32('in.center'), models.center.shape));
  E.assign(models.center2, E.fromArray(g.f32('in.center2'), models.center2.shape));
  const base = preset('tiny', 2);
  const cfg = validateConfig({
    ...base,
    crops: { ...base.crops, global: G, local: L, globalSize: S, localSize: s },
    loss: { ...base.loss, lambda1: g.scalar('in.lambda1'), lambda2: g.scalar('in.lambda2'), lambda3: g.scalar('in.lambda3'), patchWeighting: 'uniform' },
    schedule: { ...base.schedule, studentTemp: g.scalar('in.student_temp'), centerMomentum: g.scalar('in.center_momentum') },
  });
  const masks = g.ints('in.masks');
  const batch = {
    globals: views(g.f32('in.global_crops'), G),
    locals: views(g.f32('in.local_crops'), L),
    labels,
    masks: views(Float32Array.from(masks), G).map((m) => Uint8Array.from(m)),
    indices: Int32Array.from(labels.keys()),
  };
  const losses = E.tidy(() => recordStep(models, batch, cfg, { teacher: g.scalar('in.teacher_temp'), patch: g.scalar('in.teacher_patch_temp') }, g.scalar('in.iteration')));
  for (const [k, key] of [
    ['total', 'out.loss'],
    ['cls', 'out.loss_cls'],
    ['patch', 'out.loss_patch'],
  ] as const) {
    const got = await losses[k]!.item();
    const want = g.scalar(key);
    if (Math.abs(got - want) > 1e-4 * Math.abs(want)) throw new Error(`${key}: ${got} vs ${want}`);
  }
  const grads = await models.student.arena.grads.read();
  for (const [name, got] of grads) {
    const want = g.f32(`out.grad.${name}`);
    // The key slice of qkv.bias has an exactly-zero gradient: judge that tensor by its norm (README).
    const norm = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((t, v) => t + v * v, 0));
    const diff = Float64Array.from(got, (v, i) => v - want[i]);
    if (norm(diff) > 1e-3 * norm(want) + 1e-9) throw new Error(`grad ${name}: ‖a − b‖/‖b‖ = ${(norm(diff) / norm(want)).toExponential(2)}`);
    if (!name.includes('attn.qkv.bias')) close(got, want, 1e-3, `grad ${name}`);
  }
  close(await models.center.toArray(), g.f32('out.center'), 1e-4, 'centre');
  close(await models.center2.toArray(), g.f32('out.center2'), 1e-4, 'centre2');
  const clip = updateStep(models, new E.AdamW(models.student.arena), {
    lr: g.scalar('in.lr'),
    weightDecay: g.scalar('in.weight_decay'),
    momentum: g.scalar('in.momentum'),
    clip: g.scalar('in.clip_grad'),
    freezeLastLayer: g.scalar('in.epoch') < g.scalar('in.freeze_last_layer'),
  })!;
  const factors = await clip.factors.toArray();
  models.student.arena.entries.forEach((e, i) => {
    const want = g.scalar(`out.clip_scale.${e.name}`);
    if (Math.abs(factors[i] - want) > 1e-3 * want) throw new Error(`clip factor ${e.name}: ${factors[i]} vs ${want}`);
  });
  // Element-wise bounds of the README: AdamW's first step moves each weight by about ±lr, so the
  // sign of a gradient at float-noise level decides the direction.
  const lr = g.scalar('in.lr');
  const m = g.scalar('in.momentum');
  const after = await models.student.arena.stateDict();
  for (const [name, got] of after) {
    const want = g.f32(`out.student.${name}`);
    const grad = g.f32(`out.grad.${name}`);
    const scale = g.scalar(`out.clip_scale.${name}`);
    got.forEach((v, i) => {
      const tol = Math.abs(grad[i] * scale) >= 1e-5 ? 1e-3 * lr + 1e-6 * Math.abs(want[i]) : 2 * lr + 1e-6 * Math.abs(want[i]);
      if (Math.abs(v - want[i]) > tol) throw new Error(`student ${name}[${i}]: ${v} vs ${want[i]} (tol ${tol})`);
    });
  }
  const teacher = await models.teacher.arena.stateDict();
  for (const [name, got] of teacher) {
    const want = g.f32(`out.teacher.${name}`);
    got.forEach((v, i) => {
      if (Math.abs(v - want[i]) > 2 * (1 - m) * lr + 1e-6 * Math.abs(want[i])) throw new Error(`teacher ${name}[${i}]: ${v} vs ${want[i]}`);
    });
  }
  models.dispose();
});

test.run();
