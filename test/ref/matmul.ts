// Float64 references for matmul and linear, written as the textbook triple loop.
import { broadcastShapes, broadcastStrides, numel, type Shape } from '../../engine/shape.js';
import { gelu, unravel, type F64 } from './basic.js';

/** op(a) @ op(b) with batch broadcasting; a 1-D operand is a row (a) or column (b) vector, as torch.matmul. */
export function matmulRef(a: F64, aShape: Shape, b: F64, bShape: Shape, transA = false, transB = false): { data: F64; shape: number[] } {
  const as = aShape.length === 1 ? (transA ? [aShape[0], 1] : [1, aShape[0]]) : aShape;
  const bs = bShape.length === 1 ? (transB ? [1, bShape[0]] : [bShape[0], 1]) : bShape;
  const [ra, ca] = as.slice(-2);
  const [rb, cb] = bs.slice(-2);
  const [M, K] = transA ? [ca, ra] : [ra, ca];
  const N = transB ? rb : cb;
  if ((transB ? cb : rb) !== K) throw new Error(`matmulRef: inner dimensions differ`);
  const batch = broadcastShapes('matmulRef', as.slice(0, -2), bs.slice(0, -2));
  const sa = broadcastStrides(as.slice(0, -2), batch);
  const sb = broadcastStrides(bs.slice(0, -2), batch);
  const out = new Float64Array(numel(batch) * M * N);
  for (let z = 0; z < numel(batch); z++) {
    const idx = unravel(z, batch);
    const oa = idx.reduce((acc, c, d) => acc + c * sa[d], 0) * M * K;
    const ob = idx.reduce((acc, c, d) => acc + c * sb[d], 0) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[oa + (transA ? k * M + m : m * K + k)] * b[ob + (transB ? n * K + k : k * N + n)];
        out[(z * M + m) * N + n] = s;
      }
    }
  }
  const shape = [...batch, ...(aShape.length === 1 ? [] : [M]), ...(bShape.length === 1 ? [] : [N])];
  return { data: out, shape };
}

/** x @ w^T + bias (w is [out, in]), optionally through exact GELU. */
export function linearRef(x: F64, xShape: Shape, w: F64, wShape: Shape, bias?: F64, withGelu = false): F64 {
  const y = matmulRef(x, xShape, w, wShape, false, true).data;
  const outF = wShape[0];
  return y.map((v, i) => {
    const p = v + (bias ? bias[i % outF] : 0);
    return withGelu ? gelu(p) : p;
  });
}

/**
 * Gradients of sum(matmul(a, b) * g) with respect to a and b in their stored layouts (rank >= 2),
 * accumulated straight into the broadcast operand's elements: independent of any transpose trick.
 */
export function matmulGradRef(a: F64, aShape: Shape, b: F64, bShape: Shape, g: F64, transA = false, transB = false): [F64, F64] {
  const [ra, ca] = aShape.slice(-2);
  const [rb, cb] = bShape.slice(-2);
  const [M, K] = transA ? [ca, ra] : [ra, ca];
  const N = transB ? rb : cb;
  const batch = broadcastShapes('matmulGradRef', aShape.slice(0, -2), bShape.slice(0, -2));
  const sa = broadcastStrides(aShape.slice(0, -2), batch);
  const sb = broadcastStrides(bShape.slice(0, -2), batch);
  const da = new Float64Array(a.length);
  const db = new Float64Array(b.length);
  for (let z = 0; z < numel(batch); z++) {
    const idx = unravel(z, batch);
    const oa = idx.reduce((acc, c, d) => acc + c * sa[d], 0) * M * K;
    const ob = idx.reduce((acc, c, d) => acc + c * sb[d], 0) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const gv = g[(z * M + m) * N + n];
        for (let k = 0; k < K; k++) {
          const ia = oa + (transA ? k * M + m : m * K + k);
          const ib = ob + (transB ? n * K + k : k * N + n);
          da[ia] += gv * b[ib];
          db[ib] += gv * a[ia];
        }
      }
    }
  }
  return [da, db];
}
