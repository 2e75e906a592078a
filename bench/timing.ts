// Wall-clock timing of recorded GPU work: ops only record, so a timed region is a batch of N ops
// between two `rt().sync()` calls (the second flushes, submits and waits for the queue to drain).
import { add, configure, suite } from 'benny';
import { rt, tidy } from '../engine/index.js';
import type { Variant } from './case.js';

export interface Timing {
  /** Median over samples of (batch wall time / batch size). */
  medianMs: number;
  minMs: number;
  samplesMs: number[];
  /** Ops recorded (and submitted together) per sample. */
  batch: number;
}

export interface BennyResult {
  opsPerSec: number;
  /** Relative margin of error, percent. */
  marginPct: number;
  samples: number;
}

export interface TimingPlan {
  /** Untimed runs before sizing the batch (the agreement check has already compiled every pipeline). */
  warmup: number;
  samples: number;
  /** A sample batches enough ops to last about this long (sync latency amortised)... */
  targetBatchMs: number;
  /** ...but no more than this many. */
  maxBatch: number;
  /** benny's per-case options (benchmark.js: seconds). */
  benny: { minTime: number; maxTime: number; minSamples: number; initCount: number; delay: number };
}

export const PLANS = {
  full: { warmup: 1, samples: 9, targetBatchMs: 400, maxBatch: 64, benny: { minTime: 0.05, maxTime: 2, minSamples: 5, initCount: 1, delay: 0.005 } },
  quick: { warmup: 0, samples: 3, targetBatchMs: 60, maxBatch: 8, benny: { minTime: 0.01, maxTime: 0.05, minSamples: 1, initCount: 1, delay: 0 } },
} satisfies Record<string, TimingPlan>;

/** Record one step and dispose what it returned (its temporaries go with the scope). */
export function once(v: Variant): void {
  for (const t of tidy(() => v.step())) t.dispose();
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Warm up, then time one op to size the batch so a sample lasts about `targetBatchMs`. */
async function prepare(v: Variant, plan: TimingPlan): Promise<number> {
  for (let i = 0; i < plan.warmup; i++) {
    once(v);
    await rt().sync();
  }
  const t0 = performance.now();
  once(v);
  await rt().sync();
  const single = performance.now() - t0;
  return Math.max(1, Math.min(plan.maxBatch, Math.round(plan.targetBatchMs / Math.max(single, 1e-3))));
}

/** ms per op over one batch of `batch` ops, queue drained before and after. */
async function sample(v: Variant, batch: number): Promise<number> {
  await rt().sync();
  const t0 = performance.now();
  for (let i = 0; i < batch; i++) once(v);
  await rt().sync();
  return (performance.now() - t0) / batch;
}

function summarize(samplesMs: number[], batch: number): Timing {
  return { medianMs: median(samplesMs), minMs: Math.min(...samplesMs), samplesMs, batch };
}

/** Both variants, samples interleaved (fused, unfused, fused, ...) so a change in machine load hits both alike. */
export async function timePair(fused: Variant, unfused: Variant, plan: TimingPlan): Promise<{ fused: Timing; unfused: Timing }> {
  const batches = [await prepare(fused, plan), await prepare(unfused, plan)];
  const ms: number[][] = [[], []];
  for (let s = 0; s < plan.samples; s++) {
    ms[0].push(await sample(fused, batches[0]));
    ms[1].push(await sample(unfused, batches[1]));
  }
  return { fused: summarize(ms[0], batches[0]), unfused: summarize(ms[1], batches[1]) };
}

/** benny (benchmark.js) ops/s of both variants, one op + sync per call. */
export async function bennyPair(name: string, fused: Variant, unfused: Variant, options: TimingPlan['benny']): Promise<{ fused: BennyResult; unfused: BennyResult }> {
  let failure: unknown;
  // benchmark.js waits forever on a deferred case whose promise rejects: keep the error, throw after.
  const call = (v: Variant) => async (): Promise<void> => {
    try {
      once(v);
      await rt().sync();
    } catch (e) {
      failure ??= e;
    }
  };
  const summary = await suite(name, configure({ cases: options }), add('fused', call(fused)), add('unfused', call(unfused)));
  await rt().sync();
  if (failure) throw failure;
  const pick = (n: string): BennyResult => {
    const r = summary.results.find((x) => x.name === n)!;
    return { opsPerSec: r.ops, marginPct: r.margin, samples: r.samples };
  };
  return { fused: pick('fused'), unfused: pick('unfused') };
}
