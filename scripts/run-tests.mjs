#!/usr/bin/env node
// Runs every uvu test file in one process (one GPU device for all) and ends with the summary line
// CI reads: "N passed, N failed[, N skipped]", the skipped tests listed with their reasons above it.
// Extra arguments are a file pattern, e.g. `npm test -- matmul`.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pattern = process.argv[2] ? `(${process.argv[2]}).*\\.test\\.ts$` : '\\.test\\.ts$';
// The tests' stderr goes through a file opened for appending, relayed as it grows: on such a
// descriptor (unlike the socket of a piped stdio) the engine keeps Dawn's adapter notices off stderr
// (engine/node/dawn.ts), so nothing needs filtering here.
const errFile = path.join(os.tmpdir(), `smkd-test-stderr-${process.pid}.log`);
const errFd = openSync(errFile, 'a');
// Every kernel the tests compile is logged (engine/node/dawn.ts), for the compile budget below; a caller may
// give its own log to gather several runs (.ci/run does).
const kernelLog = process.env.SMKD_KERNEL_LOG || path.join(os.tmpdir(), `smkd-test-kernels-${process.pid}.jsonl`);
const ownLog = !process.env.SMKD_KERNEL_LOG;
const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), 'test', pattern, '--color=false'], {
  cwd: root,
  stdio: ['ignore', 'pipe', errFd],
  env: { ...process.env, SMKD_KERNEL_LOG: kernelLog },
});
closeSync(errFd);
const errRead = openSync(errFile, 'r');
let errAt = 0;
const relayErr = () => {
  const buf = Buffer.alloc(1 << 16);
  for (let n; (n = readSync(errRead, buf, 0, buf.length, errAt)) > 0; errAt += n) process.stderr.write(Buffer.from(buf.subarray(0, n)));
};
const errTimer = setInterval(relayErr, 200);
let out = '';
child.stdout.on('data', (d) => {
  out += d;
  process.stdout.write(d);
});
const started = Date.now();
/**
 * The compile budget (scripts/compile-budget.ts): every kernel the run used, compiled alone on Dawn's
 * adapter and in headless Chromium, none over 10 s. After a full run, or any run with
 * SMKD_COMPILE_BUDGET=1; SMKD_COMPILE_BUDGET=0 skips it. Resolves with its lines.
 */
function compileBudget() {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/compile-budget.ts'), kernelLog], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d) => {
      text += d;
      process.stdout.write(d);
    });
    p.on('close', () => resolve(text));
  });
}

child.on('close', async (code, signal) => {
  clearInterval(errTimer);
  relayErr();
  closeSync(errRead);
  rmSync(errFile, { force: true });
  const num = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
  const total = num('Total');
  let passed = num('Passed');
  let skipped = num('Skipped') || 0;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (Number.isNaN(total) || Number.isNaN(passed)) {
    console.log(`\nthe test process ended (${signal ?? `exit ${code}`}) before its summary (${secs} s)`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  // uvu's Total counts the tests that ran; a skipped test (test/helpers/skip.ts) is not among them.
  let failed = total - passed;
  const reasons = [...out.matchAll(/^skipped: (.*)$/gm)].map((m) => m[1]);
  console.log(`\ntests took ${secs} s`);
  const budget = process.env.SMKD_COMPILE_BUDGET;
  if (budget === '0' || (budget !== '1' && process.argv[2])) {
    if (budget === '0') reasons.push('compile budget (SMKD_COMPILE_BUDGET=0)');
  } else if (existsSync(kernelLog)) {
    const t0 = Date.now();
    console.log('\ncompile budget: every kernel of this run, compiled alone on each adapter (scripts/compile-budget.ts)');
    const text = await compileBudget();
    for (const m of text.matchAll(/^compile budget (.*?): (ok|FAIL|skipped)(.*)$/gm)) {
      if (m[2] === 'ok') passed++;
      else if (m[2] === 'FAIL') failed++;
      else {
        skipped++;
        reasons.push(`compile budget ${m[1]}${m[3]}`);
      }
    }
    if (!/^compile budget .*: (ok|FAIL|skipped)/m.test(text)) failed++;
    console.log(`compile budget took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  if (ownLog) rmSync(kernelLog, { force: true });
  if (reasons.length) console.log(`skipped:\n${reasons.map((r) => `  ${r}`).join('\n')}`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
