// Stop-and-resume reproduces the uninterrupted run bit for bit (data, masks, drop path, optimiser,
// centres, teacher), for both phases, and a few steps of training move every parameter.
import { suite } from 'uvu';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { preset, validateConfig, type TrainConfig } from '../../train/config.js';
import { train } from '../../train/trainer.js';
import { gpu } from '../helpers/check.js';

const test = suite('resume');
test.before(gpu);

function config(phase: 1 | 2, out: string, init?: string): TrainConfig {
  const base = preset('tiny', phase);
  return validateConfig({
    ...base,
    out,
    init,
    workers: 0,
    model: { ...base.model, depth: 2, dropPath: 0.1 },
    batch: { ...base.batch, size: 4, classes: 2, perClass: 2 },
    schedule: { ...base.schedule, epochs: 2, itersPerEpoch: 2, warmupEpochs: 1, freezeLastLayer: phase === 1 ? 1 : 0, warmupTeacherTempEpochs: 1 },
    checkpointEvery: 100,
  });
}

async function finalWeights(run: string): Promise<Buffer> {
  const latest = JSON.parse(await readFile(path.join(run, 'latest.json'), 'utf8')) as { checkpoint: string };
  const dir = path.join(run, latest.checkpoint);
  return Buffer.concat(await Promise.all(['student', 'teacher', 'loss_state', 'optimizer'].map((f) => readFile(path.join(dir, `${f}.safetensors`)))));
}

test('phase 1 then phase 2: interrupted + resumed runs equal uninterrupted runs exactly', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'resume-'));
  try {
    const straight1 = await train(config(1, path.join(dir, 'a1')), { log: () => {} });
    straight1.models.dispose();
    const cut = await train(config(1, path.join(dir, 'b1')), { log: () => {}, shouldStop: (done) => done === 1 });
    cut.models.dispose();
    if (!cut.stopped) throw new Error('the run did not stop when asked');
    // A restart from scratch would give the same weights too: check the run really resumed.
    let start = -1;
    const resumed = await train(config(1, path.join(dir, 'b1')), { log: () => {}, onStart: (s) => (start = s.resumed ? s.startIteration : -1) });
    resumed.models.dispose();
    if (start !== 1) throw new Error(`the second run started at iteration ${start}, not 1 (resumed)`);
    const its = (await readFile(path.join(dir, 'b1', 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { iteration: number }).iteration);
    if (its.join() !== '0,1,2,3') throw new Error(`iterations logged: ${its}`);
    const a = await finalWeights(path.join(dir, 'a1'));
    if (Buffer.compare(a, await finalWeights(path.join(dir, 'b1'))) !== 0) throw new Error('phase 1: the resumed run differs from the uninterrupted one');
    const metrics = (await readFile(path.join(dir, 'a1', 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { loss: number });
    if (metrics.length !== 4 || metrics.some((m) => !Number.isFinite(m.loss))) throw new Error(`metrics: ${JSON.stringify(metrics)}`);

    const p2a = await train(config(2, path.join(dir, 'a2'), path.join(dir, 'a1')), { log: () => {} });
    p2a.models.dispose();
    const p2cut = await train(config(2, path.join(dir, 'b2'), path.join(dir, 'b1')), { log: () => {}, shouldStop: (done) => done === 3 });
    p2cut.models.dispose();
    const p2b = await train(config(2, path.join(dir, 'b2'), path.join(dir, 'b1')), { log: () => {} });
    p2b.models.dispose();
    if (Buffer.compare(await finalWeights(path.join(dir, 'a2')), await finalWeights(path.join(dir, 'b2'))) !== 0) throw new Error('phase 2: the resumed run differs');
    // Phase 2 started from phase 1 and moved away from it.
    if (Buffer.compare(a, await finalWeights(path.join(dir, 'a2'))) === 0) throw new Error('phase 2 did not change the weights');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
