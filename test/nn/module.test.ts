import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { DropPath, LayerNorm, Linear, Mlp } from '../../engine/nn/layers.js';
import { Module, StateDictError, type HostTensor } from '../../engine/nn/module.js';
import { close, gpu, rng, randArray } from '../helpers/check.js';
import { gelu } from '../ref/basic.js';

const test = suite('nn modules');
test.before(gpu);

class Net extends Module {
  readonly norm: LayerNorm;
  readonly mlp: Mlp;
  readonly head: Linear;
  constructor() {
    super();
    this.norm = this.registerModule('norm', new LayerNorm(5, 1e-6));
    this.mlp = this.registerModule('mlp', new Mlp(5, 7));
    this.head = this.registerModule('head', new Linear(5, 3, { bias: false }));
  }
  forward(x: E.Tensor): E.Tensor<'f32'> {
    return this.head.forward(this.mlp.forward(this.norm.forward(x)));
  }
}

test('parameter names, shapes, init and decay groups follow PyTorch', async () => {
  const net = new Net().build({ seed: 3 });
  const names = net.arena.entries.map((e) => `${e.name}${JSON.stringify(e.shape)}${e.decay ? 'D' : ''}`);
  const want = ['norm.weight[5]', 'norm.bias[5]', 'mlp.fc1.weight[7,5]D', 'mlp.fc1.bias[7]', 'mlp.fc2.weight[5,7]D', 'mlp.fc2.bias[5]', 'head.weight[3,5]D'];
  if (names.join() !== want.join()) throw new Error(`names: ${names}`);
  const sd = await net.stateDict();
  const w = sd.get('mlp.fc1.weight')!.data;
  if (sd.get('norm.weight')!.data.some((v) => v !== 1) || sd.get('mlp.fc1.bias')!.data.some((v) => v !== 0)) throw new Error('LayerNorm/bias init');
  if (w.every((v) => v === 0) || w.some((v) => Math.abs(v) > 2) || Math.abs(w.reduce((a, v) => a + v * v, 0) / w.length - 0.0004) > 0.0004) throw new Error('trunc normal init');
  const again = await new Net().build({ seed: 3 }).stateDict();
  if (again.get('mlp.fc1.weight')!.data.join() !== w.join()) throw new Error('init not reproducible from the seed');
  net.dispose();
});

test('summary(): every module to the depth asked, counts by hand, before any build', () => {
  // norm 5 + 5; fc1 7x5 + 7; fc2 5x7 + 5; head 3x5: decayed are the three weight matrices.
  const lines = new Net().summary().split('\n');
  const expect = [
    ['Net', 107],
    ['  norm (LayerNorm)', 10],
    ['  mlp (Mlp)', 82],
    ['    mlp.fc1 (Linear)', 42],
    ['    mlp.fc2 (Linear)', 40],
    ['  head (Linear)', 15],
  ] as const;
  const rows = lines.slice(0, -1).map((l) => [l.replace(/\s+[\d,]+$/, ''), Number(/([\d,]+)$/.exec(l)![1].replace(/,/g, ''))]);
  if (JSON.stringify(rows) !== JSON.stringify(expect)) throw new Error(`summary rows: ${JSON.stringify(rows)}`);
  if (lines.at(-1) !== '107 parameters (0.00 MB as float32), 107 trainable, 85 with weight decay') throw new Error(`totals: ${lines.at(-1)}`);
  const shallow = new Net().summary(1).split('\n');
  if (shallow.length !== 5 || shallow.some((l) => l.includes('mlp.fc1'))) throw new Error(`depth 1: ${shallow.join(' | ')}`);
});

test('forward matches a float64 reference, and gradients land in the arena', async () => {
  const net = new Net().build({ seed: 1 });
  const sd = await net.stateDict();
  const P = (k: string): Float32Array => sd.get(k)!.data;
  const r = rng(2);
  const xs = randArray(4 * 5, r);
  const x = E.fromArray(xs, [4, 5]);
  const y = net.forward(x);
  const ref = new Float64Array(12);
  for (let i = 0; i < 4; i++) {
    const row = Array.from(xs.subarray(i * 5, i * 5 + 5));
    const mu = row.reduce((a, v) => a + v, 0) / 5;
    const vr = row.reduce((a, v) => a + (v - mu) ** 2, 0) / 5;
    const n = row.map((v, k) => ((v - mu) / Math.sqrt(vr + 1e-6)) * P('norm.weight')[k] + P('norm.bias')[k]);
    const h = [...Array(7).keys()].map((j) => gelu(n.reduce((a, v, k) => a + v * P('mlp.fc1.weight')[j * 5 + k], P('mlp.fc1.bias')[j])));
    const o = [...Array(5).keys()].map((j) => h.reduce((a, v, k) => a + v * P('mlp.fc2.weight')[j * 7 + k], P('mlp.fc2.bias')[j]));
    for (let c = 0; c < 3; c++) ref[i * 3 + c] = o.reduce((a, v, k) => a + v * P('head.weight')[c * 5 + k], 0);
  }
  close(await y.toArray(), ref, 2e-5, 'Net forward');
  E.backward(E.sum(y));
  const g = await net.arena.grads.read();
  if (![...g.values()].every((a) => a.some((v) => v !== 0))) throw new Error('some parameter got no gradient');
  net.dispose();
});

test('loadStateDict lists every missing, unexpected and mis-shaped key', async () => {
  const net = new Net().build();
  const sd = await net.stateDict();
  const bad = new Map<string, HostTensor>(sd);
  bad.delete('norm.bias');
  bad.set('mlp.fc3.weight', { data: new Float32Array(2), shape: [2] });
  bad.set('head.weight', { data: new Float32Array(15), shape: [5, 3] });
  try {
    net.loadStateDict(bad);
    throw new Error('accepted a bad state dict');
  } catch (e) {
    if (!(e instanceof StateDictError)) throw e;
    const m = e.message;
    for (const part of ['norm.bias', 'mlp.fc3.weight', 'head.weight', '[5, 3]', '[3, 5]']) if (!m.includes(part)) throw new Error(`message lacks ${part}: ${m}`);
  }
  const changed = new Map(sd);
  changed.set('head.weight', { data: new Float32Array(15).fill(0.5), shape: [3, 5] });
  net.loadStateDict(changed);
  const back = await net.stateDict();
  if (back.get('head.weight')!.data.some((v) => v !== 0.5)) throw new Error('load did not write');
  net.dispose();
});

test('DropPath: per-sample, reproducible after reseed, identity in eval', async () => {
  class D extends Module {
    readonly dp = this.registerModule('dp', new DropPath(0.5));
  }
  const m = new D();
  const x = E.fill([64, 3, 2], 1);
  const a = await m.reseed(7).dp.forward(x).toArray();
  const b = await m.reseed(7).dp.forward(x).toArray();
  if (a.join() !== b.join()) throw new Error('reseed does not reproduce');
  for (let i = 0; i < 64; i++) {
    const s = a.subarray(i * 6, i * 6 + 6);
    if (!(s.every((v) => v === 0) || s.every((v) => v === 2))) throw new Error('mask is not per sample');
  }
  const kept = Array.from({ length: 64 }, (_, i) => a[i * 6]).filter((v) => v === 2).length;
  if (kept < 16 || kept > 48) throw new Error(`kept ${kept} of 64 at p = 0.5`);
  if (m.eval().dp.forward(x) !== x) throw new Error('eval mode is not the identity');
});

test.run();
