// The parts of the bench's time-to-first-step measurement that can go wrong without a GPU: reading a
// metrics.jsonl being written, the child's environment, timing and killing a launch (a stand-in child
// that writes metrics lines), and the report. The real measurement (a minute of shader compiles) runs
// only in `npm run bench`.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cropsPerSecond, launchEnv, renderFirstStep, stepLines, timeLaunch, type FirstStep } from '../../bench/first-step.js';
import { renderRecord } from '../../bench/report.js';
import { testRecord } from '../helpers/bench-record.js';

const test = suite('bench first step');

const step = (iteration: number, seconds: number, imagesPerSecond: number): string => JSON.stringify({ iteration, epoch: 0, loss: 1, terms: {}, seconds, imagesPerSecond });

test('step lines: whole lines only, validation lines left out', () => {
  const text = [step(0, 5, 10), JSON.stringify({ iteration: 1, epoch: 0, valAccuracy: 50 }), step(1, 1, 64), ''].join('\n') + '{"iteration": 2, "lo';
  const lines = stepLines(text);
  assert.equal(
    lines.map((l) => l.iteration),
    [0, 1],
  );
  assert.equal(stepLines(''), []);
  assert.equal(stepLines('{"iteration": 0'), [], 'a torn first line is not a step yet');
});

test("crops per second: the steps after the second, weighted by each step's time", () => {
  // Steps 0 and 1 (the compiles) are left out: 64 crops in 0.5 s and 64 crops in 0.3 s are 128 / 0.8.
  const lines = stepLines([step(0, 60, 1), step(1, 2, 32), step(2, 0.5, 128), step(3, 0.3, 64 / 0.3)].join('\n') + '\n');
  assert.ok(Math.abs(cropsPerSecond(lines)! - 160) < 1e-9, String(cropsPerSecond(lines)));
  assert.is(cropsPerSecond(lines.slice(0, 2)), undefined, 'no steps after the second: no rate');
});

test("the child's environment: Mesa's cache in the given directory and enabled, no kernel logs", () => {
  const base = { PATH: '/bin', MESA_SHADER_CACHE_DISABLE: 'true', MESA_SHADER_CACHE_DIR: '/old', SMKD_KERNEL_LOG: '/tmp/k.jsonl', SMKD_DUMP_SHADERS: '/tmp/s' };
  const env = launchEnv(base, '/new/cache');
  assert.equal(env, { PATH: '/bin', MESA_SHADER_CACHE_DIR: '/new/cache' });
  assert.is(base.MESA_SHADER_CACHE_DISABLE, 'true', "the bench's own environment is left alone");
});

/**
 * A stand-in trainer: writes a metrics line every `ms` to the file given and reports its environment; it
 * ends only when killed, or after 15 s, so that a launch that fails to kill it cannot hang the test run.
 */
const FAKE = `
const fs = require('node:fs');
const [file, envOut, ms] = process.argv.slice(1);
fs.writeFileSync(envOut, JSON.stringify({ dir: process.env.MESA_SHADER_CACHE_DIR, disable: process.env.MESA_SHADER_CACHE_DISABLE ?? null }));
setTimeout(() => process.exit(9), 15000);
let i = 0;
setInterval(() => fs.appendFileSync(file, JSON.stringify({ iteration: i++, epoch: 0, loss: 1, terms: {}, seconds: 0.01, imagesPerSecond: 6400 }) + '\\n'), Number(ms));
`;

/** `p`, or a failure after `ms` (a child that is never killed would otherwise hang the run). */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled in ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

test('a launch is timed to its first and its n-th metrics line, and killed there', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'first-step-test-'));
  try {
    const file = path.join(dir, 'metrics.jsonl');
    const envOut = path.join(dir, 'env.json');
    const env = launchEnv({ ...process.env, MESA_SHADER_CACHE_DISABLE: 'true' }, path.join(dir, 'cache'));
    const l = await within(timeLaunch({ args: ['-e', FAKE, file, envOut, '30'], cwd: dir, env, metricsFile: file, steps: 5, timeoutMs: 20_000 }), 20_000);
    assert.is(l.steps, 5);
    assert.ok(l.firstStepMs > 0 && l.lastStepMs >= l.firstStepMs + 4 * 25, JSON.stringify(l));
    assert.ok(Math.abs(l.cropsPerSecond! - 6400) < 1e-6, String(l.cropsPerSecond));
    assert.equal(JSON.parse(readFileSync(envOut, 'utf8')), { dir: path.join(dir, 'cache'), disable: null });
    // Killed: the file stops growing.
    const n = readFileSync(file, 'utf8').split('\n').length;
    await new Promise((r) => setTimeout(r, 150));
    assert.is(readFileSync(file, 'utf8').split('\n').length, n, 'the child still writes after the launch was timed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a launch that ends before its step, or takes too long, is an error that says what it printed', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'first-step-test-'));
  try {
    const file = path.join(dir, 'metrics.jsonl');
    const early = timeLaunch({ args: ['-e', 'console.error("no adapter"); process.exit(3)'], cwd: dir, env: process.env, metricsFile: file, steps: 1, timeoutMs: 20_000 });
    await within(early, 20_000).then(
      () => assert.unreachable('resolved'),
      (e: Error) => assert.match(e.message, /status 3.*no adapter/s),
    );
    const slow = timeLaunch({ args: ['-e', 'console.log("compiling"); setTimeout(() => {}, 15000)'], cwd: dir, env: process.env, metricsFile: file, steps: 1, timeoutMs: 300 });
    await within(slow, 20_000).then(
      () => assert.unreachable('resolved'),
      (e: Error) => assert.match(e.message, /no step 1 in 0.3 s.*compiling/s),
    );
    assert.not.ok(existsSync(file));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const measured: FirstStep = {
  command: 'MESA_SHADER_CACHE_DIR=<fresh dir> node bin/smkd.mjs train --preset omniglot --phase 1 --out <fresh dir>',
  entry: 'source',
  marker: 'the first line of metrics.jsonl',
  coldMs: 68_465,
  warmMs: 4_420,
  cold: { firstStepMs: 68_465, steps: 20, lastStepMs: 72_074, cropsPerSecond: 340.4 },
  warm: { firstStepMs: 4_420, steps: 20, lastStepMs: 7_335, cropsPerSecond: 415.8 },
  cache: { files: 101, bytes: 1_822_009 },
  load: { start: [1.67, 0.63, 1.39], end: [4.49, 1.78, 1.73] },
  seconds: 81,
};

test('the report: cold and warm times, to step 20, crops/s and the cache; a failure says so', () => {
  const record = testRecord({ cases: [], firstStep: measured });
  const md = renderRecord(record);
  assert.ok(md.includes('**cold**') && md.includes('**68.5 s** to the first step, 72.1 s to step 20, 340 crops/s over steps 3-20'), md);
  assert.ok(md.includes('**4.4 s** to the first step, 7.3 s to step 20, 416 crops/s'), md);
  assert.ok(md.includes('101 files, 1.7 MiB'), md);
  assert.ok(md.includes(measured.command), md);
  assert.not.ok(md.includes('wrote nothing'), md);
  assert.ok(renderFirstStep({ ...measured, cache: { files: 0, bytes: 0 } }).some((l) => l.includes('Mesa wrote nothing')));
  const failed = renderRecord({ ...record, firstStep: undefined, firstStepError: 'exited (status 1) before step 20; it said: no adapter\nmore' });
  assert.ok(failed.includes('**failed** (exited (status 1) before step 20; it said: no adapter)'), failed);
  assert.not.ok(renderRecord({ ...record, firstStep: undefined }).includes('first step'));
});

test.run();
