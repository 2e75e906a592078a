// Timing of recorded GPU work. Ops only record (ours) or batch (tfjs-webgpu), so a timed region is
// a batch of N ops between two drains of the queue. Where the adapter has timestamp queries, the
// GPU-side time of the batch is the summed duration of its compute passes (PassTimer); the wall time
// is kept beside it. Runners are interleaved sample by sample so a change in load hits all alike.
import { add, configure, suite } from 'benny';
import { gpuWait } from '../engine/runtime.js';
import type { PassTimer } from './gpu-timer.js';

/** Who runs a case: our kernel, our unfused composition, tfjs on webgpu, tfjs on wasm, jax-js on wasm and webgpu, PyTorch on the CPU. */
export type RunnerName = 'ours' | 'unfused' | 'tfjs-webgpu' | 'tfjs-wasm' | 'jax-js-wasm' | 'jax-js-webgpu' | 'pytorch';

export interface Runner {
  name: RunnerName;
  /** Make this runner's backend the active one (tfjs); called before each batch. */
  enter(): Promise<void>;
  /** Record (or run) one op and dispose what it returned. */
  once(): void;
  /** Submit what is pending and wait until the device is idle. */
  drain(): Promise<void>;
  /** Runs on the GPU device, so pass timestamps can time it. */
  onGpu: boolean;
}

export interface Timing {
  /** The figure the report compares: GPU-side ms per op where measured, else wall ms per op (median over samples). */
  medianMs: number;
  method: 'gpu-timestamps' | 'wall';
  /** Median wall ms per op (queue drained before and after each batch). */
  wallMs: number;
  /** Median GPU-side ms per op (sum of compute-pass durations), when measured. */
  gpuMs?: number;
  minMs: number;
  samplesMs: number[];
  /** Ops per sample. */
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
  /** A sample batches enough ops to last about this long (drain latency amortised)... */
  targetBatchMs: number;
  /** ...but no more than this many. */
  maxBatch: number;
  /** benny's per-case options (benchmark.js: seconds). */
  benny: { minTime: number; maxTime: number; minSamples: number; initCount: number; delay: number };
}

export const PLANS = {
  full: { warmup: 1, samples: 5, targetBatchMs: 250, maxBatch: 32, benny: { minTime: 0.05, maxTime: 0.5, minSamples: 2, initCount: 1, delay: 0.005 } },
  quick: { warmup: 1, samples: 3, targetBatchMs: 40, maxBatch: 4, benny: { minTime: 0.01, maxTime: 0.03, minSamples: 1, initCount: 1, delay: 0 } },
} satisfies Record<string, TimingPlan>;

/** Plans for cases whose single op lasts seconds (the whole training step). */
export const HEAVY_PLANS = {
  full: { ...PLANS.full, warmup: 1, samples: 3, maxBatch: 1 },
  quick: { ...PLANS.quick, warmup: 1, samples: 1, maxBatch: 1 },
} satisfies Record<string, TimingPlan>;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Warm up, then time one op to size the batch so a sample lasts about `targetBatchMs`. */
async function prepare(r: Runner, plan: TimingPlan): Promise<number> {
  await r.enter();
  for (let i = 0; i < plan.warmup; i++) {
    r.once();
    await r.drain();
  }
  const t0 = performance.now();
  r.once();
  await r.drain();
  const single = performance.now() - t0;
  return Math.max(1, Math.min(plan.maxBatch, Math.round(plan.targetBatchMs / Math.max(single, 1e-3))));
}

/** Wall and GPU ms per op over one batch, queue drained before and after. */
async function sample(r: Runner, batch: number, timer: PassTimer | undefined): Promise<{ wall: number; gpu?: number }> {
  await r.enter();
  await r.drain();
  const timed = timer && r.onGpu;
  if (timed) timer.start();
  const t0 = performance.now();
  try {
    for (let i = 0; i < batch; i++) r.once();
    await r.drain();
  } catch (e) {
    if (timed && timer.running) await timer.stop(gpuWait).catch(() => 0);
    throw e;
  }
  const wall = (performance.now() - t0) / batch;
  const gpu = timed ? (await timer.stop(gpuWait)) / batch : undefined;
  return { wall, gpu };
}

/** Every runner, samples interleaved (ours, tfjs, ours, tfjs, ...). */
export async function timeRunners(runners: readonly Runner[], plan: TimingPlan, timer: PassTimer | undefined): Promise<Map<RunnerName, Timing>> {
  const batches: number[] = [];
  for (const r of runners) batches.push(await prepare(r, plan));
  const wall: number[][] = runners.map(() => []);
  const gpu: number[][] = runners.map(() => []);
  for (let s = 0; s < plan.samples; s++) {
    for (const [i, r] of runners.entries()) {
      const x = await sample(r, batches[i], timer);
      wall[i].push(x.wall);
      if (x.gpu !== undefined) gpu[i].push(x.gpu);
    }
  }
  const out = new Map<RunnerName, Timing>();
  for (const [i, r] of runners.entries()) {
    const useGpu = gpu[i].length === wall[i].length && gpu[i].length > 0;
    const primary = useGpu ? gpu[i] : wall[i];
    out.set(r.name, {
      medianMs: median(primary),
      method: useGpu ? 'gpu-timestamps' : 'wall',
      wallMs: median(wall[i]),
      gpuMs: useGpu ? median(gpu[i]) : undefined,
      minMs: Math.min(...primary),
      samplesMs: primary,
      batch: batches[i],
    });
  }
  return out;
}

/** benny (benchmark.js) ops/s of each runner, one op + drain per call. */
export async function bennyRunners(name: string, runners: readonly Runner[], options: TimingPlan['benny']): Promise<Map<RunnerName, BennyResult>> {
  const out = new Map<RunnerName, BennyResult>();
  // One suite per runner, entered before: benny calls a case once outside its loop without awaiting
  // it, so a case must not switch backends itself.
  for (const r of runners) {
    let failure: unknown;
    await r.enter();
    // benchmark.js waits forever on a deferred case whose promise rejects: keep the error, throw after.
    const call = async (): Promise<void> => {
      try {
        r.once();
        await r.drain();
      } catch (e) {
        failure ??= e;
      }
    };
    const summary = await suite(`${name} (${r.name})`, configure({ cases: options }), add(r.name, call));
    await r.drain();
    if (failure) throw failure;
    const x = summary.results[0];
    out.set(r.name, { opsPerSec: x.ops, marginPct: x.margin, samples: x.samples });
  }
  return out;
}
