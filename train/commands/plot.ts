// `smkd plot`: the training curves of run directories, overlaid in one SVG.
import { checkOutputFile, writeOutputFile } from '../output-file.js';
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { MAX_DRAWN, parseMetrics, runCurvesSvg, undrawnValues } from '../plot.js';

export function plotCommand(): Command {
  return new Command('plot')
    .description('training curves of run directories, overlaid: loss and its terms, learning rate, teacher temperature, crops per second, validation accuracy (SVG)')
    .argument('<runs...>', 'run directories (each with a metrics.jsonl)')
    .option('-o, --output <file>', 'the SVG file to write', 'curves.svg')
    .action(async (runs: string[], o: { output: string }) => {
      checkOutputFile('plot', '-o', o.output);
      const metrics = await Promise.all(
        runs.map(async (dir) => {
          const text = await readFile(path.join(dir, 'metrics.jsonl'), 'utf8').catch(() => {
            throw new Error(`plot: ${dir} has no metrics.jsonl (not a run directory)`);
          });
          return parseMetrics(dir, text);
        }),
      );
      const undrawn = undrawnValues(metrics);
      if (undrawn > 0) console.warn(`plot: warning: ${undrawn} value(s) not drawn: not finite or beyond ±${MAX_DRAWN} (a diverged run?)`);
      await writeOutputFile(o.output, await runCurvesSvg(metrics, runs.length === 1 ? runs[0] : `${runs.length} runs`));
      console.log(`${o.output}: ${metrics.map((m) => `${m.name} (${m.steps.length} steps, ${m.validation.length} validations)`).join(', ')}`);
    });
}
