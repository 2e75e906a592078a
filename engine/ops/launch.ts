// The one way ops hand work to the runtime: kernel, uniforms, output and inputs, and a label for errors.
import type { KernelSource } from '../../kernels/kernel.js';
import { rt } from '../runtime.js';
import { fmt } from '../shape.js';
import type { Tensor } from '../tensor.js';

/** Label naming the op and its operand shapes, as shown in WebGPU error messages. */
export function opLabel(op: string, inputs: readonly Tensor[]): string {
  return `${op}(${inputs.map((t) => fmt(t.shape)).join(', ')})`;
}

/** Record one dispatch: binding 1.. are `outputs` then `inputs`, in order. */
export function launch(
  kernel: KernelSource,
  uniforms: ArrayBuffer,
  outputs: readonly Tensor[],
  inputs: readonly Tensor[],
  groups: [number, number, number],
  label: string,
): void {
  for (const t of inputs) t.assertAlive(`pass to ${label}`);
  rt().dispatch(kernel, uniforms, [...outputs, ...inputs].map((t) => t.binding), groups, label);
}

/** Pack 32-bit words (numbers are written as u32 unless listed in `floats`) into a uniform block. */
export function words(values: readonly number[], floats: readonly number[] = []): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil(values.length / 4) * 16));
  const u32 = new Uint32Array(buf);
  const f32 = new Float32Array(buf);
  values.forEach((v, i) => {
    if (floats.includes(i)) f32[i] = v;
    else u32[i] = v;
  });
  return buf;
}

export function assertFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new Error(`${op}: expected an f32 tensor, got ${t.describe()}`);
}
