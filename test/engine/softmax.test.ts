import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { logSoftmax, softmax } from '../../engine/ops/softmax.js';
import { checkOp, close, finiteDiff, gpu, randArray, rng, type F64 } from '../helpers/check.js';
import { permute } from '../ref/basic.js';
import * as ref from '../ref/norm.js';

const test = suite('softmax');
test.before(gpu);

const ROW_LENGTHS = [1, 3, 17, 63, 65, 129, 385];
const OPS = [
  ['softmax', softmax, ref.softmax],
  ['logSoftmax', logSoftmax, ref.logSoftmax],
] as const;

for (const [name, op, f] of OPS) {
  for (const d of ROW_LENGTHS) {
    test(`${name}, rows of ${d}`, async () => {
      const shape = ref.rowShape(rng(d + name.length), d);
      await checkOp({
        name: `${name} ${JSON.stringify(shape)}`,
        shapes: [shape],
        gpu: ([x]) => op(x),
        ref: ([x]) => f(x, d),
        init: (_k, n, r) => randArray(n, r, -3, 3),
        seed: d,
      });
    });
  }

  test(`${name} at large logits (x * 100)`, async () => {
    for (const shape of [
      [9, 17],
      [2, 129],
    ]) {
      const d = shape[1];
      await checkOp({
        name: `${name} x*100 ${JSON.stringify(shape)}`,
        shapes: [shape],
        gpu: ([x]) => op(x),
        ref: ([x]) => f(x, d),
        init: (_k, n, r) => randArray(n, r, -100, 100),
      });
    }
  });

  test(`${name} forward at logits near ±1e4 and at temperature 0.01`, async () => {
    const shape = [6, 33];
    // f32-exact inputs: the reference sees what the GPU sees.
    const near = (_k: number, n: number, r: () => number): F64 => Float64Array.from({ length: n }, (_, i) => Math.fround((Math.floor(i / 33) % 2 ? -1e4 : 1e4) + 20 * r()));
    await checkOp({ name: `${name} near ±1e4`, shapes: [shape], gpu: ([x]) => op(x), ref: ([x]) => f(x, 33), init: near, grad: [false] });
    // x / 0.01 is x * 100 rounded to f32 (affine's scale is exactly 100 in f32)
    await checkOp({
      name: `${name} at temperature 0.01`,
      shapes: [shape],
      gpu: ([x]) => op(E.div(x, 0.01)),
      ref: ([x]) =>
        f(
          x.map((v) => Math.fround(v * 100)),
          33,
        ),
      init: (k, n, r) => near(k, n, r).map((v) => Math.fround(v / 100)),
      grad: [false],
    });
  });
}

test('logSoftmax forward on rows 65536 wide', async () => {
  const d = 65536;
  await checkOp({
    name: 'logSoftmax [2, 65536]',
    shapes: [[2, d]],
    gpu: ([x]) => logSoftmax(x),
    ref: ([x]) => ref.logSoftmax(x, d),
    init: (_k, n, r) => randArray(n, r, -20, 20),
    grad: [false],
  });
});

/** Forward and backward of softmax on `shape` against the analytic float64 reference. */
async function softmaxAgainstAnalytic(shape: number[], seed: number): Promise<void> {
  const d = shape[shape.length - 1];
  const n = shape.reduce((a, b) => a * b, 1);
  const r = rng(seed);
  const [x, g] = [randArray(n, r, -8, 8), randArray(n, r)];
  const tx = E.fromArray(x, shape);
  tx.requiresGrad = true;
  const y = softmax(tx);
  close(await y.toArray(), ref.softmax(x, d), 1e-5, `softmax ${JSON.stringify(shape)} forward`);
  E.backward(y, E.fromArray(g, shape));
  close(await tx.grad!.toArray(), ref.softmaxBackward(x, g, d), 1e-4, `softmax ${JSON.stringify(shape)} backward`);
  tx.grad!.dispose();
  tx.dispose();
}

test('softmax backward on a row 65536 wide', async () => {
  await softmaxAgainstAnalytic([1, 65536], 4);
});

test('softmax on rows of 700 and 1500 (64 and 128 threads a row)', async () => {
  await softmaxAgainstAnalytic([5, 700], 5);
  await softmaxAgainstAnalytic([3, 1500], 6);
});

test('analytic softmax gradient agrees with finite differences (checks the reference)', () => {
  const r = rng(9);
  const [x, g] = [randArray(15, r, -3, 3), randArray(15, r)];
  close(ref.softmaxBackward(x, g, 5), finiteDiff(([xx]) => ref.softmax(xx, 5), [x], g)[0], 1e-6, 'softmax dx');
});

test('softmax over 530,001 rows (a 2-D grid of workgroups)', async () => {
  await softmaxAgainstAnalytic([530001, 3], 7);
});

for (const [name, op, f] of OPS) {
  test(`${name} along a middle axis`, async () => {
    const shape = [4, 9, 5];
    const dims = [0, 2, 1];
    await checkOp({
      name: `${name} axis 1 ${JSON.stringify(shape)}`,
      shapes: [shape],
      gpu: ([x]) => op(x, 1),
      ref: ([x]) => permute(f(permute(x, shape, dims), 9), [4, 5, 9], dims),
    });
  });
}

test('softmax rows sum to 1 and logSoftmax rows logsumexp to 0 at extreme logits', async () => {
  const x = E.fromArray([3e4, -3e4, 0, 1e4, 1e4, 1e4, -1e30, 5, -1e30], [3, 3]);
  const p = await softmax(x).toArray();
  const lp = await logSoftmax(x).toArray();
  close(p, [1, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0, 1, 0], 1e-6, 'softmax');
  assert.ok(
    lp.every((v) => !Number.isNaN(v)),
    `logSoftmax gave NaN: ${lp}`,
  );
  close([lp[0], lp[4], lp[7]], [0, -Math.log(3), 0], 1e-6, 'logSoftmax');
});

test('softmax of an axis out of range names the op and the rank', () => {
  assert.throws(
    () => softmax(E.zeros([2, 3]), 2),
    (e: Error) => e.message.includes('softmax') && e.message.includes('rank 2'),
  );
});

test.run();
