// What every kernel family returns: WGSL source with a cache key and its declared interface (uniforms
// and bindings, from which the WGSL header and the uniform packing are both generated), and dispatch
// arithmetic helpers.

/** WGSL scalar type of a tensor dtype. */
export type DType = 'f32' | 'i32' | 'u32';

type Vec4 = 'vec4u' | 'vec4i' | 'vec4f';
/** Types a uniform field may have (host-shareable in the uniform address space, no vec3). */
export type UniformType = DType | 'vec2u' | 'vec2i' | 'vec2f' | Vec4 | `array<${Vec4}, ${number}>`;

/** A storage binding: `array<type>` named `name`; `dtype` is the tensor dtype launch() expects there. */
export interface BindingDecl {
  name: string;
  /** Element type of the WGSL array: a scalar, a vector (`vec4f`, `vec4<f32>`), or a struct declared in the body. */
  type: string;
  /** Outputs default to read_write, inputs to read. */
  access?: 'read' | 'read_write';
  /** The tensor dtype bound here; derived from `type` when it names one (f32, vec4f, ...), unchecked for structs. */
  dtype?: DType;
}

/**
 * A kernel's interface, as data: the uniform block `u` (binding 0) field by field, then the storage
 * bindings, numbered from 1: outputs first, then inputs, the order launch() binds them in.
 */
export interface KernelDecl {
  uniforms: readonly (readonly [name: string, type: UniformType])[];
  outputs: readonly BindingDecl[];
  inputs: readonly BindingDecl[];
}

/** A compiled-once unit: `key` names the static parameters that produced `code`. */
export interface KernelSource {
  key: string;
  code: string;
  /** The interface `code`'s header was generated from; launch() checks dispatches against it. */
  decl?: KernelDecl;
}

/** Values of a uniform block: a number per scalar field, up to its component count per vector/array field. */
export type UniformValues = Record<string, number | readonly number[]>;

interface FieldLayout {
  name: string;
  type: UniformType;
  /** Byte offset in the block. */
  offset: number;
  /** Components (32-bit words) the field holds. */
  words: number;
  kind: DType;
}

const KIND: Record<string, DType> = { u: 'u32', i: 'i32', f: 'f32' };

const layouts = new WeakMap<KernelDecl['uniforms'], { fields: FieldLayout[]; size: number }>();

/** Byte offsets of a uniform block's fields under WGSL's alignment rules, and its size (a multiple of 16). */
export function uniformLayout(fields: KernelDecl['uniforms']): { fields: FieldLayout[]; size: number } {
  let layout = layouts.get(fields);
  if (!layout) layouts.set(fields, (layout = computeLayout(fields)));
  return layout;
}

function computeLayout(fields: KernelDecl['uniforms']): { fields: FieldLayout[]; size: number } {
  let end = 0;
  const out: FieldLayout[] = [];
  for (const [name, type] of fields) {
    let align: number;
    let words: number;
    let kind: DType;
    const arr = /^array<vec4([uif]), (\d+)>$/.exec(type);
    const vec = /^vec([24])([uif])$/.exec(type);
    if (arr) {
      // Arrays in the uniform address space need a 16-byte stride: vec4 elements have it.
      [align, words, kind] = [16, 4 * Number(arr[2]), KIND[arr[1]!]!];
    } else if (vec) {
      const n = Number(vec[1]);
      [align, words, kind] = [n * 4, n, KIND[vec[2]!]!];
    } else if (type === 'u32' || type === 'i32' || type === 'f32') {
      [align, words, kind] = [4, 1, type];
    } else {
      throw new Error(`uniform field ${name}: unsupported type ${type}`);
    }
    const offset = Math.ceil(end / align) * align;
    out.push({ name, type, offset, words, kind });
    end = offset + words * 4;
  }
  return { fields: out, size: Math.max(16, Math.ceil(end / 16) * 16) };
}

// Field names of a layout, for packUniforms' check of every launch's values.
const namesOf = new WeakMap<FieldLayout[], Set<string>>();
function fieldNames(fields: FieldLayout[]): Set<string> {
  let n = namesOf.get(fields);
  if (!n) namesOf.set(fields, (n = new Set(fields.map((f) => f.name))));
  return n;
}

/** Lay `values` out as `decl`'s uniform block; throws naming a missing, extra or ill-typed field. */
export function packUniforms(decl: Pick<KernelDecl, 'uniforms'>, values: UniformValues): ArrayBuffer {
  const { fields, size } = uniformLayout(decl.uniforms);
  const names = fieldNames(fields);
  const extra = Object.keys(values).filter((k) => !names.has(k));
  if (extra.length) throw new Error(`uniforms: unknown field(s) ${extra.join(', ')} (declared: ${[...names].join(', ')})`);
  const buf = new ArrayBuffer(size);
  const views = { u32: new Uint32Array(buf), i32: new Int32Array(buf), f32: new Float32Array(buf) };
  for (const f of fields) {
    const v = values[f.name];
    if (v === undefined) throw new Error(`uniforms: missing field ${f.name} (${f.type})`);
    const list = typeof v === 'number' ? [v] : v;
    if (typeof v === 'number' ? f.words !== 1 : f.words === 1) throw new Error(`uniforms: field ${f.name} (${f.type}) given ${typeof v === 'number' ? 'a number' : 'an array'}`);
    if (list.length > f.words) throw new Error(`uniforms: field ${f.name} (${f.type}) holds ${f.words} values, given ${list.length}`);
    list.forEach((x, i) => {
      if (f.kind !== 'f32' && !Number.isInteger(x)) throw new Error(`uniforms: field ${f.name} (${f.type}) given the non-integer ${x}`);
      views[f.kind][f.offset / 4 + i] = x;
    });
  }
  return buf;
}

/** The WGSL element type's tensor dtype, when it names one. */
function elementDType(b: BindingDecl): DType | undefined {
  if (b.dtype) return b.dtype;
  const m = /^(?:vec[234](?:<(f32|i32|u32)>|([fiu]))|(f32|i32|u32))$/.exec(b.type);
  if (!m) return undefined;
  return (m[1] ?? m[3] ?? KIND[m[2]!]) as DType;
}

/** The tensor dtypes a kernel's outputs and inputs expect (undefined where the element is a struct). */
export function bindingDTypes(decl: KernelDecl): BindingDTypes {
  let d = dtypesOf.get(decl);
  if (!d) dtypesOf.set(decl, (d = { outputs: decl.outputs.map(elementDType), inputs: decl.inputs.map(elementDType) }));
  return d;
}

type BindingDTypes = { readonly outputs: readonly (DType | undefined)[]; readonly inputs: readonly (DType | undefined)[] };
// Checked on every launch: worked out once per declaration.
const dtypesOf = new WeakMap<KernelDecl, BindingDTypes>();

/** The WGSL header of `decl`: `struct U`, its binding 0, and the storage bindings 1.. (outputs, then inputs). */
export function kernelHeader(decl: KernelDecl): string {
  if (decl.uniforms.length === 0) throw new Error('kernelHeader: a kernel needs at least one uniform field (binding 0 is always bound)');
  const binding = (b: BindingDecl, i: number, access: 'read' | 'read_write'): string => `@group(0) @binding(${i}) var<storage, ${b.access ?? access}> ${b.name}: array<${b.type}>;`;
  return [
    `struct U { ${decl.uniforms.map(([n, t]) => `${n}: ${t}`).join(', ')} }`,
    '@group(0) @binding(0) var<uniform> u: U;',
    ...decl.outputs.map((b, i) => binding(b, 1 + i, 'read_write')),
    ...decl.inputs.map((b, i) => binding(b, 1 + decl.outputs.length + i, 'read')),
  ].join('\n');
}

/**
 * A kernel whose WGSL is the header generated from `decl` followed by `body` (directives such as
 * `enable subgroups;` at the start of `body` stay first, as WGSL requires).
 */
export function defineKernel(key: string, decl: KernelDecl, body: string): KernelSource {
  const m = /^\s*((?:enable [^;]+;\s*)*)/.exec(body)!;
  const directives = m[1]!.trim();
  return { key, code: `${directives ? `${directives}\n` : ''}${kernelHeader(decl)}\n${body.slice(m[0].length)}`, decl };
}

const built = new Map<string, KernelSource>();

/**
 * The kernel `make` builds, built once per `id` (the factory's name and arguments): kernel sources are
 * pure functions of their arguments, and generating the WGSL each launch cost the omniglot step's
 * recording about 0.5 ms per matmul (a third of its JavaScript time, `node --cpu-prof`).
 */
export function memoKernel(id: string, make: () => KernelSource): KernelSource {
  let k = built.get(id);
  if (!k) built.set(id, (k = make()));
  return k;
}

/** Threads per workgroup used by the one-dimensional kernels. */
export const WG = 256;

/** Workgroups per dimension allowed by WebGPU's default limit. */
export const MAX_GROUPS = 65535;

/** `n` workgroups over two grid dimensions, `[min(n, 65535), ceil(n / 65535)]`; see `spillIndex`. */
export function spill(n: number): [number, number] {
  return [Math.min(n, MAX_GROUPS), Math.ceil(n / MAX_GROUPS)];
}

/** `spill(n)` as a launch grid in x and y. */
export function spillGroups(n: number): [number, number, number] {
  return [...spill(n), 1];
}

/** WGSL for the workgroup count recovered from a `spill` over `lo` (e.g. `wid.y`) and `hi` (`wid.z`). */
export function spillIndex(lo: string, hi: string): string {
  return `(${lo} + ${hi} * ${MAX_GROUPS}u)`;
}

/**
 * WGSL of a workgroup tree reduction over `lanes` entries of `buf`, `stride` apart from `slot`: halving
 * steps with a barrier each, leaving the result at `slot` of lane 0. `lanes` is a power of two, or a
 * WGSL expression for one when the count is a uniform (the row kernels choose it per launch). The caller
 * has written `buf[slot]` and passed a barrier; `lane` is the invocation's position in the tree.
 */
export function treeReduce(o: { buf: string; slot: string; lane: string; lanes: number | string; stride?: number; combine: (a: string, b: string) => string }): string {
  const other = `${o.buf}[${o.slot} + s${o.stride && o.stride > 1 ? ` * ${o.stride}u` : ''}]`;
  const first = typeof o.lanes === 'number' ? `${o.lanes / 2}u` : `(${o.lanes}) >> 1u`;
  return `for (var s = ${first}; s > 0u; s >>= 1u) {
    if (${o.lane} < s) { ${o.buf}[${o.slot}] = ${o.combine(`${o.buf}[${o.slot}]`, other)}; }
    workgroupBarrier();
  }`;
}

/**
 * A 1-D launch of `n` threads as a 2-D grid (a single dimension holds at most 65535 groups).
 * The shader recovers the linear index with `linearIndex()`.
 */
export function grid1d(n: number, wg = WG): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  if (groups <= MAX_GROUPS) return [groups, 1, 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y, 1];
}

/** WGSL expression for the linear thread index of a `grid1d` launch. */
export function linearIndex(wg = WG): string {
  return `(gid.x + gid.y * (nwg.x * ${wg}u))`;
}

/** Entry-point signature shared by 1-D kernels. */
export function entry1d(wg = WG): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u)`;
}
