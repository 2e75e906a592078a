// Elementwise ops with broadcasting, each with its backward rule beside it.
import { binaryKernel, elementwiseUniforms, MAX_RANK, unaryKernel, whereKernel, type BinaryOp, type UnaryOp } from '../../kernels/elementwise.js';
import { grid1d, type DType } from '../../kernels/kernel.js';
import { recordOp } from '../autograd.js';
import { broadcastShapes, broadcastStrides, sameShape, type Shape } from '../shape.js';
import { empty, type Tensor } from '../tensor.js';
import { assertFloat, launch, opLabel } from './launch.js';
import { fill, sumTo } from './primitives.js';

export { fill } from './primitives.js';

export type TensorOrScalar = Tensor | number;

export function zeros(shape: Shape): Tensor<'f32'> {
  return fill(shape, 0);
}

export function ones(shape: Shape): Tensor<'f32'> {
  return fill(shape, 1);
}

export function zerosLike(x: Tensor): Tensor<'f32'> {
  return fill(x.shape, 0);
}

function unaryRaw(op: UnaryOp, x: Tensor, p0 = 0, p1 = 0, outDtype: DType = 'f32'): Tensor<'f32'> {
  const label = opLabel(op, [x]);
  const out = empty(x.shape, outDtype, label) as Tensor<'f32'>;
  launch(unaryKernel(op, x.dtype, outDtype), elementwiseUniforms(x.size, p0, p1), [out], [x], grid1d(x.size), label);
  return out;
}

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor<'f32'> {
  const label = opLabel(op, [a, b]);
  const shape = broadcastShapes(op, a.shape, b.shape);
  if (shape.length > MAX_RANK) throw new Error(`${label}: rank ${shape.length} exceeds the supported ${MAX_RANK}`);
  const out = empty(shape, 'f32', label);
  const same = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  const vectors = same ? [] : [shape, broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)];
  launch(binaryKernel(op, same ? 'same' : shape.length, a.dtype, b.dtype), elementwiseUniforms(out.size, 0, 0, vectors), [out], [a, b], grid1d(out.size), label);
  return out;
}

/** x * scale + shift, the scalar form of add/sub/mul/div. */
export function affine(x: Tensor, scale: number, shift: number): Tensor<'f32'> {
  assertFloat('affine', x);
  const y = unaryRaw('affine', x, scale, shift);
  recordOp('affine', [x], [y], ([g]) => [mulScalar(g!, scale)]);
  return y;
}

function mulScalar(g: Tensor<'f32'>, s: number): Tensor<'f32'> {
  return s === 1 ? g : unaryRaw('affine', g, s, 0);
}

export function add(a: TensorOrScalar, b: TensorOrScalar): Tensor<'f32'> {
  if (typeof a === 'number') return add(b, a);
  if (typeof b === 'number') return affine(a, 1, b);
  const y = binaryRaw('add', a, b);
  recordOp('add', [a, b], [y], ([g], _s, _n, into) => [sumTo(g!, a.shape, into[0]), sumTo(g!, b.shape, into[1])]);
  return y;
}

export function sub(a: TensorOrScalar, b: TensorOrScalar): Tensor<'f32'> {
  if (typeof a === 'number') return affine(b as Tensor, -1, a);
  if (typeof b === 'number') return affine(a, 1, -b);
  const y = binaryRaw('sub', a, b);
  recordOp('sub', [a, b], [y], ([g], _s, needs) => [sumTo(g!, a.shape), needs[1] ? sumTo(neg(g!), b.shape) : null]);
  return y;
}

export function mul(a: TensorOrScalar, b: TensorOrScalar): Tensor<'f32'> {
  if (typeof a === 'number') return mul(b, a);
  if (typeof b === 'number') return affine(a, b, 0);
  const y = binaryRaw('mul', a, b);
  recordOp('mul', [a, b], [y], ([g], [sa, sb], needs) => [needs[0] ? sumTo(binaryRaw('mul', g!, sb), a.shape) : null, needs[1] ? sumTo(binaryRaw('mul', g!, sa), b.shape) : null], [
    a,
    b,
  ]);
  return y;
}

export function div(a: TensorOrScalar, b: TensorOrScalar): Tensor<'f32'> {
  if (typeof b === 'number') return affine(a as Tensor, 1 / b, 0);
  if (typeof a === 'number') return mul(reciprocal(b), a);
  const y = binaryRaw('div', a, b);
  recordOp(
    'div',
    [a, b],
    [y],
    ([g], [sb, sy], needs) => [
      needs[0] ? sumTo(binaryRaw('div', g!, sb), a.shape) : null,
      // d(a/b)/db = -y/b
      needs[1] ? sumTo(neg(binaryRaw('mul', g!, binaryRaw('div', sy, sb))), b.shape) : null,
    ],
    [b, y],
  );
  return y;
}

export function neg(x: Tensor): Tensor<'f32'> {
  return affine(x, -1, 0);
}

export function reciprocal(x: Tensor): Tensor<'f32'> {
  return pow(x, -1);
}

export function exp(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('exp', x);
  recordOp('exp', [x], [y], ([g], [sy]) => [binaryRaw('mul', g!, sy)], [y]);
  return y;
}

export function log(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('log', x);
  recordOp('log', [x], [y], ([g], [sx]) => [binaryRaw('div', g!, sx)], [x]);
  return y;
}

export function sqrt(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('sqrt', x);
  recordOp('sqrt', [x], [y], ([g], [sy]) => [binaryRaw('div', mulScalar(g!, 0.5), sy)], [y]);
  return y;
}

export function rsqrt(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('rsqrt', x);
  // d/dx x^-1/2 = -1/2 y^3
  recordOp('rsqrt', [x], [y], ([g], [sy]) => [binaryRaw('mul', g!, mulScalar(unaryRaw('pow', sy, 3), -0.5))], [y]);
  return y;
}

export function tanh(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('tanh', x);
  recordOp('tanh', [x], [y], ([g], [sy]) => [binaryRaw('tanhGrad', sy, g!)], [y]);
  return y;
}

/** Sine (radians); d/dx = cos x. For positional encodings and periodic features. */
export function sin(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('sin', x);
  recordOp('sin', [x], [y], ([g], [sx]) => [binaryRaw('mul', g!, unaryRaw('cos', sx))], [x]);
  return y;
}

/** Cosine (radians); d/dx = -sin x. */
export function cos(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('cos', x);
  recordOp('cos', [x], [y], ([g], [sx]) => [binaryRaw('mul', g!, affine(unaryRaw('sin', sx), -1, 0))], [x]);
  return y;
}

/** Exact (erf) GELU, PyTorch's default. */
export function gelu(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('gelu', x);
  recordOp('gelu', [x], [y], ([g], [sx]) => [binaryRaw('geluGrad', sx, g!)], [x]);
  return y;
}

export function relu(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('relu', x);
  recordOp('relu', [x], [y], ([g], [sx]) => [binaryRaw('mul', g!, binaryRaw('gt', sx, zerosLikeScalar()))], [x]);
  return y;
}

export function abs(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('abs', x);
  recordOp('abs', [x], [y], ([g], [sx]) => [binaryRaw('mul', g!, unaryRaw('sign', sx))], [x]);
  return y;
}

export function sigmoid(x: Tensor): Tensor<'f32'> {
  const y = unaryRaw('sigmoid', x);
  // dy/dx = y (1 - y)
  recordOp('sigmoid', [x], [y], ([g], [sy]) => [binaryRaw('mul', g!, binaryRaw('mul', sy, unaryRaw('affine', sy, -1, 1)))], [y]);
  return y;
}

/** x ** p for a scalar exponent p (integer exponents accept negative bases, as torch.pow). */
export function pow(x: Tensor, p: number): Tensor<'f32'> {
  const y = unaryRaw('pow', x, p);
  recordOp('pow', [x], [y], ([g], [sx]) => [binaryRaw('mul', g!, mulScalar(unaryRaw('pow', sx, p - 1), p))], [x]);
  return y;
}

export function square(x: Tensor): Tensor<'f32'> {
  return pow(x, 2);
}

/** Clamp into [min, max]; the gradient passes where min <= x <= max (as PyTorch). */
export function clamp(x: Tensor, min = -Infinity, max = Infinity): Tensor<'f32'> {
  const lo = Math.max(min, -3.4028234663852886e38);
  const hi = Math.min(max, 3.4028234663852886e38);
  const y = unaryRaw('clamp', x, lo, hi);
  recordOp('clamp', [x], [y], ([g], [sx]) => [binaryRaw('mul', g!, unaryRaw('inRange', sx, lo, hi))], [x]);
  return y;
}

export function maximum(a: Tensor, b: Tensor): Tensor<'f32'> {
  return minmax('maximum', a, b);
}

export function minimum(a: Tensor, b: Tensor): Tensor<'f32'> {
  return minmax('minimum', a, b);
}

// The gradient goes to a where a wins, to b elsewhere (ties go to a).
function minmax(op: 'maximum' | 'minimum', a: Tensor, b: Tensor): Tensor<'f32'> {
  const y = binaryRaw(op, a, b);
  recordOp(
    op,
    [a, b],
    [y],
    ([g], [sa, sy], needs) => {
      const aWins = binaryRaw('eq', sa, sy);
      return [needs[0] ? sumTo(binaryRaw('mul', g!, aWins), a.shape) : null, needs[1] ? sumTo(binaryRaw('mul', g!, unaryRaw('affine', aWins, -1, 1)), b.shape) : null];
    },
    [a, y],
  );
  return y;
}

/** Comparisons give f32 masks of 0 and 1 and have no gradient. */
export function compare(op: 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le', a: Tensor, b: Tensor): Tensor<'f32'> {
  return binaryRaw(op, a, b);
}

/** cond ? a : b, broadcasting all three; `cond` is any dtype, non-zero meaning true. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor<'f32'> {
  assertFloat('where', a, b);
  const label = opLabel('where', [cond, a, b]);
  const shape = broadcastShapes('where', broadcastShapes('where', cond.shape, a.shape), b.shape);
  const out = empty(shape, 'f32', label);
  const same = [cond, a, b].every((t) => sameShape(t.shape, shape));
  const vectors = same ? [] : [shape, broadcastStrides(cond.shape, shape), broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)];
  launch(whereKernel(same ? 'same' : shape.length, cond.dtype), elementwiseUniforms(out.size, 0, 0, vectors), [out], [cond, a, b], grid1d(out.size), label);
  recordOp(
    'where',
    [cond, a, b],
    [out],
    ([g], [sc], needs) => {
      const z = zerosLikeScalar();
      return [null, needs[1] ? sumTo(whereRaw(sc, g!, z), a.shape) : null, needs[2] ? sumTo(whereRaw(sc, z, g!), b.shape) : null];
    },
    [cond],
  );
  return out;
}

/** where() with a scalar: masked_fill(x, mask, value) as in PyTorch. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor<'f32'> {
  return where(mask, fill([], value), x);
}

function whereRaw(c: Tensor, a: Tensor, b: Tensor): Tensor<'f32'> {
  const shape = broadcastShapes('where', broadcastShapes('where', c.shape, a.shape), b.shape);
  const out = empty(shape, 'f32', 'where');
  const vectors = [shape, broadcastStrides(c.shape, shape), broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)];
  launch(whereKernel(shape.length, c.dtype), elementwiseUniforms(out.size, 0, 0, vectors), [out], [c, a, b], grid1d(out.size), 'where');
  return out;
}

function zerosLikeScalar(): Tensor<'f32'> {
  return fill([], 0);
}

/** Convert between f32, i32 and u32 (truncating toward zero); no gradient. */
export function cast<D extends DType>(x: Tensor, dtype: D): Tensor<D> {
  return unaryRaw('cast', x, 0, 0, dtype) as unknown as Tensor<D>;
}
