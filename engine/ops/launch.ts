// The one way ops hand work to the runtime: kernel, uniforms, output and inputs, and a label for errors.
import { bindingDTypes, packUniforms, uniformLayout, type KernelSource, type UniformValues } from '../../kernels/kernel.js';
import { rt } from '../runtime.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';

/** Label naming the op and its operand shapes, as shown in WebGPU error messages. */
export function opLabel(op: string, inputs: readonly Tensor[]): string {
  return `${op}(${inputs.map((t) => fmt(t.shape)).join(', ')})`;
}

/**
 * The uniform block of one dispatch of `kernel`: `values` packed by its declaration (the field names
 * of its `struct U`), or raw bytes for a kernel without one. Errors name the kernel and `label`.
 */
export function kernelUniforms(kernel: KernelSource, values: UniformValues | ArrayBuffer, label: string): ArrayBuffer {
  const decl = kernel.decl;
  if (values instanceof ArrayBuffer) {
    const need = decl ? uniformLayout(decl.uniforms).size : 0;
    if (values.byteLength < need) throw new Error(`${label}: kernel ${kernel.key} needs a uniform block of ${need} bytes, given ${values.byteLength}`);
    return values;
  }
  if (!decl) throw new Error(`${label}: kernel ${kernel.key} has no declaration to pack named uniforms with`);
  try {
    return packUniforms(decl, values);
  } catch (e) {
    throw new Error(`${label}: kernel ${kernel.key}: ${(e as Error).message}`);
  }
}

/** Record one dispatch: binding 1.. are `outputs` then `inputs`, in order, as `kernel.decl` declares them. */
export function launch(
  kernel: KernelSource,
  uniforms: UniformValues | ArrayBuffer,
  outputs: readonly Tensor[],
  inputs: readonly Tensor[],
  groups: [number, number, number],
  label: string,
): void {
  for (const t of inputs) t.assertAlive(`pass to ${label}`);
  const u = kernelUniforms(kernel, uniforms, label);
  if (kernel.decl) checkBindings(kernel, outputs, inputs, label);
  rt().dispatch(
    kernel,
    u,
    [...outputs, ...inputs].map((t) => t.binding),
    groups,
    label,
  );
}

function checkBindings(kernel: KernelSource, outputs: readonly Tensor[], inputs: readonly Tensor[], label: string): void {
  const decl = kernel.decl!;
  const want = bindingDTypes(decl);
  const side = (what: 'outputs' | 'inputs', given: readonly Tensor[]): void => {
    const names = decl[what].map((b) => b.name);
    if (given.length !== names.length) {
      throw new Error(`${label}: kernel ${kernel.key} takes ${names.length} ${what} (${names.join(', ')}), given ${given.length}`);
    }
    given.forEach((t, i) => {
      const d = want[what][i];
      if (d && t.dtype !== d) throw new Error(`${label}: kernel ${kernel.key} ${what.slice(0, -1)} ${names[i]} is ${d}, given ${t.describe()}`);
    });
  };
  side('outputs', outputs);
  side('inputs', inputs);
}

export function assertFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new Error(`${op}: expected an f32 tensor, got ${t.describe()}`);
}
