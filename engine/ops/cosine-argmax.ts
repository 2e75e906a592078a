// Nearest patch by cosine similarity (SMKD's patch matching, spec 5.5). No gradient: matching is detached.
import { COSINE_TILE, cosineArgmaxKernel } from '../../kernels/cosine-argmax.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel, words } from './launch.js';

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
  const groups: [number, number, number] = [Math.ceil(N / COSINE_TILE), Math.min(G, 65535), Math.ceil(G / 65535)];
  launch(cosineArgmaxKernel(), words([G, N, M, D]), [out], [a, b], groups, label);
  return out;
}
