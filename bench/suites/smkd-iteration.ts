// One SMKD iteration of the 'omniglot' trainer preset, ours against PyTorch: train/trainer.ts recordStep +
// updateStep (teacher and student forwards, the phase's loss with the supervised cross-entropy term,
// centre update, backward, per-tensor clipping, AdamW, teacher EMA) on a fixed batch of the preset's
// loader, as bench/profile.ts's step runs it; PyTorch (bench/torch/smkd_step.py) from the same student,
// teacher, centres, AdamW state and batch. Part of the trainingStep suite.
import { AdamW, tidy, type Tensor } from '../../engine/index.js';
import { preset, validateConfig, type TrainConfig } from '../../train/config.js';
import { openSplits } from '../../train/sources.js';
import { cropLoader, LOSS_TERMS, modelsFor, recordStep, trainingSchedule, updateStep, type StepLosses } from '../../train/trainer.js';
import { compareArrays } from '../agree.js';
import type { BenchCase, Instance, Sizes, Variant } from '../case.js';
import { hyperAt, torchSmkdStep } from '../torch/smkd.js';

/** Steps compared with PyTorch: the first is the brief's (same weights), the second checks the update (clipping, AdamW, EMA, centres). */
const AGREE_STEPS = 2;
const TOLERANCE = 1e-4;
/** make_golden.py's looped patch term against the batched one the peer times (same maths, float32 order). */
const PATCH_TOLERANCE = 1e-5;

/** The preset's config, or a much smaller model and batch on the same data for the smoke test. */
export function smkdConfig(phase: 1 | 2, sizes: Sizes): TrainConfig {
  const base = preset('omniglot', phase);
  if (sizes === 'full') return base;
  return validateConfig({
    ...base,
    model: { ...base.model, embedDim: 16, depth: 1, numHeads: 2 },
    head: { ...base.head, hiddenDim: 24, bottleneckDim: 8, outDim: 37 },
    batch: { ...base.batch, size: 8, classes: 4, perClass: 2 },
  });
}

/** Forward FLOPs of backbone and head (matmuls and attention) on the G·B global crops, x4: the teacher's forward, the student's forward and backward. */
function iterationFlops(cfg: TrainConfig): number {
  const { embedDim: D, depth, patchSize: p } = cfg.model;
  const Np = (cfg.crops.globalSize / p) ** 2;
  const T = Np + 1;
  const { hiddenDim: hd, bottleneckDim: bn, outDim: K } = cfg.head;
  const perCrop = 2 * Np * 3 * p * p * D + depth * (2 * T * D * 12 * D + 4 * T * T * D) + 2 * T * (D * hd + hd * hd + hd * bn + bn * K);
  return 4 * cfg.crops.global * cfg.batch.size * perCrop;
}

function describe(cfg: TrainConfig, sizes: Sizes): string {
  const m = cfg.model;
  const loss = cfg.phase === 1 ? 'iBOT' : 'SMKD cls + patch';
  const what = `batch ${cfg.batch.size}, ${cfg.crops.global} crops of ${cfg.crops.globalSize} px, patch ${m.patchSize}, dim ${m.embedDim}, depth ${m.depth}, head out ${cfg.head.outDim}; ${loss}${cfg.loss.supervisedCe > 0 ? ' + CE' : ''}`;
  return sizes === 'full' ? `SMKD phase ${cfg.phase} iteration, preset 'omniglot' (${what})` : `reduced SMKD phase ${cfg.phase} iteration on the omniglot data (${what})`;
}

function smkdCase(phase: 1 | 2, sizes: Sizes): BenchCase {
  const cfg = smkdConfig(phase, sizes);
  return {
    suite: 'trainingStep',
    name: describe(cfg, sizes),
    work: { flops: iterationFlops(cfg) },
    quick: true,
    // A step of 0.05-0.3 s: batches of several steps per sample, like the kernels.
    heavy: false,
    torch:
      "bench/torch/smkd_step.py: make_golden.py's backbone_forward, head_forward, ibot_loss / smkd_cls_loss, update_centers, Optimiser (per-tensor clipping, torch.optim.AdamW) and EMA; the patch term batched",
    async setup(): Promise<Instance> {
      const splits = await openSplits(cfg.data, cfg.seed);
      const numClasses = splits.train.classes.length;
      const models = modelsFor(cfg, numClasses);
      const optimizer = new AdamW(models.student.arena);
      const schedule = trainingSchedule(cfg);
      // The first iteration after the one-epoch warm-up: the peak learning rate, so the update is a real one.
      const it = cfg.schedule.itersPerEpoch;
      const loader = cropLoader(cfg, splits, 0);
      const batch = await loader.batchAt(it).finally(() => loader.close());
      const hyper = hyperAt(schedule, it);
      /** recordStep + updateStep, as bench/profile.ts's step (the last layer not frozen). */
      const iteration = (): StepLosses => {
        const losses = recordStep(models, batch, cfg, { teacher: hyper.teacherTemp, patch: hyper.teacherPatchTemp }, it);
        const clip = updateStep(models, optimizer, { lr: hyper.lr, weightDecay: hyper.weightDecay, momentum: hyper.momentum, clip: cfg.schedule.clipGrad, freezeLastLayer: false });
        clip?.dispose();
        return losses;
      };
      const fused: Variant = {
        step: () => {
          const l = iteration();
          return [l.total, ...LOSS_TERMS.filter((n) => l[n]).map((n) => l[n]!)];
        },
      };
      return {
        fused,
        async torch(env) {
          const peer = await torchSmkdStep(env, { cfg, models, optimizer, numClasses, fixed: { batch, hyper } });
          return {
            run: (n) => peer.steps(n),
            async agree() {
              // Same student, teacher, centres and AdamW state: every loss term of each step (before its update) must agree.
              const ours: Record<string, number>[] = [];
              for (let k = 0; k < AGREE_STEPS; k++) {
                const l = tidy(() => {
                  const s = iteration();
                  return { total: s.total, ...Object.fromEntries(LOSS_TERMS.filter((n) => s[n]).map((n) => [n, s[n]!])) } as Record<string, Tensor>;
                });
                const values: Record<string, number> = {};
                for (const [n, t] of Object.entries(l)) {
                  values[n] = await t.item();
                  t.dispose();
                }
                ours.push(values);
              }
              const theirs = await peer.agree(AGREE_STEPS);
              const labels: string[] = [];
              const a: Float64Array[] = [];
              const b: Float64Array[] = [];
              ours.forEach((o, k) => {
                for (const n of Object.keys(o)) {
                  if (!(n in theirs.losses[k])) throw new Error(`PyTorch peer: no '${n}' term (it gave ${Object.keys(theirs.losses[k]).join(', ')})`);
                  labels.push(`step ${k + 1} ${n}`);
                  a.push(Float64Array.of(theirs.losses[k][n]));
                  b.push(Float64Array.of(o[n]));
                }
              });
              const values = Object.entries(ours[0])
                .map(([n, v]) => `${n} ${v.toPrecision(6)}`)
                .join(', ');
              const c = compareArrays(labels, a, b, TOLERANCE);
              const r = { ...c, detail: `${c.detail} (ours, step 1: ${values})` };
              const patch = theirs.checks?.patch_vs_make_golden;
              if (patch === undefined) return r;
              return { ...r, ok: r.ok && patch <= PATCH_TOLERANCE, detail: `${r.detail}; PyTorch's batched patch term against make_golden's loop ${patch.toExponential(1)}` };
            },
            dispose: () => peer.close(),
          };
        },
        dispose: () => models.dispose(),
      };
    },
  };
}

export function smkdIterationCases(sizes: Sizes): BenchCase[] {
  return [smkdCase(1, sizes), smkdCase(2, sizes)];
}
