// The leak report: while tracking, every tensor not yet disposed is listed with the line that made it;
// tidy() and dispose() take tensors off; SMKD_LEAK_REPORT=1 prints what is left when the process exits.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { gpu } from '../helpers/check.js';

const test = suite('leak report');
test.before(gpu);

/** A loop body that forgets to dispose its result: the classic leak. */
function leakyStep(x: E.Tensor): E.Tensor {
  return E.mul(x, 2);
}

test('tracked tensors not disposed are listed with where they were made; tidy and dispose take them off', async () => {
  const x = E.randn([4, 3], 1);
  E.trackTensors();
  try {
    for (let i = 0; i < 3; i++) leakyStep(x);
    E.tidy(() => E.add(E.mul(x, 3), 1)).dispose();
    const kept = E.exp(x);
    const live = E.liveTensors();
    assert.is(live.length, 4, JSON.stringify(live));
    assert.ok(
      live.slice(0, 3).every((t) => t.tensor === 'f32[4, 3]' && /leak-report\.test\.ts:\d+/.test(t.madeAt) && /leakyStep/.test(t.madeAt)),
      JSON.stringify(live),
    );
    assert.match(E.leakReport(), /^4 tensor\(s\) still alive:\n {2}3 x f32\[4, 3\], \.\.\. made at leakyStep .*leak-report\.test\.ts:\d+:\d+\)\n {2}1 x f32\[4, 3\] made at /);
    kept.dispose();
    assert.is(E.liveTensors().length, 3);
  } finally {
    E.trackTensors(false);
  }
  assert.equal(E.liveTensors(), []);
  assert.is(E.leakReport(), '');
  x.dispose();
});

test('SMKD_LEAK_REPORT=1 prints the tensors left at exit on stderr; without it, nothing', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'leak-'));
  try {
    const script = path.join(dir, 'leaky.mts');
    const engine = path.resolve('engine/index.js');
    await writeFile(
      script,
      `import * as E from ${JSON.stringify(engine)};\nawait E.init();\nconst a = E.randn([2, 5], 1);\nE.tidy(() => E.sum(a)).dispose();\nconst forgotten = E.mul(a, a);\nawait forgotten.toArray();\na.dispose();\nawait E.releaseGpu();\n`,
    );
    const run = (env: Record<string, string>) => spawnSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    const on = run({ SMKD_LEAK_REPORT: '1' });
    assert.is(on.status, 0, on.stderr);
    assert.match(on.stderr, /SMKD_LEAK_REPORT: 1 tensor\(s\) still alive:\n {2}1 x f32\[2, 5\] made at .*leaky\.mts:5:\d+/);
    const off = run({ SMKD_LEAK_REPORT: '' });
    assert.is(off.status, 0, off.stderr);
    assert.not.match(off.stderr, /SMKD_LEAK_REPORT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
