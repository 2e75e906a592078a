// npm run bench [-- --quick | --smoke] [-- --suite attention,ema]: runs the fused-kernel suites,
// writes bench/results/<adapter>.json and, for a full run, regenerates bench/RESULTS.md.
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapterName, init, rt } from '../engine/index.js';
import { runCase, type CaseResult, type Mode } from './harness.js';
import { renderRecord, renderReport, slug, verdict, type BenchRecord } from './report.js';
import { selectCases } from './suites/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const resultsDir = path.join(here, 'results');

function parseArgs(argv: string[]): { mode: Mode; suites: string[] } {
  let mode: Mode = 'full';
  const suites: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') mode = 'quick';
    else if (a === '--smoke') mode = 'smoke';
    else if (a === '--suite') suites.push(...(argv[++i] ?? '').split(','));
    else if (a.startsWith('--suite=')) suites.push(...a.slice(8).split(','));
    else throw new Error(`bench: unknown argument '${a}' (use --quick, --smoke, --suite name[,name])`);
  }
  return { mode, suites: suites.filter(Boolean) };
}

function packageVersion(dir: string): string {
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

function summaryLine(c: CaseResult): string {
  const a = c.agreement;
  const agree = a ? `, agreement ${a.ok ? 'ok' : 'MISMATCH'} ${a.error.toExponential(1)}` : '';
  return `[${c.suite}] ${verdict(c)}${agree} (${c.seconds.toFixed(1)} s)`;
}

/** Every full-mode record in bench/results, for RESULTS.md. */
function fullRecords(): BenchRecord[] {
  return readdirSync(resultsDir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(path.join(resultsDir, f), 'utf8')) as BenchRecord)
    .filter((r) => r.mode === 'full' && !r.partial)
    .sort((a, b) => a.adapter.localeCompare(b.adapter));
}

async function main(): Promise<number> {
  const { mode, suites } = parseArgs(process.argv.slice(2));
  const loadStart = loadavg();
  const t0 = performance.now();
  await init();
  const gpu = rt().gpu;
  const adapter = adapterName(gpu.info);
  const cases = selectCases('full', suites);
  console.log(`bench (${mode}): ${cases.length} cases on ${adapter}; load average ${loadStart.map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} cores`);
  const results: CaseResult[] = [];
  for (const c of cases) {
    const r = await runCase(c, mode);
    results.push(r);
    console.log(summaryLine(r));
    if (r.error) console.error(r.error);
  }
  const record: BenchRecord = {
    adapter,
    adapterSlug: slug(adapter),
    isSoftware: gpu.info.isSoftware,
    hasTimestamps: gpu.hasTimestamps,
    versions: { node: process.version, webgpu: packageVersion(path.join(root, 'node_modules/webgpu')), engine: packageVersion(root) },
    date: new Date().toISOString(),
    mode,
    sizes: 'full',
    cpus: cpus().length,
    load: { start: loadStart, end: loadavg() },
    method:
      'wall clock (`performance.now()`) only, around batches of ops that end in `await rt().sync()` (flush, submit, then `queue.onSubmittedWorkDone()`); ' +
      (gpu.hasTimestamps ? 'the adapter has timestamp queries but the runtime does not expose them, so no GPU-side timestamps were used.' : 'the adapter has no timestamp queries.'),
    seconds: (performance.now() - t0) / 1000,
    partial: suites.length > 0,
    cases: results,
  };
  mkdirSync(resultsDir, { recursive: true });
  // Only a complete full run is the adapter's record; anything else gets a file name of its own.
  const tags = [mode === 'full' ? '' : `.${mode}`, suites.length ? `.${suites.join('+')}` : ''].join('');
  const file = path.join(resultsDir, `${record.adapterSlug}${tags}.json`);
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  console.log(`wrote ${path.relative(root, file)}`);
  if (mode === 'full' && suites.length === 0) {
    writeFileSync(path.join(here, 'RESULTS.md'), renderReport(fullRecords()));
    console.log('regenerated bench/RESULTS.md');
  } else console.log(`\n${renderRecord(record)}`);
  const bad = results.filter((r) => r.error || !r.agreement?.ok);
  if (bad.length) console.error(`${bad.length} case(s) failed or disagreed: ${bad.map((r) => `${r.suite} ${r.name}`).join('; ')}`);
  console.log(`done in ${record.seconds.toFixed(0)} s`);
  return bad.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
