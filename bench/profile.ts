// `npm run bench -- --profile [step]`: one training step with every dispatch timed on its own
// (engine/profiler.ts), grouped by op and by forward/backward/update, with FLOPs and GFLOP/s where the
// kernel's uniforms say how much arithmetic it did. Work goes where this table says the time is.
import { AdamW, DispatchProfiler, gpuWait, init, rt, tidy, type DispatchTiming } from '../engine/index.js';
import { resolveConfig } from '../train/config.js';
import { openSplits } from '../train/sources.js';
import { cropLoader, modelsFor, recordStep, trainingSchedule, updateStep } from '../train/trainer.js';
import { trainingStepCases } from './suites/training-step.js';

/** The steps a profile can run: the bench's step cases, and a real SMKD iteration of a trainer preset. */
export const PROFILE_STEPS = ['vit-tiny-like', 'tiny', 'omniglot', 'omniglot-phase1'] as const;
export type ProfileStep = (typeof PROFILE_STEPS)[number];

interface Step {
  describe: string;
  /** Augmented crops one step consumes (0 for the bench's fixed-input steps). */
  crops: number;
  run(): Promise<void>;
  /** Record and submit one step; the function it returns waits for it (a preset's step: the trainer's pipelined loop). */
  begin?(): Promise<() => Promise<void>>;
  dispose(): void;
}

async function benchStep(which: 'vit-tiny-like' | 'tiny'): Promise<Step> {
  const c = trainingStepCases('full').find((x) => (which === 'tiny' ? x.name.startsWith("preset 'tiny'") : x.name.startsWith('ViT-Tiny-like')))!;
  const inst = await c.setup();
  return {
    describe: `bench training step ${c.name} (${((c.work as { flops: number }).flops / 1e9).toFixed(1)} GFLOP by the bench's count)`,
    crops: 0,
    async run() {
      // The step's temporaries are freed as the bench harness frees them (tidy): left alive, every step
      // wrote into fresh buffers, whose first touch (page faults on lavapipe) showed in its kernels' times.
      const [loss, ...rest] = tidy(() => inst.fused.step());
      for (const t of rest) t.dispose();
      await loss.item();
      loss.dispose();
    },
    dispose: () => inst.dispose(),
  };
}

/** One iteration of the trainer's loop (recordStep + updateStep) on the packed Omniglot data, loader included. */
async function presetStep(phase: 1 | 2): Promise<Step> {
  const cfg = await resolveConfig('omniglot', phase, undefined, {});
  const splits = await openSplits(cfg.data, cfg.seed);
  const models = modelsFor(cfg, splits.train.classes.length);
  const optimizer = new AdamW(models.student.arena);
  const schedule = trainingSchedule(cfg);
  // In-process augmentation, so the step's own cost shows.
  const loader = cropLoader(cfg, splits, 0);
  let it = 0;
  const begin = async () => {
    const batch = await loader.batchAt(it);
    const epoch = schedule.epochOf(it);
    const temps = { teacher: schedule.teacherTemp(epoch), patch: schedule.teacherPatchTemp(epoch) };
    const losses = tidy(() => recordStep(models, batch, cfg, temps, it));
    const clip = updateStep(models, optimizer, {
      lr: schedule.lr(it),
      weightDecay: schedule.weightDecay(it),
      momentum: schedule.momentum(it),
      clip: cfg.schedule.clipGrad,
      freezeLastLayer: false,
    });
    it++;
    // The reads go into this step's batch: the caller may record the next step before awaiting them.
    const read = Promise.all(Object.values(losses).map((t) => t.item()));
    return async () => {
      await read;
      for (const t of Object.values(losses)) t.dispose();
      clip?.dispose();
    };
  };
  return {
    crops: cfg.batch.size * (cfg.crops.global + cfg.crops.local),
    describe: `SMKD phase ${phase} iteration of preset 'omniglot' (batch ${cfg.batch.size}, ${cfg.crops.global} global crops of ${cfg.crops.globalSize} px, patch ${cfg.model.patchSize}, dim ${cfg.model.embedDim}, depth ${cfg.model.depth}; loader included)`,
    begin,
    run: async () => (await begin())(),
    dispose: () => {
      models.dispose();
    },
  };
}

/** Steps of a preset's real training loop (loader, augmentation, step, update, one readback). */
export interface Throughput {
  step: string;
  describe: string;
  iterations: number;
  seconds: number;
  cropsPerSecond: number;
  msPerStep: number;
}

/** Wall-clock augmented crops per second of `iterations` steps after two warm-up steps (compiles). */
export async function measureThroughput(which: 'omniglot' | 'omniglot-phase1', iterations = 20): Promise<Throughput> {
  await init();
  const step = await presetStep(which === 'omniglot' ? 2 : 1);
  try {
    for (let i = 0; i < 2; i++) await step.run();
    const t0 = performance.now();
    // As train/trainer.ts runs it: step i + 1 is recorded while the GPU runs step i.
    let pending = await step.begin!();
    for (let i = 1; i < iterations; i++) {
      const next = await step.begin!();
      await pending();
      pending = next;
    }
    await pending();
    const seconds = (performance.now() - t0) / 1000;
    return { step: which, describe: step.describe, iterations, seconds, cropsPerSecond: (step.crops * iterations) / seconds, msPerStep: (1000 * seconds) / iterations };
  } finally {
    step.dispose();
  }
}

/** FLOPs of one dispatch, from its kernel's uniform block, where the kernel family is known. */
export function dispatchFlops(d: Pick<DispatchTiming, 'kernel' | 'uniforms'>): number | undefined {
  const u = new Uint32Array(d.uniforms);
  if (d.kernel.startsWith('matmul_')) {
    const batch = u[4] * u[5] * u[6] * u[7];
    return 2 * u[0] * u[1] * u[2] * batch;
  }
  return undefined;
}

/** Which part of the step a dispatch belongs to: recorded by backward(), or an optimizer op, or forward. */
function phaseOf(d: Pick<DispatchTiming, 'label' | 'backward'>): 'forward' | 'backward' | 'update' {
  if (d.backward || /backward/.test(d.label)) return 'backward';
  if (/adamw|ema|clip|gradNorm|zeroGrad|optimizer/i.test(d.label)) return 'update';
  return 'forward';
}

/** The op name of a dispatch: 'linear([2080, 192], ...) backward dx' -> 'linear'; gradient accumulation into parameters is one group. */
function opOf(label: string): string {
  if (label.startsWith('accumulate grad ')) return 'accumulate grad (parameters)';
  return (
    label
      .replace(/\(.*$/, '')
      .replace(/\[.*$/, (m) => (m.length > 24 ? '[...]' : m))
      .trim() || label
  );
}

interface Group {
  name: string;
  dispatches: number;
  ms: number;
  flops: number;
  timedFlops: number;
}

function group(timings: DispatchTiming[], key: (d: DispatchTiming) => string, steps: number): Group[] {
  const groups = new Map<string, Group>();
  for (const d of timings) {
    const k = key(d);
    const g = groups.get(k) ?? { name: k, dispatches: 0, ms: 0, flops: 0, timedFlops: 0 };
    g.dispatches++;
    g.ms += d.ms;
    const f = dispatchFlops(d);
    if (f !== undefined) {
      g.flops += f;
      g.timedFlops += d.ms;
    }
    groups.set(k, g);
  }
  return [...groups.values()]
    .map((g) => ({ ...g, dispatches: g.dispatches / steps, ms: g.ms / steps, flops: g.flops / steps, timedFlops: g.timedFlops / steps }))
    .sort((a, b) => b.ms - a.ms);
}

function table(title: string, groups: Group[], total: number, limit = Infinity): string {
  const rows = groups.slice(0, limit).map((g) => {
    const gf = g.flops > 0 ? `${(g.flops / 1e9).toFixed(3)} | ${(g.flops / 1e6 / g.timedFlops).toFixed(1)}` : '| ';
    return `| ${g.name} | ${g.dispatches} | ${g.ms.toFixed(1)} | ${((100 * g.ms) / total).toFixed(1)} % | ${gf} |`;
  });
  return [`### ${title}`, '', '| group | dispatches | ms | share | GFLOP | GFLOP/s |', '|---|--:|--:|--:|--:|--:|', ...rows, ''].join('\n');
}

export interface ProfileResult {
  step: string;
  steps: number;
  totalMs: number;
  wallMs: number;
  report: string;
  timings: DispatchTiming[];
}

/** Warm up (compiles every pipeline), then time `steps` steps dispatch by dispatch. */
export async function profileStep(which: ProfileStep, steps = 2): Promise<ProfileResult> {
  await init();
  const runtime = rt();
  const step = which === 'omniglot' ? await presetStep(2) : which === 'omniglot-phase1' ? await presetStep(1) : await benchStep(which);
  try {
    for (let i = 0; i < 2; i++) await step.run();
    // Unprofiled wall time first (one pass per batch, as training runs).
    const w0 = performance.now();
    for (let i = 0; i < steps; i++) await step.run();
    await runtime.sync();
    const wallMs = (performance.now() - w0) / steps;
    const profiler = new DispatchProfiler(runtime.device);
    runtime.profiler = profiler;
    try {
      for (let i = 0; i < steps; i++) await step.run();
      await runtime.sync();
    } finally {
      runtime.profiler = undefined;
    }
    const timings = await profiler.collect(gpuWait);
    const totalMs = timings.reduce((a, d) => a + d.ms, 0) / steps;
    const byPhase = group(timings, (d) => phaseOf(d), steps);
    const byOp = group(timings, (d) => `${opOf(d.label)} (${phaseOf(d)})`, steps);
    const byKernel = group(timings, (d) => `${d.label}${d.backward && !/backward/.test(d.label) ? ' (in backward)' : ''} — ${d.kernel}`, steps);
    const report = [
      `## Profile: ${step.describe}`,
      '',
      `Per step (mean of ${steps}): ${totalMs.toFixed(1)} ms of kernel time in ${timings.length / steps} dispatches, each in its own timed pass; ${wallMs.toFixed(0)} ms wall time per step unprofiled (one submit per step, loader included where the step has one). GFLOP/s is counted on the matmul dispatches of a group only.`,
      '',
      table('By part of the step', byPhase, totalMs),
      table('By op (top 25)', byOp, totalMs, 25),
      table('Top 15 dispatches (op label and kernel)', byKernel, totalMs, 15),
    ].join('\n');
    return { step: which, steps, totalMs, wallMs, report, timings };
  } finally {
    step.dispose();
  }
}
