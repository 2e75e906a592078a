#!/usr/bin/env node
// Entry point of the `smkd` command. In the repository the TypeScript sources run through tsx; an
// installed package has no sources, only the compiled dist/ (built by `npm run build` before packing).
import { accessSync, constants, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';

const source = new URL('../train/cli.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  // tsx caches compiled files under the temporary folder; when that cannot be written (a read-only or
  // missing TMPDIR), it compiles without a cache rather than dying before --help.
  try {
    accessSync(tmpdir(), constants.W_OK);
  } catch {
    process.env.TSX_DISABLE_CACHE = '1';
  }
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  // The installed package's compiled CLI: dist/ exists only after `npm run build`, not in a checkout.
  // eslint-disable-next-line import-x/no-unresolved
  cli = await import('../dist/train/cli.js');
}
await cli.main(process.argv);
