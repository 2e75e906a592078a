// The browser section of bench/RESULTS.md: one table per browser adapter, ours against tfjs-webgpu in
// the same page (bench/browser/page.ts).
import type { BrowserBench, BrowserRow } from './page.js';

export interface BrowserRecord extends BrowserBench {
  date: string;
  browser: string;
  sizes: string;
  seconds: number;
  machine: string;
}

const ms = (v?: number): string => (v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function agreementCell(r: BrowserRow): string {
  if (!r.agreement) return '–';
  return `${r.agreement.ok ? '✓' : '✗'} ${r.agreement.error.toExponential(1)}`;
}

export function renderBrowserRecord(rec: BrowserRecord): string {
  const ratios = rec.rows.map((r) => r.vsWebgpu).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const geo = ratios.length ? Math.exp(ratios.reduce((s, v) => s + Math.log(v), 0) / ratios.length) : undefined;
  return [
    `### In ${rec.browser} on ${rec.adapter}`,
    '',
    `${rec.date}, ${rec.machine}; ${rec.sizes} sizes; ${rec.seconds.toFixed(0)} s in all. ${rec.rows.length} cases; geometric mean of tfjs-webgpu / ours: **${geo === undefined ? '–' : `${geo.toFixed(2)}x`}**.`,
    '',
    '| suite | case | ours (ms) | tfjs-webgpu (ms) | tfjs-webgpu / ours | agreement | samples |',
    '|---|---|---:|---:|---:|---|---:|',
    ...rec.rows.map(
      (r) =>
        `| ${r.suite} | ${r.name} | ${ms(r.oursMs)} | ${ms(r.tfjsMs)} | ${r.vsWebgpu === undefined ? '–' : `${r.vsWebgpu.toFixed(2)}x`} | ${agreementCell(r)} | ${r.samples}${r.error ? ` (error: ${r.error})` : ''} |`,
    ),
  ].join('\n');
}

/** The section RESULTS.md ends with (empty without browser records). */
export function renderBrowserSection(records: BrowserRecord[]): string[] {
  if (!records.length) return [];
  return [
    '',
    '## In the browser: ours and tfjs-webgpu in one page',
    '',
    'The same suites in headless Chromium (`npm run bench:browser`): the engine on its own `navigator.gpu` device and tfjs (tfjs-core + tfjs-backend-webgpu) on its own, in one page, as a web app would have them. Wall clock per op (or step) after a warm-up, each sample drained to the end of its GPU work, runners interleaved, median. Without a GPU, Chromium runs WebGPU on SwiftShader, a CPU fallback 10-30x slower than lavapipe: these tables compare the two libraries on one adapter, not the adapter with others.',
    '',
    ...records.map(renderBrowserRecord),
  ];
}
