import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { checkOp, close, gpu, randArray, rng, type F64 } from '../helpers/check.js';

const test = suite('splitHeads / mergeHeads');
test.before(gpu);

/** float64 reference: x [B, T, S*H*Dh] -> S blocks [B, H, T, Dh], concatenated. */
function splitRef(x: F64, B: number, T: number, S: number, H: number, Dh: number): F64 {
  const out = new Float64Array(x.length);
  const per = B * H * T * Dh;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let p = 0; p < S; p++)
        for (let h = 0; h < H; h++) for (let e = 0; e < Dh; e++) out[p * per + ((b * H + h) * T + t) * Dh + e] = x[((b * T + t) * S + p) * H * Dh + h * Dh + e];
  return out;
}

// Dh a multiple of 4 (vec4 path) and not; T and B awkward; H * Dh / 4 above one workgroup of 64.
const SHAPES: [number, number, number, number, number][] = [
  [2, 5, 3, 3, 4],
  [3, 7, 3, 2, 6],
  [1, 13, 2, 5, 3],
  [2, 3, 3, 4, 68],
];

test('splitHeads equals permute + narrow (float64), and its gradient by finite differences', async () => {
  for (const [i, [B, T, S, H, Dh]] of SHAPES.entries()) {
    await checkOp({
      name: `splitHeads B=${B} T=${T} S=${S} H=${H} Dh=${Dh}`,
      shapes: [[B, T, S * H * Dh]],
      gpu: ([x]) => E.concat(E.splitHeads(x, S, H), 0),
      ref: ([x]) => splitRef(x, B, T, S, H, Dh),
      seed: 40 + i,
    });
  }
});

test('mergeHeads inverts splitHeads, and its gradient by finite differences', async () => {
  for (const [i, [B, T, S, H, Dh]] of SHAPES.entries()) {
    const per = B * H * T * Dh;
    await checkOp({
      name: `mergeHeads B=${B} T=${T} S=${S} H=${H} Dh=${Dh}`,
      shapes: Array.from({ length: S }, () => [B, H, T, Dh]),
      gpu: (xs) => E.mergeHeads(xs),
      ref: (xs) => {
        // The inverse permutation of splitRef.
        const stacked = new Float64Array(S * per);
        xs.forEach((x, p) => stacked.set(x, p * per));
        const probe = Float64Array.from({ length: S * per }, (_, k) => k);
        const where = splitRef(probe, B, T, S, H, Dh);
        const out = new Float64Array(S * per);
        where.forEach((src, k) => (out[src] = stacked[k]));
        return out;
      },
      seed: 60 + i,
    });
  }
});

test('a missing part gradient is zero in the merged gradient; bad shapes are named', async () => {
  const r = rng(7);
  const x = E.fromArray(randArray(2 * 3 * 24, r), [2, 3, 24]);
  x.requiresGrad = true;
  const [q, , v] = E.splitHeads(x, 3, 2);
  E.backward(E.sum(E.add(E.sum(q), E.mul(E.sum(v), E.fromArray([2], [])))));
  const g = await x.grad!.toArray();
  const expect = Float64Array.from({ length: 2 * 3 * 24 }, (_, k) => [1, 0, 2][Math.floor((k % 24) / 8)]);
  close(g, expect, 0, 'gradient of sum(q) + 2 sum(v)');
  assert.throws(() => E.splitHeads(E.zeros([2, 3, 25]), 3, 2), /splitHeads: x \[2, 3, 25\] must be \[B, T, parts \* heads \* Dh\]/);
  assert.throws(() => E.mergeHeads([E.zeros([1, 2, 3, 4]), E.zeros([1, 2, 3, 5])]), /mergeHeads: expected .* \[1, 2, 3, 4\], \[1, 2, 3, 5\]/);
});

test.run();
