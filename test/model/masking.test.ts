import { suite } from 'uvu';
import { Rng } from '../../engine/rng.js';
import { blockMask, maskRatio } from '../../model/masking.js';

const test = suite('masking');

test('default ratios: half the crops unmasked, mean fraction as docs/algorithm.md §4.3 gives it', () => {
  for (const [g, expected] of [
    [8, 0.144],
    [14, 0.147],
  ] as const) {
    const rng = new Rng(1);
    let total = 0;
    let unmasked = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const r = maskRatio(rng);
      const m = blockMask(g, g, r, rng);
      const c = m.reduce((a, v) => a + v, 0);
      if (c > Math.floor(r * g * g)) throw new Error(`mask of ${c} cells exceeds floor(T) = ${Math.floor(r * g * g)}`);
      total += c / (g * g);
      if (c === 0) unmasked++;
    }
    const mean = total / n;
    if (Math.abs(mean - expected) > 0.006) throw new Error(`${g}x${g}: mean masked fraction ${mean.toFixed(4)}, docs/algorithm.md §4.3 says about ${expected}`);
    if (Math.abs(unmasked / n - 0.5) > 0.03) throw new Error(`${g}x${g}: ${unmasked / n} of crops unmasked`);
  }
});

test('blocks respect the aspect range and masks are rectangles unions within the grid', () => {
  const rng = new Rng(5);
  // A single block: ask for a target just above the minimum area so one block fills it.
  for (let i = 0; i < 200; i++) {
    const m = blockMask(14, 14, 20 / 196, rng);
    const rows = [...Array(14).keys()].filter((r) => m.subarray(r * 14, r * 14 + 14).some((v) => v));
    if (rows.length === 0) continue;
    const h = rows.length;
    const cols = [...Array(14).keys()].filter((c) => rows.some((r) => m[r * 14 + c]));
    const w = cols.length;
    const cells = m.reduce((a, v) => a + v, 0);
    if (cells === h * w && (h / w > (1 / 0.3) * 1.6 || w / h > (1 / 0.3) * 1.6)) throw new Error(`block ${h}x${w} outside the aspect range`);
  }
});

test('seeded: the same seed gives the same masks; rand shape masks exactly floor(T)', () => {
  const a = blockMask(8, 8, 0.4, new Rng(9));
  const b = blockMask(8, 8, 0.4, new Rng(9));
  if (a.join() !== b.join()) throw new Error('not reproducible');
  const r = blockMask(8, 8, 0.4, new Rng(3), { shape: 'rand' });
  if (r.reduce((s, v) => s + v, 0) !== Math.floor(0.4 * 64)) throw new Error('rand mask count');
});

test('rng state round trip resumes the stream exactly', () => {
  const r = new Rng(42);
  for (let i = 0; i < 10; i++) r.random();
  const s = r.getState();
  const x = [r.random(), r.normal(), r.int(0, 100)];
  const q = new Rng(s);
  const y = [q.random(), q.normal(), q.int(0, 100)];
  if (x.join() !== y.join()) throw new Error(`resumed stream differs: ${x} vs ${y}`);
});

test.run();
