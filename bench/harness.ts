// Runs one case end to end: inputs, agreement check, memory, then (unless smoke) timing and benny.
import { rt } from '../engine/index.js';
import type { Agreement, BenchCase, Instance, Work } from './case.js';
import { measureMemory, type MemoryUse } from './memory.js';
import { bennyPair, PLANS, timePair, type BennyResult, type Timing } from './timing.js';

/** full: the report's numbers; quick: few iterations (CI); smoke: one run of each variant, no timing. */
export type Mode = 'full' | 'quick' | 'smoke';

export interface VariantResult {
  memory: MemoryUse;
  timing?: Timing;
  benny?: BennyResult;
}

export interface CaseResult {
  suite: string;
  name: string;
  unfusedOps: string;
  work: Work;
  agreement?: Agreement;
  fused?: VariantResult;
  unfused?: VariantResult;
  /** unfused median ms / fused median ms. */
  ratio?: number;
  /** Set when the case threw; the other fields are what it got to. */
  error?: string;
  seconds: number;
}

/** Run `c`; failures are caught and reported in the result, so one broken case does not stop a run. */
export async function runCase(c: BenchCase, mode: Mode): Promise<CaseResult> {
  const t0 = performance.now();
  const r: CaseResult = { suite: c.suite, name: c.name, unfusedOps: c.unfused, work: c.work, seconds: 0 };
  let inst: Instance | undefined;
  try {
    inst = await c.setup();
    r.agreement = await inst.agree();
    r.fused = { memory: measureMemory(inst.fused) };
    r.unfused = { memory: measureMemory(inst.unfused) };
    await rt().sync();
    if (mode !== 'smoke') {
      const plan = PLANS[mode];
      const t = await timePair(inst.fused, inst.unfused, plan);
      r.fused.timing = t.fused;
      r.unfused.timing = t.unfused;
      r.ratio = t.unfused.medianMs / t.fused.medianMs;
      const b = await bennyPair(`${c.suite} ${c.name}`, inst.fused, inst.unfused, plan.benny);
      r.fused.benny = b.fused;
      r.unfused.benny = b.unfused;
    }
  } catch (e) {
    r.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    try {
      inst?.dispose();
      await rt().sync();
    } catch (e) {
      r.error ??= `dispose: ${String(e)}`;
    }
  }
  r.seconds = (performance.now() - t0) / 1000;
  return r;
}

/** Throughput of one op from its work and time: GFLOP/s or GB/s. */
export function throughput(work: Work, ms: number): { value: number; unit: 'GFLOP/s' | 'GB/s' } {
  return 'flops' in work ? { value: work.flops / ms / 1e6, unit: 'GFLOP/s' } : { value: work.bytes / ms / 1e6, unit: 'GB/s' };
}
