// conv2d against a float64 direct convolution, forward and backward (central finite differences of the
// reference), on random shapes, kernels, strides and paddings that are not multiples of anything; the
// 1x1 and the patch-embedding (kernel = stride) cases; the refusals.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { checkOp, gpu, randInt, rng, type F64 } from '../helpers/check.js';

const test = suite('conv2d');
test.before(gpu);

/** out[b, o, y, x] = bias[o] + sum over c, i, j of w[o, c, i, j] x[b, c, y·s - p + i, x·s - p + j] (0 outside). */
function conv2dRef(x: F64, w: F64, bias: F64 | null, [B, C, H, W]: number[], [O, , KH, KW]: number[], s: number, p: number): F64 {
  const OH = Math.floor((H + 2 * p - KH) / s) + 1;
  const OW = Math.floor((W + 2 * p - KW) / s) + 1;
  const out = new Float64Array(B * O * OH * OW);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < O; o++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let acc = bias ? bias[o] : 0;
          for (let c = 0; c < C; c++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const [y, xx] = [oy * s - p + i, ox * s - p + j];
                if (y >= 0 && y < H && xx >= 0 && xx < W) acc += w[((o * C + c) * KH + i) * KW + j] * x[((b * C + c) * H + y) * W + xx];
              }
          out[((b * O + o) * OH + oy) * OW + ox] = acc;
        }
  return out;
}

const cases: { name: string; x: number[]; w: number[]; stride: number; padding: number; bias: boolean }[] = [
  { name: '3x3 same padding', x: [2, 3, 9, 7], w: [5, 3, 3, 3], stride: 1, padding: 1, bias: true },
  { name: '1x1', x: [3, 4, 5, 6], w: [7, 4, 1, 1], stride: 1, padding: 0, bias: false },
  { name: 'patch embedding (kernel = stride)', x: [2, 3, 12, 8], w: [6, 3, 4, 4], stride: 4, padding: 0, bias: true },
  { name: 'strided, padded, rectangular kernel', x: [2, 2, 11, 10], w: [3, 2, 3, 2], stride: 2, padding: 2, bias: true },
];
const r = rng(44);
for (let k = 0; k < 3; k++) {
  const [KH, KW] = [randInt(r, 1, 5), randInt(r, 1, 5)];
  const stride = randInt(r, 1, 3);
  const padding = randInt(r, 0, 2);
  cases.push({
    name: `random ${k}`,
    x: [randInt(r, 1, 3), randInt(r, 1, 5), randInt(r, KH + 1, 13), randInt(r, KW + 1, 13)],
    w: [randInt(r, 1, 6), 0, KH, KW],
    stride,
    padding,
    bias: r() < 0.5,
  });
  cases[cases.length - 1].w[1] = cases[cases.length - 1].x[1];
}

for (const c of cases) {
  test(`${c.name}: x [${c.x}] w [${c.w}] stride ${c.stride} padding ${c.padding}, forward and gradients of x, w${c.bias ? ', bias' : ''}`, async () => {
    const shapes = c.bias ? [c.x, c.w, [c.w[0]]] : [c.x, c.w];
    await checkOp({
      name: c.name,
      shapes,
      gpu: ([x, w, b]) => E.conv2d(x, w, b, { stride: c.stride, padding: c.padding }),
      ref: ([x, w, b]) => conv2dRef(x, w, b ?? null, c.x, c.w, c.stride, c.padding),
      fwdTol: 2e-5,
    });
  });
}

test('bad shapes and settings are refused, naming them', () => {
  const x = E.zeros([1, 3, 8, 8]);
  assert.throws(() => E.conv2d(x, E.zeros([4, 2, 3, 3])), /weight has 2 input channels, x has 3/);
  assert.throws(() => E.conv2d(x, E.zeros([4, 3, 9, 9])), /a 9x9 kernel does not fit in 8x8 with padding 0/);
  assert.throws(() => E.conv2d(x, E.zeros([4, 3, 3, 3]), E.zeros([5])), /bias must be \[4\], got \[5\]/);
  assert.throws(() => E.conv2d(x, E.zeros([4, 3, 3, 3]), undefined, { stride: 0 }), /stride must be a whole number >= 1/);
  assert.throws(() => E.conv2d(E.zeros([3, 8, 8]), E.zeros([4, 3, 3, 3])), /x must be \[B, C, H, W\]/);
});

test.run();
