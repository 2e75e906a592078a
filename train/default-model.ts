// The model that ships in the package (models/, made by scripts/ship-model.ts from a training run):
// the default of `smkd classify`, `eval`, `embed` and `show` when no checkpoint is given.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { packageFolder } from './data/omniglot-pack.js';

/** The shipped teacher backbone's file name in models/. */
export const DEFAULT_MODEL_FILE = 'omniglot-vit.safetensors';

/** models/ of this package (from the source tree or from dist/). */
export function modelsDir(): string {
  const dir = packageFolder('models', 'README.md');
  if (!dir) throw new Error('the shipped model (models/) is not in this installation; give a checkpoint');
  return dir;
}

/** The shipped model's file, or an error saying it is missing. */
export function defaultModel(): string {
  const file = path.join(modelsDir(), DEFAULT_MODEL_FILE);
  if (!existsSync(file)) throw new Error(`the shipped model ${file} is missing from this installation; give a checkpoint (a run directory or a .safetensors file)`);
  return file;
}

/**
 * Whether a command-line path names a model (a .safetensors file, a run directory with latest.json,
 * or a checkpoint directory with teacher/student weights) rather than an image or image folder.
 */
export function isModelPath(p: string): boolean {
  const s = existsSync(p) ? statSync(p) : undefined;
  // A path that does not exist is taken for a model unless it names an image, so that its error says "checkpoint ...: no such file or folder".
  if (!s) return !/\.(png|jpe?g|webp)$/i.test(p);
  if (s.isFile()) return /\.safetensors$/i.test(p);
  return ['latest.json', 'teacher.safetensors', 'student.safetensors'].some((f) => existsSync(path.join(p, f)));
}

/**
 * A command's positional arguments split into the model and the rest: the first argument when it names
 * a model (isModelPath), else the shipped model.
 */
export function modelAndInputs(args: readonly string[]): { model: string; inputs: string[] } {
  if (args.length > 0 && isModelPath(args[0])) return { model: args[0], inputs: args.slice(1) };
  return { model: defaultModel(), inputs: [...args] };
}
