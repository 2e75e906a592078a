// Safetensors files and the optimizer's state on disk: the Node-only half of engine/io (the byte
// formats themselves are engine/io/safetensors.ts and engine/io/optimizer-state.ts, which a page can use).
import { open, readFile, rename, rm } from 'node:fs/promises';
import type { AdamW } from '../optim/adamw.js';
import { loadOptimizerTensors, optimizerTensors } from '../io/optimizer-state.js';
import { parseSafetensors, serializeSafetensors, type NamedArray, type SafeFile } from '../io/safetensors.js';

/** Read and parse a safetensors file; errors name the file. */
export async function readSafetensors(path: string): Promise<SafeFile> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new Error(`cannot read safetensors file ${path}: ${(e as Error).message}`);
  }
  return parseSafetensors(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), path);
}

/**
 * Write atomically: a temporary file renamed into place, so a crash never leaves a half file; a failed
 * write (a full disk) removes its temporary and names the file.
 */
export async function writeSafetensors(path: string, tensors: Iterable<[string, NamedArray]>, metadata: Record<string, string> = {}): Promise<void> {
  const bytes = serializeSafetensors(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOSPC' ? 'no space left on the device' : code === 'EROFS' ? 'the file system is read-only' : (e as Error).message;
    throw Object.assign(new Error(`writing ${path}: ${why}`), { code });
  }
}

/** Write the optimizer's state to `path` (one readback, written atomically). */
export async function saveOptimizer(path: string, optimizer: AdamW): Promise<void> {
  await writeSafetensors(path, await optimizerTensors(optimizer));
}

/** Load the optimizer's state from `path`; names the file when a parameter's state does not fit. */
export async function loadOptimizer(path: string, optimizer: AdamW): Promise<void> {
  const file = await readSafetensors(path);
  try {
    loadOptimizerTensors(optimizer, file);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
