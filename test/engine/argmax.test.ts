// argmax along an axis against a float64 host reference: every axis of random rank-1..4 shapes that
// are not multiples of the 64-thread rows, ties (small integers) going to the lowest index, keepdim,
// -Infinity, and the refusals.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { awkwardDim, gpu, randInt, rng } from '../helpers/check.js';

const test = suite('argmax');
test.before(gpu);

/** torch.argmax(x, axis): first index of the largest value along `axis`, the other axes in order. */
function argmaxRef(x: Float64Array, shape: number[], axis: number): number[] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const M = shape[axis];
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let best = -Infinity;
      let at = 0;
      for (let m = 0; m < M; m++) {
        const v = x[(o * M + m) * inner + i];
        if (v > best) [best, at] = [v, m];
      }
      out.push(at);
    }
  return out;
}

test('every axis of random shapes, with ties to the lowest index and keepdim', async () => {
  const r = rng(17);
  for (let k = 0; k < 12; k++) {
    const rank = 1 + (k % 4);
    const shape = Array.from({ length: rank }, () => awkwardDim(r, rank === 1 ? 300 : 13));
    // Small integers: many ties; every 3rd case real values.
    const x = Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (k % 3 === 2 ? r() * 10 - 5 : randInt(r, -3, 3)));
    const t = E.fromArray(x, shape);
    for (let axis = -rank; axis < rank; axis++) {
      const a = axis < 0 ? axis + rank : axis;
      const y = E.argmax(t, axis);
      assert.equal(
        y.shape,
        shape.filter((_, d) => d !== a),
        'shape',
      );
      assert.is(y.dtype, 'i32');
      assert.equal(Array.from(await y.toArray()), argmaxRef(x, shape, a), `shape [${shape}] axis ${axis}`);
      const kept = E.argmax(t, axis, true);
      assert.equal(
        kept.shape,
        shape.map((n, d) => (d === a ? 1 : n)),
      );
      for (const z of [y, kept]) z.dispose();
    }
    t.dispose();
  }
});

test('-Infinity rows give their first index; a scalar, an empty axis and an integer tensor are refused', async () => {
  const t = E.fromArray([-Infinity, -Infinity, -Infinity, 1, -Infinity, 2], [2, 3]);
  assert.equal(Array.from(await E.argmax(t).toArray()), [0, 2]);
  assert.throws(() => E.argmax(E.fromArray([1], [])), /a scalar has no axis/);
  assert.throws(() => E.argmax(E.zeros([2, 0])), /cannot take the argmax of an empty axis/);
  assert.throws(() => E.argmax(E.fromArray([1, 2], [2], 'i32')), /argmax/);
  assert.throws(() => E.argmax(E.zeros([2, 3]), 2), /axis/);
});

test.run();
