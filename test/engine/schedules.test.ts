// warmupCosine (engine/optim/schedules.ts) against the closed form, computed here independently: linear
// warm-up through np.linspace's points, then final + (peak - final)(1 + cos(pi k / (total - warmup))) / 2.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { warmupCosine } from '../../engine/index.js';

const test = suite('engine schedules');

test('warmupCosine: the warm-up points, the cosine, every iteration of odd lengths; bad settings refused', () => {
  for (const [total, warmup, peak, final, start] of [
    [1000, 37, 3e-3, 1e-6, 0],
    [53, 0, 1, 0.25, 0],
    [11, 10, 0.5, 0, 0.1],
  ]) {
    const at = warmupCosine({ peak, final, total, warmup, start });
    for (let it = 0; it < total; it++) {
      const expected =
        it < warmup
          ? warmup === 1
            ? start
            : start + ((peak - start) * it) / (warmup - 1)
          : final + ((peak - final) * (1 + Math.cos((Math.PI * (it - warmup)) / (total - warmup)))) / 2;
      assert.ok(Math.abs(at(it) - expected) <= 1e-15 * Math.max(1, Math.abs(expected)), `total ${total} warmup ${warmup}: it ${it} gave ${at(it)}, expected ${expected}`);
    }
    if (warmup > 1) assert.is(at(warmup - 1), peak, 'the warm-up ends on the peak exactly');
  }
  assert.throws(() => warmupCosine({ peak: 1, total: 10, warmup: 10 }), /warmup must be a whole number of iterations in 0\.\.9, got 10/);
  assert.throws(() => warmupCosine({ peak: Number.NaN, total: 10 }), /peak must be a finite number/);
  assert.throws(() => warmupCosine({ peak: 1, total: 0 }), /total must be a positive whole number/);
  assert.throws(() => warmupCosine({ peak: 1, total: 10 })(10), /iteration 10 is outside 0\.\.9/);
});

test.run();
