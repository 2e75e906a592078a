import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { numel, stridesOf } from '../../engine/shape.js';
import { awkwardDim, checkOp, gpu, rng } from '../helpers/check.js';
import { permute, unravel } from '../ref/basic.js';

const test = suite('layout');
test.before(gpu);

for (let seed = 1; seed <= 5; seed++) {
  const r = rng(seed * 7);
  const rank = 2 + Math.floor(r() * 3);
  const shape = Array.from({ length: rank }, () => awkwardDim(r, 8));
  const dims = [...shape.keys()].sort(() => r() - 0.5);
  test(`permute ${JSON.stringify(shape)} -> ${JSON.stringify(dims)}`, async () => {
    await checkOp({ name: 'permute', shapes: [shape], gpu: ([x]) => E.permute(x, dims), ref: ([x]) => permute(x, shape, dims), seed });
  });
}

test('transpose and reshape', async () => {
  await checkOp({ name: 'transpose', shapes: [[3, 5, 2]], gpu: ([x]) => E.transpose(x, 0, 2), ref: ([x]) => permute(x, [3, 5, 2], [2, 1, 0]) });
  await checkOp({ name: 'reshape', shapes: [[6, 5]], gpu: ([x]) => E.mul(E.reshape(x, [3, -1, 5]), 2), ref: ([x]) => x.map((v) => 2 * v) });
});

test('copies that run along the innermost axis (4 to 64 long on software adapters): unit and non-unit innermost strides, the patchify permute', async () => {
  await checkOp({ name: 'transpose 0, 2 (innermost stride 35)', shapes: [[6, 5, 7]], gpu: ([x]) => E.transpose(x, 0, 2), ref: ([x]) => permute(x, [6, 5, 7], [2, 1, 0]) });
  const patches = [2, 3, 2, 5, 2, 5];
  await checkOp({ name: 'patchify permute', shapes: [patches], gpu: ([x]) => E.permute(x, [0, 2, 4, 1, 3, 5]), ref: ([x]) => permute(x, patches, [0, 2, 4, 1, 3, 5]) });
  await checkOp({ name: 'innermost axis of 64', shapes: [[3, 64]], gpu: ([x]) => E.slice(x, [1, 0], [2, 64]), ref: ([x]) => x.slice(64) });
});

function refSlice(x: Float64Array, shape: number[], begin: number[], size: number[]): Float64Array {
  const xs = stridesOf(shape);
  const out = new Float64Array(numel(size));
  for (let i = 0; i < out.length; i++) out[i] = x[unravel(i, size).reduce((a, c, d) => a + (c + begin[d]) * xs[d], 0)];
  return out;
}

for (let seed = 1; seed <= 4; seed++) {
  const r = rng(seed * 11);
  const shape = [awkwardDim(r, 9), awkwardDim(r, 9), awkwardDim(r, 9)];
  const begin = shape.map((d) => Math.floor(r() * d));
  const size = shape.map((d, i) => 1 + Math.floor(r() * (d - begin[i])));
  test(`slice ${JSON.stringify(shape)} at ${begin} size ${size}`, async () => {
    await checkOp({ name: 'slice', shapes: [shape], gpu: ([x]) => E.slice(x, begin, size), ref: ([x]) => refSlice(x, shape, begin, size), seed });
  });
}

test('narrow, concat, stack', async () => {
  await checkOp({ name: 'narrow', shapes: [[4, 7]], gpu: ([x]) => E.narrow(x, 1, 2, 3), ref: ([x]) => refSlice(x, [4, 7], [0, 2], [4, 3]) });
  const shapes = [
    [3, 2, 4],
    [3, 5, 4],
    [3, 1, 4],
  ];
  await checkOp({
    name: 'concat axis 1',
    shapes,
    gpu: (xs) => E.concat(xs, 1),
    ref: (xs) => {
      const out = new Float64Array(3 * 8 * 4);
      for (let i = 0; i < 3; i++) {
        let j0 = 0;
        xs.forEach((x, k) => {
          const m = shapes[k][1];
          for (let j = 0; j < m; j++) for (let c = 0; c < 4; c++) out[(i * 8 + j0 + j) * 4 + c] = x[(i * m + j) * 4 + c];
          j0 += m;
        });
      }
      return out;
    },
  });
  await checkOp({
    name: 'stack',
    shapes: [
      [2, 3],
      [2, 3],
    ],
    gpu: (xs) => E.stack(xs, 0),
    ref: (xs) => Float64Array.from([...xs[0], ...xs[1]]),
  });
});

test('broadcastTo', async () => {
  await checkOp({
    name: 'broadcastTo',
    shapes: [[3, 1]],
    gpu: ([x]) => E.broadcastTo(x, [2, 3, 4]),
    ref: ([x]) => Float64Array.from({ length: 24 }, (_, i) => x[Math.floor(i / 4) % 3]),
  });
});

test('indexSelect forward and scatter-add backward with repeated indices', async () => {
  const shape = [4, 6, 3];
  const idx = [5, 0, 5, 2, 5];
  await checkOp({
    name: 'indexSelect axis 1',
    shapes: [shape],
    gpu: ([x]) => E.indexSelect(x, 1, E.fromArray(idx, [idx.length], 'i32')),
    ref: ([x]) => {
      const out = new Float64Array(4 * idx.length * 3);
      for (let a = 0; a < 4; a++)
        idx.forEach((j, m) => {
          for (let c = 0; c < 3; c++) out[(a * idx.length + m) * 3 + c] = x[(a * 6 + j) * 3 + c];
        });
      return out;
    },
  });
});

test('errors name the shapes', async () => {
  const expectThrow = (f: () => unknown, ...parts: string[]): void => {
    try {
      f();
    } catch (e) {
      const m = (e as Error).message;
      if (parts.every((p) => m.includes(p))) return;
      throw new Error(`message "${m}" lacks ${parts.join(', ')}`);
    }
    throw new Error('did not throw');
  };
  const x = E.zeros([2, 3]);
  expectThrow(() => E.reshape(x, [4, 2]), '[2, 3]', '[4, 2]');
  expectThrow(() => E.concat([x, E.zeros([3, 3])], 1), '[2, 3]', '[3, 3]');
  expectThrow(() => E.slice(x, [1, 0], [2, 3]), 'slice');
  expectThrow(() => E.permute(x, [0, 0]), 'permutation');
});

test.run();
