// `npx tsx scripts/compile-budget.ts <kernels.jsonl> [--limit-s 10] [--adapters lavapipe,swiftshader]`:
// compiles every kernel variant a test run used (SMKD_KERNEL_LOG, written by the Node platform, one
// JSON line { key, code } per new kernel) on each adapter we can test, one at a time and with no shader
// cache, and fails when one takes longer than the limit (issue #24: a kernel that compiled in 262 ms on
// lavapipe never finished on SwiftShader). lavapipe: Dawn in this process, Mesa's disk cache off;
// SwiftShader: headless Chromium with a fresh profile. scripts/run-tests.mjs runs it after a full run.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WANTED_LIMITS } from '../engine/device.js';

interface Kernel {
  key: string;
  code: string;
}

interface Timing {
  key: string;
  ms: number;
  /** Compile error or timeout, if any. */
  problem?: string;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'limit-s': { type: 'string', default: '10' }, adapters: { type: 'string', default: 'lavapipe,swiftshader' } },
});
const limitMs = Number(values['limit-s']) * 1000;
if (!positionals[0] || !(limitMs > 0)) {
  console.error('usage: npx tsx scripts/compile-budget.ts <kernels.jsonl> [--limit-s 10] [--adapters lavapipe,swiftshader]');
  process.exit(2);
}

/** The distinct kernels of the log (a key is compiled once per process, but logs of several runs may be joined). */
function readKernels(file: string): Kernel[] {
  const byKey = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const k = JSON.parse(line) as Kernel;
    byKey.set(k.key, k.code);
  }
  return [...byKey].map(([key, code]) => ({ key, code }));
}

/** Compile `code` alone on `device`; the time until the pipeline exists, or the problem. */
async function timeCompile(device: GPUDevice, k: Kernel, timeoutMs: number): Promise<Timing> {
  const t0 = performance.now();
  const module = device.createShaderModule({ code: k.code, label: k.key });
  const pipeline = device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: k.key });
  const outcome = await Promise.race([
    pipeline.then(
      () => undefined,
      (e: Error) => `compile error: ${e.message.split('\n')[0]}`,
    ),
    new Promise<string>((resolve) => setTimeout(() => resolve(`still compiling after ${timeoutMs / 1000} s`), timeoutMs).unref()),
  ]);
  return { key: k.key, ms: performance.now() - t0, problem: outcome };
}

async function onLavapipe(kernels: Kernel[]): Promise<Timing[]> {
  // Read by Mesa when the Vulkan instance loads the driver, which init() does below.
  process.env.MESA_SHADER_CACHE_DISABLE = 'true';
  const { gpuWait, init, rt, adapterName } = await import('../engine/index.js');
  await init();
  console.log(`Dawn run on: ${adapterName(rt().gpu.info)}`);
  const out: Timing[] = [];
  for (const k of kernels) out.push(await gpuWait(timeCompile(rt().device, k, limitMs * 3)));
  return out;
}

// The page's half: the same timing loop, on navigator.gpu (SwiftShader in headless Chromium without a GPU).
const PAGE = `
const LIMITS = ${JSON.stringify(WANTED_LIMITS)};
window.timeCompiles = async (kernels, timeoutMs) => {
  const adapter = await navigator.gpu.requestAdapter();
  const features = [...adapter.features].filter((f) => f === 'subgroups' || f === 'shader-f16');
  // The limits the engine raises to the adapter's maximum (engine/device.ts), or a kernel that needs them fails here only.
  const requiredLimits = {};
  for (const name of LIMITS) if (typeof adapter.limits[name] === 'number') requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  const info = adapter.info;
  const out = [];
  for (const k of kernels) {
    const t0 = performance.now();
    const module = device.createShaderModule({ code: k.code, label: k.key });
    const outcome = await Promise.race([
      device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } }).then(() => undefined, (e) => 'compile error: ' + e.message.split('\\n')[0]),
      new Promise((r) => setTimeout(() => r('still compiling after ' + timeoutMs / 1000 + ' s'), timeoutMs)),
    ]);
    out.push({ key: k.key, ms: performance.now() - t0, problem: outcome });
    if (outcome && outcome.startsWith('still')) break;
  }
  return { adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(' '), timings: out };
};`;

async function onSwiftShader(kernels: Kernel[]): Promise<Timing[] | string> {
  const { findChromium, launchChromium, openPage, serveStatic } = await import('../web/chromium.js');
  const chromium = findChromium();
  if (!('path' in chromium)) return chromium.missing;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'smkd-compile-budget-'));
  writeFileSync(path.join(dir, 'index.html'), `<!doctype html><link rel="icon" href="data:,"><script>${PAGE}</script>`);
  const { server, url } = await serveStatic({ '/': dir });
  const out: Timing[] = [];
  try {
    let rest = kernels;
    let announced = false;
    while (rest.length) {
      // A fresh browser per round: a kernel that never finishes compiling ties up the GPU process.
      const browser = await launchChromium(chromium.path);
      try {
        const page = await openPage(browser, `${url}/`);
        const r = await page.evaluate(
          (ks: Kernel[], t: number) => (globalThis as unknown as { timeCompiles: (k: Kernel[], t: number) => Promise<{ adapter: string; timings: Timing[] }> }).timeCompiles(ks, t),
          rest,
          limitMs * 3,
        );
        if (!announced) console.log(`Chromium run on: ${r.adapter}`);
        announced = true;
        out.push(...r.timings);
        rest = rest.slice(r.timings.length);
      } finally {
        await browser.close();
      }
    }
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

function report(name: string, timings: Timing[]): boolean {
  const sorted = [...timings].sort((a, b) => b.ms - a.ms);
  const bad = timings.filter((t) => t.problem || t.ms > limitMs);
  const total = timings.reduce((s, t) => s + t.ms, 0);
  console.log(`\n${name}: ${timings.length} kernels compiled one at a time in ${(total / 1000).toFixed(1)} s; the slowest:`);
  for (const t of sorted.slice(0, 5)) console.log(`  ${(t.ms / 1000).toFixed(2).padStart(7)} s  ${t.key}${t.problem ? `  (${t.problem})` : ''}`);
  for (const t of bad) console.log(`  OVER BUDGET: ${t.key}: ${t.problem ?? `${(t.ms / 1000).toFixed(1)} s`} (limit ${limitMs / 1000} s)`);
  console.log(`compile budget ${name}: ${bad.length ? 'FAIL' : 'ok'}, slowest ${((sorted[0]?.ms ?? 0) / 1000).toFixed(2)} s of ${limitMs / 1000} s`);
  return bad.length === 0;
}

let kernels = readKernels(positionals[0]);
console.log(`${kernels.length} distinct kernels in ${positionals[0]}`);
const adapters = values.adapters!.split(',');
let ok = true;
if (adapters.includes('lavapipe')) {
  const timings = await onLavapipe(kernels);
  // The error tests' kernels are invalid on purpose (test/engine/errors.test.ts): a kernel Dawn refuses to
  // compile is left out of the budget, here and in Chromium, and named.
  const invalid = new Set(timings.filter((t) => t.problem?.startsWith('compile error')).map((t) => t.key));
  if (invalid.size) console.log(`left out, invalid WGSL on Dawn too (the error tests' own): ${[...invalid].join(', ')}`);
  kernels = kernels.filter((k) => !invalid.has(k.key));
  ok =
    report(
      'Dawn (Node)',
      timings.filter((t) => !invalid.has(t.key)),
    ) && ok;
}
if (adapters.includes('swiftshader')) {
  const r = await onSwiftShader(kernels);
  if (typeof r === 'string') console.log(`\ncompile budget Chromium: skipped (${r})`);
  else ok = report('Chromium', r) && ok;
}
const { releaseGpu } = await import('../engine/index.js');
await releaseGpu();
process.exit(ok ? 0 : 1);
