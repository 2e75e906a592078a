import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { gpu } from '../helpers/check.js';

const test = suite('random');
test.before(gpu);

function moments(a: ArrayLike<number>): { mean: number; std: number } {
  let m = 0;
  for (let i = 0; i < a.length; i++) m += a[i];
  m /= a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i] - m) ** 2;
  return { mean: m, std: Math.sqrt(v / a.length) };
}

test('randn: mean, std, seeded reproducibility', async () => {
  const n = 200_003;
  const a = await E.randn([n], 7, 1.5, 2).toArray();
  const b = await E.randn([n], 7, 1.5, 2).toArray();
  const c = await E.randn([n], 8, 1.5, 2).toArray();
  const { mean, std } = moments(a);
  // 5 standard errors
  if (Math.abs(mean - 1.5) > (5 * 2) / Math.sqrt(n)) throw new Error(`randn mean ${mean}`);
  if (Math.abs(std - 2) > 0.02) throw new Error(`randn std ${std}`);
  if (a.some((v, i) => v !== b[i])) throw new Error('same seed gave different values');
  if (a.every((v, i) => v === c[i])) throw new Error('different seeds gave the same values');
  if (a.some((v) => !Number.isFinite(v))) throw new Error('randn produced a non-finite value');
});

test('rand: range and uniformity', async () => {
  const n = 100_000;
  const a = await E.rand([n], 3, -2, 6).toArray();
  if (a.some((v) => v < -2 || v >= 6)) throw new Error('rand out of range');
  const bins = new Array(8).fill(0);
  a.forEach((v) => bins[Math.floor(v + 2)]++);
  for (const b of bins) if (Math.abs(b - n / 8) > 5 * Math.sqrt(n / 8)) throw new Error(`rand histogram ${bins}`);
});

test('dropout: rate, scaling, gradient uses the same mask', async () => {
  const n = 50_000;
  const x = E.fill([n], 1);
  x.requiresGrad = true;
  const y = E.dropout(x, 0.3, 11);
  const yv = await y.toArray();
  const kept = yv.filter((v) => v !== 0);
  if (Math.abs(kept.length / n - 0.7) > 0.01) throw new Error(`kept fraction ${kept.length / n}`);
  if (kept.some((v) => Math.abs(v - 1 / 0.7) > 1e-6)) throw new Error('kept values are not scaled by 1/(1-p)');
  E.backward(E.sum(y));
  const g = await x.grad!.toArray();
  if (g.some((v, i) => v !== yv[i])) throw new Error('dropout gradient does not follow the forward mask');
});

test.run();
