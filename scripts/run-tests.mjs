#!/usr/bin/env node
// Runs every uvu test file in one process (one GPU device for all) and ends with the summary line
// CI reads: "N passed, N failed". Extra arguments are a file pattern, e.g. `npm test -- matmul`.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pattern = process.argv[2] ? `(${process.argv[2]}).*\\.test\\.ts$` : '\\.test\\.ts$';
// Dawn prints these two notices on every device creation; they say nothing about the tests.
const noise = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced/;

const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'node_modules/uvu/bin.js'), 'test', pattern, '--color=false'], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
});
let out = '';
const relay = (stream, sink) => {
  let buf = '';
  stream.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop();
    for (const l of lines) {
      if (noise.test(l)) continue;
      out += l + '\n';
      sink.write(l + '\n');
    }
  });
  stream.on('end', () => buf && sink.write(buf));
};
relay(child.stdout, process.stdout);
relay(child.stderr, process.stderr);
const started = Date.now();
child.on('close', (code, signal) => {
  const num = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped') || 0;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (Number.isNaN(total) || Number.isNaN(passed)) {
    console.log(`\nthe test process ended (${signal ?? `exit ${code}`}) before its summary (${secs} s)`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const failed = total - passed - skipped;
  console.log(`\ntests took ${secs} s`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
