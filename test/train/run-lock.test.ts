// The run directory's lock: a live holder refuses a second trainer, naming it; a dead or unreadable
// holder is replaced; a refused run leaves what was there untouched.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { preset, validateConfig } from '../../train/config.js';
import { LOCK_FILE, lockRun, lockRunDir } from '../../train/run-lock.js';
import { train } from '../../train/trainer.js';
import { rejects } from '../helpers/check.js';

const test = suite('run lock');

/** A process that stays alive until killed (its pid stands for another trainer). */
function sleeper(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
}

async function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  await new Promise((resolve) => p.once('exit', resolve));
}

test('the lock names its process; released, it is gone and can be taken again', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lock-'));
  const lock = await lockRunDir(dir);
  const info = JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8')) as { pid: number; host: string };
  assert.equal([info.pid, info.host], [process.pid, hostname()]);
  await lock.release();
  assert.not.ok(existsSync(path.join(dir, LOCK_FILE)));
  await lock.release();
  await (await lockRunDir(dir)).release();
});

test('eight processes racing for one lock: exactly one takes it, every other is refused naming it', async () => {
  const runLock = path.resolve('train/run-lock.ts');
  for (let round = 0; round < 3; round++) {
    const dir = await mkdtemp(path.join(tmpdir(), 'lock-race-'));
    // Each racer waits for the same instant, tries, reports, and holds a won lock until killed: on a loaded machine a
    // racer can start seconds after the others, and a winner that let go after a while let it win too.
    const start = Date.now() + 1500;
    const script = `import { lockRunDir } from ${JSON.stringify(runLock)};
while (Date.now() < ${start}) {}
try { await lockRunDir(${JSON.stringify(dir)}); console.log('won'); setInterval(() => {}, 1000); }
catch (e) { console.log('refused: ' + e.message); }`;
    const racers = Array.from({ length: 8 }, () => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const outs = await Promise.all(
      racers.map(
        (p) =>
          new Promise<string>((resolve) => {
            let out = '';
            p.stdout!.on('data', (d: Buffer) => {
              out += String(d);
              if (out.includes('\n')) resolve(out.trim());
            });
            p.once('exit', () => resolve(out.trim()));
          }),
      ),
    );
    const winners = racers.filter((_, i) => outs[i] === 'won');
    assert.is(winners.length, 1, `round ${round}: ${outs.join(' | ')}`);
    const pid = winners[0]!.pid;
    for (const o of outs.filter((x) => x !== 'won')) assert.match(o, new RegExp(`^refused: .* is in use by process ${pid} `), o);
    for (const p of racers) p.kill();
    await Promise.all(racers.map(exited));
  }
});

test('a live holder refuses the lock, naming its pid, and nothing in the folder is touched; once it is dead the lock is taken over', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lock-'));
  const other = sleeper();
  try {
    const lockText = JSON.stringify({ pid: other.pid, host: hostname(), started: '2026-12-06T10:00:00Z' });
    await writeFile(path.join(dir, LOCK_FILE), lockText);
    // The other trainer's half-written checkpoint must survive the refused one.
    await mkdir(path.join(dir, 'checkpoints', `it-0000008.tmp-${other.pid}`), { recursive: true });
    await rejects(lockRunDir(dir), new RegExp(`in use by process ${other.pid} .*another --out`));
    await rejects(lockRun(dir), new RegExp(`in use by process ${other.pid}`));
    assert.is(await readFile(path.join(dir, LOCK_FILE), 'utf8'), lockText);
    assert.equal(await readdir(path.join(dir, 'checkpoints')), [`it-0000008.tmp-${other.pid}`]);
  } finally {
    other.kill('SIGKILL');
    await exited(other);
  }
  const lock = await lockRunDir(dir);
  assert.is((JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8')) as { pid: number }).pid, process.pid);
  await lock.release();
});

test('an unreadable lock (its writer died before writing it) is replaced; one from another host is honoured with the way out', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lock-'));
  await writeFile(path.join(dir, LOCK_FILE), '');
  await (await lockRunDir(dir)).release();
  await writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere.example', started: 'then' }));
  await rejects(lockRunDir(dir), /locked by process 1 on elsewhere\.example .*delete .*lock/);
});

test('lockRun creates a missing run folder, and abandon removes it again when nothing else was written', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'lock-'));
  const dir = path.join(root, 'run');
  const lock = await lockRun(dir);
  assert.ok(existsSync(path.join(dir, LOCK_FILE)));
  await lock.abandon();
  assert.not.ok(existsSync(dir));
  // A folder that was there stays, without the lock.
  await mkdir(dir);
  await writeFile(path.join(dir, 'notes.txt'), 'mine');
  const again = await lockRun(dir);
  await again.abandon();
  assert.equal(await readdir(dir), ['notes.txt']);
});

test('train() on a run directory a live trainer holds is refused before it reads, writes or deletes anything', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'lock-train-'));
  const other = sleeper();
  try {
    const lockText = JSON.stringify({ pid: other.pid, host: hostname(), started: 'now' });
    await writeFile(path.join(dir, LOCK_FILE), lockText);
    await writeFile(path.join(dir, `config.json.tmp-${other.pid}`), '{');
    const base = preset('tiny', 1);
    await rejects(
      train(validateConfig({ ...base, out: dir, schedule: { ...base.schedule, epochs: 1, itersPerEpoch: 1 } })),
      new RegExp(`${dir} is in use by process ${other.pid}`),
    );
    assert.equal((await readdir(dir)).sort(), [`config.json.tmp-${other.pid}`, LOCK_FILE].sort());
    assert.is(await readFile(path.join(dir, LOCK_FILE), 'utf8'), lockText);
  } finally {
    other.kill('SIGKILL');
    await exited(other);
  }
});

test.run();
