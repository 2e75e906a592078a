// One trainer per run directory: a lock file (`<run>/lock`, created exclusively) that names the process
// holding it. A second trainer on the same --out is refused before it reads or deletes anything; a lock
// whose process is gone (kill -9, a crash, a reboot) is taken over, so a killed run still resumes.
import { constants, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { access, link, mkdir, open, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { fsErrorMessage } from './output-file.js';
import path from 'node:path';

export const LOCK_FILE = 'lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

/** Whether process `pid` of this machine is alive (a signal-0 probe: EPERM means alive, another user's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(file, 'utf8')) as Partial<LockInfo>;
    return typeof info.pid === 'number' && typeof info.host === 'string' ? { pid: info.pid, host: info.host, started: String(info.started ?? '?') } : undefined;
  } catch {
    // Unreadable or half-written (its writer died between create and write): nobody can be proven to hold it.
    return undefined;
  }
}

/**
 * Why the run folder could not be made, in words: a recursive mkdir on a read-only file system reports
 * ENOENT or EROFS for the folder, so the nearest existing folder above it is tested for writing.
 */
async function mkdirProblem(e: unknown, runDir: string): Promise<string> {
  let above = path.dirname(path.resolve(runDir));
  while (
    !(await stat(above).then(
      () => true,
      () => false,
    )) &&
    above !== path.dirname(above)
  )
    above = path.dirname(above);
  const writable = await access(above, constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!writable || (e as NodeJS.ErrnoException).code === 'EROFS')
    return `cannot create the run folder ${runDir}: ${above} cannot be written (a read-only file system or no permission); give another --out`;
  return fsErrorMessage(e, `creating the run folder ${runDir}`);
}

export interface RunLock {
  /** Removes the lock (idempotent); also done when the process exits. */
  release: () => Promise<void>;
}

/**
 * lockRunDir on a run directory that may not exist yet (created for its lock). `abandon` releases the lock
 * and removes the folder again if this call created it and nothing else was written there, so a run
 * refused before it starts leaves no trace.
 */
/** A lock from lockRun: released at a run's end, abandoned (folder removed if it was made for it) when the run fails to open. */
export type HeldRunLock = RunLock & { abandon: () => Promise<void> };

export async function lockRun(runDir: string): Promise<HeldRunLock> {
  const existed = await stat(runDir).then(
    () => true,
    () => false,
  );
  await mkdir(runDir, { recursive: true }).catch(async (e: unknown) => {
    throw new Error(await mkdirProblem(e, runDir));
  });
  const lock = await lockRunDir(runDir);
  return {
    release: lock.release,
    abandon: async () => {
      await lock.release();
      if (!existed) await rmdir(runDir).catch(() => undefined);
    },
  };
}

/** Remove `<file>.new-<pid>` left by a process killed between writing and linking it (its pid no longer runs). */
async function sweepDeadTemporaries(file: string): Promise<void> {
  const prefix = `${path.basename(file)}.new-`;
  for (const name of await readdir(path.dirname(file))) {
    const pid = Number(name.slice(prefix.length));
    if (!name.startsWith(prefix) || pid === process.pid || !Number.isInteger(pid)) continue;
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') await rm(path.join(path.dirname(file), name), { force: true });
    }
  }
}

/**
 * Create `file` holding `text`, failing with EEXIST when it exists, such that no reader ever sees it empty:
 * the text goes to a file of our own first, which is then hard-linked into place (link is atomic and
 * refuses an existing name). With open('wx') then write, a second trainer starting in that gap read an
 * empty lock, took it for a dead one and replaced it: two trainers on one run. Where hard links are not
 * supported, open('wx') it is.
 */
async function createWithContent(file: string, text: string): Promise<void> {
  const own = `${file}.new-${process.pid}`;
  await writeFile(own, text);
  try {
    await link(own, file);
    await sweepDeadTemporaries(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    const fh = await open(file, 'wx');
    try {
      await fh.writeFile(text);
    } finally {
      await fh.close();
    }
  } finally {
    await rm(own, { force: true });
  }
}

/**
 * Takes the lock of `runDir` (which must exist), or throws naming the live process that holds it. A lock
 * of a dead process on this host, or one that cannot be read, is replaced; a lock from another host is
 * honoured (its process cannot be probed from here) and the error says how to clear it.
 */
export async function lockRunDir(runDir: string): Promise<RunLock> {
  const file = path.join(runDir, LOCK_FILE);
  const me: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await createWithContent(file, JSON.stringify(me));
      let released = false;
      const onExit = (): void => {
        // Synchronous on exit: a process.exit() after a second Ctrl-C runs no promise.
        if (released) return;
        try {
          rmSync(file, { force: true });
        } catch {
          // nothing more can be done while exiting
        }
      };
      process.once('exit', onExit);
      return {
        release: async () => {
          if (released) return;
          released = true;
          process.off('exit', onExit);
          await rm(file, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`${runDir}: cannot create its lock file: ${(e as Error).message}`);
    }
    const holder = await readLock(file);
    if (holder && holder.host !== me.host)
      throw new Error(`${runDir} is locked by process ${holder.pid} on ${holder.host} (since ${holder.started}); if that run is over, delete ${file} and try again`);
    if (holder && holder.pid !== process.pid && processAlive(holder.pid))
      throw new Error(`${runDir} is in use by process ${holder.pid} (a trainer started ${holder.started}); stop it first, or give another --out`);
    // Stale: move it aside atomically, so that of two processes replacing it only one succeeds in creating the new one.
    await rename(file, `${file}.stale-${process.pid}`).catch(() => undefined);
    await rm(`${file}.stale-${process.pid}`, { force: true });
  }
  throw new Error(`${runDir}: could not take its lock file ${file} (another process keeps replacing it)`);
}
