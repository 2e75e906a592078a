// Model checkpoints as files: the Node-only half of model/checkpoint.ts (which works on bytes).
import { readSafetensors, writeSafetensors, type Module, type NamedArray } from '../../engine/index.js';
import { exportStateDict, fitStateDict } from '../checkpoint.js';

/** Write a module's weights to a safetensors file under PyTorch's names (atomically). */
export async function saveModel(path: string, module: Module, metadata: Record<string, string> = {}): Promise<void> {
  const sd = await exportStateDict(module);
  await writeSafetensors(
    path,
    [...sd].map(([k, v]): [string, NamedArray] => [k, { data: v.data, shape: v.shape }]),
    metadata,
  );
}

/**
 * Load a safetensors checkpoint into `module`. Strict by default: every missing, unexpected and
 * mis-shaped key is listed in the error. Non-strict returns what was skipped (e.g. a backbone-only
 * file into a backbone+head network leaves the head as initialised).
 */
export async function loadModel(path: string, module: Module, strict = true): Promise<{ missing: string[]; unexpected: string[] }> {
  const file = await readSafetensors(path);
  try {
    return module.loadStateDict(fitStateDict(file, module), strict);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
