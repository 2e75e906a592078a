// What every kernel family returns: WGSL source with a cache key, and dispatch arithmetic helpers.

/** A compiled-once unit: `key` names the static parameters that produced `code`. */
export interface KernelSource {
  key: string;
  code: string;
}

/** Threads per workgroup used by the one-dimensional kernels. */
export const WG = 256;

/** Workgroups per dimension allowed by WebGPU's default limit. */
export const MAX_GROUPS = 65535;

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

/** WGSL scalar type of a tensor dtype. */
export type DType = 'f32' | 'i32' | 'u32';
