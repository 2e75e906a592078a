// The training configuration: one schema (zod) for config files and the command line, with the
// presets of docs/algorithm.md §10.2. An unknown or mistyped key is an error that names it.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { FEATURE_KINDS, type FeatureKind } from './feature-options.js';

const pair = z.tuple([z.number(), z.number()]);
// Upper bounds refuse, before any allocation, sizes that would take the machine's memory before anything
// fails (a 4102-px crop reached 13 GB, 1000 workers 7 GB and 578 threads, embedDim 1e6 46 s and 2.5 GB).
/** Image and crop sides: 1024 px is past any ViT recipe here (224 is the paper's) and fits the GPU limits. */
const MAX_SIDE = 1024;
const SIDE_WHY = `at most ${MAX_SIDE} px`;
/** A channel mean, in [0, 1] units as the images are: well outside that is a typo. */
const mean = z.number().min(-10).max(10);
/** A channel std: below 1e-4 every input becomes ±1e4 and training or features break without a word. */
const std = z.number().min(1e-4, 'at least 1e-4 (a smaller std blows the inputs up by more than 1e4)').max(100);

/** The presets: `tiny` and `small` of docs/algorithm.md §10.2 (faithful to the reference code, for parity), and `omniglot`, the small-scale recipe (docs/omniglot-recipe.md). */
export const PRESETS = ['omniglot', 'tiny', 'small'] as const;
export type PresetName = (typeof PRESETS)[number];

export const TrainConfigSchema = z
  .object({
    phase: z.union([z.literal(1), z.literal(2)]),
    /** 'smkd': the distillation losses of the phase; 'ce': the supervised baseline, cross-entropy of a linear classifier on the [cls] token of the global crops. */
    objective: z.enum(['smkd', 'ce']),
    preset: z.enum(PRESETS),
    seed: z.number().int(),
    /** Data: 'synthetic' (built in), an image folder, Omniglot (split by alphabet; without a path, the subset packed in data/omniglot) or CIFAR-100 binary. */
    data: z
      .object({
        kind: z.enum(['synthetic', 'folder', 'omniglot', 'cifar-fs', 'fc100']),
        path: z.string().optional(),
        /**
         * Class-split files (one class per line) or top-level folders per split; for the packed Omniglot
         * subset, lists of its alphabets (an empty validation or test list: no evaluation on that split).
         */
        trainSplit: z.union([z.string(), z.array(z.string())]).optional(),
        valSplit: z.union([z.string(), z.array(z.string())]).optional(),
        testSplit: z.union([z.string(), z.array(z.string())]).optional(),
        /** Side the images are decoded to and kept at in memory. */
        imageSize: z.number().int().positive().max(MAX_SIDE, SIDE_WHY),
        invert: z.boolean(),
        /** Every training class also turned by 90°, 180° and 270°, each turn a class of its own (train/data/rotated-classes.ts). */
        rotatedClasses: z.boolean().default(false),
        /** Per-channel input normalisation; default the training split's statistics (a run writes them into its config.json). */
        normalize: z
          .object({ mean: z.tuple([mean, mean, mean]), std: z.tuple([std, std, std]) })
          .strict()
          .optional(),
      })
      .strict(),
    model: z
      .object({
        embedDim: z.number().int().positive().max(4096, 'at most 4096 (ViT-g is 1536)'),
        depth: z.number().int().positive().max(64, 'at most 64 blocks (ViT-g has 40)'),
        numHeads: z.number().int().positive().max(64, 'at most 64 heads'),
        patchSize: z.number().int().positive().max(MAX_SIDE, SIDE_WHY),
        dropPath: z.number().min(0).max(1),
      })
      .strict(),
    head: z
      .object({
        hiddenDim: z.number().int().positive().max(16384, 'at most 16384 (DINO uses 2048)'),
        bottleneckDim: z.number().int().positive().max(4096, 'at most 4096 (DINO uses 256)'),
        outDim: z.number().int().positive().max(262144, 'at most 262144 prototypes (DINO uses 65536)'),
        normLastLayer: z.boolean(),
      })
      .strict(),
    crops: z
      .object({
        global: z.number().int().min(1).max(8, 'at most 8 global crops'),
        local: z.number().int().min(0).max(64, 'at most 64 local crops'),
        globalSize: z.number().int().positive().max(MAX_SIDE, SIDE_WHY),
        localSize: z.number().int().positive().max(MAX_SIDE, SIDE_WHY),
        globalScale: pair,
        localScale: pair,
      })
      .strict(),
    /**
     * 'spec': the multi-crop pipelines of docs/algorithm.md §3.2 (random resized crops, flips, colour jitter, blur,
     * solarisation); 'strokes': random affine warps of the whole character for global crops and of a
     * window of it (side fraction `localWindow`) for local crops, for pen strokes (docs/omniglot-recipe.md).
     */
    augment: z
      .object({
        kind: z.enum(['spec', 'strokes']),
        /** Degrees, drawn from ±rotation. */
        rotation: z.number().nonnegative(),
        /** Scale drawn from 1 ± scale. */
        scale: z.number().min(0).max(0.9),
        /** Shift drawn from ± this fraction of the image side. */
        shift: z.number().nonnegative(),
        localWindow: pair,
      })
      .strict(),
    batch: z
      .object({
        size: z.number().int().positive().max(8192, 'at most 8192 images a step'),
        sampler: z.enum(['uniform', 'pk']),
        /** P x K sampler: classes per batch and images per class (size = P * K). */
        classes: z.number().int().positive(),
        perClass: z.number().int().positive(),
      })
      .strict(),
    schedule: z
      .object({
        epochs: z.number().int().positive(),
        /** Iterations per virtual epoch (docs/algorithm.md §10.1). */
        itersPerEpoch: z.number().int().positive(),
        lr: z.number().nonnegative(),
        /** 'linear': the peak lr is lr * batch / 256 (the rule the reference code's help text describes, docs/algorithm.md §11.11); 'none' (its code, default). */
        lrScaling: z.enum(['none', 'linear']),
        minLr: z.number().nonnegative(),
        warmupEpochs: z.number().nonnegative(),
        weightDecay: z.number().nonnegative(),
        weightDecayEnd: z.number().nonnegative(),
        momentumTeacher: z.number().min(0).max(1),
        clipGrad: z.number().nonnegative(),
        freezeLastLayer: z.number().int().nonnegative(),
        teacherTemp: z.number().positive(),
        warmupTeacherTemp: z.number().positive(),
        teacherPatchTemp: z.number().positive(),
        warmupTeacherPatchTemp: z.number().positive(),
        warmupTeacherTempEpochs: z.number().int().positive(),
        studentTemp: z.number().positive(),
        centerMomentum: z.number().min(0).max(1),
        /** Centres of a fresh run: 'zero' as the reference code, or 'batch': the first batch's mean teacher outputs (docs/algorithm.md §5.8). */
        centerInit: z.enum(['zero', 'batch']),
      })
      .strict(),
    loss: z
      .object({
        lambda1: z.number().nonnegative(),
        lambda2: z.number().nonnegative(),
        lambda3: z.number().nonnegative(),
        patchWeighting: z.enum(['uniform', 'weighted']),
        /** Weight of the reference code's optional supervised cross-entropy term (docs/algorithm.md §5.7; 0 there): a linear classifier on the student's [cls] token of the global crops. */
        supervisedCe: z.number().nonnegative(),
      })
      .strict(),
    masking: z
      .object({
        ratios: z.array(z.number()),
        ratioVar: z.array(z.number()),
        predStartEpoch: z.number().int().nonnegative(),
        shape: z.enum(['block', 'rand']),
      })
      .strict(),
    eval: z
      .object({
        /** Few-shot validation every this many epochs (0: only at the end). */
        everyEpochs: z.number().int().nonnegative(),
        ways: z.number().int().min(2),
        shots: z.array(z.number().int().positive()),
        queries: z.number().int().positive().max(10000),
        episodes: z.number().int().positive().max(1000000),
        /** At most this many images per evaluation class (keeps evaluation short). */
        maxPerClass: z.number().int().positive(),
        /** The feature kind of the evaluation (docs/algorithm.md §8.1; train/features.ts). */
        features: z.enum(FEATURE_KINDS as [FeatureKind, ...FeatureKind[]]),
        /** Evaluation transform: shorter side resized to round(size * resizeRatio), then the centre crop (docs/algorithm.md §8.1: 256/224; 1 keeps the whole image). */
        resizeRatio: z.number().min(1),
      })
      .strict(),
    /** Save a resumable checkpoint every this many iterations (and at the end). */
    checkpointEvery: z.number().int().positive(),
    /** Checkpoints kept in the run directory: the newest this many (and the best one); a damaged newest one falls back to the one before. */
    keepLast: z.number().int().min(1).default(3),
    /** Run directory: config, metrics.jsonl, checkpoints. */
    out: z.string(),
    /** Weights to start from: a phase-1 run directory or checkpoint, or a DINO/iBOT ViT safetensors file. */
    init: z.string().optional(),
    /** Crop threads: each holds its own copy of the decoded images, so more than the cores only costs memory. */
    workers: z.number().int().min(0).max(64, 'at most 64 crop workers'),
  })
  .strict();

export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** Partial configs (files, flags) deep-merge over a preset. */
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/**
 * The data settings the --data / --data-kind flags give: a folder whose path names Omniglot is read as
 * Omniglot unless a kind is given, and Omniglot's black-on-white strokes are inverted.
 */
export function dataOverrides(o: { data?: string; dataKind?: TrainConfig['data']['kind'] }): DeepPartial<TrainConfig['data']> {
  const data: DeepPartial<TrainConfig['data']> = {};
  if (o.data) {
    data.path = o.data;
    data.kind = o.dataKind ?? (/omniglot/i.test(o.data) ? 'omniglot' : 'folder');
  } else if (o.dataKind) data.kind = o.dataKind;
  if (data.kind === 'omniglot') data.invert = true;
  return data;
}

/** A preset's config for a phase. */
export function preset(name: PresetName, phase: 1 | 2): TrainConfig {
  return name === 'omniglot' ? omniglotPreset(phase) : specPreset(name, phase);
}

/** The presets of docs/algorithm.md §10.2, per phase. */
function specPreset(name: 'tiny' | 'small', phase: 1 | 2): TrainConfig {
  const tiny = name === 'tiny';
  return {
    phase,
    objective: 'smkd',
    preset: name,
    seed: 0,
    data: { kind: 'synthetic', imageSize: 32, invert: false, rotatedClasses: false },
    model: tiny ? { embedDim: 64, depth: 4, numHeads: 2, patchSize: 4, dropPath: 0 } : { embedDim: 96, depth: 6, numHeads: 3, patchSize: 4, dropPath: 0.1 },
    head: tiny ? { hiddenDim: 128, bottleneckDim: 64, outDim: 256, normLastLayer: true } : { hiddenDim: 192, bottleneckDim: 64, outDim: 1024, normLastLayer: false },
    crops: { global: 2, local: tiny ? 2 : 4, globalSize: 32, localSize: 16, globalScale: [0.25, 1], localScale: [0.05, 0.25] },
    augment: { kind: 'spec', ...STROKES },
    batch: tiny ? { size: 16, sampler: phase === 2 ? 'pk' : 'uniform', classes: 8, perClass: 2 } : { size: 32, sampler: phase === 2 ? 'pk' : 'uniform', classes: 8, perClass: 4 },
    schedule: {
      epochs: tiny ? (phase === 1 ? 6 : 3) : phase === 1 ? 14 : 6,
      itersPerEpoch: tiny ? 10 : 50,
      lr: 5e-4,
      lrScaling: 'none',
      minLr: 1e-5,
      warmupEpochs: tiny ? 1 : 2,
      weightDecay: 0.04,
      weightDecayEnd: 0.4,
      momentumTeacher: tiny ? 0.98 : 0.995,
      clipGrad: 3,
      freezeLastLayer: tiny ? (phase === 1 ? 1 : 0) : 1,
      teacherTemp: 0.07,
      warmupTeacherTemp: 0.04,
      teacherPatchTemp: 0.07,
      warmupTeacherPatchTemp: 0.04,
      warmupTeacherTempEpochs: tiny ? (phase === 1 ? 2 : 1) : 3,
      studentTemp: 0.1,
      centerMomentum: 0.9,
      centerInit: 'batch',
    },
    loss:
      phase === 1
        ? { lambda1: 1, lambda2: 0, lambda3: 1, patchWeighting: 'uniform', supervisedCe: 0 }
        : { lambda1: 1, lambda2: 1, lambda3: 0, patchWeighting: 'uniform', supervisedCe: 0 },
    masking: { ratios: [0, 0.3], ratioVar: [0, 0.2], predStartEpoch: 0, shape: 'block' },
    eval: { everyEpochs: 0, ways: 5, shots: [1, 5], queries: 15, episodes: tiny ? 500 : 2000, maxPerClass: tiny ? 60 : 600, features: 'concat', resizeRatio: 256 / 224 },
    checkpointEvery: tiny ? 10 : 50,
    keepLast: 3,
    out: `runs/${name}-phase${phase}`,
    workers: 2,
  };
}

/** The stroke augmentation's ranges (the probes' mild affine warp). */
const STROKES = { rotation: 15, scale: 0.15, shift: 0.1, localWindow: [0.4, 0.7] as [number, number] };

/**
 * The small-scale recipe on the packed Omniglot subset: every value that differs from `tiny` is a
 * measured choice, with its measurement in docs/omniglot-recipe.md.
 */
function omniglotPreset(phase: 1 | 2): TrainConfig {
  const tiny = specPreset('tiny', phase);
  return {
    ...tiny,
    preset: 'omniglot',
    data: { kind: 'omniglot', imageSize: 28, invert: false, rotatedClasses: false },
    model: { ...tiny.model, patchSize: 14 },
    crops: { ...tiny.crops, local: 0, globalSize: 28, localSize: 14 },
    augment: { kind: 'strokes', ...STROKES },
    batch: { size: 32, sampler: 'pk', classes: 16, perClass: 2 },
    // 24 + 40 epochs of 25 iterations of 64 crops: 38,400 + 64,000 crops, about 6.5 minutes on a 2-core lavapipe.
    schedule: {
      ...tiny.schedule,
      epochs: phase === 1 ? 24 : 40,
      itersPerEpoch: 25,
      lr: 2e-3,
      warmupEpochs: 1,
      // At 0.04 -> 0.07 both distillation terms collapse to ln K in the engine; at 0.02 they do not.
      teacherTemp: 0.02,
      warmupTeacherTemp: 0.02,
      teacherPatchTemp: 0.02,
      warmupTeacherPatchTemp: 0.02,
      warmupTeacherTempEpochs: 1,
    },
    loss: { ...tiny.loss, supervisedCe: 1 },
    eval: { ...tiny.eval, everyEpochs: 4, episodes: 600, maxPerClass: 20, features: 'tokens', resizeRatio: 1 },
    checkpointEvery: 25,
    out: `runs/omniglot-phase${phase}`,
  };
}

function deepMerge<T>(base: T, over: unknown): T {
  if (over === undefined) return base;
  if (typeof base !== 'object' || base === null || Array.isArray(base) || typeof over !== 'object' || over === null || Array.isArray(over)) return over as T;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out as T;
}

/** Validate a merged config; errors name every bad key with its path. */
export function validateConfig(value: unknown, source = 'config'): TrainConfig {
  const r = TrainConfigSchema.safeParse(value);
  if (r.success) {
    const c = r.data;
    if (c.batch.sampler === 'pk' && c.batch.classes * c.batch.perClass !== c.batch.size) {
      throw new Error(`${source}: batch.size ${c.batch.size} must equal batch.classes x batch.perClass = ${c.batch.classes * c.batch.perClass} with the pk sampler`);
    }
    if (c.model.embedDim % c.model.numHeads !== 0) throw new Error(`${source}: model.embedDim ${c.model.embedDim} is not divisible by model.numHeads ${c.model.numHeads}`);
    return c;
  }
  // Cut short: a hostile or mistaken config may hold a key or value of megabytes.
  const cut = (t: string): string => (t.length > 200 ? `${t.slice(0, 200)}... (${t.length} characters)` : t);
  const lines = r.error.issues.slice(0, 20).map((i) => {
    const where = i.path.join('.') || '(top level)';
    return `  ${cut(where)}: ${cut(i.message)}`;
  });
  if (r.error.issues.length > 20) lines.push(`  ... and ${r.error.issues.length - 20} more`);
  throw new Error(`${source} is invalid:\n${lines.join('\n')}`);
}

/** Preset, then the JSON config file, then command-line overrides. */
export async function resolveConfig(presetName: PresetName, phase: 1 | 2, file: string | undefined, overrides: DeepPartial<TrainConfig>): Promise<TrainConfig> {
  let merged: unknown = preset(presetName, phase);
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new Error(`config file ${file}: ${(e as Error).message}`);
    }
    validateConfig(deepMerge(merged, parsed), `config file ${file}`);
    merged = deepMerge(merged, parsed);
  }
  return validateConfig(deepMerge(merged, overrides), 'command-line options');
}
