// The paper's ablation of phase 2 (issue #22), at a grid where patches can match (patch 7: 4x4): from one
// shared phase 1 (iBOT, no labels), phase 2 with the supervised [cls] term only, with the patch term
// (docs/algorithm.md §5.4-§5.5), each with and without the student's block masking, and two more weights λ2
// of the patch term; no cross-entropy term anywhere, so the rows differ by SMKD's own parts only. Every
// row trains for the same crops; validation curves along each run, the test alphabets at the end, the
// same episodes for every row. One section of docs/results-omniglot.md, its results in docs/results/.
//
//   npx tsx scripts/omniglot-ablation.ts [--crops 300000] [--phase1-crops 100000] [--patch 7] [--rows cls,patch,...]
import { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { adapterName, getGpu, init } from '../engine/index.js';
import { resolveConfig, type DeepPartial, type TrainConfig } from '../train/config.js';
import { stepSeconds, testRows, validationCurve, type DemoRow } from '../train/demo.js';
import { lineChartSvg, type CurvePoint } from '../train/plot.js';
import { Interrupted, trainToEnd } from '../train/run-training.js';
import { openSplits } from '../train/sources.js';
import { readResults as readSharedResults, saveResults as saveSharedResults, writeSection } from './report-sections.js';

const ROWS = {
  cls: { label: 'L_[cls] only (λ2 0)', over: { loss: { lambda2: 0 } }, flags: '--lambda2 0' },
  'cls-nomask': { label: 'L_[cls] only, no masking', over: { loss: { lambda2: 0 }, masking: { ratios: [0], ratioVar: [0] } }, flags: '--lambda2 0 --no-masking' },
  patch: { label: 'L_[cls] + L_[patch] (λ2 1, SMKD)', over: {}, flags: '' },
  'patch-nomask': { label: 'L_[cls] + L_[patch], no masking', over: { masking: { ratios: [0], ratioVar: [0] } }, flags: '--no-masking' },
  'lambda-0.5': { label: 'L_[cls] + 0.5 L_[patch]', over: { loss: { lambda2: 0.5 } }, flags: '--lambda2 0.5' },
  'lambda-2': { label: 'L_[cls] + 2 L_[patch]', over: { loss: { lambda2: 2 } }, flags: '--lambda2 2' },
} satisfies Record<string, { label: string; over: DeepPartial<TrainConfig>; flags: string }>;
type RowName = keyof typeof ROWS;

const cmd = new Command('omniglot-ablation')
  .option('--crops <n>', 'phase-2 crops of every row', (v) => Number(v), 300000)
  .option('--phase1-crops <n>', 'crops of the shared phase 1', (v) => Number(v), 100000)
  .option('--patch <px>', 'ViT patch side', (v) => Number(v), 7)
  .option('--rows <list>', `rows: ${Object.keys(ROWS).join(', ')}`, (v) => v.split(','), Object.keys(ROWS))
  .option('--episodes <n>', 'episodes per test setting', (v) => Number(v), 600)
  .option('--val-points <n>', 'validation points per run', (v) => Number(v), 8)
  .option('--out <dir>', 'folder of the runs', 'runs/omniglot-ablation')
  .option('--doc <file>', 'the report', 'docs/results-omniglot.md')
  .option('--seed <n>', 'seed of every run', (v) => Number(v), 0)
  .option('--report-only', 'rewrite the section from its results file, without training')
  .parse();
const opts = cmd.opts<{
  crops: number;
  phase1Crops: number;
  patch: number;
  rows: string[];
  episodes: number;
  valPoints: number;
  out: string;
  doc: string;
  seed: number;
  reportOnly?: boolean;
}>();
const bad = opts.rows.filter((r) => !(r in ROWS));
if (bad.length) throw new Error(`--rows: no row ${bad.join(', ')} (${Object.keys(ROWS).join(', ')})`);
const rows = opts.rows as RowName[];

const tag = `ablation-${opts.crops}-p${opts.patch}`;
const runsDir = path.join(opts.out, tag);
const resultsFile = path.join(path.dirname(opts.doc), 'results', `omniglot-${tag}.json`);
const base = await resolveConfig('omniglot', 2, undefined, { seed: opts.seed, model: { patchSize: opts.patch } });
const cropsPerIter = base.batch.size * (base.crops.global + base.crops.local);
const epochsFor = (crops: number): number => Math.max(1, Math.round(crops / cropsPerIter / base.schedule.itersPerEpoch));

async function config(phase: 1 | 2, name: string, crops: number, over: DeepPartial<TrainConfig>): Promise<TrainConfig> {
  const epochs = epochsFor(crops);
  return resolveConfig('omniglot', phase, undefined, {
    ...over,
    seed: opts.seed,
    model: { patchSize: opts.patch },
    loss: { ...over.loss, supervisedCe: 0 },
    out: path.join(runsDir, name),
    schedule: { epochs },
    eval: { everyEpochs: Math.max(1, Math.round(epochs / opts.valPoints)), episodes: opts.episodes },
    ...(phase === 2 ? { init: path.join(runsDir, 'phase1') } : {}),
  });
}

const phase1 = await config(1, 'phase1', opts.phase1Crops, {});
const allRows = Object.keys(ROWS) as RowName[];
const configOf = new Map(await Promise.all(allRows.map(async (r) => [r, await config(2, r, opts.crops, ROWS[r].over)] as const)));
const configFor = (r: RowName): TrainConfig => configOf.get(r) as TrainConfig;
const command = (c: TrainConfig, flags: string): string =>
  [
    'npx smkd train',
    `--phase ${c.phase}`,
    `--epochs ${c.schedule.epochs}`,
    `--eval-every ${c.eval.everyEpochs}`,
    `--patch-size ${opts.patch}`,
    '--supervised-ce 0',
    flags,
    c.init ? `--init ${c.init}` : '',
    `--out ${c.out}`,
    opts.seed ? `--seed ${opts.seed}` : '',
  ]
    .filter(Boolean)
    .join(' ');

interface Results {
  adapter: string;
  seconds: Record<string, number>;
  rows: DemoRow[];
  curve: CurvePoint[];
  /** Where every row starts: phase 1 on the test episodes, and its last validation accuracy. */
  phase1Rows?: DemoRow[];
  phase1Val?: number;
}

const PHASE1_LABEL = 'phase 1 only (where every row starts)';

const readResults = (): Promise<Results | undefined> => readSharedResults<Results>(resultsFile);
const saveResults = (r: Results): Promise<void> => saveSharedResults(resultsFile, r);

// Each row is saved as soon as it ends and rows already saved are not trained again, so the ablation can
// be run a few rows at a time (`--rows cls,patch`, then the others); phase 1 is deterministic, so a later
// session that trains it again starts every row from the same weights.
async function run(): Promise<Results> {
  await init();
  let res: Results = (await readResults()) ?? { adapter: adapterName((await getGpu()).info), seconds: {}, rows: [], curve: [] };
  const todo = rows.filter((r) => res.seconds[r] === undefined);
  for (const r of rows.filter((x) => !todo.includes(x))) console.log(`${r}: already in ${resultsFile}`);
  // Rows saved before step seconds were taken from the metrics: brought up to date while their runs are here.
  for (const r of [...allRows, 'phase1'] as const) {
    const s = await stepSeconds(r === 'phase1' ? phase1.out : configFor(r).out);
    if (res.seconds[r] !== undefined && s > 0) res.seconds[r] = s;
  }
  if (todo.length === 0 && res.phase1Rows) {
    await saveResults(res);
    return res;
  }
  const p1 = await trainToEnd(phase1, 'phase 1');
  if (!res.phase1Rows) {
    res.phase1Rows = await testRows(PHASE1_LABEL, p1.lastCheckpoint, p1.models, phase1, p1.splits);
    res.phase1Val = (await validationCurve(phase1, 'phase 1', 0)).at(-1)?.y;
  }
  p1.models.dispose();
  // Seconds of training steps from the runs' own metrics, so a row stopped and resumed counts its steps once.
  res.seconds.phase1 = await stepSeconds(phase1.out);
  const splits = await openSplits(base.data, opts.seed);
  for (const name of todo) {
    const cfg = configFor(name);
    const label = ROWS[name].label;
    const r = await trainToEnd(cfg, name);
    const seconds = await stepSeconds(cfg.out);
    const out = await testRows(label, r.lastCheckpoint, r.models, cfg, splits);
    const curve = await validationCurve(cfg, label, 0);
    r.models.dispose();
    res = {
      ...res,
      seconds: { ...res.seconds, [name]: seconds },
      rows: [...res.rows.filter((x) => x.model !== label), ...out],
      curve: [...res.curve.filter((c) => c.series !== label), ...curve],
    };
    await saveResults(res);
  }
  return res;
}

const found = opts.reportOnly
  ? await readResults()
  : await run().catch((e: unknown) => {
      if (!(e instanceof Interrupted)) throw e;
      console.log(e.message);
      process.exit(e.exitCode);
    });
if (!found) throw new Error(`--report-only: no results in ${resultsFile} yet`);
const res = found;
/** The rows in the results, in the table's order, whichever session ran them. */
const doneRows = allRows.filter((r) => res.seconds[r] !== undefined);
const svgFile = path.join(path.dirname(opts.doc), `results-omniglot-${tag}.svg`);
await writeFile(
  svgFile,
  // Every row's curve starts at phase 1's last validation (0 phase-2 crops).
  await lineChartSvg(res.phase1Val === undefined ? res.curve : [...doneRows.map((r) => ({ x: 0, y: res.phase1Val!, series: ROWS[r].label })), ...res.curve], {
    title: `SMKD phase 2 ablation, patch ${opts.patch}: validation 5-way 1-shot against phase-2 crops`,
    xTitle: 'phase-2 crops seen',
    yTitle: 'accuracy (%)',
  }),
);
const settings = [...new Set(res.rows.map((r) => `${r.ways}-way ${r.shots}-shot`))];
const cell = (label: string, s: string): string => {
  const r = [...res.rows, ...(res.phase1Rows ?? [])].find((x) => x.model === label && `${x.ways}-way ${x.shots}-shot` === s);
  return r ? `${r.mean.toFixed(2)} ± ${r.ci95.toFixed(2)}` : '-';
};
const table = [
  `| phase 2 | ${settings.join(' | ')} | steps' time | command |`,
  `|---|${settings.map(() => '---').join('|')}|---|---|`,
  ...(res.phase1Rows ? [`| ${PHASE1_LABEL} | ${settings.map((s) => cell(PHASE1_LABEL, s)).join(' | ')} | ${(res.seconds.phase1 ?? 0).toFixed(0)} s | (above) |`] : []),
  ...doneRows.map(
    (r) =>
      `| ${ROWS[r].label} | ${settings.map((s) => cell(ROWS[r].label, s)).join(' | ')} | ${(res.seconds[r] ?? 0).toFixed(0)} s | \`${command(configFor(r), ROWS[r].flags)}\` |`,
  ),
].join('\n');
await writeSection(
  opts.doc,
  tag,
  `## Ablation of phase 2 at patch ${opts.patch} (${28 / opts.patch}×${28 / opts.patch} grid), ${opts.crops.toLocaleString('en-US')} crops per row

From one phase 1 (iBOT without labels, ${opts.phase1Crops.toLocaleString('en-US')} crops, ${(res.seconds.phase1 ?? 0).toFixed(0)} s of steps:
\`${command(phase1, '')}\`), each row trains phase 2 for ${opts.crops.toLocaleString('en-US')} crops with SMKD's terms only (no
cross-entropy term), seed ${opts.seed}, ${opts.episodes} episodes per test setting, the same for every row. Adapter: ${res.adapter}.

${table}

![validation accuracy against phase-2 crops](${path.basename(svgFile)})

Reproduce: \`npx tsx scripts/omniglot-ablation.ts --crops ${opts.crops} --phase1-crops ${opts.phase1Crops} --patch ${opts.patch}\`.
`,
);
console.log(`wrote the ${tag} section of ${opts.doc}, ${svgFile} and ${resultsFile}`);
process.exit(0);
