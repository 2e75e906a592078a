import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rt } from '../../engine/index.js';
import { ratioChart } from '../../bench/chart.js';
import { PassTimer } from '../../bench/gpu-timer.js';
import { runCase, type CaseResult, type RunContext } from '../../bench/harness.js';
import { renderRecord } from '../../bench/report.js';
import { selectCases, SUITES } from '../../bench/suites/index.js';
import { loadJaxjs } from '../../bench/jaxjs/backends.js';
import { loadTfjs } from '../../bench/tfjs/backends.js';
import { gpu } from '../helpers/check.js';
import { testRecord } from '../helpers/bench-record.js';

const test = suite('bench smoke');
test.before(gpu);

const results: CaseResult[] = [];
const ctx: RunContext = {};

test("tfjs-webgpu runs on the engine's own device, and tfjs-wasm loads", async () => {
  ctx.tfjs = await loadTfjs();
  assert.equal(ctx.tfjs.problems, [], ctx.tfjs.problems.join('; '));
  assert.equal(ctx.tfjs.available, ['tfjs-webgpu', 'tfjs-wasm']);
  assert.ok(ctx.tfjs.sameDevice, "tfjs-webgpu got a device other than the engine's");
});

test("jax-js loads: its wasm backend, and its WebGPU backend on the engine's own device", async () => {
  ctx.jax = await loadJaxjs();
  assert.equal(ctx.jax.problems, [], ctx.jax.problems.join('; '));
  assert.equal(ctx.jax.available, ['jax-js-wasm', 'jax-js-webgpu']);
  assert.ok(ctx.jax.sameDevice, "jax-js-webgpu got a device other than the engine's");
});

test('every case of every suite runs once at reduced size; ours agrees with unfused and (where it has them) both tfjs and both jax-js backends; nothing leaks', async () => {
  const cases = selectCases('reduced');
  for (const c of cases) {
    const r = await runCase(c, 'smoke', ctx);
    results.push(r);
    const what = `${r.suite} ${r.name}`;
    assert.not.ok(r.error, `${what} threw: ${r.error}`);
    if (r.unfused) {
      assert.ok(r.agreement?.ok, `${what}: fused and unfused differ: ${JSON.stringify(r.agreement)}`);
      assert.is(r.unfused.memory!.retainedBytes, 0, `${what}: unfused variant keeps ${r.unfused.memory!.retainedBytes} bytes`);
      assert.ok(r.unfused.memory!.peakExtraBytes > 0, `${what}: the unfused composition allocates temporaries`);
    }
    assert.is(r.fused!.memory!.retainedBytes, 0, `${what}: our variant keeps ${r.fused!.memory!.retainedBytes} bytes`);
    if (r.tfjsOps) {
      for (const b of ['tfjs-webgpu', 'tfjs-wasm'] as const) {
        const a = r.tfjsAgreement?.[b];
        assert.ok(a?.ok, `${what}: ours and ${b} differ: ${JSON.stringify(a)}`);
      }
    }
    if (r.jaxOps) {
      for (const b of ['jax-js-wasm', 'jax-js-webgpu'] as const) {
        const a = r.jaxAgreement?.[b];
        assert.ok(a?.ok, `${what}: ours and ${b} differ: ${JSON.stringify(a)}`);
      }
    }
    assert.is(r.vsWebgpu, undefined, `${what}: smoke mode makes no timing claims`);
  }
  for (const name of Object.keys(SUITES))
    assert.ok(
      results.some((r) => r.suite === name),
      `suite ${name} ran no case`,
    );
  assert.ok(results.some((r) => r.name.includes('SMKD phase 1')) && results.some((r) => r.name.includes('SMKD phase 2')), 'the SMKD iterations of both phases ran');
  for (const name of ['matmul', 'attention', 'softCrossEntropy', 'trainingStep'])
    assert.ok(
      results.some((r) => r.suite === name && r.jaxAgreement?.['jax-js-wasm']),
      `suite ${name} has no jax-js version`,
    );
  assert.is(results.length, cases.length);
});

test('the report has a row per case', () => {
  const record = testRecord({ mode: 'smoke', sizes: 'reduced', cpus: 1, partial: false, cases: results });
  const md = renderRecord(record);
  for (const r of results) assert.ok(md.includes(`| ${r.name} |`), `no row for ${r.suite} ${r.name}`);
});

test('quick mode times ours, both tfjs backends and both jax-js backends (GPU timestamps where the adapter has them), runs benny, and charts the ratios', async () => {
  const c = selectCases('reduced', ['matmul'])[0];
  const timer = rt().gpu.hasTimestamps ? new PassTimer(rt().device) : undefined;
  const r = await runCase(c, 'quick', { ...ctx, timer, benny: true });
  timer?.dispose();
  assert.not.ok(r.error, r.error);
  for (const v of [r.fused!, r.tfjsWebgpu!, r.tfjsWasm!, r.jaxWasm!, r.jaxWebgpu!]) {
    assert.ok(v.timing!.medianMs > 0 && v.timing!.samplesMs.length > 0);
    assert.ok(v.benny!.opsPerSec > 0);
  }
  assert.is(r.fused!.timing!.method, timer ? 'gpu-timestamps' : 'wall');
  assert.is(r.tfjsWasm!.timing!.method, 'wall');
  assert.is(r.jaxWasm!.timing!.method, 'wall');
  assert.is(r.jaxWebgpu!.timing!.method, r.fused!.timing!.method, 'jax-js-webgpu is timed like ours (it shares the device)');
  assert.ok(r.vsWebgpu! > 0 && Number.isFinite(r.vsWebgpu!));
  assert.ok(r.vsWasm! > 0 && Number.isFinite(r.vsWasm!));
  assert.ok(r.vsJaxWasm! > 0 && Number.isFinite(r.vsJaxWasm!));
  assert.ok(r.vsJaxWebgpu! > 0 && Number.isFinite(r.vsJaxWebgpu!));
  const svg = await ratioChart([r], 'smoke');
  assert.match(svg, /^<svg/);
  assert.ok(svg.includes('tfjs-webgpu time / ours'), 'the chart has a legend entry per comparison');
  assert.ok(svg.includes('jax-js-wasm time / ours'), 'the chart has a legend entry for jax-js');
});

test.run();
