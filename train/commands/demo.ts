// `smkd demo`: phase 1, then phase 2, then the few-shot comparison of both with random init and raw pixels, under one folder.
import { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { init } from '../../engine/index.js';
import { resolveConfig } from '../config.js';
import { runDemo } from '../demo.js';
import { commonOptions, overrides, type CommonOpts } from './options.js';

export function demoCommand(): Command {
  return commonOptions(
    new Command('demo').description(
      'phase 1, then phase 2, then few-shot evaluation of random init, raw pixels and both phases on the test alphabets of the packed Omniglot subset (omniglot preset)',
    ),
  ).action(async (o: CommonOpts) => {
    const base = o.out ?? 'runs/demo';
    await mkdir(base, { recursive: true });
    const p1 = await resolveConfig(o.preset, 1, o.config, { ...overrides(o), out: path.join(base, 'phase1') });
    const p2 = await resolveConfig(o.preset, 2, o.config, { ...overrides(o), out: path.join(base, 'phase2'), init: path.join(base, 'phase1') });
    await init();
    await runDemo(p1, p2, base);
  });
}
