// The record a run writes (bench/results/<adapter>.json) and the markdown report made from it.
import type { Sizes } from './case.js';
import { throughput, type CaseResult, type Mode } from './harness.js';
import { SUITES } from './suites/index.js';

export interface BenchRecord {
  adapter: string;
  adapterSlug: string;
  isSoftware: boolean;
  hasTimestamps: boolean;
  versions: { node: string; webgpu: string; engine: string };
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
  cases: CaseResult[];
}

/** A file-name-safe adapter name. */
export function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 64).replace(/-$/, '') || 'unknown-adapter';
}

const fix = (x: number | undefined, d = 2): string => (x === undefined || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(d));
const mib = (b: number | undefined): string => (b === undefined ? '–' : (b / 2 ** 20).toFixed(b < 2 ** 20 ? 3 : 1));
const loadStr = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' / ');

/** One line per case, plain: does the fused kernel win, and by how much. */
export function verdict(c: CaseResult): string {
  if (c.error) return `${c.name}: FAILED (${c.error.split('\n')[0]})`;
  if (c.ratio === undefined) return `${c.name}: ran (no timing in this mode)`;
  const f = c.fused!.timing!.medianMs;
  const u = c.unfused!.timing!.medianMs;
  return c.ratio >= 1
    ? `${c.name}: fused ${fix(f)} ms vs unfused ${fix(u)} ms, fused is ${c.ratio.toFixed(2)}x faster`
    : `${c.name}: fused ${fix(f)} ms vs unfused ${fix(u)} ms, fused is SLOWER: it takes ${(1 / c.ratio).toFixed(2)}x the unfused time (${((1 / c.ratio - 1) * 100).toFixed(0)}% more)`;
}

function suiteTable(cases: CaseResult[]): string[] {
  const unit = cases.length && 'flops' in cases[0].work ? 'GFLOP/s' : 'GB/s';
  const rows = [
    `| case | fused ms | unfused ms | unfused / fused | fused ${unit} | unfused ${unit} | peak extra MiB fused / unfused | benny ops/s fused / unfused | agreement |`,
    '|---|--:|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const c of cases) {
    if (c.error) {
      rows.push(`| ${c.name} | failed: ${c.error.split('\n')[0].replace(/\|/g, '/')} | | | | | | | |`);
      continue;
    }
    const fm = c.fused?.timing?.medianMs;
    const um = c.unfused?.timing?.medianMs;
    const tp = (ms?: number): string => (ms === undefined ? '–' : fix(throughput(c.work, ms).value));
    const benny = (v?: { opsPerSec: number; marginPct: number }): string => (v ? `${v.opsPerSec.toPrecision(3)} ±${v.marginPct.toFixed(0)}%` : '–');
    const a = c.agreement;
    const agree = a ? `${a.ok ? 'ok' : '**MISMATCH**'} ${a.error.toExponential(1)} (tol ${a.tolerance.toExponential(0)})` : '–';
    rows.push(
      `| ${c.name} | ${fix(fm)} | ${fix(um)} | ${c.ratio === undefined ? '–' : `**${c.ratio.toFixed(2)}x**`} | ${tp(fm)} | ${tp(um)} | ${mib(c.fused?.memory.peakExtraBytes)} / ${mib(c.unfused?.memory.peakExtraBytes)} | ${benny(c.fused?.benny)} / ${benny(c.unfused?.benny)} | ${agree} |`,
    );
  }
  return rows;
}

/** The markdown section of one run. */
export function renderRecord(r: BenchRecord): string {
  const lines = [
    `## ${r.adapter}`,
    '',
    `- Run: ${r.date}, mode \`${r.mode}\`, ${r.sizes} sizes, ${r.seconds.toFixed(0)} s; node ${r.versions.node}, webgpu (Dawn) ${r.versions.webgpu}, engine ${r.versions.engine}; ${r.cpus} CPU cores${r.isSoftware ? ' (software adapter: the "GPU" is these cores)' : ''}.`,
    `- Machine load (uptime, 1 / 5 / 15 min): ${loadStr(r.load.start)} at the start, ${loadStr(r.load.end)} at the end, on ${r.cpus} cores. The machine was shared with other jobs, so absolute times are noisy; fused and unfused samples were interleaved so both saw the same load, which keeps the ratios more stable than the times.`,
    `- Timing: ${r.method}`,
    '',
  ];
  const att = r.cases.filter((c) => c.suite === 'attention');
  if (att.length) lines.push('Attention, the headline:', '', ...att.map((c) => `- ${verdict(c)}`), '');
  const timed = r.cases.filter((c) => c.ratio !== undefined);
  const slower = timed.filter((c) => c.ratio! < 1);
  if (timed.length) {
    lines.push(
      slower.length
        ? `Where the fused kernel loses: ${slower.map((c) => `${c.suite} ${c.name} (${c.ratio!.toFixed(2)}x: ${((1 / c.ratio! - 1) * 100).toFixed(0)}% slower than the composition)`).join('; ')}.`
        : `The fused kernel is faster than the composition in every case (speed-ups ${Math.min(...timed.map((c) => c.ratio!)).toFixed(2)}x to ${Math.max(...timed.map((c) => c.ratio!)).toFixed(2)}x).`,
      '',
    );
  }
  for (const [key, s] of Object.entries(SUITES)) {
    const cases = r.cases.filter((c) => c.suite === key);
    if (!cases.length) continue;
    lines.push(`### ${s.title}`, '', `Unfused: ${cases[0].unfusedOps}.`, '', ...suiteTable(cases), '');
  }
  return lines.join('\n');
}

export const COLUMN_NOTES = [
  '- **fused ms / unfused ms**: median wall time per op (forward, or forward + backward where the case says so), from batches of N ops recorded back to back between two `await rt().sync()` calls (N sized from one timed op so a batch lasts ~0.4 s, between 1 and 64; N is in the JSON), after warm-up runs that compile every pipeline.',
  '- **unfused / fused**: the speed-up of the fused kernel; below 1 means the fused kernel is slower.',
  '- **GFLOP/s**: useful FLOPs of the maths per op, the same count for both variants (attention: 4·B·H·T²·Dh forward, 3x that forward + backward, recomputation not counted; cosine argmax: 2·G·N·M·D). **GB/s**: the minimal memory traffic of the op (soft cross-entropy forward + backward: 5·N·C floats; EMA: 3 floats per parameter; AdamW: 7), not what the unfused composition actually moves.',
  '- **peak extra MiB**: the buffer pool\'s high-water mark of live bytes during one op minus the live bytes before it (pool size classes; inputs and persistent state excluded, results and saved activations included).',
  '- **benny ops/s**: benny (benchmark.js) on one op + `sync()` per call, so it includes the submit and wait latency that the batched median amortises; ± is its relative margin of error.',
  '- **agreement**: one run of each variant from the same inputs, read back: max |fused − unfused| / max |unfused| over every output (forward result and input gradients; AdamW: parameters and both moments). Cosine argmax: the worst float64 cosine gap between either variant\'s pick and the true best (indices may differ only at f32 ties).',
];

/** The whole RESULTS.md from every full-mode record. */
export function renderReport(records: BenchRecord[]): string {
  const adapters = records.map((r) => r.adapter).join('; ') || 'none yet';
  return [
    '# Fused kernel benchmarks',
    '',
    `Adapter${records.length > 1 ? 's' : ''}: **${adapters}**.`,
    '',
    'Each fused kernel of the engine against the same computation composed from its core ops (what the engine would run without the fused kernel), on the same random inputs and the same device. Regenerated by `npm run bench` (full mode) from `bench/results/*.json`; `npm run bench -- --quick` and `-- --smoke` write `<adapter>.quick.json` / `<adapter>.smoke.json` and leave this file alone.',
    '',
    'Columns:',
    '',
    ...COLUMN_NOTES,
    '',
    ...records.map(renderRecord),
  ].join('\n');
}
