import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bindingDTypes, defineKernel, kernelHeader, packUniforms, spill, spillGroups, spillIndex, uniformLayout, type KernelDecl } from '../../kernels/kernel.js';

const test = suite('kernel declarations');

const offsets = (decl: KernelDecl['uniforms']): Record<string, number> => Object.fromEntries(uniformLayout(decl).fields.map((f) => [f.name, f.offset]));

test('uniform layout follows WGSL alignment: vec2 to 8, vec4 and arrays of vec4 to 16, size a multiple of 16', () => {
  const decl: KernelDecl['uniforms'] = [
    ['a', 'u32'],
    ['v', 'vec4u'],
    ['b', 'f32'],
    ['w', 'vec2f'],
    ['arr', 'array<vec4f, 2>'],
    ['c', 'i32'],
  ];
  assert.equal(offsets(decl), { a: 0, v: 16, b: 32, w: 40, arr: 48, c: 80 });
  assert.is(uniformLayout(decl).size, 96);
  // The matmul block: three scalars, then vec4s padded to 16 without a hand-written pad field.
  assert.equal(
    offsets([
      ['M', 'u32'],
      ['N', 'u32'],
      ['K', 'u32'],
      ['batch', 'vec4u'],
    ]),
    { M: 0, N: 4, K: 8, batch: 16 },
  );
  assert.is(uniformLayout([['n', 'u32']]).size, 16);
  assert.is(
    uniformLayout([
      ['a', 'f32'],
      ['b', 'f32'],
      ['c', 'f32'],
      ['d', 'f32'],
      ['e', 'f32'],
    ]).size,
    32,
  );
});

test('packUniforms writes each field with its type at its offset, zero-filling short vectors', () => {
  const decl = {
    uniforms: [
      ['n', 'u32'],
      ['s', 'f32'],
      ['i', 'i32'],
      ['v', 'vec4u'],
      ['arr', 'array<vec4u, 2>'],
    ],
  } as const;
  const buf = packUniforms(decl, { n: 7, s: 0.5, i: -3, v: [1, 2], arr: [9, 8, 7, 6, 5] });
  assert.is(buf.byteLength, 64);
  const u32 = new Uint32Array(buf);
  assert.is(u32[0], 7);
  assert.is(new Float32Array(buf)[1], 0.5);
  assert.is(new Int32Array(buf)[2], -3);
  assert.equal([...u32.slice(4, 8)], [1, 2, 0, 0]);
  assert.equal([...u32.slice(8, 16)], [9, 8, 7, 6, 5, 0, 0, 0]);
});

test('packUniforms names a missing, unknown or ill-shaped field', () => {
  const decl = {
    uniforms: [
      ['rows', 'u32'],
      ['eps', 'f32'],
      ['v', 'vec4u'],
    ],
  } as const;
  assert.throws(() => packUniforms(decl, { rows: 1, v: [] }), /missing field eps/);
  assert.throws(() => packUniforms(decl, { rows: 1, eps: 0, v: [], chunk: 2 }), /unknown field\(s\) chunk/);
  assert.throws(() => packUniforms(decl, { rows: 1, eps: 0, v: [1, 2, 3, 4, 5] }), /field v \(vec4u\) holds 4 values, given 5/);
  assert.throws(() => packUniforms(decl, { rows: [1], eps: 0, v: [] }), /field rows \(u32\) given an array/);
  assert.throws(() => packUniforms(decl, { rows: 1.5, eps: 0, v: [] }), /field rows \(u32\) given the non-integer 1.5/);
});

test('the header declares struct U, binding 0 and numbered bindings: outputs from 1, then inputs', () => {
  const decl: KernelDecl = {
    uniforms: [
      ['n', 'u32'],
      ['a', 'f32'],
    ],
    outputs: [{ name: 'out', type: 'vec4f' }],
    inputs: [
      { name: 'x', type: 'f32' },
      { name: 'idx', type: 'i32' },
      { name: 'state', type: 'f32', access: 'read_write' },
    ],
  };
  assert.is(
    kernelHeader(decl),
    `struct U { n: u32, a: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<i32>;
@group(0) @binding(4) var<storage, read_write> state: array<f32>;`,
  );
  assert.equal(bindingDTypes({ ...decl, inputs: [...decl.inputs, { name: 'c', type: 'Chunk' }, { name: 'v', type: 'vec4<u32>' }] }), {
    outputs: ['f32'],
    inputs: ['f32', 'i32', 'f32', undefined, 'u32'],
  });
  assert.throws(() => kernelHeader({ ...decl, uniforms: [] }), /at least one uniform/);
});

test('defineKernel keeps enable directives first', () => {
  const k = defineKernel('k', { uniforms: [['n', 'u32']], outputs: [], inputs: [] }, 'enable subgroups;\nfn f() {}');
  assert.ok(k.code.startsWith('enable subgroups;\nstruct U { n: u32 }'), k.code);
  assert.ok(k.code.endsWith('\nfn f() {}'));
});

test('grid spill: counts past 65535 go to the next dimension', () => {
  assert.equal(spill(10), [10, 1]);
  assert.equal(spill(65535), [65535, 1]);
  assert.equal(spill(65536), [65535, 2]);
  assert.equal(spillGroups(200000), [65535, 4, 1]);
  assert.is(spillIndex('wid.y', 'wid.z'), '(wid.y + wid.z * 65535u)');
});

test.run();
