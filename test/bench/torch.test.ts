// The bench's PyTorch peer (bench/torch/). Where a Python with torch is found (SMKD_PYTHON, python3,
// /usr/bin/python3), every case that has a PyTorch version agrees with ours at reduced size, a peer one
// update behind ours is caught, and the peer is timed like the other runners; where none is found those
// tests are skipped with the reason. PyTorch is never a dependency: the report tests need no Python.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { rt, tidy } from '../../engine/index.js';
import { runCase, type CaseResult } from '../../bench/harness.js';
import { renderRecord } from '../../bench/report.js';
import { selectCases } from '../../bench/suites/index.js';
import { loadTorch, pythonCandidates } from '../../bench/torch/peer.js';
import { gpu } from '../helpers/check.js';
import { skipUnless } from '../helpers/skip.js';
import { testRecord } from '../helpers/bench-record.js';

const test = suite('bench: PyTorch peer');
test.before(gpu);

const probe = await loadTorch();
const withTorch = skipUnless(test, probe.env !== undefined, probe.problems.join('; '));
const cases = selectCases('reduced', ['trainingStep']).filter((c) => c.torch);

test('Python is looked for in SMKD_PYTHON, then python3, then /usr/bin/python3', () => {
  const list = pythonCandidates();
  assert.equal(
    list.slice(-2),
    ['python3', '/usr/bin/python3'].filter((p) => p !== process.env.SMKD_PYTHON),
  );
  if (process.env.SMKD_PYTHON) assert.is(list[0], process.env.SMKD_PYTHON);
});

test('the ViT step and both SMKD iterations have a PyTorch version', () => {
  assert.equal(
    cases.map((c) => c.name.split(' (')[0]),
    ['reduced', 'reduced SMKD phase 1 iteration on the omniglot data', 'reduced SMKD phase 2 iteration on the omniglot data'],
  );
});

withTorch('each agrees with ours at reduced size: every loss term, and the batched patch term with make_golden.py', async () => {
  for (const c of cases) {
    const r = await runCase(c, 'smoke', { torch: probe.env });
    assert.not.ok(r.error, `${c.name} threw: ${r.error}`);
    const a = r.torchAgreement;
    assert.ok(a?.ok, `${c.name}: ours and PyTorch differ: ${JSON.stringify(a)}`);
    assert.ok(a!.error <= 1e-4 && Number.isFinite(a!.error));
    if (c.name.includes('SMKD')) {
      for (const term of ['step 1 total', 'step 1 cls', 'step 1 ce', 'step 2 total']) assert.ok(a!.detail?.includes(term), `${c.name}: no '${term}' in ${a!.detail}`);
      if (c.name.includes('phase 2')) assert.ok(a!.detail?.includes('make_golden'), a!.detail);
    }
  }
});

withTorch('the agreement fails when PyTorch is one update behind ours', async () => {
  for (const c of cases) {
    const inst = await c.setup();
    const peer = await inst.torch!(probe.env!);
    try {
      for (const t of tidy(() => inst.fused.step())) t.dispose();
      await rt().sync();
      const a = await peer.agree();
      assert.not.ok(a.ok, `${c.name}: a peer one update behind still agrees: ${JSON.stringify(a)}`);
    } finally {
      await peer.dispose();
      inst.dispose();
    }
  }
});

withTorch('quick mode times PyTorch beside ours (wall clock) and gives both ratios', async () => {
  const r = await runCase(cases[0], 'quick', { torch: probe.env });
  assert.not.ok(r.error, r.error);
  const t = r.torch!.timing!;
  assert.is(t.method, 'wall');
  assert.ok(t.wallMs > 0 && t.samplesMs.length > 0);
  assert.ok(r.vsTorch! > 0 && Number.isFinite(r.vsTorch!));
  assert.ok(r.vsTorchWall! > 0 && Number.isFinite(r.vsTorchWall!));
});

test('the report has a PyTorch column, its agreement, and says when PyTorch did not run', () => {
  const timing = (ms: number) => ({ medianMs: ms, method: 'wall' as const, wallMs: ms, minMs: ms, samplesMs: [ms], batch: 1 });
  const c: CaseResult = {
    suite: 'trainingStep',
    name: 'a step',
    torchOps: 'bench/torch/vit_step.py',
    work: { flops: 1e9 },
    fused: { timing: timing(10) },
    torch: { timing: timing(25) },
    torchAgreement: { ok: true, error: 3e-7, tolerance: 1e-4 },
    vsTorch: 2.5,
    vsTorchWall: 2.5,
    seconds: 1,
  };
  const record = testRecord({ torch: { problems: ['no Python that imports torch'] }, method: 'wall', cases: [c] });
  const md = renderRecord(record);
  assert.match(md, /PyTorch CPU ms \(wall\) \| PyTorch \/ ours \| PyTorch \/ ours wall/);
  assert.match(md, /\| a step \| 10\.00 \|.*\| 25\.00 \| 2\.50x \| 2\.50x \|/);
  assert.match(md, /ok 3\.0e-7/);
  assert.match(md, /PyTorch: not run: no Python that imports torch/);
  assert.match(md, /PyTorch CPU 25\.00 ms wall \(2\.50x ours\)/);
});

test.run();
