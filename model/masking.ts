// Block-wise masks for masked image modelling (iBOT/BEiT style), docs/algorithm.md §4.
import type { Rng } from '../engine/rng.js';

export interface MaskOptions {
  /** Mean mask ratios; one pair (mean, half-width) is picked uniformly per crop. Default [0, 0.3]. */
  ratios?: readonly number[];
  /** Half-widths of the uniform range around each mean. Default [0, 0.2]. */
  ratioVar?: readonly number[];
  /** Log-uniform range of block aspect ratios. Default (0.3, 1/0.3). */
  aspect?: readonly [number, number];
  /** 'block' (default) or uniformly random positions. */
  shape?: 'block' | 'rand';
}

/** The ratio of one crop (docs/algorithm.md §4.2): pick one (mean, half-width) pair, draw uniformly around it. */
export function maskRatio(rng: Rng, opts: MaskOptions = {}): number {
  const ratios = opts.ratios ?? [0, 0.3];
  const vars = opts.ratioVar ?? [0, 0.2];
  const draws = ratios.map((m, i) => (vars[i] > 0 ? rng.uniform(m - vars[i], m + vars[i]) : m));
  return draws[rng.int(0, draws.length - 1)];
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * A boolean mask [gh * gw] (row-major, true = masked) with about `ratio * gh * gw` masked cells,
 * grown block by block (docs/algorithm.md §4.3): never more than floor(T) cells.
 */
export function blockMask(gh: number, gw: number, ratio: number, rng: Rng, opts: MaskOptions = {}): Uint8Array {
  const mask = new Uint8Array(gh * gw);
  const target = ratio * gh * gw;
  if (target <= 0) return mask;
  if (opts.shape === 'rand') {
    const cells = rng.shuffle([...mask.keys()]).slice(0, Math.floor(target));
    for (const c of cells) mask[c] = 1;
    return mask;
  }
  const [aLo, aHi] = opts.aspect ?? [0.3, 1 / 0.3];
  const logLo = Math.log(aLo);
  const logHi = Math.log(aHi);
  const minArea = Math.floor(Math.min(gh, gw) / 3) ** 2;
  let count = 0;
  while (count < target) {
    const budget = target - count;
    let added = 0;
    for (let attempt = 0; attempt < 10 && added === 0; attempt++) {
      const area = rng.uniform(minArea, budget);
      const aspect = Math.exp(rng.uniform(logLo, logHi));
      const bh = roundHalfEven(Math.sqrt(area * aspect));
      const bw = roundHalfEven(Math.sqrt(area / aspect));
      if (bw < gw && bh < gh) {
        const top = rng.int(0, gh - bh);
        const left = rng.int(0, gw - bw);
        let fresh = 0;
        for (let r = top; r < top + bh; r++) for (let c = left; c < left + bw; c++) fresh += mask[r * gw + c] ? 0 : 1;
        if (fresh > 0 && fresh <= budget) {
          for (let r = top; r < top + bh; r++) for (let c = left; c < left + bw; c++) mask[r * gw + c] = 1;
          added = fresh;
        }
      }
    }
    if (added === 0) break;
    count += added;
  }
  return mask;
}
