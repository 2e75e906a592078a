// inference(fn): values read back for a tensor, a tuple or an object of them, nothing left alive (the
// pool's live buffers and the leak report agree), nothing recorded for autograd, and nothing leaked when
// fn throws (tidy frees what a failing fn made).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { gpu } from '../helpers/check.js';

const test = suite('inference');
test.before(gpu);

test('a tensor, a tuple and an object of tensors come back as host arrays; every tensor fn made is freed', async () => {
  const w = E.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
  w.requiresGrad = true;
  const live = (): number => E.rt().poolStats().liveBuffers;
  const before = live();
  const tape = E.tapeLength();
  const y = await E.inference(() => E.sum(E.mul(w, w), 1));
  assert.equal(Array.from(y), [14, 77]);
  const [a, b] = await E.inference(() => [E.exp(E.zeros([2])), E.argmax(w)] as const);
  assert.equal(
    [Array.from(a), Array.from(b)],
    [
      [1, 1],
      [2, 2],
    ],
  );
  assert.ok(b instanceof Int32Array);
  const o = await E.inference(() => ({ total: E.sum(w), scale: 3 }));
  assert.equal([Array.from(o.total), o.scale], [[21], 3]);
  assert.is(live(), before, 'no buffer left alive');
  assert.is(E.tapeLength(), tape, 'nothing recorded for autograd');
  w.dispose();
});

test('fn throws: the error goes on and what it made is freed', async () => {
  const before = E.rt().poolStats().liveBuffers;
  await E.inference(() => {
    E.ones([7]);
    return E.matmul(E.ones([2, 3]), E.ones([4, 5]));
  }).then(
    () => assert.unreachable('a bad matmul'),
    (e: Error) => assert.match(e.message, /matmul/),
  );
  assert.is(E.rt().poolStats().liveBuffers, before);
  assert.throws(() =>
    E.tidy(() => {
      E.zeros([3]);
      throw new Error('in tidy');
    }),
  );
  assert.is(E.rt().poolStats().liveBuffers, before, 'tidy frees what a failing fn made');
});

test.run();
