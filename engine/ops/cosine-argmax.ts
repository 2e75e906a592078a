// Nearest patch by cosine similarity (SMKD's patch matching, docs/algorithm.md §5.5). No gradient: matching is detached.
import { COSINE_TILE, cosineArgmaxKernel, cosineArgmaxRowsKernel, rowArgmaxKernel } from '../../kernels/cosine-argmax.js';
import { softwarePaths } from '../tuning.js';
import { noGrad } from '../autograd.js';
import { reshape } from './layout.js';
import { matmul } from './matmul.js';
import { l2Normalize } from './norm.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { spill, spillGroups } from '../../kernels/kernel.js';
import { assertFloat, launch, opLabel } from './launch.js';

/** Per-group N * M * D from which the matmul path is faster than the fused kernel on lavapipe. */
export const MATMUL_PATH_WORK = 1 << 22;
/**
 * Per-group N * M * D up to which one thread per row beats the tiled kernel on a software adapter:
 * measured on lavapipe, 0.41 against 23.7 ms at G 64 N 8 M 4 D 64 (the omniglot preset), 6.6 against
 * 57 ms at G 64 N = M = 16 D 256, but 39 against 28 ms at G 64 N = M = D = 64 (each row re-reads b).
 */
export const ROWS_PATH_WORK = 1 << 17;

/**
 * a [G, N, D], b [G, M, D] -> i32 [G, N]: out[g, n] = argmax_m cos(a[g, n], b[g, m]).
 * 2-D inputs a [N, D], b [M, D] give [N]. Ties go to the lowest index; a zero vector has
 * cosine 0 with everything (so a zero row of `a` matches index 0, and a zero row of `b` wins only
 * where every other row has negative cosine). Neither input records a gradient.
 */
export function cosineArgmax(a: Tensor, b: Tensor): Tensor<'i32'> {
  const label = opLabel('cosineArgmax', [a, b]);
  assertFloat('cosineArgmax', a, b);
  if (a.rank !== b.rank || (a.rank !== 2 && a.rank !== 3)) {
    throw new Error(`${label}: a and b must both be [G, rows, D] or both [rows, D]`);
  }
  const [G, N, D] = a.rank === 3 ? a.shape : [1, ...a.shape];
  const [Gb, M, Db] = b.rank === 3 ? b.shape : [1, ...b.shape];
  if (G !== Gb || D !== Db) throw new Error(`${label}: a ${fmt(a.shape)} and b ${fmt(b.shape)} must agree in groups and feature width`);
  if (M === 0 && N > 0) throw new Error(`${label}: b has no rows to match against`);
  const out = empty(a.shape.slice(0, -1), 'i32', label);
  if (N * M * D >= MATMUL_PATH_WORK && N > 0) {
    // Large groups: the fused kernel's workgroup-memory tiles and barriers cost more than they save
    // on lavapipe (1.6x slower than this path at G 16, N = M = 196, D 384; bench/NOTES.md), so score
    // with the matmul kernel against unit rows of b (a zero row stays zero: cosine 0), then pick.
    // Matching is never differentiated: keep these steps off the autograd tape.
    const [a3, b3, unitB, scores] = noGrad(() => {
      const a3 = reshape(a, [G, N, D]);
      const b3 = reshape(b, [G, M, D]);
      const unitB = l2Normalize(b3);
      return [a3, b3, unitB, matmul(a3, unitB, { transB: true })];
    });
    const rows = G * N;
    const wgs = Math.ceil(rows / 64);
    launch(rowArgmaxKernel(), { rows, M }, [out], [scores], spillGroups(wgs), label);
    // Freed now, reused only after the batch that reads them (the pool tracks pending batches).
    for (const t of [a3, b3, unitB, scores]) t.dispose();
    return out;
  }
  if (softwarePaths() && N * M * D <= ROWS_PATH_WORK) {
    // One thread per row of a: no workgroup memory, no barriers (kernels/cosine-argmax.ts).
    const wgs = Math.ceil((G * N) / 64);
    if (wgs > 0) launch(cosineArgmaxRowsKernel(), { G, N, M, D }, [out], [a, b], spillGroups(wgs), label);
    return out;
  }
  const groups: [number, number, number] = [Math.ceil(N / COSINE_TILE), ...spill(G)];
  launch(cosineArgmaxKernel(), { G, N, M, D }, [out], [a, b], groups, label);
  return out;
}
