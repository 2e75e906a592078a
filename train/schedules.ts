// The per-iteration and per-epoch schedules of docs/algorithm.md §5.2, §6 and §7.3, in float64 on the host, with the
// exact semantics of the reference code's numpy code (cosine_scheduler, np.linspace, the teacher-temperature arrays),
// both as functions of the iteration/epoch and as whole arrays. The cosine schedule itself is the engine's
// (engine/optim/schedules.ts), for any training loop.
import { cosineScheduleAt, linspaceAt } from '../engine/index.js';

export { cosineScheduleAt, linspaceAt };

/** Schedule settings; names as the training config's `schedule` section (plus `predStartEpoch`). */
export interface ScheduleConfig {
  epochs: number;
  /** Iterations per (virtual) epoch, I. */
  itersPerEpoch: number;
  /** Peak learning rate after the warm-up, and the final one. */
  lr: number;
  minLr: number;
  /** Linear warm-up from 0, in epochs (N_w = warmupEpochs·I iterations). */
  warmupEpochs: number;
  /** Weight decay of group 0, cosine from weightDecay to weightDecayEnd. */
  weightDecay: number;
  weightDecayEnd: number;
  /** Teacher EMA momentum at iteration 0 (cosine to 1). */
  momentumTeacher: number;
  /** Teacher temperatures: linear from warmup* over warmupTeacherTempEpochs epochs, then constant. */
  warmupTeacherTemp: number;
  teacherTemp: number;
  warmupTeacherPatchTemp: number;
  teacherPatchTemp: number;
  warmupTeacherTempEpochs: number;
  /** Epochs during which the patch temperature stays at its warm-up value before its ramp (default 0). */
  predStartEpoch?: number;
  /** Epochs during which the last layer of the head is frozen (default 0). */
  freezeLastLayer?: number;
}

/** The reference code's teacher temperature array at `epoch`: `hold` epochs at `warm`, an np.linspace ramp over `ramp` epochs, then `final`. */
function temperatureAt(warm: number, final: number, ramp: number, hold: number, epoch: number): number {
  if (epoch < hold) return warm;
  return epoch - hold < ramp ? linspaceAt(warm, final, ramp, epoch - hold) : final;
}

export interface ScheduleArrays {
  /** [epochs·I] */
  lr: Float64Array;
  weightDecay: Float64Array;
  momentum: Float64Array;
  /** [epochs] */
  teacherTemp: Float64Array;
  teacherPatchTemp: Float64Array;
}

/** Every schedule of a run (a phase restarts them at 0, docs/algorithm.md §11.10). Iterations are global: epoch·I + i. */
export class TrainingSchedule {
  readonly totalIters: number;
  readonly warmupIters: number;

  constructor(readonly config: ScheduleConfig) {
    const c = config;
    if (!(Number.isInteger(c.epochs) && c.epochs > 0 && Number.isInteger(c.itersPerEpoch) && c.itersPerEpoch > 0)) {
      throw new Error(`TrainingSchedule: epochs (${c.epochs}) and itersPerEpoch (${c.itersPerEpoch}) must be positive integers`);
    }
    this.totalIters = c.epochs * c.itersPerEpoch;
    this.warmupIters = c.warmupEpochs * c.itersPerEpoch;
    if (!(Number.isInteger(this.warmupIters) && this.warmupIters >= 0 && this.warmupIters < this.totalIters)) {
      throw new Error(
        `TrainingSchedule: ${c.warmupEpochs} warm-up epochs of ${c.itersPerEpoch} iterations must be a whole number of iterations below the ${this.totalIters} of the run`,
      );
    }
  }

  /** Learning rate (docs/algorithm.md §7.3): linear warm-up from 0 (lr(N_w − 1) = lr), then cosine to minLr. */
  lr(it: number): number {
    return cosineScheduleAt(this.config.lr, this.config.minLr, this.totalIters, this.warmupIters, it);
  }

  /** Weight decay of group 0 (docs/algorithm.md §7.3): cosine from weightDecay to weightDecayEnd, no warm-up. */
  weightDecay(it: number): number {
    return cosineScheduleAt(this.config.weightDecay, this.config.weightDecayEnd, this.totalIters, 0, it);
  }

  /** Teacher EMA momentum (docs/algorithm.md §6): cosine from momentumTeacher to 1 over the run. */
  momentum(it: number): number {
    return cosineScheduleAt(this.config.momentumTeacher, 1, this.totalIters, 0, it);
  }

  /** τ_t(e) (docs/algorithm.md §5.2); a one-epoch ramp is np.linspace's [start] (§11.22). */
  teacherTemp(epoch: number): number {
    const c = this.config;
    return temperatureAt(c.warmupTeacherTemp, c.teacherTemp, c.warmupTeacherTempEpochs, 0, this.checkEpoch(epoch));
  }

  /** τ'_t(e): held at its warm-up value for predStartEpoch epochs, then the same ramp. */
  teacherPatchTemp(epoch: number): number {
    const c = this.config;
    return temperatureAt(c.warmupTeacherPatchTemp, c.teacherPatchTemp, c.warmupTeacherTempEpochs, c.predStartEpoch ?? 0, this.checkEpoch(epoch));
  }

  /** Whether the head's last layer gets no update in this epoch (docs/algorithm.md §7.6). */
  freezeLastLayer(epoch: number): boolean {
    return this.checkEpoch(epoch) < (this.config.freezeLastLayer ?? 0);
  }

  /** The epoch of a global iteration. */
  epochOf(it: number): number {
    return Math.floor(it / this.config.itersPerEpoch);
  }

  arrays(): ScheduleArrays {
    const iters = (f: (it: number) => number): Float64Array => Float64Array.from({ length: this.totalIters }, (_, it) => f(it));
    const epochs = (f: (e: number) => number): Float64Array => Float64Array.from({ length: this.config.epochs }, (_, e) => f(e));
    return {
      lr: iters((it) => this.lr(it)),
      weightDecay: iters((it) => this.weightDecay(it)),
      momentum: iters((it) => this.momentum(it)),
      teacherTemp: epochs((e) => this.teacherTemp(e)),
      teacherPatchTemp: epochs((e) => this.teacherPatchTemp(e)),
    };
  }

  private checkEpoch(epoch: number): number {
    if (!(Number.isInteger(epoch) && epoch >= 0)) throw new Error(`TrainingSchedule: epoch ${epoch} is not a non-negative integer`);
    return epoch;
  }
}
