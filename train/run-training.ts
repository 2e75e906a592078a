// Running a training phase from the command line: a progress bar (or a line every 10 steps when not on
// a terminal), Ctrl-C handling, periodic validation on the held-out validation classes, and the final
// few-shot report of the teacher.
import { SingleBar } from 'cli-progress';
import type { StudentTeacher } from '../model/smkd.js';
import type { TrainConfig } from './config.js';
import type { Normalization } from './data/index.js';
import { evaluateBackbone, formatReport, type EvalOptions, type EvalReport } from './evaluate.js';
import type { DataSplits } from './sources.js';
import { train, type StepMetrics, type TrainOptions, type TrainResult } from './trainer.js';

export function progress(label: string): { onStep: (m: StepMetrics) => void; onStart: (i: { startIteration: number; totalIterations: number }) => void; stop: () => void } {
  const tty = process.stdout.isTTY;
  const bar = new SingleBar({ format: `${label} {bar} {value}/{total} | loss {loss} | {ips} img/s | ETA {eta_formatted}`, hideCursor: true });
  let total = 0;
  return {
    onStart: ({ startIteration, totalIterations }) => {
      total = totalIterations;
      if (tty) bar.start(totalIterations, startIteration, { loss: '-', ips: '-' });
    },
    onStep: (m) => {
      const loss = m.loss.toFixed(4);
      if (tty) bar.update(m.iteration + 1, { loss, ips: m.imagesPerSecond.toFixed(1) });
      else if ((m.iteration + 1) % 10 === 0 || m.iteration + 1 === total) {
        const terms = Object.entries(m.terms)
          .map(([k, v]) => `${k} ${v.toFixed(4)}`)
          .join(', ');
        console.log(`${label} it ${m.iteration + 1}/${total}  loss ${loss} (${terms})  lr ${m.lr.toExponential(2)}  ${m.imagesPerSecond.toFixed(1)} img/s`);
      }
    },
    stop: () => {
      if (tty) bar.stop();
    },
  };
}

/** The signals that stop a run after its checkpoint, and the exit status a shell reports for each (128 + its number). */
export const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
export type StopSignalName = keyof typeof STOP_SIGNALS;

/**
 * First Ctrl-C (or SIGTERM, SIGHUP: a `kill`, a closed terminal): finish the step and checkpoint; a second
 * signal: exit at once with its status (the last checkpoint is whole). `release` removes the handlers.
 */
export function stopSignal(): { requested: () => boolean; signal: () => StopSignalName | undefined; release: () => void } {
  let got: StopSignalName | undefined;
  const handlers = (Object.keys(STOP_SIGNALS) as StopSignalName[]).map((sig) => {
    const handler = (): void => {
      if (got) process.exit(STOP_SIGNALS[sig]);
      got = sig;
      const what = sig === 'SIGINT' ? '' : `${sig}: `;
      console.log(`\n${what}stopping after this step (a checkpoint will be written); ${sig === 'SIGINT' ? 'press Ctrl-C again' : 'signal again'} to quit now`);
    };
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  return {
    requested: () => got !== undefined,
    signal: () => got,
    release: () => {
      for (const [sig, handler] of handlers) process.off(sig, handler);
    },
  };
}

/** A run stopped by a signal after its checkpoint: the command exits with the signal's status (130 for Ctrl-C) and does nothing more. */
export class Interrupted extends Error {
  constructor(
    message: string,
    readonly exitCode: number = STOP_SIGNALS.SIGINT,
  ) {
    super(message);
  }
}

/** The periodic validation of a run: its first shot count, N-way, on the validation classes, with its features and transform. */
export function validationOptions(cfg: TrainConfig, normalize: Normalization): EvalOptions {
  const e = cfg.eval;
  return {
    size: cfg.crops.globalSize,
    normalize,
    resizeRatio: e.resizeRatio,
    ways: e.ways,
    shots: [e.shots[0]],
    queries: e.queries,
    episodes: e.episodes,
    maxPerClass: e.maxPerClass,
    features: [e.features],
    seed: cfg.seed,
  };
}

export async function runTraining(cfg: TrainConfig, label: string, options: TrainOptions = {}): Promise<TrainResult & { signal?: StopSignalName }> {
  const p = progress(label);
  // One handler per phase, removed when the phase ends (a demo's second phase would otherwise print every message twice).
  const stop = stopSignal();
  const t0 = performance.now();
  try {
    const r = await train(
      cfg,
      {
        onStart: p.onStart,
        onStep: p.onStep,
        shouldStop: stop.requested,
        validate: async (models, splits, epoch) => {
          const rep = await evaluateBackbone(models.teacher.backbone, splits.val, validationOptions(cfg, splits.normalize));
          const row = rep.rows[0];
          console.log(
            `${process.stdout.isTTY ? '\n' : ''}${label}: validation after epoch ${epoch + 1}: ${row.ways}-way ${row.shots}-shot ${row.mean.toFixed(2)}% ± ${row.ci95.toFixed(2)} (${rep.dataset})`,
          );
          return row.mean;
        },
      },
      options,
    );
    p.stop();
    console.log(`${label}: ${r.stopped ? 'stopped' : 'finished'} in ${((performance.now() - t0) / 1000).toFixed(0)} s; checkpoint ${r.lastCheckpoint}`);
    return { ...r, signal: stop.signal() };
  } catch (e) {
    p.stop();
    throw e;
  } finally {
    stop.release();
  }
}

/**
 * runTraining for a caller that goes on to score the model: a stop signal throws Interrupted (after the
 * checkpoint; the same command resumes) rather than returning a half-trained model as if it were done.
 */
export async function trainToEnd(cfg: TrainConfig, label: string): Promise<TrainResult> {
  const r = await runTraining(cfg, label);
  if (r.stopped) {
    r.models.dispose();
    const sig = r.signal ?? 'SIGINT';
    throw new Interrupted(`${label}: interrupted (${sig}) after its checkpoint in ${cfg.out}; the same command resumes it`, STOP_SIGNALS[sig]);
  }
  return r;
}

/** Few-shot report of the teacher backbone on the held-out test classes of `splits`. */
export async function evalReport(models: StudentTeacher, cfg: TrainConfig, title: string, splits: DataSplits): Promise<EvalReport> {
  const rep = await evaluateBackbone(models.teacher.backbone, splits.test, {
    size: cfg.crops.globalSize,
    normalize: splits.normalize,
    ways: cfg.eval.ways,
    shots: cfg.eval.shots,
    queries: cfg.eval.queries,
    episodes: cfg.eval.episodes,
    maxPerClass: cfg.eval.maxPerClass,
    features: [cfg.eval.features],
    resizeRatio: cfg.eval.resizeRatio,
    seed: cfg.seed,
  });
  console.log(formatReport(title, rep));
  return rep;
}
