// The run directory outside the checkpoints: the run's config.json, which a resume may not change
// silently (config-changes.jsonl records a change the user allowed), metrics.jsonl, cut back on resume
// to what the resumed run will not write again, and the temporaries a killed process leaves.
import { appendFile, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { validateConfig, type TrainConfig } from './config.js';
import { processAlive } from './run-lock.js';

/** The config.json of a run directory, validated; undefined when there is none. */
export async function readRunConfig(runDir: string): Promise<TrainConfig | undefined> {
  const file = path.join(runDir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); fix it or move the run directory aside`);
  }
  return validateConfig(parsed, `the run's ${file}`);
}

export interface ConfigChange {
  /** Dotted path of the key, e.g. schedule.lr. */
  key: string;
  from: unknown;
  to: unknown;
}

/** Keys that do not change what a run computes: where it is, how many threads crop, how many checkpoints it keeps. */
const FREE_KEYS = new Set(['out', 'workers', 'keepLast']);

function flatten(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined) out.set(prefix, value);
}

/**
 * The settings of `next` that differ from the run's `previous` config, key by key. A config that
 * leaves data.normalize open (the statistics are computed) matches the statistics the run recorded.
 */
export function configChanges(previous: TrainConfig, next: TrainConfig): ConfigChange[] {
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  flatten(previous, '', a);
  flatten(next, '', b);
  const skip = (k: string): boolean => FREE_KEYS.has(k) || (k.startsWith('data.normalize.') && next.data.normalize === undefined);
  const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !skip(k));
  return keys.filter((k) => JSON.stringify(a.get(k)) !== JSON.stringify(b.get(k))).map((key) => ({ key, from: a.get(key), to: b.get(key) }));
}

const show = (v: unknown): string => (v === undefined ? '(unset)' : JSON.stringify(v));

/** The refusal of a resume with other settings: the differing keys (the first few and a count) and the ways out. */
export function configChangeError(runDir: string, changes: readonly ConfigChange[]): Error {
  const shown = changes.slice(0, 8).map((c) => `  ${c.key}: ${show(c.from)} in the run, ${show(c.to)} now`);
  if (changes.length > 8) shown.push(`  ... and ${changes.length - 8} more`);
  return new Error(
    `${runDir} holds a run with other settings (${changes.length} key(s) differ from its config.json):\n${shown.join('\n')}\n` +
      `Resume it with its own settings (--config ${path.join(runDir, 'config.json')}), choose another --out, ` +
      `or pass --allow-config-change to continue it with the new ones (recorded in ${path.join(runDir, 'config-changes.jsonl')}).`,
  );
}

/** Append an allowed change of settings to config-changes.jsonl: when, from which iteration on, each key from and to. */
export async function recordConfigChanges(runDir: string, iteration: number, changes: readonly ConfigChange[]): Promise<void> {
  const line = { time: new Date().toISOString(), iteration, changes: Object.fromEntries(changes.map((c) => [c.key, { from: c.from ?? null, to: c.to ?? null }])) };
  await appendFile(path.join(runDir, 'config-changes.jsonl'), JSON.stringify(line) + '\n');
}

export interface ValidationLine {
  iteration: number;
  epoch: number;
  valAccuracy: number;
}

/**
 * Cut metrics.jsonl back to what a run resumed at iteration `start` will not write again: the steps
 * before it and the validations up to it (a torn last line goes too), so that the file keeps one
 * line per iteration across any number of crashes and resumes. Returns the validations kept.
 */
export async function truncateMetrics(runDir: string, start: number): Promise<ValidationLine[]> {
  const file = path.join(runDir, 'metrics.jsonl');
  const text = await readFile(file, 'utf8').catch(() => '');
  const kept: string[] = [];
  const validations: ValidationLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let m: { iteration?: unknown; valAccuracy?: unknown };
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      continue;
    }
    if (typeof m.iteration !== 'number') continue;
    const validation = typeof m.valAccuracy === 'number';
    if (validation ? m.iteration > start : m.iteration >= start) continue;
    kept.push(line);
    if (validation) validations.push(m as ValidationLine);
  }
  const out = kept.map((l) => `${l}\n`).join('');
  if (out !== text) {
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, out);
    await rename(tmp, file);
  }
  return validations;
}

/**
 * Remove what killed processes left half-written in the run directory and its checkpoints/
 * (`*.tmp-<pid>`): only those whose writer is gone, never a live process's (the run lock keeps other
 * trainers out; this keeps a reader or a tool that writes beside the run safe too).
 */
export async function removeStaleTemporaries(runDir: string): Promise<void> {
  for (const dir of [runDir, path.join(runDir, 'checkpoints')]) {
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const e of entries) {
      const pid = /\.tmp-(\d+)$/.exec(e)?.[1];
      if (pid && Number(pid) !== process.pid && !processAlive(Number(pid))) await rm(path.join(dir, e), { recursive: true, force: true });
    }
  }
}
