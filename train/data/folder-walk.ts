// Walking image folders safely: links to folders are followed (a dataset may be assembled from links),
// but every folder is read once, by its real path, so a link back to a parent (a loop) or a second way
// to the same folder cannot make a walk endless or list an image twice.
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** The image types the image-folder datasets, `embed` and `classify` read. */
export const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp']);

/** Folders nested deeper than this below a walk's root are refused (no real dataset comes close). */
export const MAX_FOLDER_DEPTH = 64;

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** One walk over one or more roots: the folders it has read, and the folder links it passed over. */
export class FolderWalk {
  private readonly seen = new Set<string>();
  /** Folders (as reached) not read because their real path was read already: link loops and second ways. */
  readonly skipped: string[] = [];

  /** Whether `dir` is read now: false, and noted in `skipped`, when its real path was read already. */
  async enter(dir: string, depth: number): Promise<boolean> {
    if (depth > MAX_FOLDER_DEPTH) throw new Error(`${dir}: folders nested more than ${MAX_FOLDER_DEPTH} deep`);
    const real = await fs.realpath(dir);
    if (this.seen.has(real)) {
      this.skipped.push(dir);
      return false;
    }
    this.seen.add(real);
    return true;
  }

  /** The sub-folders (links to folders included) and image files of `dir`, by name; hidden entries skipped. */
  async entries(dir: string): Promise<{ dirs: string[]; files: string[] }> {
    const dirs: string[] = [];
    const files: string[] = [];
    for (const e of await fs.readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const full = path.join(dir, e.name);
      const isDir = e.isDirectory() || (e.isSymbolicLink() && (await fs.stat(full).catch(() => null))?.isDirectory());
      if (isDir) dirs.push(e.name);
      else if (IMAGE_EXT.has(path.extname(e.name).toLowerCase())) files.push(e.name);
    }
    return { dirs: dirs.sort(byName), files: files.sort(byName) };
  }

  /** A warning naming the folders passed over, or undefined when there were none. */
  warning(where: string): string | undefined {
    if (this.skipped.length === 0) return undefined;
    const some = this.skipped.slice(0, 3).join(', ');
    return `${where}: warning: skipped ${this.skipped.length} folder link(s) to a folder already read (a loop, or a second way to it): ${some}${this.skipped.length > 3 ? ', ...' : ''}`;
  }
}
