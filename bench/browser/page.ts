// The browser bench's page: our engine and tfjs-webgpu in one page, each on its own navigator.gpu
// device, on the bench suites' cases (bench/suites/): agreement first, then interleaved wall-clock
// samples of one op (or step) each, drained to the GPU's end, medians compared.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import { adapterName, init, rt, tidy } from '../../engine/index.js';
import type { BenchCase, Sizes } from '../case.js';
import { selectCases } from '../suites/index.js';
import { drainTfjs } from './tfjs-page.js';

export interface BrowserRow {
  suite: string;
  name: string;
  oursMs?: number;
  tfjsMs?: number;
  /** tfjs-webgpu / ours (median wall clock). */
  vsWebgpu?: number;
  agreement?: { ok: boolean; error: number; tolerance: number };
  samples: number;
  error?: string;
}

export interface BrowserBench {
  adapter: string;
  userAgent: string;
  rows: BrowserRow[];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * Wall-clock samples of `once` then `drain`, interleaved between runners, after one warm-up each: at
 * least `min` while under ten budgets (a step that takes minutes on SwiftShader gets one), then more
 * while under one budget, at most `max`.
 */
async function sample(runners: { once: () => void; drain: () => Promise<void> }[], min: number, max: number, budgetMs: number): Promise<number[][]> {
  const times = runners.map((): number[] => []);
  for (const r of runners) {
    r.once();
    await r.drain();
  }
  const t0 = performance.now();
  for (let i = 0; i < max; i++) {
    const spent = performance.now() - t0;
    if (i > 0 && !((i < min && spent < 10 * budgetMs) || spent < budgetMs)) break;
    for (const [k, r] of runners.entries()) {
      const s = performance.now();
      r.once();
      await r.drain();
      times[k].push(performance.now() - s);
    }
  }
  return times;
}

interface BenchOptions {
  suites: string[];
  sizes: Sizes;
  budgetMs: number;
}

let started: Promise<void> | undefined;
/** Our engine and tfjs-webgpu, each on its own device, once per page. */
function start(): Promise<void> {
  started ??= (async () => {
    await init();
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs-webgpu did not initialise');
    await tf.ready();
  })();
  return started;
}

/** One case: agreement, then interleaved samples of ours and tfjs-webgpu's. */
async function runCase(c: BenchCase, budgetMs: number): Promise<BrowserRow> {
  const row: BrowserRow = { suite: c.suite, name: c.name, samples: 0 };
  try {
    const inst = await c.setup();
    try {
      const theirs = await inst.tfjs?.(tf);
      if (theirs) {
        const a = await theirs.agree();
        row.agreement = { ok: a.ok, error: a.error, tolerance: a.tolerance };
      }
      const runners = [{ once: () => tidy(() => inst.fused.step()).forEach((t) => t.dispose()), drain: () => rt().sync() }];
      if (theirs) runners.push({ once: () => tf.tidy(() => theirs.step()).forEach((t) => t.dispose()), drain: () => drainTfjs(tf) });
      const [ours, tfjs] = await sample(runners, 3, 15, budgetMs);
      row.samples = ours.length;
      row.oursMs = median(ours);
      if (tfjs) {
        row.tfjsMs = median(tfjs);
        row.vsWebgpu = row.tfjsMs / row.oursMs;
      }
      theirs?.dispose();
    } finally {
      inst.dispose();
    }
  } catch (e) {
    row.error = (e as Error).message.split('\n')[0];
  }
  return row;
}

// Called from Node one case at a time (bench/browser/run.ts), so that no single call outlasts the
// DevTools protocol's timeout on a slow adapter and a crash loses only the case it happened in.
const api = {
  async adapter(): Promise<{ adapter: string; userAgent: string }> {
    await start();
    return { adapter: adapterName(rt().gpu.info), userAgent: (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? '' };
  },
  cases: (o: BenchOptions): { suite: string; name: string }[] => selectCases(o.sizes, o.suites).map((c) => ({ suite: c.suite, name: c.name })),
  async runCase(index: number, o: BenchOptions): Promise<BrowserRow> {
    await start();
    const c = selectCases(o.sizes, o.suites)[index];
    if (!c) throw new Error(`no bench case ${index}`);
    return runCase(c, o.budgetMs);
  },
};

export type BrowserBenchApi = typeof api;
(globalThis as { smkdBench?: BrowserBenchApi }).smkdBench = api;
