// Extending the engine: a new op, softplus(x) = log(1 + exp(βx)) / β, with its own WGSL kernels for
// the forward and the backward pass, made differentiable with recordOp, then checked against float64
// on the host. Run: npx tsx examples/custom-op.ts (in your project, import from 'smkd-webgpu/engine').
import {
  assertFloat,
  backward,
  empty,
  entry1d,
  fromArray,
  grid1d,
  init,
  launch,
  linearIndex,
  opLabel,
  recordOp,
  sum,
  tidy,
  words,
  type KernelSource,
  type Tensor,
} from '../engine/index.js';

/** WGSL of one pass. Binding 0 is the uniform block, then the outputs, then the inputs. */
function softplusKernel(pass: 'forward' | 'backward'): KernelSource {
  const buffers = pass === 'forward' ? ['y', 'x'] : ['dx', 'x', 'dy'];
  const decls = buffers.map((b, i) => `@group(0) @binding(${i + 1}) var<storage, ${i === 0 ? 'read_write' : 'read'}> ${b}: array<f32>;`);
  // max(z, 0) + log(1 + exp(-|z|)) never overflows; the derivative is sigmoid(βx).
  const body = pass === 'forward' ? 'let z = u.beta * x[i];\n  y[i] = (max(z, 0.0) + log(1.0 + exp(-abs(z)))) / u.beta;' : 'dx[i] = dy[i] / (1.0 + exp(-u.beta * x[i]));';
  return {
    // The key names every static parameter of the source: one compiled pipeline per key.
    key: `example_softplus_${pass}`,
    code: `
struct U { n: u32, beta: f32 }
@group(0) @binding(0) var<uniform> u: U;
${decls.join('\n')}
${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  ${body}
}`,
  };
}

/** softplus with sharpness β, elementwise on an f32 tensor of any shape. */
export function softplus(x: Tensor, beta = 1): Tensor<'f32'> {
  assertFloat('softplus', x);
  const label = opLabel('softplus', [x]);
  const y = empty(x.shape, 'f32', label);
  // words() packs the uniform block: u32 unless the index is listed as f32 (here beta, index 1).
  launch(softplusKernel('forward'), words([x.size, beta], [1]), [y], [x], grid1d(x.size), label);
  recordOp(
    'softplus',
    [x],
    [y],
    ([dy], [xs]) => {
      const dx = empty(xs.shape, 'f32', `${label} backward`);
      launch(softplusKernel('backward'), words([xs.size, beta], [1]), [dx], [xs, dy!], grid1d(xs.size), `${label} backward`);
      return [dx];
    },
    [x],
  );
  return y;
}

await init();
const beta = 2;
// Sizes that are not a multiple of the workgroup, and values far into both tails.
const host = Float64Array.from({ length: 1000 }, (_, i) => (i - 500) / 12.5);
const x = fromArray(host, [8, 125]);
x.requiresGrad = true;
const y = tidy(() => softplus(x, beta));
backward(tidy(() => sum(y)));

const [got, grad] = [await y.toArray(), await x.grad!.toArray()];
let forwardErr = 0;
let gradErr = 0;
host.forEach((v, i) => {
  const z = beta * v;
  const ref = (Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)))) / beta;
  forwardErr = Math.max(forwardErr, Math.abs(got[i] - ref) / Math.max(1, Math.abs(ref)));
  gradErr = Math.max(gradErr, Math.abs(grad[i] - 1 / (1 + Math.exp(-z))));
});
console.log(`softplus(β=${beta}) on ${host.length} values: forward error ${forwardErr.toExponential(1)}, gradient error ${gradErr.toExponential(1)}`);
if (!(forwardErr < 1e-5 && gradErr < 1e-5)) throw new Error('softplus disagrees with its float64 reference');
