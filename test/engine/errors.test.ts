import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { launch } from '../../engine/ops/launch.js';
import { errorMessage, gpu } from '../helpers/check.js';

const test = suite('errors');
test.before(gpu);

test('a WGSL compile error names the op and the line', async () => {
  const x = E.zeros([4]);
  launch({ key: 'test_broken', code: 'this is not wgsl' }, new Uint32Array([4, 0, 0, 0]).buffer, [x], [], [1, 1, 1], 'brokenOp([4])');
  const m = await errorMessage(() => x.toArray());
  if (!m.includes('brokenOp([4])') || !m.includes('test_broken') || !/line \d+/.test(m)) throw new Error(`unhelpful message: ${m}`);
});

test('a WebGPU validation error names the op and its shapes', async () => {
  const x = E.zeros([2]);
  // The shader declares a fixed 64-byte array, the bound tensor has 8 bytes: Dawn rejects the bind group.
  const code = `
struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> out: array<vec4f, 4>;
@compute @workgroup_size(1) fn main() { out[0] = vec4f(f32(u.n)); }`;
  launch({ key: 'test_too_small', code }, new Uint32Array([1, 0, 0, 0]).buffer, [x], [], [1, 1, 1], 'tooSmall([2])');
  const m = await errorMessage(() => E.rt().flush());
  if (!m.includes('validation') || !m.includes('tooSmall([2])')) throw new Error(`unhelpful message: ${m}`);
  // the engine keeps working after a failed batch
  const y = await E.add(E.fromArray([1, 2], [2]), 1).toArray();
  if (y.join() !== '2,3') throw new Error(`engine broken after an error: ${y}`);
});

test('using a disposed tensor is an error naming it', async () => {
  const x = E.zeros([3, 2]);
  x.dispose();
  const m = await errorMessage(() => E.add(x, 1));
  if (!m.includes('disposed') || !m.includes('[3, 2]')) throw new Error(`unhelpful message: ${m}`);
});

test('a tensor larger than a binding allows is refused up front', async () => {
  const max = E.rt().device.limits.maxStorageBufferBindingSize;
  const m = await errorMessage(() => E.zeros([max / 4 + 1]));
  if (!m.includes('maxStorageBufferBindingSize')) throw new Error(`unhelpful message: ${m}`);
});

test('backward of a non-scalar without a gradient is refused', async () => {
  const x = E.fromArray([1, 2], [2]);
  x.requiresGrad = true;
  const m = await errorMessage(() => E.backward(E.mul(x, 2)));
  if (!m.includes('not a scalar')) throw new Error(`unhelpful message: ${m}`);
  E.clearTape();
});

test("a second backward() through a freed graph is an error naming the tensor (PyTorch's 'backward through the graph a second time'); retainGraph allows it", async () => {
  const x = E.fromArray([1, -2, 3], [3]);
  x.requiresGrad = true;
  const loss = E.sum(E.mul(x, x));
  E.backward(loss);
  const first = await x.grad!.toArray();
  if (first.join() !== '2,-4,6') throw new Error(`d sum(x^2)/dx = 2x, got ${first.join()}`);
  const m = await errorMessage(() => E.backward(loss));
  if (!m.includes('freed') || !m.includes('second time') || !m.includes('retainGraph') || !m.includes('[]')) throw new Error(`unhelpful message: ${m}`);
  if ((await x.grad!.toArray()).join() !== '2,-4,6') throw new Error('the refused backward changed the gradient');

  // An intermediate of a freed graph used in a new one: the gradient cannot reach x through it.
  const y = E.mul(x, 3);
  E.backward(E.sum(y));
  const again = await errorMessage(() => E.backward(E.sum(E.mul(y, 2))));
  if (!again.includes('freed') || !again.includes('[3]')) throw new Error(`unhelpful message: ${again}`);

  // retainGraph: the same graph twice accumulates twice (float64: 2x + 2x on a fresh gradient).
  x.grad!.dispose();
  x.grad = null;
  const l2 = E.sum(E.mul(x, x));
  E.backward(l2, undefined, { retainGraph: true });
  E.backward(l2);
  const twice = await x.grad!.toArray();
  if (twice.join() !== '4,-8,12') throw new Error(`two backward passes with retainGraph: 4x expected, got ${twice.join()}`);
  x.grad!.dispose();
  E.clearTape();
});

test.run();
