// The `smkd` launcher: the compiled dist/ when it is newer than every source (what `npm ci` leaves), the
// sources through tsx otherwise; tsx caches under the temporary folder, and a TMPDIR that cannot be
// written must not stop any command, --help included, either way.
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
// @ts-expect-error: a plain JavaScript module of bin/, without type declarations.
import { cliEntry } from '../../bin/cli-entry.mjs';
import { smkdChild } from './run-dir-helpers.js';

const test = suite('launcher');
const entry = cliEntry as (root: URL, env?: Record<string, string>) => 'dist' | 'source';

test('dist/ runs when it was built after every source file; an edit since, no build, or SMKD_RUN_SOURCES=1 runs the sources', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'launcher-'));
  try {
    const root = pathToFileURL(`${dir}/`);
    const at = async (file: string, seconds: number): Promise<void> => {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), '');
      await utimes(path.join(dir, file), seconds, seconds);
    };
    await at('dist/train/cli.js', 1000);
    assert.is(entry(root, {}), 'dist', 'an installed package has no sources');
    await at('train/cli.ts', 1000);
    await at('engine/ops/deep/op.ts', 1000);
    await at('kernels/k.ts', 1000);
    assert.is(entry(root, {}), 'source', 'never built (no dist/.built)');
    await at('dist/.built', 2000);
    assert.is(entry(root, {}), 'dist');
    assert.is(entry(root, { SMKD_RUN_SOURCES: '1' }), 'source');
    await at('engine/ops/deep/notes.md', 3000);
    assert.is(entry(root, {}), 'dist', 'only TypeScript files count');
    await at('engine/ops/deep/op.ts', 3000);
    assert.is(entry(root, {}), 'source', 'a source edited after the build');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const mode of ['dist', 'source'] as const) {
  test(`smkd --help and a refused command work with a TMPDIR that cannot be written (${mode === 'dist' ? 'as the checkout runs after npm ci' : 'sources through tsx'})`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'launcher-'));
    // A folder below a file cannot be created, even by root (whom permissions would not stop).
    const file = path.join(dir, 'a-file');
    await writeFile(file, '');
    const env: Record<string, string> = { TMPDIR: path.join(file, 'tmp'), ...(mode === 'source' ? { SMKD_RUN_SOURCES: '1' } : {}) };
    const help = await smkdChild(['--help'], path.join(dir, 'help'), env).exited;
    assert.is(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: smkd/);
    const bad = await smkdChild(['eval', path.join(dir, 'missing-run')], path.join(dir, 'eval'), env).exited;
    assert.is(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /missing-run/);
    assert.not.match(bad.stderr, /tsx|ENOTDIR/);
    await rm(dir, { recursive: true, force: true });
  });
}

test.run();
