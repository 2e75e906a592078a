// npm run bench [-- --quick | --smoke | --report | --profile [step]] [-- --suite matmul,attention] [-- --no-tfjs] [-- --no-jaxjs] [-- --no-torch] [-- --no-first-step]: runs the suites
// (ours, our unfused composition, tfjs-webgpu on the same device, tfjs-wasm, jax-js-wasm, jax-js-webgpu on the same device, and
// PyTorch on the CPU where a Python with torch is found) and `smkd train`'s cold and warm time to its first step, writes
// bench/results/<adapter>.json and, for a full run, its SVG chart and bench/RESULTS.md.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapterName, init, rt } from '../engine/index.js';
import { ratioChart } from './chart.js';
import { browserRecords, fullRecords, resultsDir } from './records.js';
import { PassTimer } from './gpu-timer.js';
import { runCase, type CaseResult, type Mode, type RunContext } from './harness.js';
import { renderRecord, renderReport, slug, verdict, type BenchRecord } from './report.js';
import { loadJaxjs } from './jaxjs/backends.js';
import { loadTfjs } from './tfjs/backends.js';
import { describeTorch, loadTorch } from './torch/peer.js';
import { torchThroughput } from './torch/smkd.js';
import { selectCases, SUITES } from './suites/index.js';
import { measureThroughput, profileStep, PROFILE_STEPS, type ProfileStep, type Throughput } from './profile.js';
import { measureFirstStep, type FirstStep } from './first-step.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

interface Args {
  mode: Mode | 'report' | 'profile';
  suites: string[];
  tfjs: boolean;
  jaxjs: boolean;
  torch: boolean;
  firstStep: boolean;
  update: boolean;
  profile: ProfileStep;
}

function parseArgs(argv: string[]): Args {
  let mode: Mode | 'report' | 'profile' = 'full';
  let profile: ProfileStep = 'vit-tiny-like';
  let tfjs = true;
  let jaxjs = true;
  let torch = true;
  let firstStep = true;
  let update = false;
  const suites: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') mode = 'quick';
    else if (a === '--smoke') mode = 'smoke';
    else if (a === '--no-tfjs') tfjs = false;
    else if (a === '--no-jaxjs') jaxjs = false;
    else if (a === '--no-torch') torch = false;
    else if (a === '--no-first-step') firstStep = false;
    else if (a === '--report') mode = 'report';
    else if (a === '--update') update = true;
    else if (a === '--profile') {
      mode = 'profile';
      const next = argv[i + 1];
      if (next && !next.startsWith('--')) {
        if (!(PROFILE_STEPS as readonly string[]).includes(next)) throw new Error(`bench: unknown step '${next}' for --profile (one of ${PROFILE_STEPS.join(', ')})`);
        profile = next as ProfileStep;
        i++;
      }
    } else if (a === '--suite') suites.push(...(argv[++i] ?? '').split(','));
    else if (a.startsWith('--suite=')) suites.push(...a.slice(8).split(','));
    else
      throw new Error(
        `bench: unknown argument '${a}' (use --quick, --smoke, --report, --update, --no-tfjs, --no-jaxjs, --no-torch, --no-first-step, --suite name[,name], --profile [${PROFILE_STEPS.join('|')}])`,
      );
  }
  return { mode, suites: suites.filter(Boolean), tfjs, jaxjs, torch, firstStep, update, profile };
}

function packageVersion(dir: string): string {
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Every agreement check of a case, ours against unfused, each tfjs and jax-js backend and PyTorch. */
function agreements(c: CaseResult): [string, { ok: boolean; error: number }][] {
  const out: [string, { ok: boolean; error: number }][] = [];
  if (c.agreement) out.push(['unfused', c.agreement]);
  for (const [b, a] of Object.entries(c.tfjsAgreement ?? {})) if (a) out.push([b, a]);
  for (const [b, a] of Object.entries(c.jaxAgreement ?? {})) if (a) out.push([b, a]);
  if (c.torchAgreement) out.push(['pytorch', c.torchAgreement]);
  return out;
}

function summaryLine(c: CaseResult): string {
  const agree = agreements(c)
    .map(([w, a]) => `${w} ${a.ok ? 'ok' : 'MISMATCH'} ${a.error.toExponential(1)}`)
    .join(', ');
  return `[${c.suite}] ${verdict(c)}${agree ? `; agreement ${agree}` : ''} (${c.seconds.toFixed(1)} s)`;
}

/** Write a record and its chart as bench/results/<adapter><tags>.json / .svg. */
async function save(record: BenchRecord, tags: string): Promise<void> {
  const file = path.join(resultsDir, `${record.adapterSlug}${tags}.json`);
  if (record.mode !== 'smoke' && record.cases.some((c) => [c.vsWebgpu, c.vsWasm, c.vsJaxWasm, c.vsJaxWebgpu, c.vsTorch].some((x) => x !== undefined))) {
    const chart = path.join(resultsDir, `${record.adapterSlug}${tags}.svg`);
    writeFileSync(chart, await ratioChart(record.cases, `Ours vs tfjs, jax-js and PyTorch on ${record.adapter} (${record.mode})`));
    record.chart = path.relative(here, chart);
    console.log(`wrote ${path.relative(root, chart)}`);
  }
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  console.log(`wrote ${path.relative(root, file)}`);
}

async function main(): Promise<number> {
  const { mode, suites, tfjs, jaxjs, torch, firstStep, update, profile } = parseArgs(process.argv.slice(2));
  if (mode === 'profile') {
    const p = await profileStep(profile);
    console.log(p.report);
    return 0;
  }
  if (mode === 'report') {
    // Regenerate RESULTS.md from the full records already in bench/results, running nothing.
    writeFileSync(path.join(here, 'RESULTS.md'), renderReport(fullRecords(), browserRecords()));
    console.log('regenerated bench/RESULTS.md');
    return 0;
  }
  const loadStart = loadavg();
  const t0 = performance.now();
  await init();
  const gpu = rt().gpu;
  const adapter = adapterName(gpu.info);
  // --smoke checks that everything runs (as CI's test does): small awkward shapes, one run each.
  const sizes = mode === 'smoke' ? 'reduced' : 'full';
  const cases = selectCases(sizes, suites, mode === 'quick');
  const ctx: RunContext = { timer: gpu.hasTimestamps ? new PassTimer(gpu.device) : undefined };
  if (tfjs) {
    ctx.tfjs = await loadTfjs();
    if (ctx.tfjs.problems.length) console.warn(`tfjs: ${ctx.tfjs.problems.join('; ')}`);
    if (ctx.tfjs.available.includes('tfjs-webgpu') && !ctx.tfjs.sameDevice) throw new Error("bench: tfjs-webgpu did not land on the engine's device");
  }
  if (jaxjs) {
    // If jax-js does not load, or one backend does not start, the rest runs and the record says why.
    ctx.jax = await loadJaxjs();
    if (ctx.jax.problems.length) console.warn(`jax-js: ${ctx.jax.problems.join('; ')}`);
  }
  // PyTorch only where a Python with torch is found; a note otherwise (it is never a dependency).
  const torchProbe = torch ? await loadTorch() : undefined;
  if (torchProbe?.env) {
    ctx.torch = torchProbe.env;
    console.log(describeTorch(torchProbe.env));
  } else if (torchProbe) console.warn(`pytorch: skipped (${torchProbe.problems.join('; ')})`);
  const peers = [...(ctx.tfjs?.available ?? []), ...(ctx.jax?.available ?? []), ...(ctx.torch ? ['pytorch'] : [])];
  console.log(
    `bench (${mode}): ${cases.length} cases on ${adapter}${peers.length ? `, against ${peers.join(', ')}` : ''}; load average ${loadStart.map((x) => x.toFixed(2)).join(' ')} on ${cpus().length} cores`,
  );
  const results: CaseResult[] = [];
  for (const c of cases) {
    const r = await runCase(c, mode, ctx);
    results.push(r);
    console.log(summaryLine(r));
    if (r.error) console.error(r.error);
  }
  // End-to-end throughput of the demo preset's training loop, in a full run or a run of the step suite.
  const throughputs: Throughput[] = [];
  const torchThroughputs: Throughput[] = [];
  const torchProblems = [...(torchProbe?.problems ?? [])];
  if (mode !== 'smoke' && (suites.length === 0 || suites.includes('trainingStep'))) {
    for (const which of ['omniglot-phase1', 'omniglot'] as const) {
      const iterations = mode === 'quick' ? 8 : 20;
      const t = await measureThroughput(which, iterations);
      throughputs.push(t);
      console.log(`[throughput] ${t.describe}: ${t.cropsPerSecond.toFixed(0)} crops/s (${t.msPerStep.toFixed(0)} ms per step)`);
      // Right after ours, so that both see about the same load.
      if (!ctx.torch) continue;
      try {
        const p = await torchThroughput(ctx.torch, which, iterations);
        torchThroughputs.push(p);
        console.log(`[throughput] ${p.describe}: ${p.cropsPerSecond.toFixed(0)} crops/s (${p.msPerStep.toFixed(0)} ms per step)`);
      } catch (e) {
        torchProblems.push(`throughput ${which}: ${e instanceof Error ? e.message : String(e)}`);
        console.error(`[throughput] PyTorch ${which} failed: ${String(e)}`);
      }
    }
  }
  // `smkd train` spawned as a user types it, cold and warm (bench/first-step.ts); never in smoke mode: the cold
  // launch compiles every pipeline of the step (a minute on a 2-core lavapipe).
  let first: FirstStep | undefined;
  let firstError: string | undefined;
  if (firstStep && mode !== 'smoke' && (suites.length === 0 || suites.includes('trainingStep'))) {
    try {
      first = await measureFirstStep();
      console.log(
        `[first step] smkd train to its first step: cold ${(first.coldMs / 1000).toFixed(1)} s, warm ${(first.warmMs / 1000).toFixed(1)} s (Mesa's cache: ${first.cache.files} files)`,
      );
    } catch (e) {
      firstError = e instanceof Error ? e.message : String(e);
      console.error(`[first step] failed: ${firstError}`);
    }
  }
  const record: BenchRecord = {
    adapter,
    adapterSlug: slug(adapter),
    isSoftware: gpu.info.isSoftware,
    hasTimestamps: gpu.hasTimestamps,
    versions: { node: process.version, webgpu: packageVersion(path.join(root, 'node_modules/webgpu')), engine: packageVersion(root) },
    tfjs: ctx.tfjs && {
      versions: ctx.tfjs.versions,
      available: ctx.tfjs.available,
      problems: ctx.tfjs.problems,
      sameDevice: ctx.tfjs.sameDevice,
      adapterInfo: ctx.tfjs.adapterInfo,
    },
    jaxjs: ctx.jax && {
      version: ctx.jax.version,
      available: ctx.jax.available,
      problems: ctx.jax.problems,
      sameDevice: ctx.jax.sameDevice,
      wasmThreads: ctx.jax.wasmThreads,
    },
    torch: torchProbe && { ...torchProbe.env, problems: torchProblems },
    date: new Date().toISOString(),
    mode,
    sizes,
    cpus: cpus().length,
    load: { start: loadStart, end: loadavg() },
    method: gpu.hasTimestamps
      ? "GPU-side: the adapter has timestamp queries, so every compute pass of a timed batch (ours, tfjs-webgpu's and jax-js-webgpu's) carries begin/end timestamps and a sample is the sum of their durations per op; wall clock (`performance.now()` around the batch, queue drained before and after) is recorded beside it and used for tfjs-wasm and jax-js-wasm. PyTorch is wall clock around its batch (the request to its process and the reply), against ours GPU-side and against our wall time."
      : 'wall clock (`performance.now()`) around batches of ops, the queue drained before and after (`queue.onSubmittedWorkDone()`): the adapter has no timestamp queries. PyTorch is wall clock around its batch (the request to its process and the reply).',
    seconds: (performance.now() - t0) / 1000,
    partial: suites.length > 0,
    cases: results,
    throughput: throughputs.length ? throughputs : undefined,
    torchThroughput: torchThroughputs.length ? torchThroughputs : undefined,
    firstStep: first,
    firstStepError: firstError,
  };
  mkdirSync(resultsDir, { recursive: true });
  // Only a complete full run is the adapter's record; anything else gets a file name of its own.
  const tags = [mode === 'full' ? '' : `.${mode}`, suites.length ? `.${suites.join('+')}` : ''].join('');
  const merge = mode === 'full' && suites.length > 0 && update;
  if (!merge) await save(record, tags);
  else {
    // --update: these suites' cases replace theirs in the adapter's full record (other suites kept).
    const fullFile = path.join(resultsDir, `${record.adapterSlug}.json`);
    const full = JSON.parse(readFileSync(fullFile, 'utf8')) as BenchRecord;
    const order = Object.keys(SUITES);
    full.cases = [...full.cases.filter((c) => !suites.includes(c.suite)), ...results].sort((a, b) => order.indexOf(a.suite) - order.indexOf(b.suite));
    if (record.throughput) full.throughput = record.throughput;
    if (record.torchThroughput) full.torchThroughput = record.torchThroughput;
    if (record.torch) full.torch = record.torch;
    if (record.firstStep || record.firstStepError) {
      full.firstStep = record.firstStep;
      full.firstStepError = record.firstStepError;
    }
    full.updates = [...(full.updates ?? []), { suites, date: record.date, load: record.load, seconds: record.seconds }];
    await save(full, '');
  }
  if (mode === 'full' && (suites.length === 0 || update)) {
    writeFileSync(path.join(here, 'RESULTS.md'), renderReport(fullRecords(), browserRecords()));
    console.log('regenerated bench/RESULTS.md');
  } else console.log(`\n${renderRecord(record)}`);
  const bad = results.filter((r) => r.error || agreements(r).some(([, a]) => !a.ok));
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
