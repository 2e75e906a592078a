// Elementwise kernels: unary maps, binary and ternary ops with NumPy broadcasting, by code generation.
import { defineKernel, entry1d, linearIndex, type BindingDecl, type DType, type KernelDecl, type KernelSource, type UniformValues, memoKernel } from './kernel.js';

/** Most dimensions a broadcasting kernel handles (two vec4u of shape and strides). */
export const MAX_RANK = 8;

// Exact GELU needs erf, which WGSL lacks: Abramowitz-Stegun 7.1.26 (|error| <= 1.5e-7).
export const MATH = /* wgsl */ `
fn erf_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-z * z);
  return select(-y, y, x >= 0.0);
}
fn gelu_(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_(x * 0.7071067811865476)); }
fn gelu_grad_(x: f32) -> f32 {
  return 0.5 * (1.0 + erf_(x * 0.7071067811865476)) + x * 0.3989422804014327 * exp(-0.5 * x * x);
}
// tanh through exp overflows to NaN for large |x| on some drivers; it is exactly +-1 in f32 past 10.
fn tanh_(x: f32) -> f32 { return tanh(clamp(x, -10.0, 10.0)); }
// pow with a scalar exponent, defined for negative bases when the exponent is an integer (as torch.pow).
fn pow_(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  let m = pow(abs(x), p);
  if (x >= 0.0) { return m; }
  // NaN built at run time: a constant NaN is a WGSL compile error.
  if (fract(p) != 0.0) { return bitcast<f32>(0x7fc00000u | (bitcast<u32>(x) & 0u)); }
  return select(m, -m, fract(p * 0.5) != 0.0);
}
`;

/** Unary maps of `x` with scalar parameters `p0`, `p1`. */
export const UNARY = {
  neg: '-x',
  exp: 'exp(x)',
  log: 'log(x)',
  sqrt: 'sqrt(x)',
  rsqrt: 'inverseSqrt(x)',
  tanh: 'tanh_(x)',
  gelu: 'gelu_(x)',
  relu: 'max(x, 0.0)',
  abs: 'abs(x)',
  sign: 'sign(x)',
  sigmoid: '1.0 / (1.0 + exp(-x))',
  sin: 'sin(x)',
  cos: 'cos(x)',
  pow: 'pow_(x, p0)',
  clamp: 'clamp(x, p0, p1)',
  affine: 'x * p0 + p1',
  // Gradient masks: 1 inside the clamp range, 0 outside.
  inRange: 'select(0.0, 1.0, x >= p0 && x <= p1)',
  cast: 'x',
} as const;
export type UnaryOp = keyof typeof UNARY;

/** Binary ops of `a` and `b`, computed in f32. */
export const BINARY = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  maximum: 'max(a, b)',
  minimum: 'min(a, b)',
  eq: 'select(0.0, 1.0, a == b)',
  ne: 'select(0.0, 1.0, a != b)',
  gt: 'select(0.0, 1.0, a > b)',
  ge: 'select(0.0, 1.0, a >= b)',
  lt: 'select(0.0, 1.0, a < b)',
  le: 'select(0.0, 1.0, a <= b)',
  // Backward helpers: b is the upstream gradient.
  geluGrad: 'gelu_grad_(a) * b',
  tanhGrad: '(1.0 - a * a) * b',
} as const;
export type BinaryOp = keyof typeof BINARY;

/** The uniform block shared by these kernels: element count, two scalars, the output shape and up to three inputs' strides. */
const UNIFORMS: KernelDecl['uniforms'] = [
  ['n', 'u32'],
  ['p0', 'f32'],
  ['p1', 'f32'],
  ['rank', 'u32'],
  ['shape', 'array<vec4u, 2>'],
  ['s1', 'array<vec4u, 2>'],
  ['s2', 'array<vec4u, 2>'],
  ['s3', 'array<vec4u, 2>'],
];

function decl(outputs: BindingDecl[], inputs: BindingDecl[]): KernelDecl {
  return { uniforms: UNIFORMS, outputs, inputs };
}

function load(dtype: DType, expr: string): string {
  return dtype === 'f32' ? expr : `f32(${expr})`;
}

/**
 * Offsets of input k (strides array `s<k>`) for output index `i`, for a static rank. When
 * `rank` is 'same' every input is contiguous with the output's shape, so the offset is `i`.
 */
function offsets(rank: number | 'same', inputs: number): string {
  if (rank === 'same') return [...Array(inputs).keys()].map((k) => `let o${k + 1} = i;`).join('\n  ');
  const lines = [`var rem = i;`];
  for (let k = 1; k <= inputs; k++) lines.push(`var o${k} = 0u;`);
  for (let d = rank - 1; d >= 0; d--) {
    const v = `[${d >> 2}][${d & 3}]`;
    lines.push(`{ let c = rem % u.shape${v}; rem = rem / u.shape${v};`);
    for (let k = 1; k <= inputs; k++) lines.push(`  o${k} += c * u.s${k}${v};`);
    lines.push('}');
  }
  return lines.join('\n  ');
}

/** out[i] = UNARY[op](x[i]) over a contiguous tensor. */
export function unaryKernel(op: UnaryOp, dtype: DType, outDtype: DType = 'f32'): KernelSource {
  return memoKernel(`unaryKernel ${JSON.stringify([op, dtype, outDtype])}`, () => buildUnaryKernel(op, dtype, outDtype));
}

function buildUnaryKernel(op: UnaryOp, dtype: DType, outDtype: DType = 'f32'): KernelSource {
  const code = `${MATH}
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  let x = ${load(dtype, 'x_[i]')};
  let p0 = u.p0; let p1 = u.p1;
  out[i] = ${outDtype}(${UNARY[op]});
}`;
  return defineKernel(`unary_${op}_${dtype}_${outDtype}`, decl([{ name: 'out', type: outDtype }], [{ name: 'x_', type: dtype }]), code);
}

/** out = BINARY[op](a, b), broadcasting; `rank` is 'same' when no broadcasting is needed. */
export function binaryKernel(op: BinaryOp, rank: number | 'same', da: DType, db: DType): KernelSource {
  return memoKernel(`binaryKernel ${JSON.stringify([op, rank, da, db])}`, () => buildBinaryKernel(op, rank, da, db));
}

function buildBinaryKernel(op: BinaryOp, rank: number | 'same', da: DType, db: DType): KernelSource {
  const code = `${MATH}
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  ${offsets(rank, 2)}
  let a = ${load(da, 'a_[o1]')};
  let b = ${load(db, 'b_[o2]')};
  out[i] = ${BINARY[op]};
}`;
  return defineKernel(
    `binary_${op}_${rank}_${da}_${db}`,
    decl(
      [{ name: 'out', type: 'f32' }],
      [
        { name: 'a_', type: da },
        { name: 'b_', type: db },
      ],
    ),
    code,
  );
}

/** out = cond != 0 ? a : b, broadcasting all three. */
export function whereKernel(rank: number | 'same', dc: DType): KernelSource {
  return memoKernel(`whereKernel ${JSON.stringify([rank, dc])}`, () => buildWhereKernel(rank, dc));
}

function buildWhereKernel(rank: number | 'same', dc: DType): KernelSource {
  const code = `
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  ${offsets(rank, 3)}
  out[i] = select(b_[o3], a_[o2], c_[o1] != ${dc}(0));
}`;
  return defineKernel(
    `where_${rank}_${dc}`,
    decl(
      [{ name: 'out', type: 'f32' }],
      [
        { name: 'c_', type: dc },
        { name: 'a_', type: 'f32' },
        { name: 'b_', type: 'f32' },
      ],
    ),
    code,
  );
}

/** out[i] = value (p0), for any dtype. */
export function fillKernel(dtype: DType): KernelSource {
  return memoKernel(`fillKernel ${JSON.stringify([dtype])}`, () => buildFillKernel(dtype));
}

function buildFillKernel(dtype: DType): KernelSource {
  const code = `
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  out[i] = ${dtype}(u.p0);
}`;
  return defineKernel(`fill_${dtype}`, decl([{ name: 'out', type: dtype }], []), code);
}

/**
 * The uniform block shared by these kernels: element count, two scalars, and up to four
 * shape/stride vectors of at most MAX_RANK entries.
 */
export function elementwiseUniforms(n: number, p0 = 0, p1 = 0, vectors: readonly (readonly number[])[] = []): UniformValues {
  const [shape = [], s1 = [], s2 = [], s3 = []] = vectors;
  return { n, p0, p1, rank: shape.length, shape, s1, s2, s3 };
}
