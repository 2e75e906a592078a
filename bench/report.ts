// The record a run writes (bench/results/<adapter>.json) and the markdown report made from it.
import { renderBrowserSection, type BrowserRecord } from './browser/report.js';
import type { Agreement, Sizes } from './case.js';
import { throughput, type CaseResult, type Mode, type VariantResult } from './harness.js';
import { SUITES } from './suites/index.js';
import type { Throughput } from './profile.js';
import { renderFirstStep, type FirstStep } from './first-step.js';

export interface TfjsInfo {
  versions: { core: string; webgpu: string; wasm: string };
  available: string[];
  problems: string[];
  /** tfjs-webgpu ran on the engine's own device (so on the same adapter). */
  sameDevice: boolean;
  adapterInfo: string;
}

export interface JaxjsInfo {
  version: string;
  available: string[];
  problems: string[];
  /** jax-js-webgpu ran on the engine's own device (so on the same adapter). */
  sameDevice: boolean;
  /** jax-js' wasm backend ran its kernels on Web Workers (false in Node: no global Worker). */
  wasmThreads: boolean;
}

/** PyTorch as the peer ran it (bench/torch/peer.ts TorchEnv), or, without `torch`, why it did not run. */
export interface TorchInfo {
  python?: string;
  executable?: string;
  pythonVersion?: string;
  torch?: string;
  numpy?: string;
  threads?: number;
  interopThreads?: number;
  /** The variables its processes ran with (OMP_WAIT_POLICY, thread counts). */
  env?: Record<string, string>;
  /** Interpreters tried first that could not run it. */
  passedOver?: string[];
  problems: string[];
}

export interface BenchRecord {
  adapter: string;
  adapterSlug: string;
  isSoftware: boolean;
  hasTimestamps: boolean;
  versions: { node: string; webgpu: string; engine: string };
  tfjs?: TfjsInfo;
  jaxjs?: JaxjsInfo;
  /** Absent when the run was told --no-torch. */
  torch?: TorchInfo;
  date: string;
  mode: Mode;
  sizes: Sizes;
  cpus: number;
  /** `uptime` load averages (1, 5, 15 min) when the run started and when it ended. */
  load: { start: number[]; end: number[] };
  method: string;
  seconds: number;
  /** Only some suites ran (--suite): not used for RESULTS.md. */
  partial: boolean;
  /** The chart of this record, relative to bench/. */
  chart?: string;
  /** Suites re-run later with `--suite ... --update`, whose cases replaced the first run's. */
  updates?: { suites: string[]; date: string; load: { start: number[]; end: number[] }; seconds: number }[];
  cases: CaseResult[];
  /** End-to-end crops per second of the demo preset's real training loop (full and quick runs). */
  throughput?: Throughput[];
  /** The same for PyTorch's loop (its own loader and augmentation), where it ran. */
  torchThroughput?: Throughput[];
  /** `smkd train`'s cold and warm time to its first step (full and quick runs of the step suite, unless --no-first-step). */
  firstStep?: FirstStep;
  /** Why that measurement failed. */
  firstStepError?: string;
}

/** A file-name-safe adapter name. */
export function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 64)
      .replace(/-$/, '') || 'unknown-adapter'
  );
}

const fix = (x: number | undefined, d = 2): string => (x === undefined || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(d));
const mib = (b: number | undefined): string => (b === undefined ? '–' : (b / 2 ** 20).toFixed(b < 2 ** 20 ? 3 : 1));
const loadStr = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' / ');
const times = (r: number | undefined): string => (r === undefined ? '–' : `${r.toFixed(2)}x`);

export function geomean(xs: readonly number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

/** The speed-up each suite must reach over tfjs-webgpu (issue #7). */
export function target(suite: string): number {
  return suite === 'matmul' ? 3 : 2;
}

/** One line per case, plain: how ours compares with tfjs (and with the unfused composition). */
export function verdict(c: CaseResult): string {
  if (c.error) return `${c.name}: FAILED (${c.error.split('\n')[0]})`;
  const f = c.fused?.timing?.medianMs;
  if (f === undefined) return `${c.name}: ran (no timing in this mode)`;
  const wall = (t?: { method: string; wallMs: number }): string => (t?.method === 'gpu-timestamps' ? ` GPU-side, ${fix(t.wallMs)} ms wall` : '');
  const parts = [`ours ${fix(f)} ms${wall(c.fused?.timing)}`];
  if (c.vsWebgpu !== undefined)
    parts.push(
      `tfjs-webgpu ${fix(c.tfjsWebgpu!.timing!.medianMs)} ms${wall(c.tfjsWebgpu!.timing)} (ours ${c.vsWebgpu >= 1 ? `${c.vsWebgpu.toFixed(2)}x faster` : `SLOWER, ${(1 / c.vsWebgpu).toFixed(2)}x the time`})`,
    );
  if (c.vsWasm !== undefined) parts.push(`tfjs-wasm ${fix(c.tfjsWasm!.timing!.wallMs)} ms wall (${c.vsWasm.toFixed(2)}x)`);
  if (c.vsJaxWebgpu !== undefined) parts.push(`jax-js-webgpu ${fix(c.jaxWebgpu!.timing!.medianMs)} ms${wall(c.jaxWebgpu!.timing)} (${c.vsJaxWebgpu.toFixed(2)}x)`);
  if (c.vsJaxWasm !== undefined) parts.push(`jax-js-wasm ${fix(c.jaxWasm!.timing!.wallMs)} ms wall (${c.vsJaxWasm.toFixed(2)}x)`);
  if (c.vsTorch !== undefined) {
    const gpu = c.fused?.timing?.method === 'gpu-timestamps';
    parts.push(`PyTorch CPU ${fix(c.torch!.timing!.wallMs)} ms wall (${c.vsTorch.toFixed(2)}x ours${gpu ? ` GPU-side, ${c.vsTorchWall!.toFixed(2)}x our wall time` : ''})`);
  }
  if (c.ratio !== undefined) parts.push(`unfused ${fix(c.unfused!.timing!.medianMs)} ms (${c.ratio.toFixed(2)}x)`);
  return `${c.name}: ${parts.join(', ')}`;
}

const agreeStr = (a?: Agreement): string => (a ? `${a.ok ? 'ok' : '**MISMATCH**'} ${a.error.toExponential(1)}` : '–');

function suiteTable(cases: CaseResult[]): string[] {
  const unit = cases.length && 'flops' in cases[0].work ? 'GFLOP/s' : 'GB/s';
  const hasUnfused = cases.some((c) => c.unfusedOps);
  // jax-js and PyTorch columns only for the suites that have such a version.
  const hasJax = cases.some((c) => c.jaxOps);
  const hasTorch = cases.some((c) => c.torchOps);
  const rows = [
    `| case | ours ms | tfjs-webgpu ms | tfjs-wasm ms (wall) | **tfjs-webgpu / ours** | tfjs-wasm / ours | ours ${unit} | tfjs-webgpu ${unit} | tfjs-wasm ${unit} |${hasJax ? ` jax-js-webgpu ms | jax-js-wasm ms (wall) | jax-js-webgpu / ours | jax-js-wasm / ours | jax-js-webgpu ${unit} | jax-js-wasm ${unit} |` : ''}${hasTorch ? ' PyTorch CPU ms (wall) | PyTorch / ours | PyTorch / ours wall | PyTorch GFLOP/s |' : ''}${hasUnfused ? ' unfused ms | unfused / ours | peak extra MiB ours / unfused |' : ''} benny ops/s ours / tfjs-webgpu | agreement: tfjs-webgpu, tfjs-wasm${hasJax ? ', jax-js-webgpu, jax-js-wasm' : ''}${hasTorch ? ', PyTorch' : ''}${hasUnfused ? ', unfused' : ''} |`,
    `|---|--:|--:|--:|--:|--:|--:|--:|--:|${hasJax ? '--:|--:|--:|--:|--:|--:|' : ''}${hasTorch ? '--:|--:|--:|--:|' : ''}${hasUnfused ? '--:|--:|--:|' : ''}--:|---|`,
  ];
  for (const c of cases) {
    if (c.error) {
      rows.push(`| ${c.name} | failed: ${c.error.split('\n')[0].replace(/\|/g, '/')} |`);
      continue;
    }
    const ms = (v?: VariantResult, wall = false): number | undefined => (wall ? v?.timing?.wallMs : v?.timing?.medianMs);
    const tp = (x?: number): string => (x === undefined ? '–' : fix(throughput(c.work, x).value));
    const benny = (v?: VariantResult): string => (v?.benny ? `${v.benny.opsPerSec.toPrecision(3)} ±${v.benny.marginPct.toFixed(0)}%` : '–');
    const ours = ms(c.fused);
    const web = ms(c.tfjsWebgpu);
    const wasm = ms(c.tfjsWasm, true);
    const vs = c.vsWebgpu === undefined ? '–' : `**${times(c.vsWebgpu)}**${c.vsWebgpu < target(c.suite) ? ' (below target)' : ''}`;
    const cells = [c.name, fix(ours), fix(web), fix(wasm), vs, times(c.vsWasm), tp(ours), tp(web), tp(wasm)];
    if (hasJax) {
      const jweb = ms(c.jaxWebgpu);
      const jwasm = ms(c.jaxWasm, true);
      cells.push(fix(jweb), fix(jwasm), times(c.vsJaxWebgpu), times(c.vsJaxWasm), tp(jweb), tp(jwasm));
    }
    if (hasTorch) {
      const pt = ms(c.torch, true);
      cells.push(fix(pt), times(c.vsTorch), times(c.vsTorchWall), tp(pt));
    }
    if (hasUnfused) cells.push(fix(ms(c.unfused)), times(c.ratio), `${mib(c.fused?.memory?.peakExtraBytes)} / ${mib(c.unfused?.memory?.peakExtraBytes)}`);
    const ag = [agreeStr(c.tfjsAgreement?.['tfjs-webgpu']), agreeStr(c.tfjsAgreement?.['tfjs-wasm'])];
    if (hasJax) ag.push(agreeStr(c.jaxAgreement?.['jax-js-webgpu']), agreeStr(c.jaxAgreement?.['jax-js-wasm']));
    if (hasTorch) ag.push(agreeStr(c.torchAgreement));
    if (hasUnfused) ag.push(agreeStr(c.agreement));
    cells.push(`${benny(c.fused)} / ${benny(c.tfjsWebgpu)}`, ag.join(', '));
    rows.push(`| ${cells.join(' | ')} |`);
  }
  return rows;
}

/** Per suite: geometric mean and worst of the speed-ups over tfjs-webgpu, tfjs-wasm, jax-js and PyTorch. */
function summaryTable(r: BenchRecord): string[] {
  const rows = [
    '| suite | cases | ours vs tfjs-webgpu: geomean (worst) | target | met | ours vs tfjs-wasm: geomean (worst) | ours vs jax-js-webgpu: geomean (worst) | ours vs jax-js-wasm: geomean (worst) | ours vs PyTorch CPU: geomean (worst) |',
    '|---|--:|--:|--:|---|--:|--:|--:|--:|',
  ];
  for (const [key, s] of Object.entries(SUITES)) {
    const cases = r.cases.filter((c) => c.suite === key && !c.error);
    if (!cases.length) continue;
    const web = cases.map((c) => c.vsWebgpu).filter((x): x is number => x !== undefined);
    const wasm = cases.map((c) => c.vsWasm).filter((x): x is number => x !== undefined);
    const jweb = cases.map((c) => c.vsJaxWebgpu).filter((x): x is number => x !== undefined);
    const jwasm = cases.map((c) => c.vsJaxWasm).filter((x): x is number => x !== undefined);
    const pt = cases.map((c) => c.vsTorch).filter((x): x is number => x !== undefined);
    const g = (xs: number[]): string => (xs.length ? `${geomean(xs).toFixed(2)}x (${Math.min(...xs).toFixed(2)}x)` : '–');
    const met = web.length ? (Math.min(...web) >= target(key) ? 'yes' : 'no') : '–';
    rows.push(`| ${s.title} | ${cases.length} | ${g(web)} | ${target(key)}x | ${met} | ${g(wasm)} | ${g(jweb)} | ${g(jwasm)} | ${g(pt)} |`);
  }
  return rows;
}

/** What jax-js ran on, in a sentence or three. */
function jaxLine(j: JaxjsInfo): string {
  const parts = [`@jax-js/jax ${j.version}; backends run: ${j.available.join(', ') || 'none'}${j.problems.length ? ` (failed: ${j.problems.join('; ')})` : ''}.`];
  if (j.available.includes('jax-js-webgpu'))
    parts.push(j.sameDevice ? "jax-js-webgpu ran on the engine's own GPUDevice (same adapter, same queue)." : "jax-js-webgpu **did not** run on the engine's device.");
  if (j.available.includes('jax-js-wasm'))
    parts.push(j.wasmThreads ? 'jax-js-wasm ran its kernels on Web Workers.' : 'jax-js-wasm ran single-threaded (Node has no global `Worker`, which its thread pool needs).');
  if (j.available.length) parts.push('Every jax-js computation is under `jit`.');
  return parts.join(' ');
}

/** What PyTorch ran as (or why it did not), in a sentence or two. */
function torchLine(t: TorchInfo): string {
  if (!t.torch) return `not run: ${t.problems.join('; ') || 'no Python with torch found'}.`;
  const vars = Object.entries(t.env ?? {})
    .map(([k, v]) => `\`${k}=${v}\``)
    .join(', ');
  const failed = t.problems.length ? ` Failed: ${t.problems.join('; ')}.` : '';
  return `PyTorch ${t.torch} on the CPU (${t.executable}, Python ${t.pythonVersion}, NumPy ${t.numpy}), one process per case (bench/torch/peer.py), \`torch.set_num_threads(${t.threads})\` (${t.interopThreads} inter-op thread), ${vars}: idle threads sleep while ours runs.${failed}`;
}

/** The markdown section of one run. */
export function renderRecord(r: BenchRecord): string {
  const t = r.tfjs;
  const j = r.jaxjs;
  const lines = [
    `## ${r.adapter}`,
    '',
    `- Run: ${r.date}, mode \`${r.mode}\`, ${r.sizes} sizes, ${r.seconds.toFixed(0)} s; node ${r.versions.node}, webgpu (Dawn) ${r.versions.webgpu}, engine ${r.versions.engine}; ${r.cpus} CPU cores${r.isSoftware ? ' (software adapter: the "GPU" is these cores)' : ''}.`,
    t
      ? `- tfjs: @tensorflow/tfjs-core ${t.versions.core}, tfjs-backend-webgpu ${t.versions.webgpu}, tfjs-backend-wasm ${t.versions.wasm}; backends run: ${t.available.join(', ') || 'none'}${t.problems.length ? ` (failed: ${t.problems.join('; ')})` : ''}. tfjs-webgpu ${t.sameDevice ? "ran on the engine's own GPUDevice (same adapter, same queue)" : "**did not** run on the engine's device"}; it reports its adapter as "${t.adapterInfo}".`
      : '- tfjs: not run.',
    j ? `- jax-js: ${jaxLine(j)}` : '- jax-js: not run.',
    r.torch ? `- PyTorch: ${torchLine(r.torch)}` : '- PyTorch: not run.',
    `- Machine load (uptime, 1 / 5 / 15 min): ${loadStr(r.load.start)} at the start, ${loadStr(r.load.end)} at the end, on ${r.cpus} cores. The machine was shared with other jobs, so absolute times are noisy; the runners' samples were interleaved so all saw the same load, which keeps the ratios steadier than the times.`,
    `- Timing: ${r.method}`,
    ...(r.updates ?? []).map(
      (u) =>
        `- Re-run later (\`--suite ${u.suites.join(',')} --update\`, after a kernel change): ${u.suites.join(', ')} at ${u.date}, ${u.seconds.toFixed(0)} s, load ${loadStr(u.load.start)} at the start.`,
    ),
    '',
  ];
  if (r.chart) lines.push(`![speed-up of ours over tfjs, jax-js and PyTorch, per case](${r.chart})`, '');
  if (r.cases.some((c) => c.vsWebgpu !== undefined)) lines.push(...summaryTable(r), '');
  const step = r.cases.filter((c) => c.suite === 'trainingStep');
  if (step.length) lines.push('The whole training step:', '', ...step.map((c) => `- ${verdict(c)}`), '');
  if (r.throughput?.length) {
    lines.push(
      "End-to-end training throughput (the demo preset's training loop: loader, augmentation, masking, forward, losses, backward, AdamW, EMA and one readback per step; wall clock; no tfjs or jax-js equivalent, PyTorch's below where it ran):",
      '',
      ...r.throughput.map((t) => `- ${t.describe}: **${t.cropsPerSecond.toFixed(0)} augmented crops/s** (${t.msPerStep.toFixed(0)} ms per step over ${t.iterations} steps)`),
      '',
    );
  }
  if (r.torchThroughput?.length) {
    lines.push(
      "PyTorch's loop on the CPU, measured right after ours for the same phase (its own Python loader: P x K sampling, batched affine warps with `grid_sample`, block masks; bench/torch/omniglot_loader.py):",
      '',
      ...r.torchThroughput.map((t) => {
        const ours = r.throughput?.find((o) => o.step === t.step);
        return `- ${t.describe}: **${t.cropsPerSecond.toFixed(0)} augmented crops/s** (${t.msPerStep.toFixed(0)} ms per step over ${t.iterations} steps)${ours ? `; ours / PyTorch ${(ours.cropsPerSecond / t.cropsPerSecond).toFixed(2)}x` : ''}`;
      }),
      '',
    );
  }
  lines.push(...renderFirstStep(r.firstStep, r.firstStepError));
  for (const [key, s] of Object.entries(SUITES)) {
    const cases = r.cases.filter((c) => c.suite === key);
    if (!cases.length) continue;
    lines.push(`### ${s.title}`, '');
    if (cases[0].tfjsOps) lines.push(`tfjs: ${cases[0].tfjsOps}.`, '');
    if (cases[0].jaxOps) lines.push(`jax-js: ${cases[0].jaxOps}.`, '');
    for (const op of new Set(cases.map((c) => c.torchOps).filter(Boolean))) lines.push(`PyTorch: ${op}.`, '');
    if (cases[0].unfusedOps) lines.push(`Unfused (ours): ${cases[0].unfusedOps}.`, '');
    lines.push(...suiteTable(cases), '');
  }
  return lines.join('\n');
}

export const COLUMN_NOTES = [
  "- **ours / tfjs-webgpu ms**: median time per op over interleaved samples; each sample is a batch of N ops (N sized so a batch lasts ~0.25 s, 1 to 32, and 1 for the whole step; in the JSON) between two drains of the queue, after warm-up runs that compile every pipeline. Where the adapter has timestamp queries this is GPU-side time: every compute pass in the batch (ours and tfjs', which share the device) gets begin/end timestamps and the per-op time is their summed duration (bench/gpu-timer.ts); the wall time is in the JSON beside it. Otherwise it is wall time.",
  '- **tfjs-wasm ms**: wall time (it runs on the CPU, synchronously); its ratio is against our wall time.',
  "- **jax-js-webgpu / jax-js-wasm ms** (matmul, attention, soft cross-entropy and the whole step): @jax-js/jax, every computation under `jit`, timed like tfjs: jax-js-webgpu runs on the engine's device, so GPU-side where the adapter has timestamps; jax-js-wasm is wall time against ours. jax-js is lazy (an op records work, awaiting a result runs it), so a sample's batch ends by awaiting every result (`blockUntilReady`) and draining the queue. The ratios are its time / ours.",
  "- **PyTorch CPU ms** (the whole step and the SMKD iterations): PyTorch on the machine's CPU cores in a Python process of its own (bench/torch/peer.py), from our weights, state and inputs; wall time of a batch of steps, i.e. the request over a pipe and the reply (well under a millisecond against steps of 10 ms and more). **PyTorch / ours** is against ours by our primary method (GPU-side where the adapter has timestamps), **PyTorch / ours wall** against our wall time; on a software adapter both run on the same cores, and the samples are interleaved.",
  '- **tfjs-webgpu / ours**: how many times faster ours is (the target of issue #7: 2x, matmul 3x).',
  '- **GFLOP/s**: useful FLOPs of the maths per op, the same count for every runner (matmul 2·M·N·K; attention 4·B·H·T²·Dh forward, 3x that forward + backward, recomputation not counted; cosine argmax 2·G·N·M·D; the step: 3x the forward matmul and attention FLOPs). **GB/s**: the minimal memory traffic of the op (layerNorm and GELU forward + backward: 5 floats per element; soft cross-entropy 5·N·C floats; EMA 3 floats per parameter; AdamW 7), not what a composition actually moves.',
  "- **unfused**: the same maths composed from our own core ops (the engine without its fused kernel); **peak extra MiB**: the buffer pool's high-water mark during one op minus the live bytes before it.",
  '- **benny ops/s**: benny (benchmark.js) on one op + drain per call, so it includes submit and wait latency that the batched median amortises.',
  '- **agreement**: one run of ours and of the other from the same inputs and state, read back: max |ours − theirs| / max |theirs| over every output (forward result and input gradients; EMA/AdamW: the updated state; the step: the loss; an SMKD iteration: every loss term of two iterations against PyTorch, the second after an update). Cosine argmax: the worst float64 cosine gap between either pick and the true best.',
];

/** The whole RESULTS.md from every full-mode record, and the browser records at the end. */
export function renderReport(records: BenchRecord[], browser: BrowserRecord[] = []): string {
  const adapters = records.map((r) => r.adapter).join('; ') || 'none yet';
  return [
    '# Benchmarks: ours against tfjs on the same adapter',
    '',
    `Adapter${records.length > 1 ? 's' : ''}: **${adapters}**.`,
    '',
    'Each kernel of a ViT training step, and the whole step, run by this engine, by tfjs (@tensorflow/tfjs-core with tfjs-backend-webgpu) on the same Dawn adapter and device, and for reference by tfjs-backend-wasm, on the same random inputs; matmul, attention, soft cross-entropy and the whole step also by jax-js (@jax-js/jax, jitted) on its wasm backend and its WebGPU backend on the same device; the whole step and one SMKD iteration of each phase of the omniglot preset also by PyTorch on the CPU, where a Python with torch is found; where the engine has a fused kernel, also against the same maths composed from its own core ops. Regenerated by `npm run bench` (full mode) from `bench/results/*.json`; `npm run bench -- --quick` and `-- --smoke` write `<adapter>.quick.json` / `<adapter>.smoke.json` and leave this file alone. What was tried to make the kernels fast is in [NOTES.md](NOTES.md).',
    '',
    'Columns:',
    '',
    ...COLUMN_NOTES,
    '',
    ...records.map(renderRecord),
    ...renderBrowserSection(browser),
  ].join('\n');
}
