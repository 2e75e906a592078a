// What several commands share: number parsers, the data and run options, and the config those flags override.
import { Command, InvalidArgumentError, Option } from 'commander';
import { dataOverrides, PRESETS, type DeepPartial, type PresetName, type TrainConfig } from '../config.js';
import { defaultShiftRadius, shiftGrid } from '../feature-options.js';

export const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`'${v}' is not an integer`);
  return n;
};
/** A count that must be at least 1 (batch sizes, episodes, epochs, sizes): 0 or less is refused before any work. */
export const positive = (v: string): number => {
  const n = int(v);
  if (n < 1) throw new InvalidArgumentError(`'${v}' is not a positive integer`);
  return n;
};
/** A count where 0 means none or off (workers, validation interval, a cap). */
export const nonNegative = (v: string): number => {
  const n = int(v);
  if (n < 0) throw new InvalidArgumentError(`'${v}' is not a non-negative integer`);
  return n;
};
/**
 * --shift-tta: test-time shifts of each image, its features averaged over every shift of up to ±px
 * pixels; 'auto' (the default) is defaultShiftRadius of the model's patch.
 */
export const shiftTta = (v: string): number | 'auto' => (v === 'auto' ? 'auto' : nonNegative(v));
export const SHIFT_TTA_HELP =
  "test-time augmentation: average each image's features over every shift of up to ±px pixels ((2px+1)² passes; 0: none; auto: half the patch, at most 3, on grids of 8x8 patches or fewer, else 0)";

/** The shifts --shift-tta asks for, for a ViT, and a line that says so. */
export function resolveShifts(flag: number | 'auto', vit: { patchSize: number; imgSize: number }): { radius: number; shifts: [number, number][]; note: string } {
  const radius = flag === 'auto' ? defaultShiftRadius(vit.patchSize, vit.imgSize) : flag;
  const shifts = shiftGrid(radius);
  const note = radius === 0 ? 'test-time shifts: none' : `test-time shifts: every shift up to ±${radius} px, ${shifts.length} passes per image (--shift-tta 0: one)`;
  return { radius, shifts, note };
}

export const num = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`'${v}' is not a number`);
  return n;
};

export interface CommonOpts {
  preset: PresetName;
  config?: string;
  data?: string;
  dataKind?: TrainConfig['data']['kind'];
  seed?: number;
  out?: string;
  workers?: number;
}

export interface TrainOpts extends CommonOpts {
  phase: string;
  init?: string;
  epochs?: number;
  itersPerEpoch?: number;
  batchSize?: number;
  lr?: number;
  evalEvery?: number;
  objective?: TrainConfig['objective'];
  supervisedCe?: number;
  patchSize?: number;
  rotatedClasses?: boolean;
  lambda2?: number;
  masking?: boolean;
  allowConfigChange?: boolean;
}

/** Command-line flags as a partial config (only what was given). */
export function overrides(o: TrainOpts | CommonOpts): DeepPartial<TrainConfig> {
  const t = o as TrainOpts;
  const data = dataOverrides(o);
  const out: DeepPartial<TrainConfig> = { data };
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.out) out.out = o.out;
  if (o.workers !== undefined) out.workers = o.workers;
  if (t.init) out.init = t.init;
  if (t.objective) out.objective = t.objective;
  const schedule: DeepPartial<TrainConfig['schedule']> = {};
  if (t.epochs !== undefined) schedule.epochs = t.epochs;
  if (t.itersPerEpoch !== undefined) schedule.itersPerEpoch = t.itersPerEpoch;
  if (t.lr !== undefined) schedule.lr = t.lr;
  out.schedule = schedule;
  if (t.batchSize !== undefined) out.batch = { size: t.batchSize };
  if (t.evalEvery !== undefined) out.eval = { everyEpochs: t.evalEvery };
  if (t.supervisedCe !== undefined || t.lambda2 !== undefined)
    out.loss = { ...(t.supervisedCe !== undefined && { supervisedCe: t.supervisedCe }), ...(t.lambda2 !== undefined && { lambda2: t.lambda2 }) };
  if (t.patchSize !== undefined) out.model = { patchSize: t.patchSize };
  if (t.rotatedClasses) out.data = { ...out.data, rotatedClasses: true };
  // --no-masking: the student sees its global crops whole (docs/algorithm.md §4).
  if (t.masking === false) out.masking = { ratios: [0], ratioVar: [0] };
  return out;
}

/** The data and run options of train, eval and demo. */
export function commonOptions(c: Command): Command {
  return c
    .addOption(
      new Option(
        '--preset <name>',
        'omniglot: the small-scale recipe on the packed Omniglot subset; tiny | small: the presets faithful to the reference code, docs/algorithm.md §10.2 (synthetic data unless --data)',
      )
        .choices(PRESETS)
        .default('omniglot'),
    )
    .option('--config <file>', 'JSON config file (validated; unknown keys are errors)')
    .option('--data <path>', "image folder, Omniglot folder or cifar-100-binary folder (default: the preset's: packed Omniglot, or synthetic glyphs for tiny/small)")
    .option('--data-kind <kind>', 'synthetic | folder | omniglot | cifar-fs | fc100')
    .option('--seed <n>', 'random seed', int)
    .option('--out <dir>', 'run directory')
    .option('--workers <n>', 'augmentation worker threads (0: main thread)', nonNegative);
}
