// The engine in a real browser (issue #24): headless Chromium (WebGPU on SwiftShader where there is no
// GPU) runs a subset of the op tests against float64, the ViT forward on the shipped model's weights
// against Node's, and two training steps against Node's. Skipped, with the reason, where no Chromium is
// installed (.ci/run installs Debian's).
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { findChromium, launchChromium, openPage, serveStatic } from '../../web/chromium.js';
import { gpu, relErr } from '../helpers/check.js';
import { skipUnless } from '../helpers/skip.js';
import { bundleForPage } from '../../web/bundle.js';
import type { OpCaseResult } from './op-cases.js';
import { parityImages, trainingSteps, vitForward } from './parity-cases.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MODEL = path.join(root, 'models/omniglot-vit.safetensors');
const chromium = findChromium();
const test = suite('browser');
const inBrowser = skipUnless(test, 'path' in chromium, 'missing' in chromium ? chromium.missing : '');

interface PageApi {
  kernels(): { key: string; code: string }[];
  slowestCompile(): { key: string; ms: number };
  adapter(): Promise<{ name: string; software: boolean; features: string[] }>;
  runOpCases(): Promise<OpCaseResult[]>;
  forward(url: string, images: number[], n: number): Promise<number[]>;
  steps(url: string, images: number[], labels: number[], steps: number): Promise<{ losses: number[]; params: number[] }>;
}

let browser: Browser | undefined;
let server: Server | undefined;
let page: Page | undefined;
let dir: string | undefined;

/** Call the test page's `smkdTest[name](...args)`. */
function call<K extends keyof PageApi>(name: K, ...args: Parameters<PageApi[K]>): Promise<Awaited<ReturnType<PageApi[K]>>> {
  return page!.evaluate((n, a) => (globalThis as unknown as { smkdTest: Record<string, (...x: unknown[]) => unknown> }).smkdTest[n](...a), name, args as unknown[]) as Promise<
    Awaited<ReturnType<PageApi[K]>>
  >;
}

test.before(async () => {
  if (!('path' in chromium)) return;
  await gpu();
  dir = mkdtempSync(path.join(os.tmpdir(), 'smkd-browser-test-'));
  await bundleForPage(path.join(root, 'test/browser/page-entry.ts'), path.join(dir, 'test.js'));
  writeFileSync(
    path.join(dir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><title>smkd browser tests</title><link rel="icon" href="data:,"><script type="module" src="test.js"></script>\n',
  );
  ({ server } = await serveStatic({ '/': dir, '/models/': path.join(root, 'models') }).then(async (s) => {
    browser = await launchChromium(chromium.path);
    page = await openPage(browser, `${s.url}/`, (line) => {
      if (/error/i.test(line) && !/404/.test(line)) console.log(line);
    });
    await page.waitForFunction(() => 'smkdTest' in globalThis, { timeout: 60_000 });
    return s;
  }));
});

test.after(async () => {
  // The page's kernels join the run's log, so the compile budget times them alone on both adapters.
  const log = process.env.SMKD_KERNEL_LOG;
  if (page && log) {
    const kernels = await call('kernels');
    appendFileSync(log, kernels.map((k) => `${JSON.stringify(k)}\n`).join(''));
    const slowest = await call('slowestCompile');
    console.log(`  the page compiled ${kernels.length} kernels; the longest wait for one: ${(slowest.ms / 1000).toFixed(1)} s (${slowest.key})`);
  }
  await browser?.close();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

inBrowser('the page has a WebGPU adapter, and says which', async () => {
  const a = await call('adapter');
  console.log(`  browser adapter: ${a.name} (${a.software ? 'software' : 'hardware'}; ${a.features.join(', ')})`);
  assert.ok(a.name.length > 0);
});

inBrowser('ops in the page: forward against float64, gradients against finite differences (the Node tolerances)', async () => {
  const results = await call('runOpCases');
  for (const r of results) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name} (${(r.ms / 1000).toFixed(1)} s)${r.error ? `: ${r.error}` : ''}`);
  assert.ok(results.length >= 10, `${results.length} cases ran`);
  const failed = results.filter((r) => !r.ok);
  assert.equal(
    failed.map((r) => `${r.name}: ${r.error}`),
    [],
  );
});

inBrowser("the ViT forward on the shipped model's weights matches Node's within 1e-5", async () => {
  const n = 3;
  const images = parityImages(n, 28);
  const node = await vitForward(new Uint8Array(readFileSync(MODEL)), images, n);
  const web = await call('forward', '/models/omniglot-vit.safetensors', Array.from(images), n);
  assert.is(web.length, node.length);
  let worst = 0;
  for (let i = 0; i < node.length; i++) worst = Math.max(worst, Math.abs(web[i] - node[i]));
  // Scale-relative, as every comparison of this repository (test/helpers/check.ts relErr).
  const rel = relErr(web, node);
  console.log(`  forward: ${node.length} values, largest difference ${worst.toExponential(2)}, ${rel.toExponential(2)} of the largest value`);
  assert.ok(rel <= 1e-5, `relative difference ${rel}`);
});

inBrowser("two training steps (cross-entropy, AdamW) give Node's losses within 1e-5", async () => {
  const labels = [0, 1, 2, 0, 1, 2];
  const images = parityImages(labels.length, 28);
  const node = await trainingSteps(new Uint8Array(readFileSync(MODEL)), images, labels, 2);
  const web = await call('steps', '/models/omniglot-vit.safetensors', Array.from(images), labels, 2);
  console.log(`  losses: Node ${node.losses.map((l) => l.toFixed(7)).join(', ')}; Chromium ${web.losses.map((l) => l.toFixed(7)).join(', ')}`);
  node.losses.forEach((l, i) => assert.ok(Math.abs(web.losses[i] - l) <= 1e-5, `step ${i + 1}: ${web.losses[i]} vs ${l}`));
  let worst = 0;
  node.params.forEach((p, i) => (worst = Math.max(worst, Math.abs(web.params[i] - p))));
  console.log(`  parameters after the steps: largest difference ${worst.toExponential(2)} over ${node.params.length} values`);
  assert.ok(worst <= 1e-4, `parameters differ by ${worst}`);
});

test.run();
