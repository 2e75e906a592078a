// The training step learns: on one fixed batch with a frozen teacher (momentum 1), a few steps of
// either phase, and of the cross-entropy baseline, lower that batch's loss. A wrong-signed or
// missing gradient anywhere on the student path makes the loss stay flat or rise.
import { suite } from 'uvu';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as E from '../../engine/index.js';
import { preset, validateConfig, type TrainConfig } from '../../train/config.js';
import { MultiCropLoader, NORMALIZATION, SyntheticGlyphs, type CropBatch } from '../../train/data/index.js';
import { modelsFor, recordStep, train, updateStep } from '../../train/trainer.js';
import { gpu } from '../helpers/check.js';

const test = suite('learning');
test.before(gpu);

const ds = new SyntheticGlyphs({ classes: { train: 4, val: 2, test: 2 }, imagesPerClass: 4 });

function config(phase: 1 | 2, objective: 'smkd' | 'ce' = 'smkd', supervisedCe = 0): TrainConfig {
  const base = preset('tiny', phase);
  return validateConfig({
    ...base,
    objective,
    workers: 0,
    model: { ...base.model, depth: 2 },
    batch: { ...base.batch, size: 4, classes: 2, perClass: 2 },
    loss: { ...base.loss, supervisedCe },
  });
}

async function fixedBatch(cfg: TrainConfig): Promise<CropBatch> {
  const loader = new MultiCropLoader(ds, {
    batchSize: 4,
    globalCrops: 2,
    localCrops: cfg.objective === 'ce' ? 0 : 2,
    globalSize: 32,
    localSize: 16,
    patchSize: 4,
    sampler: cfg.batch.sampler,
    imagesPerClass: 2,
    itersPerEpoch: 10,
    normalize: NORMALIZATION.imagenet,
    workers: 0,
    mask: { ratios: cfg.masking.ratios, ratioVar: cfg.masking.ratioVar },
  });
  const b = await loader.batchAt(0);
  await loader.close();
  return b;
}

async function lossesOver(cfg: TrainConfig, steps: number): Promise<number[]> {
  const models = modelsFor(cfg, ds.classes.length);
  const opt = new E.AdamW(models.student.arena);
  const batch = await fixedBatch(cfg);
  const out: number[] = [];
  for (let it = 0; it < steps; it++) {
    const losses = E.tidy(() => recordStep(models, batch, cfg, { teacher: 0.04, patch: 0.04 }, it, { initCenters: it === 0 }));
    // Momentum 1: the teacher (the targets) stays put; centres converge to the fixed batch's mean.
    updateStep(models, opt, { lr: 1e-3, weightDecay: 0, momentum: 1, clip: 3, freezeLastLayer: false });
    out.push(await losses.total.item());
    for (const t of Object.values(losses)) t.dispose();
  }
  models.dispose();
  return out;
}

for (const [name, cfg] of [
  ['phase 1 (iBOT)', config(1)],
  ['phase 2 (SMKD)', config(2)],
  ['cross-entropy baseline', config(1, 'ce')],
  ['phase 2 with the supervised CE term', config(2, 'smkd', 1)],
] as const) {
  test(`${name}: the loss of a fixed batch falls`, async () => {
    const l = await lossesOver(cfg, 10);
    if (l.some((v) => !Number.isFinite(v))) throw new Error(`non-finite loss: ${l}`);
    // The cross-entropy to a fixed teacher is bounded below by the teacher's entropy, so only part of it can go.
    const falling = l[9] < 0.93 * l[0] && l[9] < l[6] && l[6] < l[3];
    if (!falling) throw new Error(`${name}: the loss did not fall steadily: ${l.map((v) => v.toFixed(4)).join(', ')}`);
  });
}

test("the reference code's supervised CE term (docs/algorithm.md §5.7): the total is the distillation terms plus its weight times the cross-entropy, which starts at ln(classes)", async () => {
  for (const phase of [1, 2] as const) {
    const cfg = config(phase, 'smkd', 0.5);
    const models = modelsFor(cfg, ds.classes.length);
    const batch = await fixedBatch(cfg);
    const losses = E.tidy(() => recordStep(models, batch, cfg, { teacher: 0.04, patch: 0.04 }, 0, { initCenters: true }));
    const v = Object.fromEntries(await Promise.all(Object.entries(losses).map(async ([k, t]) => [k, await t.item()] as const)));
    for (const t of Object.values(losses)) t.dispose();
    models.student.arena.zeroGrad();
    models.dispose();
    const distill = phase === 1 ? v.cls + v.mim : v.cls + v.patch;
    if (Math.abs(v.total - (distill + 0.5 * v.ce)) > 1e-4 * Math.abs(v.total)) throw new Error(`phase ${phase}: total ${v.total} is not ${distill} + 0.5 x ${v.ce}`);
    // timm's classifier starts with weights of std 0.02: near-uniform logits over the training classes.
    if (Math.abs(v.ce - Math.log(ds.classes.length)) > 0.05) throw new Error(`phase ${phase}: initial cross-entropy ${v.ce}, expected about ln ${ds.classes.length}`);
  }
});

test("lrScaling 'linear' scales the peak learning rate by batch / 256 (docs/algorithm.md §7.3)", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lr-'));
  try {
    const peaks: number[] = [];
    for (const lrScaling of ['none', 'linear'] as const) {
      const base = config(1);
      const cfg = validateConfig({
        ...base,
        out: path.join(dir, lrScaling),
        model: { ...base.model, depth: 1 },
        schedule: { ...base.schedule, lrScaling, epochs: 2, itersPerEpoch: 2, warmupEpochs: 1, warmupTeacherTempEpochs: 1 },
      });
      // The warm-up ends at iteration 1 (one epoch of 2 iterations) on the peak.
      let peak = 0;
      const r = await train(cfg, { log: () => {}, onStep: (m) => (peak = m.iteration === 1 ? m.lr : peak) });
      r.models.dispose();
      peaks.push(peak);
    }
    const want = [5e-4, (5e-4 * 4) / 256];
    peaks.forEach((p, i) => {
      if (Math.abs(p - want[i]) > 1e-12) throw new Error(`peak lr ${p}, expected ${want[i]}`);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
