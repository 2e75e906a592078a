// Shared by the run-directory tests: a config small enough to train in a few seconds on lavapipe,
// the smkd command in this process or as a child process, and run directories as hashes and as
// canonical text (for byte-for-byte comparisons of runs).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { program } from '../../train/cli.js';
import { REPO } from '../library/process.js';

/** 16 iterations of a one-block ViT on 16-px synthetic glyphs: checkpoints every 3, validation every 2 epochs, 3 kept. */
export const MINI = {
  model: { embedDim: 32, depth: 1, numHeads: 1, patchSize: 8, dropPath: 0 },
  head: { hiddenDim: 32, bottleneckDim: 16, outDim: 32, normLastLayer: true },
  crops: { global: 2, local: 1, globalSize: 16, localSize: 8 },
  data: { imageSize: 16 },
  batch: { size: 4, classes: 2, perClass: 2 },
  schedule: { epochs: 4, itersPerEpoch: 4, warmupEpochs: 1, warmupTeacherTempEpochs: 1 },
  eval: { everyEpochs: 2, episodes: 10, maxPerClass: 16, shots: [1] },
  checkpointEvery: 3,
  keepLast: 3,
  workers: 0,
};

export interface Printed {
  out: string[];
  err: string[];
}

/** `smkd ...args` in this process; resolves with what it printed, or rejects with its error and what it printed. */
export async function smkdHere(args: string[]): Promise<Printed> {
  const printed: Printed = { out: [], err: [] };
  const saved = { log: console.log, warn: console.warn, error: console.error };
  console.log = (...m: unknown[]) => void printed.out.push(m.join(' '));
  console.warn = (...m: unknown[]) => void printed.err.push(m.join(' '));
  console.error = console.warn;
  try {
    await program().parseAsync(['node', 'smkd', ...args]);
    return printed;
  } catch (e) {
    throw Object.assign(e as Error, { printed });
  } finally {
    Object.assign(console, saved);
  }
}

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * `node bin/smkd.mjs ...args` as a child process. Its output goes to files opened for appending
 * (`logs`-N.out/.err), as a user's terminal or `>> log` would take it.
 */
export function smkdChild(args: string[], logs: string, env: Record<string, string> = {}): { child: ChildProcess; exited: Promise<Exited> } {
  const [outFile, errFile] = [`${logs}.out`, `${logs}.err`];
  const [o, e] = [openSync(outFile, 'a'), openSync(errFile, 'a')];
  const child = spawn(process.execPath, [path.join(REPO, 'bin/smkd.mjs'), ...args], { cwd: REPO, stdio: ['ignore', o, e], env: { ...process.env, ...env } });
  closeSync(o);
  closeSync(e);
  const exited = new Promise<Exited>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stdout: readFileSync(outFile, 'utf8'), stderr: readFileSync(errFile, 'utf8') })),
  );
  return { child, exited };
}

/** Every file below `dir`, by relative path, with the sha256 of its bytes; undefined when `dir` does not exist. */
export async function hashTree(dir: string): Promise<Map<string, string> | undefined> {
  if (!(await stat(dir).catch(() => null))) return undefined;
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else
        out.set(
          path.relative(dir, p),
          createHash('sha256')
            .update(await readFile(p))
            .digest('hex'),
        );
    }
  };
  await walk(dir);
  return out;
}

/** The iterations metrics.jsonl logs steps for, in order (validation lines apart). */
export async function loggedIterations(run: string): Promise<number[]> {
  const lines = (await readFile(path.join(run, 'metrics.jsonl'), 'utf8')).trim().split('\n');
  return lines
    .map((l) => JSON.parse(l) as { iteration: number; valAccuracy?: number })
    .filter((m) => m.valAccuracy === undefined)
    .map((m) => m.iteration);
}

/**
 * A run directory as one comparable text: every file's path and sha256, except metrics.jsonl, given
 * whole without its timing fields (seconds, imagesPerSecond), and config.json without `out`.
 */
export async function canonicalRun(run: string): Promise<string> {
  const tree = (await hashTree(run)) ?? new Map<string, string>();
  const parts: string[] = [];
  for (const [file, hash] of tree) {
    if (file === 'metrics.jsonl') {
      const lines = (await readFile(path.join(run, file), 'utf8')).split('\n').filter(Boolean);
      parts.push(`${file}:\n${lines.map((l) => JSON.stringify({ ...JSON.parse(l), seconds: undefined, imagesPerSecond: undefined })).join('\n')}`);
    } else if (file === 'config.json') parts.push(`${file}: ${JSON.stringify({ ...JSON.parse(await readFile(path.join(run, file), 'utf8')), out: undefined })}`);
    else parts.push(`${file}: ${hash}`);
  }
  return parts.join('\n');
}
