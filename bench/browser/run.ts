// `npm run bench:browser [-- --suite matmul,trainingStep] [-- --reduced] [-- --budget-s 4]`: the bench
// suites in headless Chromium, ours beside tfjs-webgpu in one page (bench/browser/page.ts); writes
// bench/results/browser/<adapter>.json and regenerates bench/RESULTS.md (its browser section).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundleForPage } from '../../web/bundle.js';
import type { Browser, Page } from 'puppeteer-core';
import { findChromium, launchChromium, openPage, serveStatic } from '../../web/chromium.js';
import { slug } from '../report.js';
import { renderReport } from '../report.js';
import { browserRecords, browserResultsDir, fullRecords } from '../records.js';
import type { BrowserBench, BrowserBenchApi, BrowserRow } from './page.js';
import { renderBrowserRecord, type BrowserRecord } from './report.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { suite: { type: 'string', multiple: true, default: [] }, reduced: { type: 'boolean', default: false }, 'budget-s': { type: 'string', default: '4' } },
});
const suites = values.suite!.flatMap((s) => s.split(',')).filter(Boolean);
const budgetMs = Number(values['budget-s']) * 1000;

const found = findChromium();
if (!('path' in found)) {
  console.error(`bench:browser: ${found.missing}`);
  process.exit(1);
}
const chromiumPath = found.path;
const t0 = performance.now();
const dir = mkdtempSync(path.join(os.tmpdir(), 'smkd-browser-bench-'));
await bundleForPage(path.join(here, 'page.ts'), path.join(dir, 'bench.js'), {
  'bench/tfjs/backends.js': 'bench/browser/tfjs-page.ts',
  'bench/jaxjs/backends.js': 'bench/browser/jaxjs-page.ts',
});
writeFileSync(
  path.join(dir, 'index.html'),
  '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>smkd bench</title><script type="module" src="bench.js"></script>\n',
);
const { server, url } = await serveStatic({ '/': dir });
const opts = { suites, sizes: values.reduced ? ('reduced' as const) : ('full' as const), budgetMs };
let browser: Browser | undefined;
let page: Page | undefined;

/** The bench page in a fresh browser (after a case that failed, the page may still be busy with it). */
async function openBench(): Promise<void> {
  await browser?.close();
  browser = await launchChromium(chromiumPath, 3_600_000);
  page = await openPage(browser, `${url}/`, (line) => {
    if (!/404|page log\] bench:/.test(line)) console.log(line);
  });
  await page.waitForFunction(() => 'smkdBench' in globalThis, { timeout: 60_000 });
}

const bench = <K extends keyof BrowserBenchApi>(name: K, ...args: Parameters<BrowserBenchApi[K]>): Promise<Awaited<ReturnType<BrowserBenchApi[K]>>> =>
  page!.evaluate((n, a) => (globalThis as unknown as { smkdBench: Record<string, (...x: unknown[]) => unknown> }).smkdBench[n](...a), name, args as unknown[]) as Promise<
    Awaited<ReturnType<BrowserBenchApi[K]>>
  >;

try {
  await openBench();
  const { adapter, userAgent } = await bench('adapter');
  const cases = await bench('cases', opts);
  console.log(`${cases.length} cases on ${adapter}`);
  const rows: BrowserRow[] = [];
  for (const [i, c] of cases.entries()) {
    let row: BrowserRow;
    try {
      row = await bench('runCase', i, opts);
    } catch (e) {
      row = { suite: c.suite, name: c.name, samples: 0, error: (e as Error).message.split('\n')[0] };
      await openBench();
    }
    rows.push(row);
    console.log(`  ${c.suite} ${c.name}: ours ${row.oursMs?.toFixed(2) ?? '-'} ms, tfjs-webgpu ${row.tfjsMs?.toFixed(2) ?? '-'} ms${row.error ? ` (error: ${row.error})` : ''}`);
  }
  const result: BrowserBench = { adapter, userAgent, rows };
  const record: BrowserRecord = {
    ...result,
    date: new Date().toISOString().slice(0, 10),
    browser: `Chromium ${await browser!.version()}`.replace('HeadlessChrome/', '').replace('Chromium Chrome/', 'Chromium '),
    sizes: values.reduced ? 'reduced' : 'full',
    seconds: (performance.now() - t0) / 1000,
    machine: `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'})`,
  };
  console.log(`\n${renderBrowserRecord(record)}\n`);
  if (!suites.length && !values.reduced) {
    mkdirSync(browserResultsDir, { recursive: true });
    const file = path.join(browserResultsDir, `${slug(record.adapter)}.json`);
    writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
    writeFileSync(path.join(here, '..', 'RESULTS.md'), renderReport(fullRecords(), browserRecords()));
    console.log(`wrote ${path.relative(process.cwd(), file)} and bench/RESULTS.md`);
  } else {
    console.log('(a partial run: bench/RESULTS.md left alone)');
  }
} finally {
  await browser?.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
