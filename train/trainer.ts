// The SMKD training loop (docs/algorithm.md §0.3, §7.4): both phases, one command submission per step, resumable
// checkpoints, metrics.jsonl, and a clean stop on Ctrl-C or a non-finite loss.
import { appendFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { totalmem } from 'node:os';
import {
  AdamW,
  add,
  backward,
  clearTape,
  clipGradients,
  crossEntropy,
  detach,
  fromArray,
  init,
  mul,
  narrow,
  noGrad,
  reshape,
  tidy,
  type ClipResult,
  type Tensor,
} from '../engine/index.js';
import { vitConfig } from '../model/configs.js';
import { StudentTeacher } from '../model/smkd.js';
import {
  CHECKPOINT_FILES,
  checkpointProblem,
  findCheckpoint,
  loadCheckpoint,
  loadNetwork,
  markBest,
  saveCheckpoint,
  writeJsonAtomic,
  type FoundCheckpoint,
  type TrainState,
} from './checkpoint.js';
import { validateConfig, type TrainConfig } from './config.js';
import { MultiCropLoader, type CropBatch } from './data/index.js';
import { capPerClass } from './features.js';
import { ibotLoss, smkdLoss, updateCenters } from './losses.js';
import { checkStepSizes } from './preflight.js';
import { lockRun, type HeldRunLock, type RunLock } from './run-lock.js';
import {
  configChangeError,
  configChanges,
  type ConfigChange,
  readRunConfig,
  recordConfigChanges,
  removeStaleTemporaries,
  truncateMetrics,
  type ValidationLine,
} from './run-dir.js';
import { TrainingSchedule } from './schedules.js';
import { openSplits, type DataSplits } from './sources.js';

export interface StepMetrics {
  iteration: number;
  epoch: number;
  loss: number;
  /** Named loss terms (cls, mim, patch). */
  terms: Record<string, number>;
  lr: number;
  weightDecay: number;
  momentum: number;
  teacherTemp: number;
  teacherPatchTemp: number;
  imagesPerSecond: number;
  seconds: number;
}

export interface TrainHooks {
  onStart?: (info: { startIteration: number; totalIterations: number; resumed: boolean }) => void;
  onStep?: (m: StepMetrics) => void;
  /** Few-shot validation at the end of an epoch (when the config asks for it); returns the accuracy to select the best checkpoint. */
  validate?: (models: StudentTeacher, splits: DataSplits, epoch: number) => Promise<number>;
  /**
   * Asked before each step is begun, with the iterations the run will have done once the steps already
   * begun finish (the next step is recorded while the GPU runs the current one): true begins no more,
   * writes a checkpoint at `done` and returns (e.g. on Ctrl-C: the run stops within a step or two).
   */
  shouldStop?: (done: number) => boolean;
  log?: (msg: string) => void;
}

export interface TrainResult {
  runDir: string;
  iterations: number;
  stopped: boolean;
  lastCheckpoint: string;
  models: StudentTeacher;
  splits: DataSplits;
}

/** The student/teacher pair a config trains (with a classifier over `numClasses` for the CE objective). */
export function modelsFor(cfg: TrainConfig, numClasses?: number): StudentTeacher {
  const m = cfg.model;
  // Every backbone and head setting is in the config; the named configuration only supplies the rest (MLP ratio, LayerNorm eps).
  const vit = vitConfig('tiny', { imgSize: cfg.crops.globalSize, patchSize: m.patchSize, embedDim: m.embedDim, depth: m.depth, numHeads: m.numHeads, dropPath: m.dropPath });
  if (usesClassifier(cfg) && numClasses === undefined) throw new Error('modelsFor: a cross-entropy term needs the number of training classes');
  return new StudentTeacher({ vit, head: cfg.head, seed: cfg.seed, numClasses: usesClassifier(cfg) ? numClasses : undefined });
}

/** The CE baseline and a run with the reference code's supervised cross-entropy term (docs/algorithm.md §5.7) train timm's classifier on [cls]. */
export function usesClassifier(cfg: TrainConfig): boolean {
  return cfg.objective === 'ce' || cfg.loss.supervisedCe > 0;
}

/** Stack host views [B, ...] of V crops into one crop-major tensor [V * B, ...]. */
function stackViews(views: Float32Array[], shape: number[]): Tensor<'f32'> {
  const per = views[0].length;
  const all = new Float32Array(per * views.length);
  views.forEach((v, i) => all.set(v, i * per));
  return fromArray(all, [views.length * shape[0], ...shape.slice(1)]);
}

/** The loss terms a step can record, in the order metrics.jsonl lists them. */
export const LOSS_TERMS = ['cls', 'patch', 'mim', 'ce'] as const;
export type LossTerm = (typeof LOSS_TERMS)[number];

/** A step's total loss and the terms of its objective: phase 1 cls, mim; phase 2 cls, patch (mim when λ3 > 0); ce for the supervised term or baseline. */
export type StepLosses = { total: Tensor<'f32'> } & { [K in LossTerm]?: Tensor<'f32'> };

export interface StepOptions {
  /**
   * Set the centres to this batch's mean teacher outputs before the loss (a fresh run's first step).
   * The reference code starts them at zero (docs/algorithm.md §11.23), harmless under its 10-epoch lr warm-up; with a 10-iteration warm-up the
   * uncentred first steps drive every image to one output dimension and the head collapses.
   */
  initCenters?: boolean;
}

/** Everything one iteration records (no readback): forward passes, loss, centre update, backward. */
export function recordStep(models: StudentTeacher, batch: CropBatch, cfg: TrainConfig, temps: { teacher: number; patch: number }, it: number, opts: StepOptions = {}): StepLosses {
  if (cfg.objective === 'ce') return recordCrossEntropyStep(models, batch, cfg, it);
  const { student, teacher } = models;
  const B = batch.labels.length;
  const G = batch.globals.length;
  const L = batch.locals.length;
  const S = cfg.crops.globalSize;
  const s = cfg.crops.localSize;
  const weighted = cfg.phase === 2 && cfg.loss.patchWeighting === 'weighted';
  student.reseed(it);
  const globals = stackViews(batch.globals, [B, 3, S, S]);
  const maskHost = new Uint8Array(batch.masks.reduce((a, m) => a + m.length, 0));
  batch.masks.forEach((m, i) => maskHost.set(m, i * m.length));
  const Np = maskHost.length / (G * B);
  const masks = fromArray(maskHost, [G * B, Np], 'u32');

  // Teacher: global crops, unmasked, no gradients (docs/algorithm.md §6).
  const t = noGrad(() => {
    const out = teacher.backbone.forward(globals, { clsAttention: weighted });
    const head = teacher.head.forward(out.tokens);
    return { out, head };
  });
  const K = t.head.shape[2];
  const teacherCls = reshape(narrow(t.head, 1, 0, 1), [G * B, K]);
  const teacherPatch = narrow(t.head, 1, 1, Np);
  if (opts.initCenters) updateCenters(models.center, models.center2, teacherCls, teacherPatch, 0);

  // Student: masked global crops (all tokens through the head), then the local crops ([cls] only).
  const sg = student.backbone.forward(globals, { masks });
  const sHead = student.head.forward(sg.tokens);
  const studentCls = reshape(narrow(sHead, 1, 0, 1), [G * B, K]);
  const studentPatch = narrow(sHead, 1, 1, Np);
  let studentLocalCls: Tensor<'f32'> | undefined;
  if (L > 0) {
    const locals = stackViews(batch.locals, [B, 3, s, s]);
    const sl = student.backbone.forward(locals);
    const D = sl.tokens.shape[2];
    studentLocalCls = student.head.forward(reshape(narrow(sl.tokens, 1, 0, 1), [L * B, D]));
  }
  const distill = {
    teacherCls,
    studentCls,
    studentLocalCls,
    teacherPatch,
    studentPatch,
    studentTemp: cfg.schedule.studentTemp,
    teacherTemp: temps.teacher,
    teacherPatchTemp: temps.patch,
    center: models.center,
    center2: models.center2,
  };
  let terms: Omit<StepLosses, 'total'>;
  let total: Tensor<'f32'>;
  if (cfg.phase === 1) {
    const l = ibotLoss({ ...distill, masks: maskHost, globalViews: G }, { ...distill, lambda1: cfg.loss.lambda1, lambda3: cfg.loss.lambda3 });
    total = l.total;
    terms = { cls: l.cls, mim: l.mim };
  } else {
    const l = smkdLoss(
      {
        ...distill,
        labels: batch.labels,
        teacherFeatures: narrow(t.out.tokens, 1, 1, Np),
        studentFeatures: detach(narrow(sg.tokens, 1, 1, Np)),
        teacherClsAttention: t.out.clsAttention,
        masks: maskHost,
      },
      { ...distill, lambda1: cfg.loss.lambda1, lambda2: cfg.loss.lambda2, lambda3: cfg.loss.lambda3, patchWeighting: cfg.loss.patchWeighting },
    );
    total = l.total;
    terms = { cls: l.cls, patch: l.patch, ...(l.mim ? { mim: l.mim } : {}) };
  }
  if (cfg.loss.supervisedCe > 0) {
    // The reference code's optional supervised term (docs/algorithm.md §5.7), on the student backbone's [cls] of the masked global crops.
    const ce = crossEntropy(student.backbone.classify(reshape(narrow(sg.tokens, 1, 0, 1), [G * B, sg.tokens.shape[2]])), globalLabels(batch.labels, G));
    terms.ce = ce;
    total = add(total, mul(ce, cfg.loss.supervisedCe));
  }
  // The loss used the old centres; update them from this step's teacher outputs (docs/algorithm.md §5.8).
  updateCenters(models.center, models.center2, teacherCls, teacherPatch, cfg.schedule.centerMomentum);
  // Every term can be empty (e.g. no same-class pair and no local crop): nothing to learn from.
  if (total.requiresGrad) backward(total);
  else clearTape();
  return { total, ...terms };
}

/** The labels of G crop-major global views of a batch. */
function globalLabels(labels: Int32Array, G: number): Int32Array {
  return Int32Array.from({ length: G * labels.length }, (_, r) => labels[r % labels.length]);
}

/** The supervised baseline: cross-entropy of the student backbone's classifier (timm's `head` on [cls]) on every unmasked global crop. */
function recordCrossEntropyStep(models: StudentTeacher, batch: CropBatch, cfg: TrainConfig, it: number): StepLosses {
  const { student } = models;
  const B = batch.labels.length;
  const G = batch.globals.length;
  const S = cfg.crops.globalSize;
  student.reseed(it);
  const logits = student.backbone.logits(stackViews(batch.globals, [B, 3, S, S]));
  const total = crossEntropy(logits, globalLabels(batch.labels, G));
  backward(total);
  return { total, ce: total };
}

export interface UpdateOptions {
  lr: number;
  weightDecay: number;
  momentum: number;
  /** Per-tensor clipping threshold (0: off). */
  clip: number;
  freezeLastLayer: boolean;
}

/** After backward (docs/algorithm.md §7.4): per-tensor clipping, last-layer freeze, AdamW, teacher EMA, zero grads. */
export function updateStep(models: StudentTeacher, optimizer: AdamW, o: UpdateOptions): ClipResult | undefined {
  const clip = o.clip > 0 ? clipGradients(models.student.arena, o.clip) : undefined;
  optimizer.step({ lr: o.lr, weightDecay: o.weightDecay, frozen: (name) => o.freezeLastLayer && name.includes('last_layer') });
  models.updateTeacher(o.momentum);
  models.student.arena.zeroGrad();
  return clip;
}

export interface TrainOptions {
  /**
   * Resume a run directory whose config.json differs from `cfg` (otherwise refused, naming the
   * differing keys); the change is appended to its config-changes.jsonl.
   */
  allowConfigChange?: boolean;
  /** The lock of cfg.out, already taken by the caller (lockRun); the run owns it from here. Default: taken here. */
  lock?: HeldRunLock;
}

/** The training loader a config asks for: crops, masks, sampler, augmentation (the CE baseline: global crops only). */
export function cropLoader(cfg: TrainConfig, splits: DataSplits, workers = cfg.workers): MultiCropLoader {
  return new MultiCropLoader(splits.train, {
    batchSize: cfg.batch.size,
    globalCrops: cfg.crops.global,
    // The baseline learns from the global crops only, unmasked.
    localCrops: cfg.objective === 'ce' ? 0 : cfg.crops.local,
    globalSize: cfg.crops.globalSize,
    localSize: cfg.crops.localSize,
    globalScale: cfg.crops.globalScale,
    localScale: cfg.crops.localScale,
    patchSize: cfg.model.patchSize,
    mask: { ratios: cfg.masking.ratios, ratioVar: cfg.masking.ratioVar, shape: cfg.masking.shape },
    predStartEpoch: cfg.masking.predStartEpoch,
    sampler: cfg.batch.sampler,
    imagesPerClass: cfg.batch.perClass,
    itersPerEpoch: cfg.schedule.itersPerEpoch,
    seed: cfg.seed,
    normalize: splits.normalize,
    strokes: cfg.augment.kind === 'strokes' ? cfg.augment : undefined,
    workers,
  });
}

/** The schedule of a config, or an error naming the keys to change. */
export function trainingSchedule(cfg: TrainConfig): TrainingSchedule {
  const s = cfg.schedule;
  const total = s.epochs * s.itersPerEpoch;
  const warmup = s.warmupEpochs * s.itersPerEpoch;
  if (!Number.isInteger(warmup) || warmup >= total) {
    throw new Error(
      `schedule: the lr warm-up (schedule.warmupEpochs ${s.warmupEpochs} x itersPerEpoch ${s.itersPerEpoch} = ${warmup} iterations) must be a whole number of iterations ` +
        `fewer than the run's ${total} (schedule.epochs ${s.epochs} x itersPerEpoch ${s.itersPerEpoch}): train more epochs or set a shorter schedule.warmupEpochs in a config file`,
    );
  }
  const peakLr = s.lrScaling === 'linear' ? (s.lr * cfg.batch.size) / 256 : s.lr;
  return new TrainingSchedule({ ...s, lr: peakLr, predStartEpoch: cfg.masking.predStartEpoch, freezeLastLayer: s.freezeLastLayer });
}

/**
 * The few-shot evaluations a run makes must be possible on its held-out classes: the periodic
 * validation (the first shot count, on the validation classes) and the report on the test classes
 * at the end, with at most eval.maxPerClass images per class.
 */
export function checkEvaluations(cfg: TrainConfig, splits: DataSplits): void {
  const e = cfg.eval;
  const check = (ds: DataSplits['test'], what: string, split: string, shots: number): void => {
    const perClass = new Map<number, number>();
    for (const i of capPerClass(ds, e.maxPerClass)) perClass.set(ds.label(i), (perClass.get(ds.label(i)) ?? 0) + 1);
    const need = shots + e.queries;
    const enough = [...perClass.values()].filter((n) => n >= need).length;
    if (enough < e.ways) {
      throw new Error(
        `data: ${what} needs ${e.ways} ${split} classes (eval.ways) of at least ${need} images each (eval.shots ${shots} + eval.queries ${e.queries}${e.maxPerClass < need ? `, at most eval.maxPerClass ${e.maxPerClass}` : ''}); ` +
          `the ${split} split (${ds.name}) has ${enough} such class(es) of ${ds.classes.length}`,
      );
    }
  };
  if (e.everyEpochs > 0) check(splits.val, `the validation every ${e.everyEpochs} epoch(s) (eval.everyEpochs)`, 'validation', e.shots[0]);
  // A run on every class there is (an empty test split) has no evaluation at the end.
  if (splits.test.size > 0) check(splits.test, 'the evaluation at the end', 'test', Math.max(...e.shots));
}

/** A run ready for its first iteration: everything `train` checks and opens before stepping. */
interface OpenRun {
  schedule: TrainingSchedule;
  splits: DataSplits;
  models: StudentTeacher;
  optimizer: AdamW;
  loader: MultiCropLoader;
  /** The first iteration to make: 0, or the iteration of the checkpoint resumed from. */
  start: number;
  /** The checkpoint resumed from. */
  found?: FoundCheckpoint;
  /** The validations metrics.jsonl already holds (up to `start`). */
  validations: ValidationLine[];
  /** Centres not carried over from a checkpoint start from the first batch (when the config says so). */
  freshCenters: boolean;
  metricsFile: string;
  /** The config as config.json holds it (data.normalize resolved); each checkpoint records it. */
  written: TrainConfig;
  /** This process's hold on the run directory, released when train() returns or throws. */
  lock: RunLock;
}

/**
 * Train one phase as `cfg` says; resumes from the run directory's newest intact checkpoint when
 * there is one. Everything that can be checked is checked before the run directory is written: the
 * schedule, the run's own config (a resume with other settings is refused unless allowed), the
 * checkpoint, the data and the evaluations it must hold, the starting weights.
 */
export async function train(cfg: TrainConfig, hooks: TrainHooks = {}, options: TrainOptions = {}): Promise<TrainResult> {
  const log = hooks.log ?? ((m: string) => console.log(m));
  const run = await openRun(cfg, log, options);
  const { schedule, splits, models, loader, start, found, validations, metricsFile } = run;
  const total = schedule.totalIters;
  hooks.onStart?.({ startIteration: start, totalIterations: total, resumed: !!found });
  const records = new RunRecords(cfg, run, hooks.validate);
  let stopped = false;
  try {
    // A resume at the end of an epoch whose validation was not written yet makes it first.
    if (found && !validations.some((v) => v.iteration === start)) await records.validateAt(start);
    if (hooks.shouldStop?.(start) && start < total) stopped = true;
    // Step it + 1 is recorded and submitted before step it's losses are read, so the GPU runs one step
    // while the next is recorded, unless a checkpoint or validation must read the state in between.
    let next: PendingStep | undefined;
    let finished = performance.now();
    try {
      for (let it = start; it < total && !stopped; it++) {
        const current = next ?? (await beginStep(run, cfg, it));
        next = undefined;
        const done = it + 1;
        // A stop (Ctrl-C) checkpoints and does nothing more: a validation due here is made on resume.
        const stopNow = !!hooks.shouldStop?.(done) && done < total;
        if (!stopNow && done < total && records.idleAfter(done)) next = await beginStep(run, cfg, done);
        const metrics = await finishStep(current, records.lastCheckpoint, finished);
        finished = performance.now();
        await appendFile(metricsFile, JSON.stringify(metrics) + '\n');
        hooks.onStep?.(metrics);
        // With the next step under way, a stop asked for now is honoured after it.
        stopped = stopNow && !next;
        await records.afterStep(done, stopped);
      }
    } finally {
      next?.abandon();
    }
  } finally {
    await loader.close();
    await run.lock.release();
  }
  return { runDir: cfg.out, iterations: total, stopped, lastCheckpoint: records.lastCheckpoint, models, splits };
}

/** What a run keeps besides metrics: checkpoints on schedule and on a stop, validations when due, the best checkpoint marked. */
class RunRecords {
  /** The newest checkpoint written or resumed from ('' before the first). */
  lastCheckpoint: string;
  private best: number;
  private readonly total: number;

  constructor(
    private readonly cfg: TrainConfig,
    private readonly run: OpenRun,
    private readonly validate: TrainHooks['validate'],
  ) {
    this.lastCheckpoint = run.found?.dir ?? '';
    this.best = Math.max(-Infinity, ...run.validations.map((v) => v.valAccuracy));
    this.total = run.schedule.totalIters;
  }

  /** Whether afterStep(done, false) has nothing to do: no checkpoint and no validation due. */
  idleAfter(done: number): boolean {
    return !this.onSchedule(done) && !this.validationDue(done);
  }

  /** After `done` iterations: a checkpoint when one is due or the run stops, then the validation when one is due and the run goes on. */
  async afterStep(done: number, stopped: boolean): Promise<void> {
    if (this.onSchedule(done) || stopped) this.lastCheckpoint = await this.save(done);
    if (!stopped) await this.validateAt(done);
  }

  /** After `done` iterations: the validation when one is due, written last (a crash before it repeats it on resume). */
  async validateAt(done: number): Promise<void> {
    const { cfg, run } = this;
    const epoch = run.schedule.epochOf(done - 1);
    if (!this.validate || !this.validationDue(done)) return;
    const acc = await this.validate(run.models, run.splits, epoch);
    if (acc > this.best) {
      this.best = acc;
      if (!this.lastCheckpoint.endsWith(String(done).padStart(7, '0'))) this.lastCheckpoint = await this.save(done);
      await markBest(cfg.out, this.lastCheckpoint, { ...this.state(done), valAccuracy: acc }, cfg.keepLast, this.onSchedule);
    }
    await appendFile(run.metricsFile, JSON.stringify({ iteration: done, epoch, valAccuracy: acc }) + '\n');
  }

  private validationDue(done: number): boolean {
    const { cfg, run } = this;
    const epoch = run.schedule.epochOf(done - 1);
    return !!this.validate && done > 0 && done % cfg.schedule.itersPerEpoch === 0 && cfg.eval.everyEpochs > 0 && (epoch + 1) % cfg.eval.everyEpochs === 0;
  }

  private async save(done: number): Promise<string> {
    const { cfg, run } = this;
    const preprocessing = {
      imageSize: cfg.data.imageSize,
      invert: cfg.data.invert,
      normalize: run.splits.normalize,
      resizeRatio: cfg.eval.resizeRatio,
      features: cfg.eval.features,
    };
    return saveCheckpoint(cfg.out, { models: run.models, optimizer: run.optimizer, preprocessing }, this.state(done), cfg.keepLast, this.onSchedule);
  }

  private state(iteration: number): TrainState {
    const { out: _out, ...config } = this.run.written;
    return { iteration, phase: this.cfg.phase, config };
  }

  /** Whether the checkpoint of iteration i is one the schedule keeps (not one a stop or a best validation added). */
  private readonly onSchedule = (i: number): boolean => i % this.cfg.checkpointEvery === 0 || i === this.total;
}

/** Check everything, build the models, load the checkpoint or the starting weights, open the data, then write the run directory. */
async function openRun(cfg: TrainConfig, log: (m: string) => void, options: TrainOptions): Promise<OpenRun> {
  // Before anything is read or cleaned up: a second trainer on this folder would read checkpoints being
  // written and delete the first one's temporaries.
  const lock = options.lock ?? (await lockRun(cfg.out));
  try {
    return { ...(await openLockedRun(cfg, log, options)), lock };
  } catch (e) {
    await lock.abandon();
    throw e;
  }
}

async function openLockedRun(cfg: TrainConfig, log: (m: string) => void, options: TrainOptions): Promise<Omit<OpenRun, 'lock'>> {
  const runDir = cfg.out;
  const schedule = trainingSchedule(cfg);
  const total = schedule.totalIters;
  const previous = await readRunConfig(runDir);
  const changes = previous ? configChanges(previous, cfg) : [];
  if (changes.length && !options.allowConfigChange) throw configChangeError(runDir, changes);
  const found = await findCheckpoint(runDir);
  const { gpu } = await init();
  // Before the data is read or a model built: a step too large for this adapter is refused with the batch that fits.
  checkStepSizes(cfg, gpu.device.limits, runDir, gpu.info.isSoftware ? totalmem() : Infinity);
  // A resume reads the data statistics its run recorded rather than computing them again.
  const sameData = previous && JSON.stringify({ ...previous.data, normalize: undefined }) === JSON.stringify({ ...cfg.data, normalize: undefined });
  const splits = await openSplits(sameData && !cfg.data.normalize ? { ...cfg.data, normalize: previous.data.normalize } : cfg.data, cfg.seed);
  checkEvaluations(cfg, splits);
  // The loader's worker threads start here, while the models are built and the run directory is written
  // (a thread and its modules: ~0.15 s the first step used to wait for).
  const loader = cropLoader(cfg, splits);
  let models: StudentTeacher;
  try {
    models = modelsFor(cfg, splits.train.classes.length);
  } catch (e) {
    await loader.close();
    throw e;
  }
  const optimizer = new AdamW(models.student.arena);
  let start = 0;
  let initCentres = false;
  let handEdits: ConfigChange[] = [];
  try {
    if (found) {
      if (found.warning) log(`warning: ${found.warning}`);
      const state = await loadCheckpoint(found.dir, { models, optimizer });
      start = state.iteration;
      handEdits = checkResumedState(runDir, found.dir, state, cfg, previous, !!options.allowConfigChange);
      if (start > total) throw new Error(`${found.dir} is at iteration ${start}, past the ${total} of the schedule`);
      log(`resuming ${runDir} from iteration ${start} (${found.dir})`);
    } else if (cfg.init) initCentres = await initialise(cfg.init, models, optimizer, log);
  } catch (e) {
    await loader.close();
    models.dispose();
    throw e;
  }

  // Validated: now the run directory. The resolved input statistics go into its config, so evaluating or embedding with it later needs no training data.
  const n = splits.normalize;
  const written: TrainConfig = { ...cfg, data: { ...cfg.data, normalize: { mean: [n.mean[0], n.mean[1], n.mean[2]], std: [n.std[0], n.std[1], n.std[2]] } } };
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  let validations: ValidationLine[];
  try {
    await mkdir(runDir, { recursive: true });
    await removeStaleTemporaries(runDir);
    if (handEdits.length) {
      await recordConfigChanges(runDir, start, handEdits);
      log(
        `warning: ${runDir}/config.json was edited after its checkpoint (${handEdits.map((c) => c.key).join(', ')}); going on with it as it is (recorded in config-changes.jsonl)`,
      );
    }
    if (changes.length) {
      await recordConfigChanges(runDir, start, changes);
      log(
        `warning: ${runDir} continues from iteration ${start} with ${changes.length} changed setting(s): ${changes.map((c) => c.key).join(', ')} (recorded in config-changes.jsonl)`,
      );
    }
    await writeJsonAtomic(path.join(runDir, 'config.json'), written);
    validations = await truncateMetrics(runDir, start);
  } catch (e) {
    await loader.close();
    models.dispose();
    throw e;
  }
  return { schedule, splits, models, optimizer, loader, start, found, validations, freshCenters: !found && !initCentres, metricsFile, written };
}

/**
 * A checkpoint resumes only the run it belongs to: its phase must be the config's (a phase-1 checkpoint
 * trained on as phase 2 would be stamped phase 2), and the config.json it was written with must be the
 * one on disk (a hand edit of the run's config.json is refused like a changed command line, unless allowed).
 */
function checkResumedState(runDir: string, dir: string, state: TrainState, cfg: TrainConfig, previous: TrainConfig | undefined, allowChange: boolean): ConfigChange[] {
  if (state.phase !== cfg.phase)
    throw new Error(
      `${dir} is a phase-${state.phase} checkpoint, but ${runDir} is set up for phase ${cfg.phase}` +
        `${previous?.phase === cfg.phase ? ' (its config.json says so: edited by hand?)' : ''}; a checkpoint resumes only its own phase: train phase ${cfg.phase} in another --out with --init ${runDir}`,
    );
  if (!state.config || !previous) return [];
  const recorded = validateConfig({ ...state.config, out: runDir }, `the config recorded in ${path.join(dir, 'state.json')}`);
  const edits = configChanges(recorded, previous);
  if (edits.length === 0 || allowChange) return edits;
  const shown = edits.slice(0, 8).map((c) => `  ${c.key}: ${JSON.stringify(c.from) ?? '(unset)'} at the checkpoint, ${JSON.stringify(c.to) ?? '(unset)'} in config.json`);
  if (edits.length > 8) shown.push(`  ... and ${edits.length - 8} more`);
  throw new Error(
    `${path.join(runDir, 'config.json')} was changed after ${dir} was written (${edits.length} key(s)):\n${shown.join('\n')}\n` +
      `Put it back as it was, or pass --allow-config-change to go on with it as it is now (recorded in ${path.join(runDir, 'config-changes.jsonl')}).`,
  );
}

/** A step recorded and submitted, its losses on their way back. */
interface PendingStep {
  it: number;
  epoch: number;
  lr: number;
  weightDecay: number;
  momentum: number;
  temps: { teacher: number; patch: number };
  started: number;
  /** Augmented crops the step consumed. */
  images: number;
  values: Promise<{ loss: number; terms: Record<string, number> }>;
  clip: ClipResult | undefined;
  /** Free what it holds when the run ends before it is finished. */
  abandon(): void;
}

/** Load iteration it's batch, record the step and the update, and start reading its losses (submits it). */
async function beginStep(run: OpenRun, cfg: TrainConfig, it: number): Promise<PendingStep> {
  const { schedule, models, optimizer } = run;
  const ce = cfg.objective === 'ce';
  const started = performance.now();
  const epoch = schedule.epochOf(it);
  const batch = await run.loader.batchAt(it);
  const lr = schedule.lr(it);
  const wd = schedule.weightDecay(it);
  const m = schedule.momentum(it);
  const temps = { teacher: schedule.teacherTemp(epoch), patch: schedule.teacherPatchTemp(epoch) };
  const initCenters = run.freshCenters && it === run.start && cfg.schedule.centerInit === 'batch';
  const losses = tidy(() => recordStep(models, batch, cfg, temps, it, { initCenters }));
  // The baseline's "teacher" is the student itself (momentum 0), so evaluation and checkpoints read it as for SMKD.
  const clip = updateStep(models, optimizer, { lr, weightDecay: wd, momentum: ce ? 0 : m, clip: cfg.schedule.clipGrad, freezeLastLayer: !ce && schedule.freezeLastLayer(epoch) });
  const values = readLosses(losses);
  // Read later (or never, when the run stops with this step in flight); a failure surfaces there.
  values.catch(() => undefined);
  return {
    it,
    epoch,
    lr,
    weightDecay: wd,
    momentum: m,
    temps,
    started,
    images: cfg.batch.size * (cfg.crops.global + (ce ? 0 : cfg.crops.local)),
    values,
    clip,
    abandon: () =>
      void values.then(
        () => clip?.dispose(),
        () => clip?.dispose(),
      ),
  };
}

/** Wait for a begun step's losses; `previous` is when the step before it finished (the steps overlap). */
async function finishStep(p: PendingStep, lastCheckpoint: string, previous: number): Promise<StepMetrics> {
  const { loss, terms } = await p.values;
  p.clip?.dispose();
  if (!Number.isFinite(loss)) {
    throw new Error(
      `the loss became ${loss} at iteration ${p.it} (epoch ${p.epoch}); stopping. The last good checkpoint is ${lastCheckpoint || '(none yet)'}; try a lower learning rate or a larger clip.`,
    );
  }
  const seconds = (performance.now() - Math.max(p.started, previous)) / 1000;
  return {
    iteration: p.it,
    epoch: p.epoch,
    loss,
    terms,
    lr: p.lr,
    weightDecay: p.weightDecay,
    momentum: p.momentum,
    teacherTemp: p.temps.teacher,
    teacherPatchTemp: p.temps.patch,
    imagesPerSecond: p.images / seconds,
    seconds,
  };
}

/** A step's losses as numbers, its terms in LOSS_TERMS order; frees them. One readback per step: it submits the whole step as one batch. */
async function readLosses(losses: StepLosses): Promise<{ loss: number; terms: Record<string, number> }> {
  const names = LOSS_TERMS.filter((n) => losses[n]);
  const tensors = [losses.total, ...names.map((n) => losses[n]!)];
  const [loss, ...values] = await Promise.all(tensors.map((t) => t.item()));
  for (const t of tensors) t.dispose();
  return { loss, terms: Object.fromEntries(names.map((n, i) => [n, values[i]])) };
}

/**
 * Starting weights: a run directory or checkpoint directory of phase 1 (student, teacher, centres
 * and AdamW state carry over, docs/algorithm.md §11.10), or a safetensors ViT / DINO / iBOT state dict (student and
 * teacher both start from it; missing head weights keep their initialisation).
 */
/** Returns whether the centres came with the weights (a checkpoint) or start fresh (a weights file). */
async function initialise(from: string, models: StudentTeacher, optimizer: AdamW, log: (m: string) => void): Promise<boolean> {
  const what = await stat(from).catch(() => null);
  if (!what) throw new Error(`--init ${from}: no such file or folder`);
  if (what.isFile()) {
    const { missing } = await loadNetwork(from, models.student, false, models.student.backbone.config);
    models.teacher.arena.copyFrom(models.student.arena);
    log(
      `initialised from ${from}${missing.length ? ` (kept the initialisation of ${missing.length} tensors: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''})` : ''}`,
    );
    return false;
  }
  const found = await findCheckpoint(from);
  if (found?.warning) log(`warning: ${found.warning}`);
  let dir = found?.dir;
  if (!dir) {
    const present = await Promise.all(
      CHECKPOINT_FILES.map((f) =>
        stat(path.join(from, f)).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (!present.some(Boolean))
      throw new Error(`--init ${from}: not a run directory (no latest.json, no checkpoints/), a checkpoint directory (no ${CHECKPOINT_FILES.join(', ')}) or a .safetensors file`);
    const problem = await checkpointProblem(from);
    if (problem) throw new Error(`--init ${from}: the checkpoint ${problem}`);
    dir = from;
  }
  // The classifier of the CE term (docs/algorithm.md §5.7) belongs to its run: one phase may train it and the other not.
  const s = await loadCheckpoint(dir, { models, optimizer }, { optional: (name) => name.startsWith('backbone.head.') });
  const note = s.skipped.length ? `; the classifier ${s.skipped.join(', ')} ${models.student.backbone.config.numClasses ? 'starts fresh' : 'is not used'}` : '';
  log(`initialised from ${dir} (phase ${s.phase}, iteration ${s.iteration})${note}`);
  return true;
}
