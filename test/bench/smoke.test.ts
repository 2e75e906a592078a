import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runCase, type CaseResult } from '../../bench/harness.js';
import { renderRecord, type BenchRecord } from '../../bench/report.js';
import { selectCases, SUITES } from '../../bench/suites/index.js';
import { gpu } from '../helpers/check.js';

const test = suite('bench smoke');
test.before(gpu);

const results: CaseResult[] = [];

test('every case of every suite runs once at reduced size, fused and unfused agree, nothing leaks', async () => {
  const cases = selectCases('reduced');
  for (const c of cases) {
    const r = await runCase(c, 'smoke');
    results.push(r);
    const what = `${r.suite} ${r.name}`;
    assert.not.ok(r.error, `${what} threw: ${r.error}`);
    assert.ok(r.agreement?.ok, `${what}: fused and unfused differ: ${JSON.stringify(r.agreement)}`);
    assert.is(r.fused!.memory.retainedBytes, 0, `${what}: fused variant keeps ${r.fused!.memory.retainedBytes} bytes`);
    assert.is(r.unfused!.memory.retainedBytes, 0, `${what}: unfused variant keeps ${r.unfused!.memory.retainedBytes} bytes`);
    assert.ok(r.unfused!.memory.peakExtraBytes > 0, `${what}: the unfused composition allocates temporaries`);
    assert.is(r.ratio, undefined, `${what}: smoke mode makes no timing claims`);
  }
  for (const name of Object.keys(SUITES)) assert.ok(results.some((r) => r.suite === name), `suite ${name} ran no case`);
  assert.is(results.length, cases.length);
});

test('the report has a row per case', () => {
  const record: BenchRecord = {
    adapter: 'test adapter',
    adapterSlug: 'test-adapter',
    isSoftware: true,
    hasTimestamps: false,
    versions: { node: process.version, webgpu: '0', engine: '0' },
    date: new Date(0).toISOString(),
    mode: 'smoke',
    sizes: 'reduced',
    cpus: 1,
    load: { start: [0, 0, 0], end: [0, 0, 0] },
    method: 'none',
    seconds: 0,
    partial: false,
    cases: results,
  };
  const md = renderRecord(record);
  for (const r of results) assert.ok(md.includes(`| ${r.name} |`), `no row for ${r.suite} ${r.name}`);
});

test('quick mode times both variants and runs benny', async () => {
  const c = selectCases('reduced', ['cosineArgmax'])[0];
  const r = await runCase(c, 'quick');
  assert.not.ok(r.error, r.error);
  for (const v of [r.fused!, r.unfused!]) {
    assert.ok(v.timing!.medianMs > 0 && v.timing!.samplesMs.length > 0);
    assert.ok(v.benny!.opsPerSec > 0);
  }
  assert.ok(r.ratio! > 0 && Number.isFinite(r.ratio!));
});

test.run();
