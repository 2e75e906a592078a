// `smkd plot`: metrics.jsonl of several runs into one SVG of training curves, and the errors of a
// folder that is not a run and of a damaged line.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { program } from '../../train/cli.js';
import { MAX_POINTS, parseMetrics, runCurveValues } from '../../train/plot.js';

const test = suite('plot');

function metrics(steps: number, lr: number): string {
  const lines: string[] = [];
  for (let it = 0; it < steps; it++) {
    lines.push(
      JSON.stringify({
        iteration: it,
        epoch: 0,
        loss: 5 - it / 10,
        terms: { cls: 3 - it / 20, ce: 2 - it / 20 },
        lr,
        weightDecay: 0.04,
        momentum: 0.98,
        teacherTemp: 0.02,
        teacherPatchTemp: 0.02,
        imagesPerSecond: 300 + it,
        seconds: 0.2,
      }),
    );
    if ((it + 1) % 5 === 0) lines.push(JSON.stringify({ iteration: it + 1, epoch: 0, valAccuracy: 50 + it }));
  }
  return lines.join('\n') + '\n';
}

test('metrics lines split into steps and validations; a damaged line is named', () => {
  const m = parseMetrics('run', metrics(10, 1e-3));
  assert.is(m.steps.length, 10);
  assert.equal(
    m.validation.map((v) => [v.iteration, v.valAccuracy]),
    [
      [5, 54],
      [10, 59],
    ],
  );
  assert.equal(m.steps[3].terms, { cls: 3 - 0.15, ce: 2 - 0.15 });
  assert.throws(() => parseMetrics('r', '{"loss":1}\n{oops\n'), /r: metrics.jsonl line 2 is not JSON/);
});

test('a long run is drawn as means of bins of steps, at most MAX_POINTS points a series; a short one step by step', () => {
  const steps = (n: number): string =>
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({ iteration: i, epoch: 0, loss: i % 7, terms: { ce: i % 7 }, lr: i, teacherTemp: 0.02, imagesPerSecond: 100 + (i % 3) }),
    ).join('\n');
  const long = parseMetrics('long', steps(2500));
  const vs = runCurveValues([long]).filter((v) => v.series === 'total');
  // 2,500 steps in bins of 3: 834 points, the last bin one step.
  assert.is(vs.length, 834);
  assert.is(vs[0].panel, '1 loss (3-step mean)');
  assert.equal([vs[0].iteration, vs[0].value], [3, (0 + 1 + 2) / 3]);
  assert.equal([vs[833].iteration, vs[833].value], [2500, 2499 % 7]);
  const lr = runCurveValues([long]).filter((v) => v.series === 'lr');
  assert.equal(lr[1].value, (3 + 4 + 5) / 3);
  // Overlaid with a short run, both take the long run's bins and share the panels.
  const both = runCurveValues([long, parseMetrics('short', steps(10))]).filter((v) => v.series === 'total' && v.run === 'short');
  assert.equal(
    both.map((v) => v.iteration),
    [3, 6, 9, 10],
  );
  const short = runCurveValues([parseMetrics('short', steps(10))]).filter((v) => v.series === 'total');
  assert.is(short.length, 10);
  assert.is(short[0].panel, '1 loss (11-step mean)');
  assert.ok(MAX_POINTS >= 834);
});

test('smkd plot overlays runs in one SVG with a panel per quantity; a folder without metrics is an error', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'plot-'));
  const log = console.log;
  try {
    for (const [name, lr] of [
      ['alpha-run', 1e-3],
      ['beta-run', 2e-3],
    ] as const) {
      await mkdir(path.join(dir, name));
      await writeFile(path.join(dir, name, 'metrics.jsonl'), metrics(20, lr));
    }
    const out = path.join(dir, 'curves.svg');
    const printed: string[] = [];
    console.log = (m: string) => printed.push(m);
    await program().parseAsync(['node', 'smkd', 'plot', path.join(dir, 'alpha-run'), path.join(dir, 'beta-run'), '-o', out]);
    console.log = log;
    assert.match(printed.join('\n'), /alpha-run \(20 steps, 4 validations\).*beta-run \(20 steps, 4 validations\)/);
    const svg = await readFile(out, 'utf8');
    assert.match(svg, /^<svg/);
    for (const label of ['alpha-run', 'beta-run', 'learning rate', 'teacher temperature', 'crops per second', 'validation accuracy', 'cls', 'ce'])
      assert.ok(svg.includes(label), `the chart shows '${label}'`);
    // One line per (run, panel, series): 2 runs x (3 loss lines + lr + temperature + speed + validation).
    assert.is((svg.match(/<path[^>]*aria-roledescription="line mark"/g) ?? []).length, 14);
    try {
      await program().parseAsync(['node', 'smkd', 'plot', dir, '-o', out]);
      assert.unreachable('a folder without metrics.jsonl');
    } catch (e) {
      assert.match((e as Error).message, /has no metrics\.jsonl/);
    }
  } finally {
    console.log = log;
    await rm(dir, { recursive: true, force: true });
  }
});

test('a diverged run (±1e308, a null learning rate) is drawn without NaN or Infinity in the SVG, and the undrawn values are counted', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'plot-'));
  const warn = console.warn;
  const log = console.log;
  try {
    const lines = metrics(12, 1e-3)
      .trim()
      .split('\n')
      .map((l, i) => {
        const m = JSON.parse(l) as Record<string, unknown>;
        if (i === 3) return JSON.stringify({ ...m, loss: 1e308, terms: { cls: -1e308, ce: 1 }, lr: null });
        if (i === 4) return JSON.stringify({ ...m, loss: -1e308 });
        return l;
      });
    await mkdir(path.join(dir, 'run'));
    await writeFile(path.join(dir, 'run', 'metrics.jsonl'), lines.join('\n') + '\n');
    const values = runCurveValues([parseMetrics('run', lines.join('\n'))]);
    assert.ok(values.length > 0 && values.every((v) => Number.isFinite(v.value) && Math.abs(v.value) <= 1e30), 'only drawable values');
    const warnings: string[] = [];
    console.warn = (m: string) => warnings.push(m);
    console.log = () => undefined;
    const out = path.join(dir, 'curves.svg');
    await program().parseAsync(['node', 'smkd', 'plot', path.join(dir, 'run'), '-o', out]);
    const svg = await readFile(out, 'utf8');
    assert.not.match(svg, /NaN|Infinity/);
    assert.equal(warnings, ['plot: warning: 4 value(s) not drawn: not finite or beyond ±1e+30 (a diverged run?)']);
  } finally {
    console.warn = warn;
    console.log = log;
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
