// Run directories that nothing can damage: every bad input is refused with a message that says what
// to change, before the run directory is written (it stays byte for byte as it was, or absent); a
// resume with other settings is refused unless allowed, and then recorded; metrics.jsonl keeps one line
// per iteration across crashes; a damaged latest checkpoint falls back to the one before it, for
// training and evaluation alike; one Ctrl-C handler per training phase.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { runTraining } from '../../train/run-training.js';
import { resolveConfig } from '../../train/config.js';
import { gpu } from '../helpers/check.js';
import { MINI, canonicalRun, hashTree, loggedIterations, smkdHere, type Printed } from './run-dir-helpers.js';

const test = suite('run directory');
let tmp = '';
/** A finished run of MINI (16 iterations), made once. */
let base = '';
let miniFile = '';
const train = (...extra: string[]): string[] => ['train', '--preset', 'tiny', '--phase', '1', '--config', miniFile, ...extra];

async function image(file: string, seed: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const d = new Uint8Array(16 * 16 * 3).map((_, i) => (i * 7 + seed * 31) % 256);
  await sharp(d, { raw: { width: 16, height: 16, channels: 3 } })
    .png()
    .toFile(file);
}

test.before(async () => {
  await gpu();
  tmp = await mkdtemp(path.join(tmpdir(), 'run-dir-'));
  miniFile = path.join(tmp, 'mini.json');
  await writeFile(miniFile, JSON.stringify(MINI));
  base = path.join(tmp, 'base');
  await smkdHere(train('--out', base));
  // An image folder: two training classes, five test classes, a test split of one class, a training split with unreadable files.
  const folders: [string, number][] = [
    ['tr/a', 10],
    ['tr/b', 10],
    ['te/c', 16],
    ['te/d', 16],
    ['te/e', 16],
    ['te/f', 16],
    ['te/g', 16],
    ['one/h', 16],
    ['bad/a', 10],
    ['bad/b', 10],
  ];
  for (const [cls, n] of folders) for (let k = 0; k < n; k++) await image(path.join(tmp, 'images', cls, `${k}.png`), k + cls.length * 3 + cls.charCodeAt(cls.length - 1));
  await writeFile(path.join(tmp, 'images', 'bad', 'a', 'x.png'), 'not a png');
  await writeFile(path.join(tmp, 'images', 'bad', 'b', 'y.png'), Buffer.alloc(40));
});

test.after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The message `args` fails with (in this process), and what it printed. */
async function failure(args: string[]): Promise<{ message: string; printed: Printed }> {
  try {
    await smkdHere(args);
  } catch (e) {
    return { message: (e as Error).message, printed: (e as { printed: Printed }).printed };
  }
  throw new Error(`\`smkd ${args.join(' ')}\` succeeded; expected it to fail`);
}

async function copyOfBase(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await cp(base, dir, { recursive: true });
  return dir;
}

const folderConfig = async (name: string, trainSplit: string, testSplit: string): Promise<string> => {
  const file = path.join(tmp, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      ...MINI,
      data: { kind: 'folder', path: path.join(tmp, 'images'), trainSplit: [trainSplit], testSplit: [testSplit], imageSize: 16 },
      eval: { ...MINI.eval, everyEpochs: 0 },
    }),
  );
  return file;
};

interface BadInput {
  name: string;
  /** The run directory: a fresh path (must stay absent) or a copy of the finished base run (must stay byte for byte). */
  run: 'absent' | 'existing';
  /** The command line, given the run directory; may prepare files. */
  args: (run: string) => Promise<string[]>;
  error: RegExp;
  /** More checks of the message. */
  check?: (message: string, run: string) => Promise<void>;
}

/** A hand edit of a run's config.json, as a user with an editor would make it. */
async function editRunConfig(run: string, edit: (cfg: { phase: number; data: { normalize: { std: number[] } } }) => unknown): Promise<void> {
  const file = path.join(run, 'config.json');
  const cfg = JSON.parse(await readFile(file, 'utf8')) as { phase: number; data: { normalize: { std: number[] } } };
  edit(cfg);
  await writeFile(file, JSON.stringify(cfg));
}

const CASES: BadInput[] = [
  {
    name: 'eval of a run whose config.json was edited by hand after its checkpoint (data.normalize.std)',
    run: 'existing',
    args: async (run) => {
      await editRunConfig(run, (cfg) => (cfg.data.normalize.std = [0.5, 0.5, 0.5]));
      return ['eval', run, '--episodes', '3', '--shots', '1'];
    },
    error:
      /config\.json was changed after .*it-0000016 was written, in 1 setting\(s\) that decide how it is evaluated:\n {2}data\.normalize\.std: \[[0-9.,]+\] at the checkpoint, \[0\.5,0\.5,0\.5\] in config\.json\nPut it back as it was/,
  },
  {
    name: 'a config file with a 100,000-character unknown key: the message cuts it short',
    run: 'absent',
    args: async (run) => {
      const file = path.join(tmp, 'long-key.json');
      await writeFile(file, JSON.stringify({ ...MINI, ['k'.repeat(100000)]: 1 }));
      return ['train', '--preset', 'tiny', '--phase', '1', '--config', file, '--out', run];
    },
    error: /^config file .*long-key\.json is invalid:\n {2}\(top level\): .{0,80}k{50}[^]{0,200}\.\.\. \(\d{6} characters\)$/,
  },
  {
    name: 'sizes that would take the machine: a 4102-px crop, 1000 workers, a million-wide ViT, a std of 1e-30',
    run: 'absent',
    args: async (run) => {
      const file = path.join(tmp, 'huge.json');
      await writeFile(
        file,
        JSON.stringify({ ...MINI, crops: { globalSize: 4102 }, workers: 1000, model: { embedDim: 1000000 }, data: { normalize: { mean: [0, 0, 0], std: [1e-30, 1, 1] } } }),
      );
      return ['train', '--preset', 'tiny', '--phase', '1', '--config', file, '--out', run];
    },
    error:
      /^config file .*huge\.json is invalid:\n(?=[^]*data\.normalize\.std\.0: at least 1e-4)(?=[^]*model\.embedDim: at most 4096)(?=[^]*crops\.globalSize: at most 1024 px)(?=[^]*workers: at most 64 crop workers)/,
  },
  {
    name: "a hand edit of a stopped run's config.json (data.normalize.std)",
    run: 'existing',
    args: async (run) => {
      await editRunConfig(run, (cfg) => (cfg.data.normalize.std = [0.5, 0.5, 0.5]));
      return train('--out', run);
    },
    error:
      /config\.json was changed after .*checkpoints.it-0000016 was written \(1 key\(s\)\):\n {2}data\.normalize\.std: \[[0-9.,]+\] at the checkpoint, \[0\.5,0\.5,0\.5\] in config\.json\nPut it back as it was, or pass --allow-config-change/,
  },
  {
    name: 'a phase-1 run whose config.json was edited to phase 2, resumed with that config',
    run: 'existing',
    args: async (run) => {
      await editRunConfig(run, (cfg) => (cfg.phase = 2));
      return ['train', '--phase', '2', '--config', path.join(run, 'config.json'), '--out', run];
    },
    error:
      /it-0000016 is a phase-1 checkpoint, but .* is set up for phase 2 \(its config\.json says so: edited by hand\?\); a checkpoint resumes only its own phase: train phase 2 in another --out with --init/,
  },
  {
    name: 'train --preset small into an existing tiny run',
    run: 'existing',
    args: async (run) => ['train', '--preset', 'small', '--phase', '1', '--out', run],
    error:
      /holds a run with other settings \(\d+ key\(s\) differ from its config\.json\):\n {2}preset: "tiny" in the run, "small" now\n[^]*model\.embedDim: 32 in the run, 96 now[^]*--allow-config-change/,
    // The run's config is intact: it still evaluates.
    check: async (_, run) => void (await smkdHere(['eval', run, '--episodes', '3', '--shots', '1'])),
  },
  {
    name: 'a resume with another --lr',
    run: 'existing',
    args: async (run) => train('--out', run, '--lr', '0.001'),
    error: /\(1 key\(s\) differ from its config\.json\):\n {2}schedule\.lr: 0\.0005 in the run, 0\.001 now\nResume it with its own settings \(--config .*config\.json\)/,
  },
  {
    name: 'a data folder whose test split has one class',
    run: 'absent',
    args: async (run) => ['train', '--preset', 'tiny', '--phase', '1', '--config', await folderConfig('one', 'tr', 'one'), '--out', run],
    error:
      /^data: the evaluation at the end needs 5 test classes \(eval\.ways\) of at least 16 images each \(eval\.shots 1 \+ eval\.queries 15\); the test split \(images\) has 1 such class\(es\) of 1$/,
  },
  {
    name: '--epochs 1 with the tiny preset',
    run: 'absent',
    args: async (run) => ['train', '--preset', 'tiny', '--phase', '1', '--epochs', '1', '--out', run],
    error: /^schedule: the lr warm-up \(schedule\.warmupEpochs 1 x itersPerEpoch 10 = 10 iterations\) must be a whole number of iterations fewer than the run's 10/,
  },
  {
    name: 'a missing data folder',
    run: 'absent',
    args: async (run) => train('--data', path.join(tmp, 'no-such-data'), '--data-kind', 'omniglot', '--out', run),
    error: /^data folder .*no-such-data: no such folder$/,
  },
  {
    name: '--init of a missing folder',
    run: 'absent',
    args: async (run) => train('--init', path.join(tmp, 'no-such-run'), '--out', run),
    error: /^--init .*no-such-run: no such file or folder$/,
  },
  {
    name: '--init of a folder that holds no checkpoint',
    run: 'absent',
    args: async (run) => train('--init', path.join(tmp, 'images'), '--out', run),
    error: /^--init .*images: not a run directory \(no latest\.json, no checkpoints\/\), a checkpoint directory/,
  },
  {
    name: "--init of another model's run: the mismatch summarised",
    run: 'absent',
    args: async (run) => ['train', '--preset', 'tiny', '--phase', '2', '--init', base, '--out', run],
    error:
      /student\.safetensors does not fit the model:\n {2}shape mismatches \(\d+\): backbone\.cls_token: checkpoint \[1, 1, 32\] vs model \[1, 1, 64\]; [^\n]*\(\d+ more\)\n[^]*the file holds a ViT of embedDim 32, depth 1, 1 heads, patch 8, 16 px; the config builds embedDim 64, depth 4, 2 heads, patch 4, 32 px$/,
    check: async (message) => assert.ok(message.length < 1500 && message.split('\n').length <= 5, `a short message, not ${message.length} characters`),
  },
  {
    name: 'unreadable images in the training split',
    run: 'absent',
    args: async (run) => ['train', '--preset', 'tiny', '--phase', '1', '--config', await folderConfig('bad', 'bad', 'te'), '--out', run],
    error: /^image folder .*images: 1 of 22 images unreadable, more than 1% \(last: .*\)$/,
  },
  {
    name: '--init of a truncated safetensors file',
    run: 'absent',
    args: async (run) => {
      const file = path.join(tmp, 'truncated.safetensors');
      const whole = await readFile(path.join(base, 'checkpoints', 'it-0000016', 'teacher.safetensors'));
      await writeFile(file, whole.subarray(0, whole.length - 100));
      return ['train', '--preset', 'tiny', '--phase', '2', '--config', miniFile, '--init', file, '--out', run];
    },
    error: /truncated\.safetensors: tensor ".*" \(F32\[.*\]\) has offsets \[\d+, \d+\] that do not match its size or the file$/,
  },
  {
    name: '--init of a safetensors file with an absurd header length',
    run: 'absent',
    args: async (run) => {
      const file = path.join(tmp, 'absurd.safetensors');
      await writeFile(file, Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from('{}')]));
      return ['train', '--preset', 'tiny', '--phase', '2', '--config', miniFile, '--init', file, '--out', run];
    },
    error: /absurd\.safetensors: corrupt header length \d+$/,
  },
  {
    name: 'a config file that is not JSON',
    run: 'absent',
    args: async (run) => {
      await writeFile(path.join(tmp, 'broken.json'), '{"schedule": {"lr": 0.001,}}');
      return ['train', '--preset', 'tiny', '--phase', '1', '--config', path.join(tmp, 'broken.json'), '--out', run];
    },
    error: /^config file .*broken\.json: .*JSON/,
  },
  {
    name: 'a config file with a mistyped key',
    run: 'absent',
    args: async (run) => {
      await writeFile(path.join(tmp, 'typo.json'), JSON.stringify({ schedule: { learningRate: 0.001 } }));
      return ['train', '--preset', 'tiny', '--phase', '1', '--config', path.join(tmp, 'typo.json'), '--out', run];
    },
    error: /^config file .*typo\.json is invalid:\n {2}schedule: Unrecognized key: "learningRate"$/,
  },
  {
    name: 'a run directory whose config.json is malformed',
    run: 'existing',
    args: async (run) => {
      await writeFile(path.join(run, 'config.json'), '{"phase": 1,');
      return train('--out', run);
    },
    error: /config\.json is not valid JSON \(.*\); fix it or move the run directory aside$/,
  },
  {
    name: 'a run directory whose config.json has a value out of range',
    run: 'existing',
    args: async (run) => {
      const cfg = JSON.parse(await readFile(path.join(run, 'config.json'), 'utf8')) as typeof MINI;
      await writeFile(path.join(run, 'config.json'), JSON.stringify({ ...cfg, keepLast: 0 }));
      return train('--out', run);
    },
    error: /^the run's .*config\.json is invalid:\n {2}keepLast: /,
  },
  {
    name: 'a run directory whose checkpoints are all damaged',
    run: 'existing',
    args: async (run) => {
      for (const c of await readdir(path.join(run, 'checkpoints'))) await truncate(path.join(run, 'checkpoints', c, 'optimizer.safetensors'), 50);
      return train('--out', run);
    },
    error:
      /has no intact checkpoint: checkpoint .*it-0000016 \(named by latest\.json\) is damaged: optimizer\.safetensors: corrupt header length \d+; checkpoint .*it-0000015 is damaged: [^]*Move the run directory aside to start it over\.$/,
  },
];

test('every bad input is refused before the run directory is written: the message, and the directory untouched (or absent)', async () => {
  const failed: string[] = [];
  for (const [i, c] of CASES.entries()) {
    const run = c.run === 'existing' ? await copyOfBase(`case-${i}`) : path.join(tmp, `case-${i}`);
    try {
      const args = await c.args(run);
      const before = await hashTree(run);
      const { message } = await failure(args);
      if (!c.error.test(message)) throw new Error(`the message does not match ${c.error}:\n${message}`);
      assert.equal(await hashTree(run), before, 'the run directory changed');
      await c.check?.(message, run);
    } catch (e) {
      failed.push(`${c.name}: ${(e as Error).message}`);
    }
  }
  assert.equal(failed, [], failed.join('\n\n'));
});

test('a resume with --allow-config-change continues with the new settings and records them', async () => {
  const run = await copyOfBase('allowed');
  await smkdHere(train('--out', run, '--lr', '0.001', '--epochs', '5', '--allow-config-change'));
  const changes = (await readFile(path.join(run, 'config-changes.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { iteration: number; changes: Record<string, unknown> });
  assert.is(changes.length, 1);
  assert.is(changes[0].iteration, 16);
  assert.equal(changes[0].changes, { 'schedule.epochs': { from: 4, to: 5 }, 'schedule.lr': { from: 0.0005, to: 0.001 } });
  const cfg = JSON.parse(await readFile(path.join(run, 'config.json'), 'utf8')) as typeof MINI & { schedule: { lr: number } };
  assert.is(cfg.schedule.lr, 0.001);
  assert.equal(
    await loggedIterations(run),
    Array.from({ length: 20 }, (_, i) => i),
  );
});

test('metrics.jsonl keeps one line per iteration after a crash: the steps replayed since the checkpoint are not logged twice', async () => {
  // As a crash after iteration 15's line but before its checkpoint leaves the run: latest.json at 12, the newer checkpoints gone, a torn line.
  const run = await copyOfBase('crashed');
  await writeFile(path.join(run, 'latest.json'), JSON.stringify({ checkpoint: 'checkpoints/it-0000012', iteration: 12, phase: 1 }));
  for (const c of ['it-0000015', 'it-0000016']) await rm(path.join(run, 'checkpoints', c), { recursive: true });
  // best.json as it was after the validation at iteration 8 (the first, so the best then).
  const lines = (await readFile(path.join(run, 'metrics.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { iteration: number; valAccuracy?: number });
  const first = lines.find((m) => m.valAccuracy !== undefined)!;
  assert.is(first.iteration, 8);
  await writeFile(path.join(run, 'best.json'), JSON.stringify({ checkpoint: 'checkpoints/it-0000008', iteration: 8, phase: 1, valAccuracy: first.valAccuracy }, null, 2));
  const metrics = (await readFile(path.join(run, 'metrics.jsonl'), 'utf8')).split('\n');
  await writeFile(path.join(run, 'metrics.jsonl'), metrics.slice(0, -2).join('\n') + '\n');
  await appendFile(path.join(run, 'metrics.jsonl'), '{"iteration":16,"epoch":3,"lo');
  const { out } = await smkdHere(train('--out', run));
  assert.ok(
    out.some((l) => /resuming .* from iteration 12/.test(l)),
    out.join('\n'),
  );
  assert.equal(
    await loggedIterations(run),
    Array.from({ length: 16 }, (_, i) => i),
  );
  assert.is(await canonicalRun(run), await canonicalRun(base), 'the resumed run equals the uninterrupted one');
});

test('a damaged latest checkpoint: training and evaluation warn, naming both, and use the newest intact one', async () => {
  const run = await copyOfBase('damaged');
  await truncate(path.join(run, 'checkpoints', 'it-0000016', 'student.safetensors'), 1000);
  const ev = await smkdHere(['eval', run, '--episodes', '3', '--shots', '1', '--network', 'student']);
  assert.match(
    ev.err.join('\n'),
    /^warning: checkpoint .*it-0000016 \(named by latest\.json\) is damaged: student\.safetensors: corrupt header length \d+; using .*it-0000015, the newest intact checkpoint$/m,
  );
  assert.ok(
    ev.out.some((l) => l.includes(path.join('it-0000015', 'student.safetensors'))),
    'eval read it-0000015',
  );
  const tr = await smkdHere(train('--out', run));
  assert.match(
    tr.out.join('\n'),
    /^warning: checkpoint .*it-0000016 \(named by latest\.json\) is damaged: [^\n]*; using .*it-0000015, the newest intact checkpoint\nresuming .* from iteration 15/m,
  );
  assert.is(await canonicalRun(run), await canonicalRun(base), 'the run, resumed from it-0000015, ends as the uninterrupted one');

  // latest.json naming a deleted checkpoint.
  const gone = await copyOfBase('deleted');
  await rm(path.join(gone, 'checkpoints', 'it-0000016'), { recursive: true });
  const ev2 = await smkdHere(['eval', gone, '--episodes', '3', '--shots', '1']);
  assert.match(ev2.err.join('\n'), /checkpoint .*it-0000016 \(named by latest\.json\) is missing; using .*it-0000015, the newest intact checkpoint/);
  // A damaged checkpoint named directly: the error points at the intact one.
  await truncate(path.join(gone, 'checkpoints', 'it-0000015', 'teacher.safetensors'), 10);
  const direct = await failure(['eval', path.join(gone, 'checkpoints', 'it-0000015'), '--episodes', '3']);
  assert.match(direct.message, /it-0000015\/teacher\.safetensors: .* \(the newest intact checkpoint of its run is .*it-0000012\)$/);
});

test('retention: the newest keepLast checkpoints stay, and the best one', async () => {
  const best = JSON.parse(await readFile(path.join(base, 'best.json'), 'utf8')) as { checkpoint: string };
  const kept = (await readdir(path.join(base, 'checkpoints'))).sort();
  // Every 3 iterations and at the end (16); 8 too while its validation is the best.
  assert.equal(kept, [...new Set(['it-0000012', 'it-0000015', 'it-0000016', path.basename(best.checkpoint)])].sort());
});

test('one Ctrl-C handler per training phase (a demo registers none twice)', async () => {
  const before = process.listenerCount('SIGINT');
  const cfg = await resolveConfig('tiny', 1, path.join(base, 'config.json'), {});
  for (let phase = 0; phase < 2; phase++) {
    const log = console.log;
    console.log = () => undefined;
    try {
      const r = await runTraining(cfg, 'phase');
      r.models.dispose();
    } finally {
      console.log = log;
    }
    assert.is(process.listenerCount('SIGINT'), before);
  }
});

test.run();
