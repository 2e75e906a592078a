// The size check before training (train/preflight.ts): its largest tensor is the largest buffer a real
// step asks the engine for (the runtime records it), on random small configurations of every phase and
// objective; a configuration too large for the adapter is refused before anything is written, with
// the largest batch that fits, and that batch passes.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { preset, validateConfig, type TrainConfig } from '../../train/config.js';
import { NORMALIZATION, SyntheticGlyphs } from '../../train/data/index.js';
import { checkForwardBatch, checkStepSizes, largestStepTensor, stepMemoryLowerBound } from '../../train/preflight.js';
import type { DataSplits } from '../../train/sources.js';
import { cropLoader, modelsFor, recordStep, updateStep } from '../../train/trainer.js';
import { gpu } from '../helpers/check.js';
import { smkdChild } from './run-dir-helpers.js';

const test = suite('preflight');
test.before(gpu);

const ds = new SyntheticGlyphs({ classes: { train: 8, val: 2, test: 2 }, imagesPerClass: 4 });

/** A random small configuration: any phase and objective, shapes that are not multiples of anything. */
function randomConfig(rng: E.Rng): TrainConfig {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.random() * xs.length)];
  const phase = pick([1, 2] as const);
  const p = pick([4, 5, 8]);
  const [classes, perClass] = [pick([2, 3, 5]), pick([2, 3])];
  const base = preset('tiny', phase);
  return validateConfig({
    ...base,
    objective: pick(['smkd', 'smkd', 'ce'] as const),
    workers: 0,
    model: { ...base.model, patchSize: p, embedDim: pick([16, 24, 48]), numHeads: 2, depth: 1 },
    head: { ...base.head, hiddenDim: pick([16, 64, 200]), bottleneckDim: pick([8, 32]), outDim: pick([32, 300, 1000]) },
    crops: { ...base.crops, global: pick([1, 2, 3]), local: pick([0, 1, 3]), globalSize: p * pick([3, 5, 7, 9]), localSize: p * pick([1, 2, 3]) },
    batch: phase === 2 ? { ...base.batch, sampler: 'pk', size: classes * perClass, classes, perClass } : { ...base.batch, sampler: 'uniform', size: pick([3, 5, 7]) },
  });
}

/** The largest buffer one real training step of `cfg` asks for, and the most bytes live at once from the models' making to the step's end. */
async function largestOfAStep(cfg: TrainConfig): Promise<{ bytes: number; label: string; patch: number; peak: number }> {
  const pool = E.rt().pool;
  const before = pool.getStats().liveBytes;
  pool.resetPeak();
  const models = modelsFor(cfg, ds.classes.length);
  const opt = new E.AdamW(models.student.arena);
  const loader = cropLoader(cfg, { train: ds, normalize: NORMALIZATION.imagenet } as unknown as DataSplits, 0);
  const batch = await loader.batchAt(0);
  await loader.close();
  const runtime = E.rt();
  runtime.largestAllocation = { bytes: 0, label: '' };
  const losses = E.tidy(() => recordStep(models, batch, cfg, { teacher: 0.04, patch: 0.04 }, 0, { initCenters: true }));
  updateStep(models, opt, { lr: 1e-3, weightDecay: 0.04, momentum: 0.99, clip: 3, freezeLastLayer: false });
  const patch = losses.patch ? await losses.patch.item() : 0;
  assert.ok(Number.isFinite(await losses.total.item()));
  const peak = pool.getStats().peakLiveBytes - before;
  for (const t of Object.values(losses)) t.dispose();
  models.dispose();
  return { ...runtime.largestAllocation, patch, peak };
}

test("the estimate is the largest buffer of a real step, or at most 6 % above it (the arena's alignment); the memory bound is below the step's peak", async () => {
  const rng = new E.Rng(2026);
  for (let i = 0; i < 6; i++) {
    const cfg = randomConfig(rng);
    const real = await largestOfAStep(cfg);
    const est = largestStepTensor(cfg, ds.classes.length);
    const where = `phase ${cfg.phase} ${cfg.objective}, G ${cfg.crops.global}, ${cfg.crops.globalSize} px / ${cfg.model.patchSize}: real ${real.bytes} (${real.label}), estimate ${est.bytes} (${est.what})`;
    assert.ok(est.bytes >= real.bytes && est.bytes <= 1.06 * real.bytes, where);
    // The memory bound is a lower bound of the real peak (which at these small sizes is mostly pool rounding and small tensors).
    const bound = stepMemoryLowerBound(cfg, ds.classes.length);
    assert.ok(bound <= real.peak, `${where}: memory lower bound ${bound}, peak ${real.peak}`);
  }
});

test('phase 2 with one global crop: the patch term (pairs of different views) is 0, not a crash', async () => {
  const base = preset('tiny', 2);
  const cfg = validateConfig({ ...base, workers: 0, model: { ...base.model, depth: 1 }, crops: { ...base.crops, global: 1, local: 1 } });
  assert.is((await largestOfAStep(cfg)).patch, 0);
});

test('too large for the adapter: refused naming the tensor, the settings and the limit, with the largest batch that fits', () => {
  const base = preset('tiny', 1);
  const cfg = validateConfig({ ...base, crops: { ...base.crops, globalSize: 256, localSize: 64 }, batch: { ...base.batch, size: 64, sampler: 'uniform' } });
  const limits = { maxStorageBufferBindingSize: 128 * 1024 * 1024, maxBufferSize: 4 * 1024 ** 3 };
  assert.throws(
    () => checkStepSizes(cfg, limits, 'runs/x'),
    (e: Error) =>
      /^runs\/x: one training step would need 512 MiB for the MLP's hidden activations of the 128 global crops \(4097 tokens, width 256\), more than this adapter's largest storage buffer \(128 MiB\); with batch\.size 64, 256-px global crops at patch 4, embedDim 64, depth 4, at most batch\.size 15 fits$/.test(
        e.message,
      ),
  );
  checkStepSizes({ ...cfg, batch: { ...cfg.batch, size: 15 } }, limits);
  assert.throws(() => checkStepSizes({ ...cfg, batch: { ...cfg.batch, size: 16 } }, limits), /at most batch\.size 15 fits/);
  // The P x K sampler: whole classes.
  const p2 = validateConfig({ ...preset('tiny', 2), crops: { ...base.crops, globalSize: 128, localSize: 32 }, batch: { size: 64, sampler: 'pk', classes: 32, perClass: 2 } });
  assert.throws(() => checkStepSizes(p2, limits), /at most batch\.size (\d+) \(batch\.classes (\d+) x 2\) fits$/);
  const fits = Number(
    /at most batch\.size (\d+)/.exec(
      (() => {
        try {
          checkStepSizes(p2, limits);
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })(),
    )![1],
  );
  checkStepSizes({ ...p2, batch: { ...p2.batch, size: fits, classes: fits / 2 } }, limits);
  assert.throws(() => checkStepSizes({ ...p2, batch: { ...p2.batch, size: fits + 2, classes: fits / 2 + 1 } }, limits));
  // The machine's memory: 1.5 GiB holds no batch of 200 at depth 16 (each buffer would fit), at most the batch named.
  const deep = validateConfig({
    ...base,
    model: { ...base.model, depth: 16 },
    crops: { ...base.crops, globalSize: 64, localSize: 32 },
    batch: { ...base.batch, size: 200, sampler: 'uniform' },
  });
  const memMessage = (() => {
    try {
      checkStepSizes(deep, limits, 'runs/y', 1.5 * 1024 ** 3);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  assert.match(
    memMessage,
    /^runs\/y: one training step would need at least \d+\.\d GiB of memory .* more than this machine's 1\.5 GiB, where a software adapter keeps its buffers; with batch\.size 200, .* depth 16, at most batch\.size (\d+) fits$/,
    memMessage,
  );
  const memFits = Number(/at most batch\.size (\d+)/.exec(memMessage)![1]);
  assert.ok(stepMemoryLowerBound({ ...deep, batch: { ...deep.batch, size: memFits } }) <= 1.5 * 1024 ** 3);
  assert.ok(stepMemoryLowerBound({ ...deep, batch: { ...deep.batch, size: memFits + 1 } }) > 1.5 * 1024 ** 3);
  // Not even the smallest batch.
  const huge = validateConfig({ ...base, model: { ...base.model, patchSize: 1 }, crops: { ...base.crops, globalSize: 512, localSize: 64 } });
  assert.throws(() => checkStepSizes(huge, limits), /not even batch\.size 1 fits: use smaller crops \(crops\.globalSize\), a larger patch/);
});

test('smkd train with a step too large for this adapter is refused before the run folder is made', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'preflight-'));
  try {
    const cfg = path.join(dir, 'big.json');
    await writeFile(cfg, JSON.stringify({ data: { imageSize: 256 }, crops: { globalSize: 256, localSize: 64 }, batch: { size: 64, sampler: 'uniform' } }));
    const limit = E.rt().device.limits.maxStorageBufferBindingSize;
    const run = path.join(dir, 'run');
    const r = await smkdChild(['train', '--preset', 'tiny', '--phase', '1', '--config', cfg, '--out', run], path.join(dir, 'log')).exited;
    if (limit >= 512 * 1024 * 1024) return; // an adapter with larger buffers trains it
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /one training step would need 512 MiB for the MLP's hidden activations .* at most batch\.size \d+ fits/);
    assert.not.ok(existsSync(run), 'the refused run left its folder');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an inference batch too large for the adapter: refused with the batch that fits, which passes', () => {
  const vit = { embedDim: 64, patchSize: 7, mlpRatio: 4 };
  const limits = { maxStorageBufferBindingSize: 128 * 1024 * 1024, maxBufferSize: 4 * 1024 ** 3 };
  // 28 px at patch 7: 17 tokens x 256 x 4 bytes = 17,408 bytes an image; 128 MiB holds 7,710.
  checkForwardBatch(vit, 7710, 28, limits);
  assert.throws(
    () => checkForwardBatch(vit, 7711, 28, limits),
    /^a batch of 7711 images of 28 px needs 128 MiB .* \(17 tokens each, width 256\), .*: at most 7710 images per batch fit \(--batch-size 7710\)$/,
  );
  assert.throws(() => checkForwardBatch(vit, 2, 1024 * 8, limits), /not even one image fits/);
});

test('smkd embed of images too large for one batch is refused before any forward, with the batch size that fits', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'preflight-'));
  try {
    if (E.rt().device.limits.maxStorageBufferBindingSize >= 256 * 1024 * 1024) return; // an adapter with larger buffers runs it
    const out = path.join(dir, 'e.safetensors');
    // 10 images at 1024 px, patch 7: 21,317 tokens each, 21.8 MB of MLP activations an image.
    const r = await smkdChild(['embed', 'examples/omniglot-classify', '--image-size', '1024', '-o', out], path.join(dir, 'log')).exited;
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /a batch of 10 images of 1024 px needs 208 MiB .*: at most 6 images per batch fit \(--batch-size 6\)/);
    assert.not.ok(existsSync(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
