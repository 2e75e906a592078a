// The schedules of optim_schedules.safetensors (out.schedule.<sched>.*), computed by the reference code's numpy code:
// lr, weight decay and teacher momentum per iteration, teacher temperatures per epoch, float64 to 1e-12.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cosineScheduleAt, linspaceAt, TrainingSchedule, type ScheduleConfig } from '../../train/schedules.js';
import { toTypedArray } from '../../engine/index.js';
import { Golden, missingGolden, needsGolden } from '../helpers/golden.js';

const test = suite('schedules');

/** A schedule entry of the file's `config` metadata (the reference code's argument names). */
interface GoldenSchedule {
  name: string;
  epochs: number;
  iters_per_epoch: number;
  lr: number;
  min_lr: number;
  warmup_epochs: number;
  weight_decay: number;
  weight_decay_end: number;
  momentum_teacher: number;
  warmup_teacher_temp: number;
  teacher_temp: number;
  warmup_teacher_temp_epochs: number;
  pred_start_epoch: number;
}

/** The README: the same 0.04 -> 0.07 temperatures for [cls] and patches. */
function toConfig(s: GoldenSchedule): ScheduleConfig {
  return {
    epochs: s.epochs,
    itersPerEpoch: s.iters_per_epoch,
    lr: s.lr,
    minLr: s.min_lr,
    warmupEpochs: s.warmup_epochs,
    weightDecay: s.weight_decay,
    weightDecayEnd: s.weight_decay_end,
    momentumTeacher: s.momentum_teacher,
    warmupTeacherTemp: s.warmup_teacher_temp,
    teacherTemp: s.teacher_temp,
    warmupTeacherPatchTemp: s.warmup_teacher_temp,
    teacherPatchTemp: s.teacher_temp,
    warmupTeacherTempEpochs: s.warmup_teacher_temp_epochs,
    predStartEpoch: s.pred_start_epoch,
  };
}

function closeRel(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * Math.abs(expected[i]), `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

const FILE = 'optim_schedules.safetensors';
const golden = needsGolden(test, FILE);
// The file also says which schedules there are: without it there is none to register one by one.
const file = missingGolden(FILE).length === 0 ? await Golden.load(FILE) : undefined;

/** A stored float64 array at full precision (Golden.f32 would round it). */
function f64(key: string): Float64Array {
  const t = file!.file.tensors.get(key);
  if (!t || t.dtype !== 'F64') throw new Error(`optim_schedules: no F64 tensor '${key}'`);
  return toTypedArray(t) as Float64Array;
}
const schedules = file?.meta<{ schedules: GoldenSchedule[] }>('config').schedules ?? [];

golden('the config metadata names every schedule of the file (at least three)', () => {
  assert.equal(
    schedules.map((s) => s.name).sort(),
    file!
      .keys('out.schedule.')
      .filter((k) => k.endsWith('.lr'))
      .map((k) => k.split('.')[2])
      .sort(),
  );
  assert.ok(schedules.length >= 3);
});

for (const s of schedules) {
  golden(`${s.name}: lr, weight decay, momentum, temperatures as arrays and per iteration/epoch`, () => {
    const sched = new TrainingSchedule(toConfig(s));
    const arrays = sched.arrays();
    const key = (q: string) => `out.schedule.${s.name}.${q}`;
    const pairs: [keyof typeof arrays, string][] = [
      ['lr', 'lr'],
      ['weightDecay', 'weight_decay'],
      ['momentum', 'momentum'],
      ['teacherTemp', 'teacher_temp'],
      ['teacherPatchTemp', 'teacher_patch_temp'],
    ];
    for (const [ours, theirs] of pairs) closeRel(arrays[ours], f64(key(theirs)), 1e-12, `${s.name}.${theirs}`);
    const lr = f64(key('lr'));
    for (let it = 0; it < lr.length; it++) {
      assert.is(sched.lr(it), arrays.lr[it]);
      assert.is(sched.weightDecay(it), arrays.weightDecay[it]);
      assert.is(sched.momentum(it), arrays.momentum[it]);
    }
    for (let e = 0; e < s.epochs; e++) {
      assert.is(sched.teacherTemp(e), arrays.teacherTemp[e]);
      assert.is(sched.teacherPatchTemp(e), arrays.teacherPatchTemp[e]);
    }
  });
}

golden('endpoints: lr warm-up from 0 reaches lr at N_w - 1; cosines start at their base and head for their end', () => {
  for (const s of schedules) {
    const sched = new TrainingSchedule(toConfig(s));
    const nw = s.warmup_epochs * s.iters_per_epoch;
    // np.linspace(0, lr, N_w): no warm-up without warm-up iterations, and a one-point warm-up is [0] (docs/algorithm.md §11.22).
    if (nw > 0) assert.is(sched.lr(0), 0, `${s.name}: the warm-up starts at 0`);
    if (nw > 1) assert.is(sched.lr(nw - 1), s.lr, `${s.name}: lr(N_w - 1)`);
    assert.is(sched.lr(nw), s.lr, `${s.name}: cosine starts at lr`);
    // final + (base − final)·(1 + 1)/2 is base up to rounding, in numpy too.
    closeRel([sched.weightDecay(0), sched.momentum(0)], [s.weight_decay, s.momentum_teacher], 1e-14, `${s.name}: cosines at 0`);
    const last = sched.totalIters - 1;
    assert.ok(sched.lr(last) > s.min_lr && sched.lr(last) < sched.lr(last - 1));
    assert.ok(sched.momentum(last) < 1 && sched.momentum(last) > sched.momentum(last - 1));
    assert.throws(() => sched.lr(sched.totalIters), /outside/);
  }
});

golden('teacher temperature over W = 1 epoch is [start] then the final value (docs/algorithm.md §11.22)', () => {
  const s = schedules.find((q) => q.warmup_teacher_temp_epochs === 1);
  assert.ok(s, 'the file has a one-epoch temperature warm-up');
  const sched = new TrainingSchedule(toConfig(s!));
  assert.is(sched.teacherTemp(0), s!.warmup_teacher_temp);
  for (let e = 1; e < s!.epochs + 3; e++) assert.is(sched.teacherTemp(e), s!.teacher_temp);
});

golden('pred_start_epoch holds the patch temperature, then ramps like the [cls] one', () => {
  const s = schedules.find((q) => q.pred_start_epoch > 0)!;
  const sched = new TrainingSchedule(toConfig(s));
  const P = s.pred_start_epoch;
  for (let e = 0; e < P; e++) assert.is(sched.teacherPatchTemp(e), s.warmup_teacher_temp);
  for (let e = P; e < s.epochs; e++) assert.is(sched.teacherPatchTemp(e), sched.teacherTemp(e - P));
});

golden('linspace and cosine primitives, one-point warm-up, freezeLastLayer, bad input', () => {
  assert.is(linspaceAt(0, 1, 1, 0), 0);
  assert.is(linspaceAt(0.04, 0.07, 4, 3), 0.07);
  assert.is(linspaceAt(0, 3, 4, 2), 2);
  assert.is(cosineScheduleAt(1, 0, 10, 1, 0), 0, 'a one-iteration lr warm-up gives lr(0) = 0 (docs/algorithm.md §11.22)');
  assert.is(cosineScheduleAt(1, 0, 10, 1, 1), 1);
  assert.ok(Math.abs(cosineScheduleAt(1, 0, 10, 0, 5) - 0.5) < 1e-15);
  const sched = new TrainingSchedule({ ...toConfig(schedules[0]), freezeLastLayer: 1 });
  assert.equal(
    [0, 1, 2].map((e) => sched.freezeLastLayer(e)),
    [true, false, false],
  );
  assert.not.ok(new TrainingSchedule(toConfig(schedules[0])).freezeLastLayer(0), 'default: never frozen');
  assert.is(sched.epochOf(sched.config.itersPerEpoch * 2 + 1), 2);
  assert.throws(() => new TrainingSchedule({ ...toConfig(schedules[0]), warmupEpochs: 1000 }), /warm-up/);
  assert.throws(() => sched.teacherTemp(-1), /epoch -1/);
});

test.run();
