// Output files named on the command line (-o, --json) are checked before any work: their folder must
// exist and the path must not be a folder (a rename onto a folder fails only at the end, after the work).
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

/** Throws, naming the command and the flag, when `file` cannot be written as a file. */
export function checkOutputFile(what: string, flag: string, file: string): void {
  const resolved = path.resolve(file);
  const dir = path.dirname(resolved);
  if (!existsSync(dir)) throw new Error(`${what}: ${flag} ${file}: the folder ${dir} does not exist`);
  if (existsSync(resolved) && statSync(resolved).isDirectory())
    throw new Error(`${what}: ${flag} ${file} is a folder; give a file name (e.g. ${path.join(file, path.basename(file) || 'out')}${path.extname(file) ? '' : '.out'})`);
}
