// The Omniglot study (issue #13): four ways to train the same ViT on the train alphabets of the packed
// Omniglot subset, each for the same number of augmented crops, scored on the validation alphabet as
// they train (accuracy against crops seen) and on the test alphabets at the end, beside random init and
// raw pixels on the same episodes:
//   (a) cross-entropy only (--objective ce);
//   (b) phase 1 only: iBOT, no labels;
//   (c) phase 1 + phase 2: iBOT, then SMKD, as the method describes them (no cross-entropy term);
//   (d) the omniglot preset's final form, as `npm run demo` runs it (both phases with the reference code's CE term, docs/algorithm.md §5.7).
// Writes the runs, results.json, the curves (SVG) and the generated part of docs/results-omniglot.md.
//
// Each study (a budget, a patch size, a set of arms) is one section of the report, replaced when it is run
// again; its results go to docs/results/omniglot-study-<tag>.json, so the report can be rewritten
// (--report-only) without the runs, which are not kept in the repository.
//
//   npx tsx scripts/omniglot-study.ts [--crops 100000] [--patch 7] [--arms ce,recipe] [--phase2-share 0.7] [--episodes 600]
import { Command } from 'commander';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { adapterName, getGpu, init } from '../engine/index.js';
import { resolveConfig, type DeepPartial, type TrainConfig } from '../train/config.js';
import { formatRows, stepSeconds, testRows, validationBaselines, validationCurve, type DemoRow } from '../train/demo.js';
import { lineChartSvg, type CurvePoint } from '../train/plot.js';
import { Interrupted, trainToEnd } from '../train/run-training.js';
import { readResults as readSharedResults, saveResults as saveSharedResults, writeSection } from './report-sections.js';
import { openSplits } from '../train/sources.js';
import { modelsFor } from '../train/trainer.js';

const opts = new Command('omniglot-study')
  .option('--crops <n>', "augmented crops every method trains on (default: the demo's 38,400 + 64,000)", (v) => Number(v), 102400)
  .option('--phase2-share <x>', "the share of the crops that phase 2 takes in (c) and (d) (default: the demo's)", (v) => Number(v), 0.625)
  .option('--episodes <n>', 'episodes per test setting', (v) => Number(v), 600)
  .option('--val-points <n>', 'validation points per run', (v) => Number(v), 8)
  .option('--out <dir>', 'folder of the runs', 'runs/omniglot-study')
  .option('--doc <file>', 'the report', 'docs/results-omniglot.md')
  .option('--seed <n>', 'seed of every run', (v) => Number(v), 0)
  .option('--patch <px>', "ViT patch side (default: the preset's 14, a 2x2 grid; 7 is 4x4)", (v) => Number(v), 14)
  .option('--arms <list>', 'which arms: ce, ibot, smkd, recipe', (v) => v.split(','), ['ce', 'ibot', 'smkd', 'recipe'])
  .option('--fresh', 'delete earlier runs of the study first')
  .option('--report-only', "rewrite the chart and the report from the runs' results.json, without training")
  .parse()
  .opts<{
    crops: number;
    phase2Share: number;
    episodes: number;
    valPoints: number;
    out: string;
    doc: string;
    seed: number;
    patch: number;
    arms: string[];
    fresh?: boolean;
    reportOnly?: boolean;
  }>();

/** The study's name: its budget and grid (the first study, 102,400 crops at patch 14, keeps its old file names). */
const tag = `${opts.crops}-p${opts.patch}`;
const first = tag === '102400-p14';
const runsDir = first ? opts.out : path.join(opts.out, tag);
if (opts.fresh && !opts.reportOnly) await rm(runsDir, { recursive: true, force: true });
await init();

// Random init and raw pixels are scored on the same episodes as the arms.
const base = await resolveConfig('omniglot', 1, undefined, { seed: opts.seed, model: { patchSize: opts.patch }, eval: { episodes: opts.episodes } });
const cropsPerIter = base.batch.size * (base.crops.global + base.crops.local);
const I = base.schedule.itersPerEpoch;
/** Whole virtual epochs for `crops` crops. */
const epochsFor = (crops: number): number => Math.max(1, Math.round(crops / cropsPerIter / I));

async function config(name: string, phase: 1 | 2, crops: number, over: DeepPartial<TrainConfig>, initFrom?: string): Promise<TrainConfig> {
  const epochs = epochsFor(crops);
  return resolveConfig('omniglot', phase, undefined, {
    ...over,
    seed: opts.seed,
    model: { patchSize: opts.patch },
    out: path.join(runsDir, name),
    schedule: { ...over.schedule, epochs },
    eval: { everyEpochs: Math.max(1, Math.round(epochs / opts.valPoints)), episodes: opts.episodes },
    ...(initFrom ? { init: path.join(runsDir, initFrom) } : {}),
  });
}

const noCe = { loss: { supervisedCe: 0 } };
const p2 = Math.round(opts.crops * opts.phase2Share);
const allArms: { name: string; label: string; configs: TrainConfig[] }[] = [
  { name: 'ce', label: '(a) cross-entropy only', configs: [await config('ce', 1, opts.crops, { objective: 'ce' })] },
  { name: 'ibot', label: '(b) phase 1 only (iBOT)', configs: [await config('ibot', 1, opts.crops, noCe)] },
  {
    name: 'smkd',
    label: '(c) phase 1 + phase 2 (iBOT, then SMKD)',
    configs: [await config('smkd-phase1', 1, opts.crops - p2, noCe), await config('smkd-phase2', 2, p2, noCe, 'smkd-phase1')],
  },
  {
    name: 'recipe',
    label: '(d) the omniglot recipe (both phases + CE term)',
    configs: [await config('recipe-phase1', 1, opts.crops - p2, {}), await config('recipe-phase2', 2, p2, {}, 'recipe-phase1')],
  },
];
const unknown = opts.arms.filter((a) => !allArms.some((x) => x.name === a));
if (unknown.length) throw new Error(`--arms: no arm ${unknown.join(', ')} (ce, ibot, smkd, recipe)`);
const arms = allArms.filter((a) => opts.arms.includes(a.name));

function command(cfg: TrainConfig): string {
  const parts = ['npx smkd train', `--phase ${cfg.phase}`, `--epochs ${cfg.schedule.epochs}`, `--eval-every ${cfg.eval.everyEpochs}`, `--out ${cfg.out}`];
  if (cfg.model.patchSize !== 14) parts.push(`--patch-size ${cfg.model.patchSize}`);
  if (cfg.objective === 'ce') parts.push('--objective ce');
  if (cfg.loss.supervisedCe === 0) parts.push('--supervised-ce 0');
  if (cfg.init) parts.push(`--init ${cfg.init}`);
  if (opts.seed) parts.push(`--seed ${opts.seed}`);
  return parts.join(' ');
}

interface Results {
  adapter: string;
  crops: number;
  episodes: number;
  seconds: number;
  armSeconds: Record<string, number>;
  rows: DemoRow[];
  curve: CurvePoint[];
  pixelsVal: number;
  /** Random init on the validation episodes (the start of every curve). */
  randomVal?: number;
  /** 'steps': armSeconds are the runs' training steps (from metrics.jsonl); absent: wall time of the arm. */
  timing?: 'steps';
}

const resultsFile = path.join(path.dirname(opts.doc), 'results', `omniglot-study-${tag}.json`);

const readResults = (): Promise<Results | undefined> => readSharedResults<Results>(resultsFile);
const saveResults = (r: Results): Promise<void> => saveSharedResults(resultsFile, r);

// Each arm's results are saved as soon as it ends and arms already saved are not trained again, so a
// study of several hours can be run an arm or two at a time (`--arms ce`, then `--arms ibot`, ...).
async function runStudy(): Promise<Results> {
  const splits = await openSplits(base.data, opts.seed);
  let res = opts.fresh ? undefined : await readResults();
  if (res && res.episodes !== opts.episodes)
    throw new Error(`${resultsFile} was made with ${res.episodes} episodes, not ${opts.episodes}: give --episodes ${res.episodes} or --fresh`);
  if (!res) {
    const t0 = performance.now();
    const fresh = modelsFor(base, splits.train.classes.length);
    const rows: DemoRow[] = [...(await testRows('random init', null, fresh, base, splits)), ...(await testRows('raw pixels', null, null, base, splits))];
    const { random: randomVal, pixels: pixelsVal } = await validationBaselines(fresh, base, splits);
    fresh.dispose();
    res = {
      adapter: adapterName((await getGpu()).info),
      crops: opts.crops,
      episodes: opts.episodes,
      seconds: (performance.now() - t0) / 1000,
      armSeconds: {},
      rows,
      curve: [],
      pixelsVal,
      randomVal,
      timing: 'steps',
    };
    await saveResults(res);
  }
  for (const arm of arms) {
    if (res.armSeconds[arm.label] !== undefined) {
      console.log(`${arm.name}: already in ${resultsFile} (--fresh to train it again)`);
      continue;
    }
    let offset = 0;
    const rows: DemoRow[] = [];
    const curve: CurvePoint[] = [{ x: 0, y: res.randomVal ?? 0, series: arm.label }];
    for (const cfg of arm.configs) {
      const r = await trainToEnd(cfg, `${arm.name} phase ${cfg.phase}`);
      curve.push(...(await validationCurve(cfg, arm.label, offset)));
      offset += cfg.schedule.epochs * cfg.schedule.itersPerEpoch * cropsPerIter;
      if (cfg === arm.configs[arm.configs.length - 1]) rows.push(...(await testRows(arm.label, r.lastCheckpoint, r.models, cfg, r.splits)));
      r.models.dispose();
    }
    // Seconds of training steps from the runs' own metrics: an arm stopped and resumed counts its steps once.
    let armSeconds = 0;
    for (const cfg of arm.configs) armSeconds += await stepSeconds(cfg.out);
    res = {
      ...res,
      seconds: res.seconds + armSeconds,
      armSeconds: { ...res.armSeconds, [arm.label]: armSeconds },
      rows: [...res.rows.filter((r) => r.model !== arm.label), ...rows],
      curve: [...res.curve.filter((c) => c.series !== arm.label), ...curve],
    };
    await saveResults(res);
    console.log(formatRows(res.rows));
  }
  return res;
}

const results = opts.reportOnly
  ? await readResults()
  : await runStudy().catch((e: unknown) => {
      if (!(e instanceof Interrupted)) throw e;
      console.log(e.message);
      process.exit(e.exitCode);
    });
if (!results) throw new Error(`--report-only: no results in ${resultsFile} yet`);
const { adapter, seconds: total, armSeconds: seconds, rows, curve, pixelsVal } = results;
/** The arms in the results, in the study's order, whichever session ran them. */
const doneArms = allArms.filter((a) => seconds[a.label] !== undefined);
const svg = await lineChartSvg(curve, {
  title: `Omniglot, validation alphabet: 5-way 1-shot accuracy against crops seen`,
  xTitle: 'augmented crops seen',
  yTitle: 'accuracy (%)',
  rules: [{ y: pixelsVal, label: `raw pixels ${pixelsVal.toFixed(1)} %` }],
});
const docDir = path.dirname(opts.doc);
await mkdir(docDir, { recursive: true });
const svgFile = path.join(docDir, first ? 'results-omniglot-curves.svg' : `results-omniglot-${tag}.svg`);
await writeFile(svgFile, svg);

const settings = [...new Set(rows.map((r) => `${r.ways}-way ${r.shots}-shot`))];
const rank = (model: string): number => allArms.findIndex((a) => a.label === model);
const models = [...new Set(rows.map((r) => r.model))].sort((a, b) => rank(a) - rank(b));
const cell = (m: string, s: string): string => {
  const r = rows.find((x) => x.model === m && `${x.ways}-way ${x.shots}-shot` === s);
  return r ? `${r.mean.toFixed(2)} ± ${r.ci95.toFixed(2)}` : '-';
};
const table = [
  `| Backbone | ${settings.join(' | ')} | ${results.timing === 'steps' ? "Steps' time" : 'Wall time'} |`,
  `|---|${settings.map(() => '---').join('|')}|---|`,
  ...models.map((m) => `| ${m} | ${settings.map((s) => cell(m, s)).join(' | ')} | ${seconds[m] ? `${seconds[m].toFixed(0)} s` : ''} |`),
].join('\n');
const section = `## ${opts.crops.toLocaleString('en-US')} crops, patch ${opts.patch} (${28 / opts.patch}×${28 / opts.patch} grid)

Every method sees **${opts.crops.toLocaleString('en-US')} augmented crops** (the \`omniglot\` preset:
ViT 64-d, depth 4, patch ${opts.patch}, batch ${base.batch.size}, stroke augmentation; phase 2 takes ${Math.round(opts.phase2Share * 100)} % of the
crops where there are two phases), seed ${opts.seed}, ${opts.episodes} episodes per test setting. Adapter: ${adapter}. ${results.timing === 'steps' ? `Training steps ${(Object.values(seconds).reduce((a, v) => a + v, 0) / 60).toFixed(1)} min in all` : `Total wall time ${(total / 60).toFixed(1)} min`}.

${table}

![validation accuracy against crops seen](${path.basename(svgFile)})

Reproduce: \`npx tsx scripts/omniglot-study.ts --crops ${opts.crops}${opts.patch !== 14 ? ` --patch ${opts.patch}` : ''}${doneArms.length < 4 ? ` --arms ${doneArms.map((a) => a.name).join(',')}` : ''} --episodes ${opts.episodes}${opts.seed ? ` --seed ${opts.seed}` : ''}\`, which runs:

\`\`\`sh
${doneArms.flatMap((a) => a.configs.map(command)).join('\n')}
\`\`\`
`;
await writeSection(opts.doc, tag, section);
console.log(`wrote ${opts.doc}, ${svgFile} and ${resultsFile} (${(total / 60).toFixed(1)} min)`);
process.exit(0);
