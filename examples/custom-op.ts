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
  defineKernel,
  type KernelSource,
  type Tensor,
} from '../engine/index.js';

/** WGSL of one pass. Its declaration generates the header: the uniform block, then the outputs, then the inputs. */
function softplusKernel(pass: 'forward' | 'backward'): KernelSource {
  const f32 = (name: string): { name: string; type: string } => ({ name, type: 'f32' });
  const decl = {
    uniforms: [
      ['n', 'u32'],
      ['beta', 'f32'],
    ] as const,
    outputs: [f32(pass === 'forward' ? 'y' : 'dx')],
    inputs: pass === 'forward' ? [f32('x')] : [f32('x'), f32('dy')],
  };
  // max(z, 0) + log(1 + exp(-|z|)) never overflows; the derivative is sigmoid(βx).
  const body = pass === 'forward' ? 'let z = u.beta * x[i];\n  y[i] = (max(z, 0.0) + log(1.0 + exp(-abs(z)))) / u.beta;' : 'dx[i] = dy[i] / (1.0 + exp(-u.beta * x[i]));';
  // The key names every static parameter of the source: one compiled pipeline per key.
  return defineKernel(
    `example_softplus_${pass}`,
    decl,
    `${entry1d()} {
  let i = ${linearIndex()};
  if (i >= u.n) { return; }
  ${body}
}`,
  );
}

/** softplus with sharpness β, elementwise on an f32 tensor of any shape. */
export function softplus(x: Tensor, beta = 1): Tensor<'f32'> {
  assertFloat('softplus', x);
  const label = opLabel('softplus', [x]);
  const y = empty(x.shape, 'f32', label);
  // launch() packs the uniform block by the kernel's declaration, field by field.
  launch(softplusKernel('forward'), { n: x.size, beta }, [y], [x], grid1d(x.size), label);
  recordOp(
    'softplus',
    [x],
    [y],
    ([dy], [saved]) => {
      const xs = saved!; // the saved input x, as recorded below
      const dx = empty(xs.shape, 'f32', `${label} backward`);
      launch(softplusKernel('backward'), { n: xs.size, beta }, [dx], [xs, dy!], grid1d(xs.size), `${label} backward`);
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
  forwardErr = Math.max(forwardErr, Math.abs(got[i]! - ref) / Math.max(1, Math.abs(ref)));
  gradErr = Math.max(gradErr, Math.abs(grad[i]! - 1 / (1 + Math.exp(-z))));
});
console.log(`softplus(β=${beta}) on ${host.length} values: forward error ${forwardErr.toExponential(1)}, gradient error ${gradErr.toExponential(1)}`);
if (!(forwardErr < 1e-5 && gradErr < 1e-5)) throw new Error('softplus disagrees with its float64 reference');
