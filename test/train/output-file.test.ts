// Output files on a full disk: written whole or not at all, the temporary removed, the message naming the
// file and the cause. A full disk is made with /dev/full: the temporary's name is a link to it.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { writeSafetensors } from '../../engine/index.js';
import { fsErrorMessage, writeOutputFile } from '../../train/output-file.js';
import { rejects } from '../helpers/check.js';
import { skipUnless } from '../helpers/skip.js';

const test = suite('output files');
const FULL = existsSync('/dev/full');

test('writeOutputFile writes the whole file and leaves no temporary', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'out-'));
  const file = path.join(dir, 'report.json');
  await writeOutputFile(file, '{"a": 1}');
  assert.is(await readFile(file, 'utf8'), '{"a": 1}');
  assert.equal(await readdir(dir), ['report.json']);
});

skipUnless(
  test,
  FULL,
  'no /dev/full',
)('a full disk: no file where the output should be, no temporary, the path and the cause in the message; an old output stays whole', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'out-'));
  const file = path.join(dir, 'report.json');
  await symlink('/dev/full', `${file}.tmp-${process.pid}`);
  await rejects(writeOutputFile(file, 'x'.repeat(10000)), new RegExp(`writing ${file.replace(/[.]/g, '\\.')}: no space left on the device`));
  assert.equal(await readdir(dir), []);
  await writeFile(file, 'old');
  await symlink('/dev/full', `${file}.tmp-${process.pid}`);
  await rejects(writeOutputFile(file, 'new'), /no space left/);
  assert.is(await readFile(file, 'utf8'), 'old');
  assert.equal(await readdir(dir), ['report.json']);

  const st = path.join(dir, 'emb.safetensors');
  await symlink('/dev/full', `${st}.tmp-${process.pid}`);
  await rejects(writeSafetensors(st, [['x', { data: new Float32Array(1000), shape: [1000] }]]), /writing .*emb\.safetensors: no space left on the device/);
  assert.equal(await readdir(dir), ['report.json']);
});

test('fsErrorMessage says what each failure means', () => {
  const err = (code: string) => Object.assign(new Error(`${code}: raw`), { code });
  assert.match(fsErrorMessage(err('ENOSPC'), 'writing a'), /^writing a: no space left on the device/);
  assert.match(fsErrorMessage(err('EROFS'), 'writing a'), /^writing a: the file system is read-only/);
  assert.match(fsErrorMessage(err('EACCES'), 'writing a'), /^writing a: permission denied/);
  assert.match(fsErrorMessage(err('EIO'), 'writing a'), /^writing a: EIO: raw/);
});

test.run();
