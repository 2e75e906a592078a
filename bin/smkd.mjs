#!/usr/bin/env node
// Entry point of the `smkd` command: the compiled dist/ when it is up to date, else the TypeScript
// sources through tsx (a checkout being edited); bin/cli-entry.mjs says which and why.
import { accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { cliEntry } from './cli-entry.mjs';

const root = new URL('..', import.meta.url);
let cli;
if (cliEntry(root) === 'dist') {
  cli = await import(new URL('dist/train/cli-main.js', root).href);
} else {
  // tsx caches compiled files under the temporary folder; when that cannot be written (a read-only or
  // missing TMPDIR), it compiles without a cache rather than dying before --help.
  try {
    accessSync(tmpdir(), constants.W_OK);
  } catch {
    process.env.TSX_DISABLE_CACHE = '1';
  }
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(new URL('train/cli-main.ts', root).href);
}
await cli.main(process.argv);
