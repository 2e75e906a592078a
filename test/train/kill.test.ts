// The trainer as a user runs it, killed: `smkd train` killed with SIGKILL at random moments (while
// starting, between steps, while a checkpoint or latest.json is being written) and stopped once with
// Ctrl-C (SIGINT: a checkpoint, then exit status 130 without the evaluation; SIGTERM and SIGHUP alike, 143 and 129), resumed each time with
// the same command, ends byte for byte as the same run uninterrupted: every checkpoint file,
// latest.json, best.json, and metrics.jsonl with one line per iteration (timings apart). No process
// prints Dawn's adapter notices or a compiler dump. SMKD_KILL_SEED=n replays a failure's kill points.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { rng } from '../helpers/check.js';
import { MINI, canonicalRun, loggedIterations, smkdChild, type Exited } from './run-dir-helpers.js';

const test = suite('kill and resume');
const TOTAL = MINI.schedule.epochs * MINI.schedule.itersPerEpoch;
const DAWN_NOTICE = /artificially reduced/;
const COMPILER_DUMP = /tint|spir-?v|OpCapability|\bfn main\b/i;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lines of metrics.jsonl now (0 when there is none). */
function metricsLines(run: string): number {
  try {
    return readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

/** Polls `ready` every 2 ms until it holds or `exited` settles; true when it held first. */
async function until(ready: () => boolean, exited: Promise<Exited>, limitMs = 60_000): Promise<boolean> {
  let over = false;
  void exited.then(() => (over = true));
  const t0 = Date.now();
  while (!over && Date.now() - t0 < limitMs) {
    if (ready()) return true;
    await sleep(2);
  }
  return false;
}

function clean(r: Exited, what: string): void {
  assert.not.match(r.stderr, DAWN_NOTICE, `${what}: Dawn's adapter notices on stderr`);
  assert.not.match(r.stdout + r.stderr, COMPILER_DUMP, `${what}: a compiler dump`);
}

test('SIGKILL at random moments and one Ctrl-C, each followed by the same command: the run ends byte-identical to an uninterrupted one', async () => {
  const seed = Number(process.env.SMKD_KILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = rng(seed);
  const dir = await mkdtemp(path.join(tmpdir(), 'kill-'));
  const history: string[] = [];
  try {
    const cfg = path.join(dir, 'mini.json');
    await writeFile(cfg, JSON.stringify(MINI));
    const args = (out: string): string[] => ['train', '--preset', 'tiny', '--phase', '1', '--config', cfg, '--out', out];
    const straight = path.join(dir, 'straight');
    const s = await smkdChild(args(straight), path.join(dir, 'straight')).exited;
    assert.is(s.code, 0, s.stderr);
    clean(s, 'the uninterrupted run');

    const run = path.join(dir, 'killed');
    const ckpts = path.join(run, 'checkpoints');
    // Where the kills land: while starting, after some steps, while a checkpoint or latest.json is written.
    const plan = ['starting', 'steps', 'checkpoint', 'steps', 'latest.json', 'checkpoint', 'steps', 'starting'] as const;
    for (const [n, where] of plan.entries()) {
      const { child, exited } = smkdChild(args(run), path.join(dir, `kill-${n}`));
      const pid = String(child.pid);
      const latest = (): string => (existsSync(path.join(run, 'latest.json')) ? readFileSync(path.join(run, 'latest.json'), 'utf8') : '');
      const latestBefore = latest();
      let hit: boolean;
      if (where === 'starting') {
        const ms = 300 + Math.floor(random() * 2500);
        hit = await until(() => false, exited, ms).then(() => true);
      } else if (where === 'steps') {
        const target = metricsLines(run) + 1 + Math.floor(random() * 4);
        hit = await until(() => metricsLines(run) >= target, exited);
        await sleep(Math.floor(random() * 60));
      } else if (where === 'checkpoint') {
        hit = await until(() => existsSync(ckpts) && readdirSync(ckpts).some((e) => e.endsWith(`.tmp-${pid}`)), exited);
      } else hit = await until(() => latest() !== latestBefore, exited);
      child.kill('SIGKILL');
      const r = await exited;
      clean(r, `kill ${n}`);
      history.push(`kill ${n} (${where}): ${r.signal ?? `exit ${r.code}`}${hit ? '' : ' (not reached)'}, ${metricsLines(run)} metrics lines after`);
      if (r.signal !== 'SIGKILL') assert.is(r.code, 0, `kill ${n} ended by itself with ${r.code}: ${r.stderr}`);
    }

    // One Ctrl-C: the checkpoint, status 130, no evaluation.
    const { child, exited } = smkdChild(args(run), path.join(dir, 'sigint'));
    const lines = metricsLines(run);
    const stepped = await until(() => metricsLines(run) > lines, exited);
    child.kill('SIGINT');
    const i = await exited;
    history.push(`ctrl-c: ${i.signal ?? `exit ${i.code}`}${stepped ? '' : ' (the run had ended)'}`);
    clean(i, 'the Ctrl-C run');
    if (stepped && metricsLines(run) < TOTAL) {
      assert.is(i.code, 130, `Ctrl-C: exit ${i.code}\n${i.stdout}\n${i.stderr}`);
      assert.match(i.stderr, /smkd: interrupted \(SIGINT\); .*it-\d+ holds the run: the same command resumes it/);
      assert.not.match(i.stdout, /accuracy \(95% CI\)/, 'no evaluation after Ctrl-C');
    }

    const last = await smkdChild(args(run), path.join(dir, 'last')).exited;
    assert.is(last.code, 0, `${history.join('\n')}\n${last.stderr}`);
    clean(last, 'the last run');
    assert.match(last.stdout, /accuracy \(95% CI\)/);
    assert.equal(
      await loggedIterations(run),
      Array.from({ length: TOTAL }, (_, k) => k),
      'one metrics line per iteration',
    );
    assert.fixture(await canonicalRun(run), await canonicalRun(straight));
  } catch (e) {
    (e as Error).message += `\n(SMKD_KILL_SEED=${seed}; ${history.join('; ')})`;
    throw e;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SIGTERM and SIGHUP stop a run as Ctrl-C does: the checkpoint of the last step, one message, exit 143 / 129; a second signal quits at once; the run resumes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'signals-'));
  try {
    const cfg = path.join(dir, 'mini.json');
    // Enough steps that each signal lands mid-run.
    const total = 10 * MINI.schedule.itersPerEpoch;
    await writeFile(cfg, JSON.stringify({ ...MINI, schedule: { ...MINI.schedule, epochs: 10 } }));
    const run = path.join(dir, 'run');
    const args = ['train', '--preset', 'tiny', '--phase', '1', '--config', cfg, '--out', run];
    for (const [signal, status] of [
      ['SIGTERM', 143],
      ['SIGHUP', 129],
    ] as const) {
      const { child, exited } = smkdChild(args, path.join(dir, signal));
      const lines = metricsLines(run);
      assert.ok(await until(() => metricsLines(run) > lines, exited), `${signal}: the run made no step`);
      child.kill(signal);
      const r = await exited;
      clean(r, signal);
      assert.is(r.code, status, `${signal}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, new RegExp(`${signal}: stopping after this step`));
      const m = new RegExp(`smkd: interrupted \\(${signal}\\); .*it-(\\d+) holds the run: the same command resumes it`).exec(r.stderr);
      assert.ok(m, r.stderr);
      // The checkpoint holds every step the run logged.
      const steps = await loggedIterations(run);
      assert.is(Number(m[1]), Math.max(...steps) + 1, `${signal}: checkpoint it-${m[1]} after steps ${steps.join(',')}`);
      assert.not.match(r.stdout, /accuracy \(95% CI\)/, `no evaluation after ${signal}`);
    }
    // Two signals: the second exits at once with its status.
    const { child, exited } = smkdChild(args, path.join(dir, 'twice'));
    const lines = metricsLines(run);
    assert.ok(await until(() => metricsLines(run) > lines, exited));
    child.kill('SIGTERM');
    child.kill('SIGTERM');
    const twice = await exited;
    assert.is(twice.code, 143, twice.stderr);
    const last = await smkdChild(args, path.join(dir, 'last')).exited;
    assert.is(last.code, 0, last.stderr);
    assert.equal(
      await loggedIterations(run),
      Array.from({ length: total }, (_, k) => k),
      'one metrics line per iteration',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SMKD_DAWN_WARNINGS=1 shows the notices the engine otherwise keeps off stderr', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'dawn-'));
  try {
    const quiet = await smkdChild(['info'], path.join(dir, 'quiet')).exited;
    const loud = await smkdChild(['info'], path.join(dir, 'loud'), { SMKD_DAWN_WARNINGS: '1' }).exited;
    assert.is(quiet.code, 0);
    assert.is(quiet.stderr, '');
    assert.match(quiet.stdout, /adapter:/);
    assert.match(loud.stderr, /^Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced/m);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('two trainers started together on one run directory: one refuses at once, naming the other; the survivor ends byte-identical to a lone run', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'two-'));
  try {
    const cfg = path.join(dir, 'mini.json');
    await writeFile(cfg, JSON.stringify(MINI));
    const args = (out: string): string[] => ['train', '--preset', 'tiny', '--phase', '1', '--config', cfg, '--out', out];
    const lone = path.join(dir, 'lone');
    const l = await smkdChild(args(lone), path.join(dir, 'lone')).exited;
    assert.is(l.code, 0, l.stderr);
    const run = path.join(dir, 'shared');
    const t0 = Date.now();
    const a = smkdChild(args(run), path.join(dir, 'a'));
    const b = smkdChild(args(run), path.join(dir, 'b'));
    const first = await Promise.race([a.exited.then((r) => ({ r, who: a, other: b })), b.exited.then((r) => ({ r, who: b, other: a }))]);
    const refusedAfter = Date.now() - t0;
    assert.is(first.r.code, 1, `the first to end should be the refused one: ${first.r.stdout}\n${first.r.stderr}`);
    assert.match(first.r.stderr, new RegExp(`${run.replace(/[.]/g, '\\.')} is in use by process ${first.other.child.pid} `));
    const survivor = await first.other.exited;
    assert.is(survivor.code, 0, survivor.stderr);
    assert.not.ok(existsSync(path.join(run, 'lock')), 'the lock is released at the end');
    assert.fixture(await canonicalRun(run), await canonicalRun(lone));
    // Start-up of node and tsx included; printed for the record.
    console.log(`  (the second trainer was refused ${refusedAfter} ms after both started)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
