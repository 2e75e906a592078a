// The browser bench's page: our engine and tfjs-webgpu in one page, each on its own navigator.gpu
// device, on the bench suites' cases (bench/suites/): agreement first, then interleaved wall-clock
// samples of one op (or step) each, drained to the GPU's end, medians compared.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import { adapterName, init, rt, tidy } from '../../engine/index.js';
import type { Sizes } from '../case.js';
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

/** Wall-clock samples of `once` then `drain`, interleaved between runners, until each has `min` samples and `budgetMs` or `max` samples. */
async function sample(runners: { once: () => void; drain: () => Promise<void> }[], min: number, max: number, budgetMs: number): Promise<number[][]> {
  const times = runners.map((): number[] => []);
  for (const r of runners) {
    r.once();
    await r.drain();
  }
  const t0 = performance.now();
  for (let i = 0; i < max && (i < min || performance.now() - t0 < budgetMs); i++) {
    for (const [k, r] of runners.entries()) {
      const s = performance.now();
      r.once();
      await r.drain();
      times[k].push(performance.now() - s);
    }
  }
  return times;
}

async function runBench(opts: { suites: string[]; sizes: Sizes; budgetMs: number }): Promise<BrowserBench> {
  await init();
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs-webgpu did not initialise');
  await tf.ready();
  const rows: BrowserRow[] = [];
  for (const c of selectCases(opts.sizes, opts.suites)) {
    const row: BrowserRow = { suite: c.suite, name: c.name, samples: 0 };
    rows.push(row);
    console.log(`bench: ${c.suite} ${c.name}`);
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
        const [ours, tfjs] = await sample(runners, 3, 15, opts.budgetMs);
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
  }
  return { adapter: adapterName(rt().gpu.info), userAgent: (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent ?? '', rows };
}

(globalThis as { runBench?: typeof runBench }).runBench = runBench;
