// Output files named on the command line (-o, --json) are checked before any work: their folder must
// exist and the path must not be a folder (a rename onto a folder fails only at the end, after the work).
import { existsSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Throws, naming the command and the flag, when `file` cannot be written as a file. */
export function checkOutputFile(what: string, flag: string, file: string): void {
  const resolved = path.resolve(file);
  const dir = path.dirname(resolved);
  if (!existsSync(dir)) throw new Error(`${what}: ${flag} ${file}: the folder ${dir} does not exist`);
  if (existsSync(resolved) && statSync(resolved).isDirectory())
    throw new Error(`${what}: ${flag} ${file} is a folder; give a file name (e.g. ${path.join(file, path.basename(file) || 'out')}${path.extname(file) ? '' : '.out'})`);
}

/** What a failed write or folder creation means, in words, with the path and what to do. */
export function fsErrorMessage(e: unknown, what: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOSPC':
      return `${what}: no space left on the device; nothing was kept of the partial write. Free some space and run the command again`;
    case 'EDQUOT':
      return `${what}: the disk quota is used up; nothing was kept of the partial write`;
    case 'EROFS':
      return `${what}: the file system is read-only; give a path on a writable one`;
    case 'EACCES':
    case 'EPERM':
      return `${what}: permission denied`;
    default:
      return `${what}: ${(e as Error).message}`;
  }
}

/**
 * Write an output file whole or not at all: a temporary file beside it, renamed into place; on any
 * failure (a full disk) the temporary is removed and the error says what happened, so no empty or
 * half file is left where the output should be.
 */
export async function writeOutputFile(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new Error(fsErrorMessage(e, `writing ${file}`));
  }
}
