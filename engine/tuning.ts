// Which kernel variants the engine picks: those tuned for a software adapter (lavapipe: the "GPU" is
// the CPU's SIMD lanes) or those for a hardware GPU. SMKD_HARDWARE_PATHS=1 makes a software adapter
// take the hardware paths, so CI (which has no GPU) runs the code a GPU user gets.
import { settingOn } from './platform.js';
import { rt } from './runtime.js';

/** True when the adapter is a software one and SMKD_HARDWARE_PATHS does not ask for the GPU paths. */
export function softwarePaths(): boolean {
  return rt().gpu.info.isSoftware && !hardwarePathsForced();
}

/** SMKD_HARDWARE_PATHS=1 (or 'true'): take the hardware-GPU kernel variants whatever the adapter. */
export function hardwarePathsForced(): boolean {
  return settingOn('SMKD_HARDWARE_PATHS');
}

/** The adapter's subgroup size when it has the subgroups feature and one fixed size (4 to 64 lanes). */
export function fixedSubgroupSize(): number | undefined {
  const gpu = rt().gpu;
  const { subgroupMinSize: lo, subgroupMaxSize: hi } = gpu.info;
  return gpu.hasSubgroups && lo !== undefined && lo === hi && lo >= 4 && lo <= 64 ? lo : undefined;
}
