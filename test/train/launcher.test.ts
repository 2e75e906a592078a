// The `smkd` launcher in a checkout compiles TypeScript through tsx, which caches under the temporary
// folder: a TMPDIR that cannot be written must not stop any command, --help included.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { smkdChild } from './run-dir-helpers.js';

const test = suite('launcher');

test('smkd --help and a refused command work with a TMPDIR that cannot be written', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'launcher-'));
  // A folder below a file cannot be created, even by root (whom permissions would not stop).
  const file = path.join(dir, 'a-file');
  await writeFile(file, '');
  const env = { TMPDIR: path.join(file, 'tmp') };
  const help = await smkdChild(['--help'], path.join(dir, 'help'), env).exited;
  assert.is(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: smkd/);
  const bad = await smkdChild(['eval', path.join(dir, 'missing-run')], path.join(dir, 'eval'), env).exited;
  assert.is(bad.code, 1, bad.stderr);
  assert.match(bad.stderr, /missing-run/);
  assert.not.match(bad.stderr, /tsx|ENOTDIR/);
});

test.run();
