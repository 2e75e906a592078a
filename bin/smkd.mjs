#!/usr/bin/env node
// Entry point of the `smkd` command: the project is TypeScript run through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../train/cli.ts');
await main(process.argv);
