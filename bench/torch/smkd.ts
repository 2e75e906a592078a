// One SMKD iteration of a trainer preset in PyTorch (bench/torch/smkd_step.py): our student, teacher,
// centres and AdamW state written to its process, with the fixed batch and schedule values of the
// bench case, or with what its own loader needs for the end-to-end loop (bench/torch/omniglot_loader.py).
import { AdamW, type NamedArray } from '../../engine/index.js';
import type { StudentTeacher } from '../../model/smkd.js';
import { resolveConfig, type TrainConfig } from '../../train/config.js';
import type { CropBatch } from '../../train/data/index.js';
import type { Normalization } from '../../train/data/dataset.js';
import { packDir, packFiles } from '../../train/data/omniglot-pack.js';
import type { TrainingSchedule } from '../../train/schedules.js';
import { openSplits } from '../../train/sources.js';
import { modelsFor, trainingSchedule } from '../../train/trainer.js';
import type { Throughput } from '../profile.js';
import { startPeer, type TorchEnv, type TorchPeer } from './peer.js';
import { goldenVit, named } from './vit.js';

/** The schedule values of one iteration. */
export interface SmkdHyper {
  lr: number;
  weightDecay: number;
  momentum: number;
  teacherTemp: number;
  teacherPatchTemp: number;
}

/** A trainer schedule's values at iteration `it` (the temperatures follow the epoch). */
export function hyperAt(schedule: TrainingSchedule, it: number): SmkdHyper {
  const epoch = schedule.epochOf(it);
  return {
    lr: schedule.lr(it),
    weightDecay: schedule.weightDecay(it),
    momentum: schedule.momentum(it),
    teacherTemp: schedule.teacherTemp(epoch),
    teacherPatchTemp: schedule.teacherPatchTemp(epoch),
  };
}

const pyHyper = (h: SmkdHyper): Record<string, number> => ({
  lr: h.lr,
  weight_decay: h.weightDecay,
  momentum: h.momentum,
  teacher_temp: h.teacherTemp,
  teacher_patch_temp: h.teacherPatchTemp,
});

export interface SmkdPeerInputs {
  cfg: TrainConfig;
  models: StudentTeacher;
  optimizer: AdamW;
  /** Classes of the training split (the classifier of the CE term). */
  numClasses: number;
  /** The fixed batch of `step` and `agree`, with its iteration's schedule values. */
  fixed?: { batch: CropBatch; hyper: SmkdHyper };
  /** The end-to-end loop on the packed Omniglot subset: the loader's normalisation and the schedule of iterations 0 .. iterations - 1. */
  loop?: { normalize: Normalization; schedule: TrainingSchedule; iterations: number };
}

/** Concatenate equal-length views into one crop-major array. */
function stack<T extends Float32Array | Uint8Array>(views: T[], make: (n: number) => T): T {
  const out = make(views.reduce((n, v) => n + v.length, 0));
  views.forEach((v, i) => out.set(v, i * views[0].length));
  return out;
}

/** The loader settings bench/torch/omniglot_loader.py needs, after checking it can do what this config asks. */
function loopConfig(x: SmkdPeerInputs, loop: NonNullable<SmkdPeerInputs['loop']>): Record<string, unknown> {
  const { cfg } = x;
  const why = [
    cfg.data.kind !== 'omniglot' || cfg.data.path ? 'the packed Omniglot subset' : '',
    cfg.batch.sampler !== 'pk' ? 'the P x K sampler' : '',
    cfg.augment.kind !== 'strokes' ? 'stroke augmentation' : '',
    cfg.crops.local > 0 ? 'no local crops' : '',
    cfg.masking.shape !== 'block' || cfg.masking.predStartEpoch > 0 ? 'block masks from the first epoch' : '',
    cfg.crops.globalSize !== cfg.data.imageSize ? 'global crops of the image size' : '',
  ].filter(Boolean);
  if (why.length) throw new Error(`PyTorch peer: its loader knows ${why.join(', ')} only`);
  const files = packFiles(packDir(), cfg.data.imageSize);
  const its = Array.from({ length: loop.iterations }, (_, it) => pyHyper(hyperAt(loop.schedule, it)));
  return {
    pixels: files.pixels,
    meta: files.meta,
    num_classes: x.numClasses,
    normalize: { mean: [...loop.normalize.mean], std: [...loop.normalize.std] },
    classes: cfg.batch.classes,
    per_class: cfg.batch.perClass,
    G: cfg.crops.global,
    global_size: cfg.crops.globalSize,
    patch: cfg.model.patchSize,
    strokes: { rotation: cfg.augment.rotation, scale: cfg.augment.scale, shift: cfg.augment.shift },
    mask: { ratios: cfg.masking.ratios, ratio_var: cfg.masking.ratioVar },
    seed: cfg.seed,
    schedule: Object.fromEntries(Object.keys(its[0] ?? {}).map((k) => [k, its.map((h) => h[k])])),
  };
}

/** A PyTorch process holding our models as they are now (weights, centres, AdamW state). */
export async function torchSmkdStep(env: TorchEnv, x: SmkdPeerInputs): Promise<TorchPeer> {
  const { cfg, models, optimizer } = x;
  if (cfg.objective !== 'smkd') throw new Error(`PyTorch peer: objective '${cfg.objective}' is not implemented there`);
  const student = await models.student.arena.stateDict();
  const teacher = await models.teacher.arena.stateDict();
  const adam = await optimizer.stateDict();
  const entries = models.student.arena.entries;
  const tensors: [string, NamedArray][] = [];
  for (const e of entries) tensors.push([`student.${e.name}`, { data: student.get(e.name)!, shape: e.shape }]);
  for (const e of models.teacher.arena.entries) tensors.push([`teacher.${e.name}`, { data: teacher.get(e.name)!, shape: e.shape }]);
  tensors.push(['center', await named(models.center)], ['center2', await named(models.center2)]);
  for (const e of entries) {
    if (!adam.step.get(e.name)) continue;
    tensors.push([`exp_avg.${e.name}`, { data: adam.exp_avg.get(e.name)!, shape: [e.size] }], [`exp_avg_sq.${e.name}`, { data: adam.exp_avg_sq.get(e.name)!, shape: [e.size] }]);
  }
  if (x.fixed) {
    const { batch } = x.fixed;
    const G = batch.globals.length;
    const B = batch.labels.length;
    const S = cfg.crops.globalSize;
    if (batch.locals.length) throw new Error('PyTorch peer: local crops are not implemented there');
    tensors.push(
      ['in.globals', { data: stack(batch.globals, (n) => new Float32Array(n)), shape: [G * B, 3, S, S] }],
      ['in.masks', { data: stack(batch.masks, (n) => new Uint8Array(n)), shape: [G * B, batch.masks[0].length / B], dtype: 'BOOL' }],
      ['in.labels', { data: BigInt64Array.from(batch.labels, (l) => BigInt(l)), shape: [B] }],
    );
  }
  const l = cfg.loss;
  return startPeer(env, 'smkd-step', tensors, {
    phase: cfg.phase,
    vit: goldenVit(models.student.backbone.config),
    G: cfg.crops.global,
    params: entries.map((e) => ({ name: e.name, trainable: e.requiresGrad, decay: e.decay })),
    adam_steps: Object.fromEntries(adam.step),
    loss: { lambda1: l.lambda1, lambda2: l.lambda2, lambda3: l.lambda3, patch_weighting: l.patchWeighting, supervised_ce: l.supervisedCe },
    student_temp: cfg.schedule.studentTemp,
    center_momentum: cfg.schedule.centerMomentum,
    clip: cfg.schedule.clipGrad,
    ...(x.fixed ? { hyper: pyHyper(x.fixed.hyper) } : {}),
    ...(x.loop ? { loop: loopConfig(x, x.loop) } : {}),
  });
}

/**
 * PyTorch's end-to-end crops/s on a preset's training loop (its loader, augmentation and masks in
 * Python, then the step; timed in the process by time.perf_counter), the counterpart of bench/profile.ts
 * measureThroughput: the same preset and phase, fresh models from the same seed, iterations 0.. of the
 * same schedule, `warmup` iterations untimed first.
 */
export async function torchThroughput(env: TorchEnv, which: 'omniglot' | 'omniglot-phase1', iterations = 20, warmup = 2): Promise<Throughput> {
  const cfg = await resolveConfig('omniglot', which === 'omniglot' ? 2 : 1, undefined, {});
  const splits = await openSplits(cfg.data, cfg.seed);
  const numClasses = splits.train.classes.length;
  const models = modelsFor(cfg, numClasses);
  const optimizer = new AdamW(models.student.arena);
  try {
    const loop = { normalize: splits.normalize, schedule: trainingSchedule(cfg), iterations: warmup + iterations };
    const peer = await torchSmkdStep(env, { cfg, models, optimizer, numClasses, loop });
    try {
      const r = await peer.request<{ seconds: number; crops: number }>({ cmd: 'loop', warmup, n: iterations });
      return {
        step: which,
        describe: `PyTorch ${env.torch} (CPU, ${env.threads} threads): SMKD phase ${cfg.phase} iteration of preset 'omniglot' (batch ${cfg.batch.size}, ${cfg.crops.global} global crops of ${cfg.crops.globalSize} px; its own loader, augmentation and masks in the same process)`,
        iterations,
        seconds: r.seconds,
        cropsPerSecond: r.crops / r.seconds,
        msPerStep: (1000 * r.seconds) / iterations,
      };
    } finally {
      await peer.close();
    }
  } finally {
    models.dispose();
  }
}
