// Every optimiser iteration of optim_schedules.safetensors (two in the shared set) against torch.optim.AdamW:
// per-tensor clipping, the frozen last layer, AdamW with carried-over state and per-parameter step counts,
// parameters without a gradient skipped, then the teacher EMA (docs/algorithm.md §6, §7.1-§7.6).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ParameterArena } from '../../engine/arena.js';
import { AdamW, isDecayed } from '../../engine/optim/adamw.js';
import { clipGradients } from '../../engine/optim/clip.js';
import { emaUpdate } from '../../engine/optim/ema.js';
import { close, gpu } from '../helpers/check.js';
import { Golden, needsGolden } from '../helpers/golden.js';

const test = suite('optim golden');
test.before(gpu);
const golden = needsGolden(test, 'optim_schedules.safetensors');

golden('clip -> freeze last layer -> AdamW -> EMA, every iteration of the file (at least two)', async () => {
  const g = await Golden.load('optim_schedules.safetensors');
  const names = g
    .keys('in.param.')
    .map((k) => k.slice('in.param.'.length))
    .sort();
  const teacherNames = g
    .keys('in.teacher.')
    .map((k) => k.slice('in.teacher.'.length))
    .sort();
  const student = new ParameterArena(
    names.map((name) => ({ name, shape: g.shape(`in.param.${name}`), init: g.f32(`in.param.${name}`), decay: isDecayed(name, g.shape(`in.param.${name}`)) })),
    { label: 'student' },
  );
  const teacher = new ParameterArena(
    teacherNames.map((name) => ({ name, shape: g.shape(`in.teacher.${name}`), init: g.f32(`in.teacher.${name}`), decay: false })),
    { like: student, requiresGrad: false, label: 'teacher' },
  );
  const opt = new AdamW(student);
  opt.loadStateDict({
    step: new Map(names.map((n) => [n, g.scalar(`in.step.${n}`)])),
    exp_avg: new Map(names.map((n) => [n, g.f32(`in.exp_avg.${n}`)])),
    exp_avg_sq: new Map(names.map((n) => [n, g.f32(`in.exp_avg_sq.${n}`)])),
  });
  const clip = g.scalar('in.clip_grad');
  const freeze = g.scalar('in.freeze_last_layer');
  const iterations = g.keys('in.it').map((k) => Number(/^in\.it(\d+)\./.exec(k)![1]));
  const count = Math.max(...iterations) + 1;
  assert.ok(count >= 2, 'the file holds at least two iterations');
  let frozenSeen = false;
  try {
    for (let it = 0; it < count; it++) {
      const grads = new Map(names.filter((n) => g.has(`in.it${it}.grad.${n}`)).map((n) => [n, g.f32(`in.it${it}.grad.${n}`)]));
      student.setGrads(grads);
      const res = clipGradients(student, clip);
      const epoch = g.scalar(`in.it${it}.epoch`);
      const frozen = (name: string): boolean => epoch < freeze && name.includes('last_layer');
      frozenSeen ||= names.some(frozen);
      opt.step({ lr: g.scalar(`in.it${it}.lr`), weightDecay: g.scalar(`in.it${it}.weight_decay`), frozen });
      emaUpdate(teacher, student, g.scalar(`in.it${it}.momentum`));
      const factors = await res.factors.toArray();
      res.norms.dispose();
      res.factors.dispose();
      res.totalNorm.dispose();
      const state = await opt.stateDict();
      const params = await student.stateDict();
      const teach = await teacher.stateDict();
      names.forEach((n, k) => {
        const key = `out.it${it}.clip_scale.${n}`;
        if (g.has(key)) {
          const want = g.scalar(key);
          assert.ok(Math.abs(factors[k] - want) <= 1e-5 * want, `it${it} clip_scale ${n}: got ${factors[k]}, expected ${want}`);
        }
        assert.is(state.step.get(n), g.scalar(`out.it${it}.step.${n}`), `it${it} step ${n}`);
        close(params.get(n)!, g.f32(`out.it${it}.param.${n}`), 1e-6, `it${it} param ${n}`);
        close(state.exp_avg.get(n)!, g.f32(`out.it${it}.exp_avg.${n}`), 1e-6, `it${it} exp_avg ${n}`);
        close(state.exp_avg_sq.get(n)!, g.f32(`out.it${it}.exp_avg_sq.${n}`), 1e-6, `it${it} exp_avg_sq ${n}`);
      });
      for (const n of teacherNames) close(teach.get(n)!, g.f32(`out.it${it}.teacher.${n}`), 1e-6, `it${it} teacher ${n}`);
    }
    assert.ok(frozenSeen, 'one iteration has the last layer frozen');
  } finally {
    student.dispose();
    teacher.dispose();
  }
});

test.run();
