import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { defineKernel, type KernelDecl } from '../../kernels/kernel.js';
import * as E from '../../engine/index.js';
import { launch } from '../../engine/ops/launch.js';
import { quoteSource } from '../../engine/runtime.js';
import { errorMessage, gpu } from '../helpers/check.js';

const test = suite('launch');
test.before(gpu);

// Every field of a mixed block read back by the GPU: the packer's offsets are the shader's.
const MIXED: KernelDecl = {
  uniforms: [
    ['a', 'u32'],
    ['v', 'vec4u'],
    ['b', 'f32'],
    ['w', 'vec2f'],
    ['arr', 'array<vec4f, 2>'],
    ['c', 'i32'],
  ],
  outputs: [{ name: 'out', type: 'f32' }],
  inputs: [],
};
const mixedKernel = defineKernel(
  'test_mixed_uniforms',
  MIXED,
  `@compute @workgroup_size(1) fn main() {
  out[0] = f32(u.a); out[1] = f32(u.v.x); out[2] = f32(u.v.w); out[3] = u.b;
  out[4] = u.w.x; out[5] = u.w.y; out[6] = u.arr[0].x; out[7] = u.arr[1].w; out[8] = f32(u.c);
}`,
);

test('a uniform block packed from its declaration reads back field by field on the GPU', async () => {
  const out = E.zeros([9]);
  launch(mixedKernel, { a: 3, v: [5, 6, 7, 8], b: 0.25, w: [1.5, -2], arr: [10, 11, 12, 13, 14, 15, 16, 17], c: -9 }, [out], [], [1, 1, 1], 'mixed');
  assert.equal(Array.from(await out.toArray()), [3, 5, 8, 0.25, 1.5, -2, 10, 17, -9]);
  out.dispose();
});

test('launch checks outputs, inputs, dtypes and uniform fields against the declaration', async () => {
  const x = E.zeros([4]);
  const i = E.fromArray([0, 1], [2], 'i32');
  const k = E.indexSelect(x, 0, i); // compiles and runs the gather kernel the checks below misuse
  const { gatherKernel } = await import('../../kernels/layout.js');
  const gather = gatherKernel('f32');
  const u = { n: 2, N: 4, M: 2, C: 1 };
  let m = await errorMessage(() => launch(gather, u, [k], [x], [1, 1, 1], 'gatherOp'));
  assert.ok(m.includes('gatherOp') && m.includes('gather_f32') && m.includes('takes 2 inputs (x, idx), given 1'), m);
  m = await errorMessage(() => launch(gather, u, [k, x], [x, i], [1, 1, 1], 'gatherOp'));
  assert.ok(m.includes('takes 1 outputs (out), given 2'), m);
  m = await errorMessage(() => launch(gather, u, [k], [x, x], [1, 1, 1], 'gatherOp'));
  assert.ok(m.includes('input idx is i32, given f32[4]'), m);
  m = await errorMessage(() => launch(gather, { n: 2, N: 4, M: 2 }, [k], [x, i], [1, 1, 1], 'gatherOp'));
  assert.ok(m.includes('gatherOp: kernel gather_f32: uniforms: missing field C'), m);
  m = await errorMessage(() => launch(gather, { ...u, D: 1 }, [k], [x, i], [1, 1, 1], 'gatherOp'));
  assert.ok(m.includes('unknown field(s) D'), m);
  m = await errorMessage(() => launch(gather, new ArrayBuffer(8), [k], [x, i], [1, 1, 1], 'gatherOp'));
  assert.ok(m.includes('needs a uniform block of 16 bytes, given 8'), m);
  for (const t of [x, i, k]) t.dispose();
});

test('a compile error quotes the offending source line and its neighbours', async () => {
  const decl: KernelDecl = { uniforms: [['n', 'u32']], outputs: [{ name: 'out', type: 'f32' }], inputs: [] };
  const broken = defineKernel(
    'test_broken_line',
    decl,
    `@compute @workgroup_size(1) fn main() {
  let a = 1.0;
  out[0] = a + undefinedThing;
  let b = 2.0;
}`,
  );
  const m = await errorMessage(() => E.rt().compile(broken, 'brokenLine([1])'));
  assert.ok(m.includes('brokenLine([1])') && m.includes('test_broken_line'), m);
  // The header is 3 lines, so the bad line is line 6; the quote shows lines 5-7, marking 6.
  assert.ok(/line 6:/.test(m), m);
  assert.ok(m.includes('>    6 |   out[0] = a + undefinedThing;'), m);
  assert.ok(m.includes('     5 |   let a = 1.0;') && m.includes('     7 |   let b = 2.0;'), m);
  assert.is(quoteSource('only', 0), '');
  assert.is(quoteSource('a\nb', 1), '\n    >    1 | a\n         2 | b');
});

test('SMKD_DUMP_SHADERS writes each compiled kernel to <dir>/<key>.wgsl', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'smkd-dump-'));
  const before = process.env.SMKD_DUMP_SHADERS;
  process.env.SMKD_DUMP_SHADERS = path.join(dir, 'sub');
  try {
    const k = defineKernel(
      `test_dump_${process.pid}`,
      { uniforms: [['n', 'u32']], outputs: [{ name: 'out', type: 'f32' }], inputs: [] },
      '@compute @workgroup_size(1) fn main() { out[0] = f32(u.n); }',
    );
    await E.rt().compile(k);
    const file = path.join(dir, 'sub', `${k.key}.wgsl`);
    assert.ok(existsSync(file), file);
    assert.is(readFileSync(file, 'utf8'), k.code);
  } finally {
    if (before === undefined) delete process.env.SMKD_DUMP_SHADERS;
    else process.env.SMKD_DUMP_SHADERS = before;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
