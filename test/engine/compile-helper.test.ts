import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bindingNumbers, CompileHelper } from '../../engine/compile-helper.js';
import * as E from '../../engine/index.js';
import { attentionGradKVKernel } from '../../kernels/attention.js';
import { matmulKernel, subgroupTiles, LAVAPIPE_TILES } from '../../kernels/matmul.js';
import { fixedSubgroupSize } from '../../engine/tuning.js';
import { gpu } from '../helpers/check.js';

const test = suite('compile helper');
test.before(gpu);

test('bindingNumbers lists the bindings a kernel declares', () => {
  const k = matmulKernel({ transA: false, transB: true, bias: true, gelu: 'out+pre', residual: true, vecA: true, vecB: true, vecC: true, tiles: LAVAPIPE_TILES });
  // uniforms, out, pre, a, b, bias, res
  assert.equal(bindingNumbers(k.code), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(bindingNumbers('@group(0) @binding(3) var<storage> x: array<f32>; @group(0) @binding(0) var<uniform> u: U;'), [0, 3]);
});

test('a second device compiles kernels with dummy dispatches; the engine then runs them and gets the same results', async () => {
  const sg = fixedSubgroupSize();
  const tiles = sg ? subgroupTiles(sg, 16) : LAVAPIPE_TILES;
  const kernels = [
    matmulKernel({ transA: true, transB: false, bias: false, gelu: 'none', rowSums: true, vecA: true, vecB: true, vecC: true, tiles }),
    attentionGradKVKernel(16, true, { staging: sg ? 'subgroup' : 'workgroup', lanes: sg ?? 8, rowsPerLane: 1 }),
  ];
  const helper = new CompileHelper();
  await helper.warm(kernels);
  assert.is(helper.error, undefined, helper.error);
  assert.is(helper.compiled, 2);
  // Asking again for the same kernels does nothing.
  await helper.warm(kernels);
  assert.is(helper.compiled, 2);
  // The engine's own device is unaffected: an op through one of those kernels still matches float64.
  const x = E.fromArray([1, 2, 3, 4, 5, 6], [3, 2]);
  const g = E.fromArray([0.5, -1, 2, 0.25, 1, 1, -2, 3, 0, 1, 1, 1], [3, 4]);
  const w = E.zeros([4, 2]);
  const b = E.zeros([4]);
  w.requiresGrad = true;
  b.requiresGrad = true;
  E.backward(E.linear(x, w, b), g);
  assert.equal(Array.from(await b.grad!.toArray()), [1.5, 1, 1, 4.25]);
});

test.run();
