import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { linear } from '../../engine/ops/matmul.js';
import { gpu } from '../helpers/check.js';

const test = suite('memory');
test.before(gpu);

test('200 MLP training iterations keep live buffers, bytes and created buffers flat', async () => {
  const rt = E.rt();
  const x = E.keep(E.randn([37, 19], 1));
  const target = E.keep(E.randn([37, 5], 2));
  let params = [E.randn([23, 19], 3, 0, 0.2), E.zeros([23]), E.randn([5, 23], 4, 0, 0.2), E.zeros([5])].map((p) => {
    E.keep(p);
    p.requiresGrad = true;
    return p;
  });
  const seen: { live: number; bytes: number; created: number; loss: number }[] = [];
  for (let it = 0; it < 200; it++) {
    const loss = E.tidy(() => E.mean(E.square(E.sub(linear(E.gelu(linear(x, params[0], params[1])), params[2], params[3]), target))));
    E.backward(loss);
    params = params.map((p) => {
      const next = E.keep(E.tidy(() => E.noGrad(() => E.sub(p, E.mul(p.grad!, 0.1)))));
      next.requiresGrad = true;
      p.grad!.dispose();
      p.dispose();
      return next;
    });
    const value = await loss.item();
    loss.dispose();
    const s = rt.poolStats();
    seen.push({ live: s.liveBuffers, bytes: s.liveBytes, created: s.created, loss: value });
    if (E.tapeLength() !== 0) throw new Error(`tape not freed after backward: ${E.tapeLength()} entries`);
  }
  const first = seen[1];
  const last = seen[seen.length - 1];
  if (last.live !== first.live || last.bytes !== first.bytes) throw new Error(`live memory grew: ${JSON.stringify(first)} -> ${JSON.stringify(last)}`);
  if (last.created !== first.created) throw new Error(`new buffers were created after the first iterations: ${first.created} -> ${last.created}`);
  if (!(last.loss < seen[0].loss)) throw new Error(`loss did not fall: ${seen[0].loss} -> ${last.loss}`);
  for (const p of [...params, x, target]) p.dispose();
});

test('tidy frees intermediates and keeps the result; disposing twice is harmless', async () => {
  const rt = E.rt();
  const before = rt.poolStats().liveBuffers;
  const y = E.tidy(() => {
    const a = E.randn([100], 1);
    const b = E.exp(a);
    return E.add(b, a);
  });
  if (rt.poolStats().liveBuffers !== before + 1) throw new Error(`tidy leaked: ${rt.poolStats().liveBuffers - before} live buffers`);
  y.dispose();
  y.dispose();
  if (rt.poolStats().liveBuffers !== before) throw new Error('dispose did not free');
});

test('views share memory until the last holder is disposed', async () => {
  const rt = E.rt();
  const before = rt.poolStats().liveBuffers;
  const a = E.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
  const v = E.reshape(a, [3, 2]);
  a.dispose();
  const vals = await v.toArray();
  if (vals.join() !== '1,2,3,4,5,6') throw new Error('view lost its data');
  v.dispose();
  if (rt.poolStats().liveBuffers !== before) throw new Error('shared storage not freed');
});

test.run();
