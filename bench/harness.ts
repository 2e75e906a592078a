// Runs one case end to end: inputs, agreement checks (fused vs unfused, ours vs each tfjs and jax-js
// backend and PyTorch), memory, then (unless smoke) interleaved timing of every runner and benny.
import { rt, tidy } from '../engine/index.js';
import type { Agreement, BenchCase, Instance, JaxInstance, TfInstance, TorchInstance, Variant, Work } from './case.js';
import type { PassTimer } from './gpu-timer.js';
import { drainJax, jaxDevice, type JaxArray, type JaxBackendName, type JaxEnv } from './jaxjs/backends.js';
import { measureMemory, type MemoryUse } from './memory.js';
import { drainTfjs, tfName, useBackend, type TfBackendName, type TfjsEnv } from './tfjs/backends.js';
import type { TorchEnv } from './torch/peer.js';
import { bennyRunners, HEAVY_PLANS, PLANS, timeRunners, type BennyResult, type Runner, type RunnerName, type Timing } from './timing.js';

/** full: the report's numbers; quick: a subset, few iterations; smoke: one run of each variant, no timing. */
export type Mode = 'full' | 'quick' | 'smoke';

export interface VariantResult {
  memory?: MemoryUse;
  timing?: Timing;
  benny?: BennyResult;
}

export interface CaseResult {
  suite: string;
  name: string;
  unfusedOps?: string;
  tfjsOps?: string;
  jaxOps?: string;
  torchOps?: string;
  work: Work;
  /** Fused against unfused (ours). */
  agreement?: Agreement;
  /** Ours against each tfjs backend. */
  tfjsAgreement?: Partial<Record<TfBackendName, Agreement>>;
  /** Ours against each jax-js backend. */
  jaxAgreement?: Partial<Record<JaxBackendName, Agreement>>;
  /** Ours against PyTorch. */
  torchAgreement?: Agreement;
  fused?: VariantResult;
  unfused?: VariantResult;
  tfjsWebgpu?: VariantResult;
  tfjsWasm?: VariantResult;
  jaxWasm?: VariantResult;
  jaxWebgpu?: VariantResult;
  /** PyTorch on the CPU, wall clock. */
  torch?: VariantResult;
  /** unfused / fused (median ms). */
  ratio?: number;
  /** tfjs-webgpu / ours, both by the same method (GPU timestamps where both have them). */
  vsWebgpu?: number;
  /** tfjs-wasm / ours, wall clock. */
  vsWasm?: number;
  /** jax-js-webgpu / ours, both by the same method. */
  vsJaxWebgpu?: number;
  /** jax-js-wasm / ours, wall clock. */
  vsJaxWasm?: number;
  /** PyTorch's wall time / ours by our primary method (GPU-side where the adapter has timestamps). */
  vsTorch?: number;
  /** PyTorch's wall time / our wall time. */
  vsTorchWall?: number;
  /** Set when the case threw; the other fields are what it got to. */
  error?: string;
  seconds: number;
}

/** What a run shares between cases: tfjs, jax-js and PyTorch (when found) and the GPU pass timer (when the adapter has timestamps). */
export interface RunContext {
  tfjs?: TfjsEnv;
  jax?: JaxEnv;
  torch?: TorchEnv;
  timer?: PassTimer;
  /** Run benny beside the medians (default: in full mode only; never for the step, whose ops last seconds). */
  benny?: boolean;
}

/** Record one step of ours and dispose what it returned (its temporaries go with the scope). */
export function once(v: Variant): void {
  for (const t of tidy(() => v.step())) t.dispose();
}

function ourRunner(name: 'ours' | 'unfused', v: Variant): Runner {
  return { name, onGpu: true, enter: async () => undefined, once: () => once(v), drain: () => rt().sync() };
}

function tfRunner(env: TfjsEnv, name: TfBackendName, inst: TfInstance): Runner {
  const { tf } = env;
  return {
    name,
    onGpu: name === 'tfjs-webgpu',
    enter: () => useBackend(tf, name),
    once: () => {
      // tfjs would silently move the inputs to whichever backend is active: fail instead.
      if (tf.getBackend() !== tfName(name)) throw new Error(`bench: ${name} step called while tfjs' active backend is ${tf.getBackend()}`);
      tf.dispose(tf.tidy(() => inst.step()));
    },
    drain: () => drainTfjs(tf),
  };
}

/** jax-js is lazy: a step records work and the drain runs it, awaiting (then disposing) what the steps returned. */
function jaxRunner(env: JaxEnv, name: JaxBackendName, inst: JaxInstance): Runner {
  const device = jaxDevice(name);
  let pending: JaxArray[] = [];
  return {
    name,
    onGpu: device === 'webgpu',
    enter: async () => undefined,
    once: () => void pending.push(...inst.step()),
    drain: async () => {
      const outs = pending;
      pending = [];
      try {
        await drainJax(env, device, outs);
      } finally {
        for (const a of outs) a.dispose();
      }
    },
  };
}

/** PyTorch runs in its own process: a batch is queued, and the drain asks for that many steps and awaits the reply. */
function torchRunner(inst: TorchInstance): Runner {
  let pending = 0;
  return {
    name: 'pytorch',
    onGpu: false,
    enter: async () => undefined,
    once: () => void pending++,
    drain: async () => {
      const n = pending;
      pending = 0;
      if (n > 0) await inst.run(n);
    },
  };
}

const KEY: Record<RunnerName, 'fused' | 'unfused' | 'tfjsWebgpu' | 'tfjsWasm' | 'jaxWasm' | 'jaxWebgpu' | 'torch'> = {
  ours: 'fused',
  unfused: 'unfused',
  'tfjs-webgpu': 'tfjsWebgpu',
  'tfjs-wasm': 'tfjsWasm',
  'jax-js-wasm': 'jaxWasm',
  'jax-js-webgpu': 'jaxWebgpu',
  pytorch: 'torch',
};

/** Run `c`; failures are caught and reported in the result, so one broken case does not stop a run. */
export async function runCase(c: BenchCase, mode: Mode, ctx: RunContext = {}): Promise<CaseResult> {
  const t0 = performance.now();
  const r: CaseResult = { suite: c.suite, name: c.name, unfusedOps: c.unfused, tfjsOps: c.tfjs, jaxOps: c.jax, torchOps: c.torch, work: c.work, seconds: 0 };
  let inst: Instance | undefined;
  let torchInst: TorchInstance | undefined;
  const tfInsts: [TfBackendName, TfInstance][] = [];
  const jaxInsts: [JaxBackendName, JaxInstance][] = [];
  try {
    inst = await c.setup();
    if (inst.agree) r.agreement = await inst.agree();
    // Measured on the second step: the first may create persistent state (the arena's gradient buffer).
    measureMemory(inst.fused);
    r.fused = { memory: measureMemory(inst.fused) };
    if (inst.unfused) r.unfused = { memory: measureMemory(inst.unfused) };
    await rt().sync();
    const env = ctx.tfjs;
    if (env && inst.tfjs) {
      r.tfjsAgreement = {};
      for (const b of env.available) {
        await useBackend(env.tf, b);
        const ti = await inst.tfjs(env.tf);
        tfInsts.push([b, ti]);
        r.tfjsAgreement[b] = await ti.agree();
        await drainTfjs(env.tf);
      }
    }
    const jenv = ctx.jax;
    if (jenv && inst.jax) {
      r.jaxAgreement = {};
      for (const b of jenv.available) {
        const ji = await inst.jax(jenv, jaxDevice(b));
        jaxInsts.push([b, ji]);
        r.jaxAgreement[b] = await ji.agree();
      }
    }
    if (ctx.torch && inst.torch) {
      // A failing PyTorch process is a failed agreement, not a failed case: ours and the others are still timed.
      try {
        torchInst = await inst.torch(ctx.torch);
        r.torchAgreement = await torchInst.agree();
      } catch (e) {
        r.torchAgreement = { ok: false, error: Infinity, tolerance: 0, detail: `PyTorch failed: ${e instanceof Error ? e.message : String(e)}` };
        await torchInst?.dispose();
        torchInst = undefined;
      }
    }
    if (mode !== 'smoke') {
      const runners: Runner[] = [ourRunner('ours', inst.fused)];
      // --quick is about tfjs: the unfused composition is timed in full runs only.
      if (inst.unfused && mode === 'full') runners.push(ourRunner('unfused', inst.unfused));
      for (const [b, ti] of tfInsts) runners.push(tfRunner(env!, b, ti));
      for (const [b, ji] of jaxInsts) runners.push(jaxRunner(jenv!, b, ji));
      if (torchInst) runners.push(torchRunner(torchInst));
      const heavy = c.heavy ?? c.suite === 'trainingStep';
      const plan = (heavy ? HEAVY_PLANS : PLANS)[mode];
      const times = await timeRunners(runners, plan, ctx.timer);
      // Never for the whole step, whose ops last 0.1 to seconds.
      const bennies = (ctx.benny ?? mode === 'full') && c.suite !== 'trainingStep' ? await bennyRunners(`${c.suite} ${c.name}`, runners, plan.benny) : undefined;
      for (const run of runners) {
        const k = KEY[run.name];
        r[k] = { ...r[k], timing: times.get(run.name), benny: bennies?.get(run.name) };
      }
      const ours = r.fused.timing!;
      if (r.unfused?.timing) r.ratio = r.unfused.timing.medianMs / ours.medianMs;
      const web = r.tfjsWebgpu?.timing;
      if (web) r.vsWebgpu = web.method === ours.method ? web.medianMs / ours.medianMs : web.wallMs / ours.wallMs;
      const wasm = r.tfjsWasm?.timing;
      if (wasm) r.vsWasm = wasm.wallMs / ours.wallMs;
      const jweb = r.jaxWebgpu?.timing;
      if (jweb) r.vsJaxWebgpu = jweb.method === ours.method ? jweb.medianMs / ours.medianMs : jweb.wallMs / ours.wallMs;
      const jwasm = r.jaxWasm?.timing;
      if (jwasm) r.vsJaxWasm = jwasm.wallMs / ours.wallMs;
      const pt = r.torch?.timing;
      if (pt) {
        r.vsTorch = pt.wallMs / ours.medianMs;
        r.vsTorchWall = pt.wallMs / ours.wallMs;
      }
    }
  } catch (e) {
    r.error = e instanceof Error ? (e.stack ?? e.message) : String(e);
  } finally {
    try {
      for (const [b, ti] of tfInsts) {
        await useBackend(ctx.tfjs!.tf, b);
        ti.dispose();
        await drainTfjs(ctx.tfjs!.tf);
      }
      for (const [b, ji] of jaxInsts) {
        ji.dispose();
        await drainJax(ctx.jax!, jaxDevice(b), []);
      }
      await torchInst?.dispose();
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
