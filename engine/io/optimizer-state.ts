// AdamW's state in one safetensors file, by parameter name as torch's state_dict keeps it: `exp_avg.<name>`
// and `exp_avg_sq.<name>` (float32) and `step.<name>` (int64). The trainer's checkpoints use the same layout
// (optimizer.safetensors), so a checkpoint's optimizer file loads here too. Files: engine/node/files.ts.
import type { AdamW } from '../optim/adamw.js';
import { toFloat32, type NamedArray, type SafeFile } from './safetensors.js';

/** The optimizer's state as safetensors entries. */
export async function optimizerTensors(optimizer: AdamW): Promise<[string, NamedArray][]> {
  const s = await optimizer.stateDict();
  const out: [string, NamedArray][] = [];
  for (const [k, v] of s.exp_avg) out.push([`exp_avg.${k}`, { data: v, shape: [v.length] }]);
  for (const [k, v] of s.exp_avg_sq) out.push([`exp_avg_sq.${k}`, { data: v, shape: [v.length] }]);
  for (const [k, v] of s.step) out.push([`step.${k}`, { data: BigInt64Array.of(BigInt(v)), shape: [] }]);
  return out;
}

/** Restore state read from such a file; `skip(name)` leaves a parameter's state alone (e.g. a new head). */
export function loadOptimizerTensors(optimizer: AdamW, file: SafeFile, skip: (name: string) => boolean = () => false): void {
  const pick = (prefix: string): Map<string, Float32Array> =>
    new Map([...file.tensors].filter(([k]) => k.startsWith(prefix) && !skip(k.slice(prefix.length))).map(([k, v]) => [k.slice(prefix.length), toFloat32(v)]));
  const step = new Map([...pick('step.')].map(([k, v]) => [k, v[0]]));
  optimizer.loadStateDict({ step, exp_avg: pick('exp_avg.'), exp_avg_sq: pick('exp_avg_sq.') });
}
