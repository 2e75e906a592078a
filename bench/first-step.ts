// Time to the first step of `smkd train` as a user starts it (issue #23): the bin spawned as typed, with
// Mesa's on-disk shader cache empty (cold) and then filled by that run (warm). On a software adapter
// every pipeline is compiled to machine code by lavapipe, and that cache is the only one there is (the
// `webgpu` package gives Dawn no blob cache), so cold minus warm is what the cache saves a second run.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
// @ts-expect-error: a plain JavaScript module of bin/, without type declarations.
import { cliEntry as untypedCliEntry } from '../bin/cli-entry.mjs';

const cliEntry = untypedCliEntry as (root: URL, env?: NodeJS.ProcessEnv) => 'dist' | 'source';
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** The command as a user types it, `node` and the run directory aside. */
export const TRAIN_ARGS = ['bin/smkd.mjs', 'train', '--preset', 'omniglot', '--phase', '1'];

/** What the clock stops at. */
export const MARKER =
  "the first line of the run's metrics.jsonl (the first finished step: the trainer appends a line once a step's losses are read back; its stdout says nothing until step 10)";

/** One launch: from spawn to the first metrics line, and to the last one asked for. */
export interface Launch {
  firstStepMs: number;
  /** Steps waited for (the child is killed at the last). */
  steps: number;
  /** Spawn to that last step's line. */
  lastStepMs: number;
  /** Augmented crops per second over the steps after the second, from the trainer's own per-step times. */
  cropsPerSecond?: number;
}

export interface FirstStep {
  /** The command line spawned, with placeholders for the temporary directories. */
  command: string;
  /** What bin/smkd.mjs ran: the compiled dist/ or the sources through tsx (whose transform cache was filled first). */
  entry: 'dist' | 'source';
  marker: string;
  coldMs: number;
  warmMs: number;
  cold: Launch;
  warm: Launch;
  /** What Mesa's cache directory held after the cold run. */
  cache: { files: number; bytes: number };
  load: { start: number[]; end: number[] };
  seconds: number;
}

interface MetricsLine {
  iteration: number;
  seconds?: number;
  imagesPerSecond?: number;
}

/** The step lines of a metrics.jsonl being written: whole lines only (a torn last line waits), validation lines left out. */
export function stepLines(text: string): MetricsLine[] {
  const whole = text.slice(0, text.lastIndexOf('\n') + 1);
  const out: MetricsLine[] = [];
  for (const line of whole.split('\n')) {
    if (!line.trim()) continue;
    const m = JSON.parse(line) as Partial<MetricsLine> & { loss?: number };
    if (typeof m.iteration === 'number' && m.loss !== undefined) out.push(m as MetricsLine);
  }
  return out;
}

/**
 * Crops per second over the steps after the first `skip`: each line's `seconds` runs from the previous
 * step's end to its own (the trainer overlaps steps), so their sum is the time between the two ends.
 */
export function cropsPerSecond(lines: MetricsLine[], skip = 2): number | undefined {
  const after = lines.slice(skip).filter((l) => l.seconds !== undefined && l.imagesPerSecond !== undefined);
  const seconds = after.reduce((s, l) => s + l.seconds!, 0);
  return after.length && seconds > 0 ? after.reduce((s, l) => s + l.imagesPerSecond! * l.seconds!, 0) / seconds : undefined;
}

/** The child's environment: Mesa's cache in `cacheDir` and enabled, and none of the engine's debugging logs (they write a file per kernel). */
export function launchEnv(base: NodeJS.ProcessEnv, cacheDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, MESA_SHADER_CACHE_DIR: cacheDir };
  for (const k of ['MESA_SHADER_CACHE_DISABLE', 'MESA_GLSL_CACHE_DISABLE', 'SMKD_KERNEL_LOG', 'SMKD_DUMP_SHADERS']) delete env[k];
  return env;
}

export interface LaunchOptions {
  /** Arguments of `node`. */
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  metricsFile: string;
  steps: number;
  timeoutMs: number;
  /** How often metrics.jsonl is looked at: the resolution of the times. */
  pollMs?: number;
}

/** Spawn `node args`, time it to the first and the `steps`-th line of `metricsFile`, then SIGKILL it. */
export function timeLaunch(o: LaunchOptions): Promise<Launch> {
  return new Promise((resolve, reject) => {
    let tail = '';
    const keep = (d: Buffer): void => {
      tail = (tail + d.toString()).slice(-4000);
    };
    const t0 = performance.now();
    const child = spawn(process.execPath, o.args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Read both pipes (a full pipe would stop the child); what it said is kept for an error.
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let size = -1;
    let first: number | undefined;
    let outcome: { launch: Launch } | { error: Error } | undefined;
    const finish = (r: NonNullable<typeof outcome>): void => {
      if (outcome) return;
      outcome = r;
      clearInterval(poll);
      clearTimeout(timer);
      // Resolved once the child is gone, so that its directories can be removed.
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      else settle();
    };
    const settle = (): void => ('launch' in outcome! ? resolve(outcome.launch) : reject(outcome!.error));
    const poll = setInterval(() => {
      let now: number;
      try {
        now = statSync(o.metricsFile).size;
      } catch {
        return;
      }
      if (now === size) return;
      size = now;
      const t = performance.now() - t0;
      let lines: MetricsLine[];
      try {
        lines = stepLines(readFileSync(o.metricsFile, 'utf8'));
      } catch (e) {
        return finish({ error: new Error(`unreadable ${o.metricsFile}: ${String(e)}`) });
      }
      if (lines.length && first === undefined) first = t;
      if (lines.length >= o.steps) finish({ launch: { firstStepMs: first!, steps: o.steps, lastStepMs: t, cropsPerSecond: cropsPerSecond(lines.slice(0, o.steps)) } });
    }, o.pollMs ?? 5);
    const timer = setTimeout(() => finish({ error: new Error(`no step ${o.steps} in ${o.timeoutMs / 1000} s; it said: ${tail.trim()}`) }), o.timeoutMs);
    child.on('error', (e) => finish({ error: e }));
    child.on('close', (code, signal) => {
      if (!outcome) finish({ error: new Error(`exited (${signal ?? `status ${code}`}) before step ${o.steps}; it said: ${tail.trim()}`) });
      else settle();
    });
  });
}

/** Files and bytes under a directory (none when it was never made). */
function du(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        files++;
        bytes += statSync(p).size;
      }
    }
  }
  return { files, bytes };
}

/** Run a Node command to its end (the tsx cache's warm-up). */
function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${args.join(' ')}: status ${code}: ${err.trim()}`))));
  });
}

/**
 * Cold and warm time to the first step of `smkd train --preset omniglot --phase 1`, and to step `steps`
 * (20: cheap, and the cold run's late cache writes land before the kill). Each launch gets a fresh run
 * directory; every temporary directory is removed.
 */
export async function measureFirstStep(o: { steps?: number; timeoutMs?: number } = {}): Promise<FirstStep> {
  const steps = o.steps ?? 20;
  const timeoutMs = o.timeoutMs ?? 15 * 60_000;
  const start = loadavg();
  const t0 = performance.now();
  const tmp = mkdtempSync(path.join(tmpdir(), 'smkd-first-step-'));
  try {
    const cacheDir = path.join(tmp, 'mesa-cache');
    const env = launchEnv(process.env, cacheDir);
    const entry = cliEntry(pathToFileURL(`${root}/`), env);
    // Through tsx the sources are compiled on first use and cached under TMPDIR; fill that cache first, so
    // that an edit since the last run is not counted as the shader cache's.
    if (entry === 'source') {
      const urls = ['train/cli-main.ts', 'train/run-training.ts'].map((f) => pathToFileURL(path.join(root, f)).href);
      await runNode(['--import', 'tsx', '--input-type=module', '-e', urls.map((u) => `await import(${JSON.stringify(u)});`).join(' ')], env);
    }
    const launch = async (name: string): Promise<Launch> => {
      const out = path.join(tmp, name);
      try {
        return await timeLaunch({ args: [...TRAIN_ARGS, '--out', out], cwd: root, env, metricsFile: path.join(out, 'metrics.jsonl'), steps, timeoutMs });
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    };
    const cold = await launch('run-cold');
    const cache = du(cacheDir);
    const warm = await launch('run-warm');
    return {
      command: `MESA_SHADER_CACHE_DIR=<fresh dir> node ${TRAIN_ARGS.join(' ')} --out <fresh dir>`,
      entry,
      marker: MARKER,
      coldMs: cold.firstStepMs,
      warmMs: warm.firstStepMs,
      cold,
      warm,
      cache,
      load: { start, end: loadavg() },
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The report's lines for a measurement (or for its failure). */
export function renderFirstStep(f: FirstStep | undefined, error?: string): string[] {
  if (error) return [`Time to the first step of \`smkd train\`: **failed** (${error.split('\n')[0]}).`, ''];
  if (!f) return [];
  const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const cps = (l: Launch): string => (l.cropsPerSecond === undefined ? '–' : l.cropsPerSecond.toFixed(0));
  const lines = [
    `Time to the first step of \`smkd train\` (\`${f.command}\`, ${f.entry === 'dist' ? 'the compiled dist/' : 'the sources through tsx, its cache filled first'}; from the spawn to ${f.marker}; the child is killed after step ${f.cold.steps}; load ${f.load.start.map((x) => x.toFixed(2)).join(' / ')} at the start):`,
    '',
    `- **cold** (Mesa's shader cache in an empty directory): **${s(f.coldMs)}** to the first step, ${s(f.cold.lastStepMs)} to step ${f.cold.steps}, ${cps(f.cold)} crops/s over steps 3-${f.cold.steps}`,
    `- **warm** (the same command again, on the cache the cold run filled: ${f.cache.files} files, ${(f.cache.bytes / 2 ** 20).toFixed(1)} MiB): **${s(f.warmMs)}** to the first step, ${s(f.warm.lastStepMs)} to step ${f.warm.steps}, ${cps(f.warm)} crops/s over steps 3-${f.warm.steps}`,
  ];
  if (f.cache.files === 0) lines.push('- Mesa wrote nothing to its cache directory: the two runs differ by noise only (does this driver keep an on-disk cache?)');
  lines.push('');
  return lines;
}
