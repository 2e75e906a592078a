// Model weights in safetensors with the PyTorch reference's key names (docs/algorithm.md §1.10): export so that
// `safetensors.torch.load_file` + `load_state_dict` takes them with no renaming, and import DINO /
// iBOT / SMKD / timm ViT state dicts saved as safetensors.
import {
  isFloat,
  parseSafetensors,
  serializeSafetensors,
  toFloat32,
  toWeights,
  type SafeTensor,
  type NamedArray,
  type SafeFile,
  type HostTensor,
  type Module,
} from '../engine/api.js';

/** Rename the reference code's / PyTorch's keys to ours (docs/algorithm.md §1.10): drop `module.`, map torch's new weight-norm names to weight_g/weight_v. */
export function normalizeKey(key: string): string {
  return key
    .replace(/^module\./, '')
    .replace(/parametrizations\.weight\.original0$/, 'weight_g')
    .replace(/parametrizations\.weight\.original1$/, 'weight_v');
}

/** The state dict of a module for PyTorch: the shared head's last layer is also written as last_layer2. */
export async function exportStateDict(module: Module): Promise<Map<string, HostTensor>> {
  const sd = await module.stateDict();
  for (const [k, v] of [...sd]) {
    // The reference code registers the shared last layer twice; safetensors cannot alias, so write a copy (docs/algorithm.md §2.4).
    if (k.includes('head.last_layer.') || k.startsWith('last_layer.')) sd.set(k.replace('last_layer.', 'last_layer2.'), v);
  }
  return sd;
}

/** A module's weights as safetensors bytes under PyTorch's names (to download, store or send; files: model/node/files.ts). */
export async function modelBytes(module: Module, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const sd = await exportStateDict(module);
  return serializeSafetensors(
    [...sd].map(([k, v]): [string, NamedArray] => [k, { data: v.data, shape: v.shape }]),
    metadata,
  );
}

/**
 * Host tensors of a safetensors file under our names, fitted to `module`: keys normalised, the
 * `last_layer2` aliases checked against `last_layer` and dropped, and a `backbone.` prefix added or
 * removed when the file holds a bare backbone for a backbone+head module or the reverse.
 */
export function fitStateDict(file: SafeFile, module: Module): Map<string, HostTensor> {
  const ours = new Set(module.arena.entries.map((e) => e.name));
  const raw = new Map<string, HostTensor>();
  // Floating-point tensors must be finite; integer ones (a mask, a counter) are converted, and refused below if they would fill a weight.
  const stored = new Map<string, SafeTensor>();
  for (const [k, t] of file.tensors) {
    raw.set(normalizeKey(k), { data: isFloat(t.dtype) ? toWeights(k, t, 'loading weights') : toFloat32(t), shape: t.shape });
    stored.set(normalizeKey(k), t);
  }
  for (const [k, v] of [...raw]) {
    if (!k.includes('last_layer2.')) continue;
    const twin = raw.get(k.replace('last_layer2.', 'last_layer.'));
    if (twin && (twin.data.length !== v.data.length || twin.data.some((x, i) => x !== v.data[i]))) {
      throw new Error(`loading weights: ${k} differs from its shared twin ${k.replace('last_layer2.', 'last_layer.')} (unshared heads are not supported)`);
    }
    raw.delete(k);
  }
  const keys = [...raw.keys()];
  const hits = (f: (k: string) => string): number => keys.filter((k) => ours.has(f(k))).length;
  const candidates: ((k: string) => string)[] = [(k) => k, (k) => `backbone.${k}`, (k) => k.replace(/^backbone\./, '')];
  const best = candidates.reduce((a, b) => (hits(b) > hits(a) ? b : a));
  for (const k of keys) if (ours.has(best(k))) toWeights(k, stored.get(k)!, 'loading weights');
  return new Map(keys.map((k) => [best(k), raw.get(k)!]));
}

/**
 * Load safetensors bytes into `module` (`what` names them in errors: a file name or URL). Strict by
 * default: every missing, unexpected and mis-shaped key is listed in the error. Non-strict returns what
 * was skipped (e.g. a backbone-only file into a backbone+head network leaves the head as initialised).
 */
export function loadModelBytes(bytes: Uint8Array, module: Module, strict = true, what = 'safetensors data'): { missing: string[]; unexpected: string[] } {
  const file = parseSafetensors(bytes, what);
  try {
    return module.loadStateDict(fitStateDict(file, module), strict);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}
