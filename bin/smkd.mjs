#!/usr/bin/env node
// Entry point of the `smkd` command. In the repository the TypeScript sources run through tsx; an
// installed package has no sources, only the compiled dist/ (built by `npm run build` before packing).
import { existsSync } from 'node:fs';

const source = new URL('../train/cli.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  // The installed package's compiled CLI: dist/ exists only after `npm run build`, not in a checkout.
  // eslint-disable-next-line import-x/no-unresolved
  cli = await import('../dist/train/cli.js');
}
await cli.main(process.argv);
