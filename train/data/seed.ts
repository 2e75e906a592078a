// Random streams addressed by keys (seed, stream, iteration, position...), so every random choice
// of the data pipeline is a pure function of where it happens, not of the order work was done in.
import { Rng } from '../../engine/rng.js';

/** Named streams, so e.g. the crops and the masks of one image never share random numbers. */
export const STREAM = {
  uniformOrder: 1,
  classOrder: 2,
  classImages: 3,
  augment: 4,
  mask: 5,
  synthetic: 6,
} as const;

/** murmur3's 32-bit finaliser: a bijection that mixes every input bit into every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A generator whose whole state is a hash of the keys (non-negative integers below 2^53). */
export function keyedRng(...keys: number[]): Rng {
  const state: [number, number, number, number] = [0, 0, 0, 0];
  for (let lane = 0; lane < 4; lane++) {
    let h = fmix32(0x9e3779b9 ^ Math.imul(lane + 1, 0x27d4eb2f));
    for (const k of keys) {
      if (!Number.isSafeInteger(k) || k < 0) throw new Error(`keyedRng: key ${k} is not a non-negative integer`);
      h = fmix32((h ^ fmix32((k >>> 0) + lane)) + Math.imul(Math.floor(k / 2 ** 32), 0x165667b1));
      h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
    }
    state[lane] = fmix32(h);
  }
  if (state.every((v) => v === 0)) state[0] = 1;
  return new Rng(state);
}
