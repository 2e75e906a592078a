// The main job (`npm run demo`): phase 1, then phase 2, on the default data (the packed Omniglot subset),
// and the few-shot evaluation on the test alphabets of four models on the same episodes: random init,
// raw pixels, after phase 1, after phase 2. Writes runs/demo/summary.json, the validation learning curve
// (accuracy against crops seen, SVG), pictures of the phase-2 teacher (attention/, matches.png,
// embedding.svg, curves.svg, from the test images in images/) and a table on the terminal.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StudentTeacher } from '../model/smkd.js';
import type { TrainConfig } from './config.js';
import { evaluatePixels, evaluateBackbone } from './evaluate.js';
import { capPerClass, extractFeatures, featureComponents, pixelFeatures, selectFeatures } from './features.js';
import { evaluateFewShot, type FeatureSet } from './fewshot.js';
import { lineChartSvg, type CurvePoint } from './plot.js';
import { Interrupted, runTraining, STOP_SIGNALS, validationOptions } from './run-training.js';
import { demoPictures } from './show/demo-pictures.js';
import { openSplits, type DataSplits } from './sources.js';
import { modelsFor } from './trainer.js';

/** The few-shot settings the demo reports (ways, shots). */
export const DEMO_SETTINGS = [
  { ways: 5, shots: 1 },
  { ways: 5, shots: 5 },
  { ways: 20, shots: 1 },
] as const;

export type DemoModel = 'random' | 'pixels' | 'phase1' | 'phase2';

export interface DemoRow {
  /** The demo's models are DemoModel; the study's are its arms. */
  model: string;
  checkpoint: string | null;
  ways: number;
  shots: number;
  episodes: number;
  /** Mean accuracy and 95 % half-width, in %. */
  mean: number;
  ci95: number;
}

export interface DemoSummary {
  seconds: number;
  rows: DemoRow[];
}

/** Every demo setting for one model (null: raw pixels): features extracted once, the same seeded episodes for all models. */
export async function testRows(model: string, checkpoint: string | null, models: StudentTeacher | null, cfg: TrainConfig, splits: DataSplits): Promise<DemoRow[]> {
  const opts = { size: cfg.crops.globalSize, normalize: splits.normalize, resizeRatio: cfg.eval.resizeRatio, indices: capPerClass(splits.test, cfg.eval.maxPerClass) };
  const f: FeatureSet = models
    ? selectFeatures(await extractFeatures(models.teacher.backbone, splits.test, { ...opts, components: featureComponents(cfg.eval.features) }), cfg.eval.features)
    : await pixelFeatures(splits.test, opts);
  return DEMO_SETTINGS.map(({ ways, shots }) => {
    const r = evaluateFewShot(f, { ways, shots, queries: cfg.eval.queries, episodes: cfg.eval.episodes, seed: cfg.seed, classifier: 'prototype' });
    return { model, checkpoint, ways, shots, episodes: cfg.eval.episodes, mean: r.mean, ci95: r.ci95 };
  });
}

/** Validation accuracies a run logged in its metrics.jsonl, as (crops seen, accuracy). */
export async function validationCurve(cfg: TrainConfig, series: string, cropOffset: number): Promise<CurvePoint[]> {
  const text = await readFile(path.join(cfg.out, 'metrics.jsonl'), 'utf8').catch(() => '');
  const perStep = cfg.batch.size * (cfg.crops.global + cfg.crops.local);
  const byIteration = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.includes('valAccuracy')) continue;
    const m = JSON.parse(line) as { iteration: number; valAccuracy: number };
    byIteration.set(m.iteration, m.valAccuracy);
  }
  return [...byIteration].sort((a, b) => a[0] - b[0]).map(([it, acc]) => ({ x: cropOffset + it * perStep, y: acc, series }));
}

/**
 * The seconds of a run's training steps, summed from its metrics.jsonl: the same whether the run went
 * straight through or was stopped and resumed (evaluation, loading and checkpoints not included).
 */
export async function stepSeconds(runDir: string): Promise<number> {
  const text = await readFile(path.join(runDir, 'metrics.jsonl'), 'utf8').catch(() => '');
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.includes('"seconds"')) continue;
    const s = (JSON.parse(line) as { seconds?: unknown }).seconds;
    if (typeof s === 'number') total += s;
  }
  return total;
}

export function formatRows(rows: readonly DemoRow[]): string {
  const names: Record<string, string> = { random: 'random init', pixels: 'raw pixels', phase1: 'after phase 1', phase2: 'after phase 2' };
  const header = `  ${'model'.padEnd(Math.max(14, ...rows.map((r) => (names[r.model] ?? r.model).length + 2)))}${DEMO_SETTINGS.map((s) => `${s.ways}-way ${s.shots}-shot`.padStart(18)).join('')}`;
  const models = [...new Set(rows.map((r) => r.model))];
  const width = Math.max(14, ...models.map((m) => (names[m] ?? m).length + 2));
  const lines = models.map(
    (m) =>
      `  ${(names[m] ?? m).padEnd(width)}${DEMO_SETTINGS.map((s) => {
        const r = rows.find((x) => x.model === m && x.ways === s.ways && x.shots === s.shots);
        return (r ? `${r.mean.toFixed(2)} ± ${r.ci95.toFixed(2)}` : '-').padStart(18);
      }).join('')}`,
  );
  return [header, ...lines].join('\n');
}

/** The validation accuracy (as the trainer's validation measures it) of untrained `models` and of raw pixels: where the learning curves start. */
export async function validationBaselines(models: StudentTeacher, cfg: TrainConfig, splits: DataSplits): Promise<{ random: number; pixels: number }> {
  const val = validationOptions(cfg, splits.normalize);
  const random = (await evaluateBackbone(models.teacher.backbone, splits.val, val)).rows[0].mean;
  const pixels = (await evaluatePixels(splits.val, val)).rows[0].mean;
  return { random, pixels };
}

/** Runs the demo into `base` (phase1/, phase2/, summary.json, learning-curve.svg, the pictures); a stop signal ends it with Interrupted, after the checkpoint. */
export async function runDemo(p1: TrainConfig, p2: TrainConfig, base: string): Promise<DemoSummary> {
  const t0 = performance.now();
  const splits = await openSplits(p1.data, p1.seed);
  const fresh = modelsFor(p1, splits.train.classes.length);
  const rows = [...(await testRows('random', null, fresh, p1, splits)), ...(await testRows('pixels', null, null, p1, splits))];
  const { random: randomVal, pixels: pixelsVal } = await validationBaselines(fresh, p1, splits);
  fresh.dispose();
  console.log(
    `test alphabets (${splits.test.name}, ${splits.test.classes.length} classes), ${p1.eval.episodes} episodes, ${p1.eval.features} features, prototype classifier:\n${formatRows(rows)}`,
  );

  const r1 = await runTraining(p1, 'phase 1');
  rows.push(...(await testRows('phase1', r1.lastCheckpoint, r1.models, p1, r1.splits)));
  r1.models.dispose();
  if (r1.stopped) throw new Interrupted(`interrupted (${r1.signal ?? 'SIGINT'}); the same command resumes the demo in ${base}`, STOP_SIGNALS[r1.signal ?? 'SIGINT']);
  const r2 = await runTraining(p2, 'phase 2');
  rows.push(...(await testRows('phase2', r2.lastCheckpoint, r2.models, p2, r2.splits)));
  r2.models.dispose();
  if (r2.stopped) throw new Interrupted(`interrupted (${r2.signal ?? 'SIGINT'}); the same command resumes the demo in ${base}`, STOP_SIGNALS[r2.signal ?? 'SIGINT']);
  const t1 = performance.now();
  const pictures = await demoPictures(base, p2.out, r2.splits.test, [p1.out, p2.out]);
  console.log(
    `pictures of the phase-2 teacher in ${((performance.now() - t1) / 1000).toFixed(1)} s: ${[path.dirname(pictures.attention[0]), pictures.matches, pictures.embedding, pictures.curves].join(', ')}`,
  );

  const phase1Crops = p1.schedule.epochs * p1.schedule.itersPerEpoch * p1.batch.size * (p1.crops.global + p1.crops.local);
  const curve1 = [{ x: 0, y: randomVal, series: 'phase 1' }, ...(await validationCurve(p1, 'phase 1', 0))];
  // Phase 2 starts where phase 1 ended.
  const curve = [...curve1, { ...curve1[curve1.length - 1], series: 'phase 2' }, ...(await validationCurve(p2, 'phase 2', phase1Crops))];
  const svg = await lineChartSvg(curve, {
    title: `SMKD, ${p1.preset} preset: ${p1.eval.ways}-way ${p1.eval.shots[0]}-shot accuracy on the validation classes (${splits.val.name})`,
    xTitle: 'augmented crops seen',
    yTitle: 'accuracy (%)',
    rules: [{ y: pixelsVal, label: `raw pixels ${pixelsVal.toFixed(1)} %` }],
  });
  await writeFile(path.join(base, 'learning-curve.svg'), svg);
  const summary: DemoSummary = { seconds: (performance.now() - t0) / 1000, rows };
  await writeFile(path.join(base, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  console.log(`\nsummary: test alphabets, ${p1.eval.episodes} episodes, mean accuracy % ± 95% CI:\n${formatRows(rows)}`);
  console.log(`demo wall time ${summary.seconds.toFixed(0)} s; ${path.join(base, 'summary.json')}, ${path.join(base, 'learning-curve.svg')}`);
  console.log(
    `\nThe demo's model is a short run (${(phase1Crops + p2.schedule.epochs * p2.schedule.itersPerEpoch * p2.batch.size * (p2.crops.global + p2.crops.local)).toLocaleString('en-US')} crops on the ${splits.train.classes.length} characters of the training alphabets), made to show the method in minutes. ` +
      'The model that ships in models/ (the default of `smkd classify`, `eval`, `embed` and `show` without a checkpoint) is trained for an hour on all 8 alphabets: models/README.md.',
  );
  return summary;
}
