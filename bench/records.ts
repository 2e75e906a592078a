// The records RESULTS.md is made from: bench/results/<adapter>.json (npm run bench, full mode) and
// bench/results/browser/<adapter>.json (npm run bench:browser).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserRecord } from './browser/report.js';
import type { BenchRecord } from './report.js';

export const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
export const browserResultsDir = path.join(resultsDir, 'browser');

function readJson<T>(dir: string): T[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as T);
}

/** Every full-mode record in bench/results. */
export function fullRecords(): BenchRecord[] {
  return readJson<BenchRecord>(resultsDir)
    .filter((r) => r.mode === 'full' && !r.partial)
    .sort((a, b) => a.adapter.localeCompare(b.adapter));
}

/** Every browser record in bench/results/browser. */
export function browserRecords(): BrowserRecord[] {
  return readJson<BrowserRecord>(browserResultsDir).sort((a, b) => a.adapter.localeCompare(b.adapter));
}
