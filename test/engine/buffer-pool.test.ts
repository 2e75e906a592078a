import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BufferPool, type PooledBuffer } from '../../engine/buffer-pool.js';
import * as E from '../../engine/index.js';
import { linear } from '../../engine/ops/matmul.js';
import { gpu } from '../helpers/check.js';

const test = suite('buffer pool');

/** A device that only makes numbered stand-ins for buffers: the pool's choices are plain logic. */
function fakeDevice(): GPUDevice {
  let n = 0;
  const createBuffer = (): GPUBuffer => ({ label: `b${n++}`, destroy: () => undefined }) as unknown as GPUBuffer;
  return { createBuffer } as unknown as GPUDevice;
}

const names = (bs: PooledBuffer[]): string[] => bs.map((b) => b.buffer.label);

test('a free list hands out its lowest id first, whatever order the buffers came back in', () => {
  const pool = new BufferPool(fakeDevice(), 1 << 30);
  const a = [0, 1, 2, 3].map(() => pool.acquire(1000, 'x'));
  assert.equal(names(a), ['b0', 'b1', 'b2', 'b3']);
  for (const order of [
    [2, 0, 3, 1],
    [3, 2, 1, 0],
    [1, 3, 0, 2],
  ]) {
    for (const i of order) pool.release(a[i]);
    const again = [0, 1, 2, 3].map(() => pool.acquire(1000, 'x'));
    assert.equal(names(again), ['b0', 'b1', 'b2', 'b3'], `released in order ${order}`);
    a.splice(0, 4, ...again);
  }
  // Another size class has its own list.
  assert.equal(pool.acquire(100_000, 'y').buffer.label, 'b4');
  assert.equal(pool.getStats().created, 5);
});

test('upload buffers come from lists of their own and respect the batch they were last used by', () => {
  const pool = new BufferPool(fakeDevice(), 1 << 30);
  const compute = pool.acquire(1000, 'c');
  const up = pool.acquire(1000, 'u', 5);
  assert.ok(up.upload && !compute.upload);
  up.batch = 7;
  pool.release(up);
  pool.release(compute);
  // A compute buffer never takes a freed upload buffer, nor an upload a compute one.
  assert.equal(pool.acquire(1000, 'c2').buffer.label, compute.buffer.label);
  // Batch 7 not yet submitted (safe up to 6): a new upload buffer; once 7 is submitted, the freed one.
  const fresh = pool.acquire(1000, 'u2', 6);
  assert.not.equal(fresh.buffer.label, up.buffer.label);
  assert.equal(pool.acquire(1000, 'u3', 7).buffer.label, up.buffer.label);
});

test('a pipelined training loop binds the same buffers every step: no new bind groups after the first steps', async () => {
  await gpu();
  const rt = E.rt();
  const device = rt.device;
  const original = device.createBindGroup;
  let created = 0;
  device.createBindGroup = (d: GPUBindGroupDescriptor): GPUBindGroup => {
    created++;
    return original.call(device, d);
  };
  try {
    const w1 = E.keep(E.randn([23, 19], 3, 0, 0.2));
    const w2 = E.keep(E.randn([5, 23], 4, 0, 0.2));
    for (const w of [w1, w2]) w.requiresGrad = true;
    const perStep: number[] = [];
    // As the trainer runs it: step i + 1 (with a fresh upload of its input) is recorded before step i's
    // outputs are read and released, and those come back in an order that changes from step to step.
    const record = (it: number): E.Tensor[] => {
      const x = E.fromArray(
        Float32Array.from({ length: 37 * 19 }, (_, i) => Math.sin(i + it)),
        [37, 19],
      );
      const kept = E.tidy(() => {
        const h = E.gelu(linear(x, w1));
        const loss = E.mean(E.square(linear(h, w2)));
        E.backward(loss);
        return [loss, ...[1, 2, 3, 4, 5, 6].map((k) => E.noGrad(() => E.mul(h, k)))];
      });
      for (const w of [w1, w2]) {
        w.grad!.dispose();
        w.grad = null;
      }
      x.dispose();
      return kept;
    };
    let pending = record(0);
    for (let it = 1; it < 14; it++) {
      const before = created;
      const next = record(it);
      await pending[0].item();
      // A different release order each step (a rotation and a reversal).
      const order = pending.map((_, i) => (i * 5 + it) % pending.length);
      for (const i of it % 2 ? order : order.reverse()) pending[i].dispose();
      pending = next;
      perStep.push(created - before);
    }
    for (const t of pending) t.dispose();
    assert.equal(perStep.slice(3), Array(perStep.length - 3).fill(0), `bind groups created per step: ${perStep.join(' ')}`);
    w1.dispose();
    w2.dispose();
  } finally {
    device.createBindGroup = original;
  }
});

test.run();
