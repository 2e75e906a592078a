import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { crossEntropy, oneHot } from '../../engine/ops/cross-entropy.js';
import { checkOp, close, gpu, randInt, rng, type F64 } from '../helpers/check.js';

const test = suite('crossEntropy');
test.before(gpu);

/** float64 reference: mean (or sum) over rows of -sum_c target_c * log_softmax(x)_c. */
function ref(x: F64, labels: number[], c: number, eps: number, reduction: 'mean' | 'sum'): F64 {
  const n = labels.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, x[i * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(x[i * c + j] - m);
    const lse = m + Math.log(s);
    for (let j = 0; j < c; j++) total -= ((j === labels[i] ? 1 - eps : 0) + eps / c) * (x[i * c + j] - lse);
  }
  return Float64Array.of(reduction === 'mean' ? total / n : total);
}

for (const [n, c, eps, reduction] of [
  [1, 1, 0, 'mean'],
  [7, 3, 0, 'mean'],
  [13, 37, 0.1, 'mean'],
  [5, 129, 0, 'sum'],
] as const) {
  test(`${n} rows of ${c} classes, smoothing ${eps}, ${reduction}`, async () => {
    const r = rng(n * 31 + c);
    const labels = Array.from({ length: n }, () => randInt(r, 0, c - 1));
    await checkOp({
      name: `crossEntropy [${n}, ${c}]`,
      shapes: [[n, c]],
      gpu: ([x]) => crossEntropy(x, labels, { labelSmoothing: eps, reduction }),
      ref: ([x]) => ref(x, labels, c, eps, reduction),
      init: (_k, len, rr) => Float64Array.from({ length: len }, () => (rr() * 2 - 1) * 4),
      seed: n + c,
    });
  });
}

test('oneHot rows', async () => {
  const t = oneHot([2, 0], 3);
  close(await t.toArray(), [0, 0, 1, 1, 0, 0], 0, 'oneHot');
  t.dispose();
});

test('bad labels and shapes name the problem', () => {
  const x = E.fromArray(new Float32Array(6), [2, 3]);
  assert.throws(() => crossEntropy(x, [0, 3]), /label 3 at row 1 is outside \[0, 3\).*\[2, 3\]/);
  assert.throws(() => crossEntropy(x, [0]), /1 labels for logits \[2, 3\]/);
  assert.throws(() => crossEntropy(E.reshape(x, [6]), [0]), /must be \[N, C\], got \[6\]/);
  x.dispose();
});

test.run();
