// Line charts as SVG (learning curves of the demo and the study), rendered headless with vega-lite.
import type * as vegaLite from 'vega-lite';
import { vegaLiteSvg } from './optional-deps.js';

export interface CurvePoint {
  x: number;
  y: number;
  /** The line this point belongs to. */
  series: string;
}

export interface LineChartOptions {
  title: string;
  xTitle: string;
  yTitle: string;
  /** Horizontal reference lines (e.g. a baseline's accuracy). */
  rules?: readonly { y: number; label: string }[];
}

export async function lineChartSvg(points: readonly CurvePoint[], opts: LineChartOptions): Promise<string> {
  const values = points;
  const rules = (opts.rules ?? []).map((r) => ({ ...r, x: Math.max(...points.map((p) => p.x)) }));
  const ys = [...values.map((v) => v.y), ...rules.map((r) => r.y)];
  const pad = Math.max(1, (Math.max(...ys) - Math.min(...ys)) * 0.08);
  const domain = [Math.floor(Math.min(...ys) - pad), Math.ceil(Math.max(...ys) + pad)];
  const y = { field: 'y', type: 'quantitative' as const, title: opts.yTitle, scale: { domain, zero: false } };
  const color = { field: 'series', type: 'nominal' as const, title: null, legend: { orient: 'bottom' as const, labelLimit: 400 } };
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: opts.title,
    width: 520,
    height: 300,
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: { x: { field: 'x', type: 'quantitative', title: opts.xTitle }, y, color },
      },
      ...(rules.length
        ? [
            { data: { values: rules }, mark: { type: 'rule' as const, strokeDash: [4, 3], color: '#666' }, encoding: { y: { field: 'y', type: 'quantitative' as const } } },
            {
              data: { values: rules },
              mark: { type: 'text' as const, align: 'right' as const, dy: -6, color: '#444' },
              encoding: { x: { field: 'x', type: 'quantitative' as const }, y: { field: 'y', type: 'quantitative' as const }, text: { field: 'label', type: 'nominal' as const } },
            },
          ]
        : []),
    ],
  };
  return vegaLiteSvg(spec);
}

/** One run's metrics.jsonl as `smkd plot` reads it. */
export interface RunMetrics {
  name: string;
  /** Step lines: iteration, loss, terms, lr, teacherTemp, imagesPerSecond. */
  steps: { iteration: number; loss: number; terms: Record<string, number>; lr: number; teacherTemp: number; imagesPerSecond: number }[];
  /** Validation lines: iteration, valAccuracy. */
  validation: { iteration: number; valAccuracy: number }[];
}

/** The lines of a run's metrics.jsonl, split into step and validation records. */
export function parseMetrics(name: string, text: string): RunMetrics {
  const steps: RunMetrics['steps'] = [];
  const validation: RunMetrics['validation'] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`${name}: metrics.jsonl line ${i + 1} is not JSON`);
    }
    if (typeof m.valAccuracy === 'number') validation.push(m as unknown as RunMetrics['validation'][number]);
    else if (typeof m.loss === 'number') steps.push(m as unknown as RunMetrics['steps'][number]);
  });
  return { name, steps, validation };
}

/**
 * Training curves of several runs overlaid, one panel each for the loss and its terms, the learning
 * rate, the teacher temperature, crops per second and validation accuracy, against the iteration.
 */
/** Points per series and run at most; longer runs are drawn as means of bins of steps. */
export const MAX_POINTS = 1000;

/** One point of a run's curves: its panel, series, iteration and value. */
export interface CurveValue {
  run: string;
  panel: string;
  series: string;
  iteration: number;
  value: number;
}

/** The points runCurvesSvg draws. */
export function runCurveValues(runs: readonly RunMetrics[]): CurveValue[] {
  const values: CurveValue[] = [];
  // A long run drawn step by step makes megabytes of SVG: above MAX_POINTS steps, each point is the mean of a bin of steps (one bin size for all runs, so they share panels).
  const bin = Math.ceil(Math.max(0, ...runs.map((r) => r.steps.length)) / MAX_POINTS);
  const mean = `${bin > 1 ? bin : 11}-step mean`;
  for (const r of runs) {
    const iterations = r.steps.map((s) => s.iteration + 1);
    const add = (panel: string, series: string, ys: number[], smooth: boolean): void => {
      if (bin > 1) {
        for (let i = 0; i < ys.length; i += bin) {
          const win = ys.slice(i, i + bin);
          values.push({ run: r.name, panel, series, iteration: iterations[Math.min(i + bin, ys.length) - 1], value: meanOf(win) });
        }
        return;
      }
      // Per-step losses and speeds are noisy: an 11-step moving mean shows the trend.
      const k = smooth ? 5 : 0;
      ys.forEach((_, i) => {
        const win = ys.slice(Math.max(0, i - k), i + k + 1);
        values.push({ run: r.name, panel, series, iteration: iterations[i], value: meanOf(win) });
      });
    };
    add(
      `1 loss (${mean})`,
      'total',
      r.steps.map((s) => s.loss),
      true,
    );
    for (const term of Object.keys(r.steps[0]?.terms ?? {}))
      add(
        `1 loss (${mean})`,
        term,
        r.steps.map((s) => s.terms[term] ?? NaN),
        true,
      );
    add(
      '2 learning rate',
      'lr',
      r.steps.map((s) => s.lr),
      false,
    );
    add(
      '3 teacher temperature',
      'teacher',
      r.steps.map((s) => s.teacherTemp),
      false,
    );
    add(
      `4 crops per second (${mean})`,
      'crops/s',
      r.steps.map((s) => s.imagesPerSecond),
      true,
    );
    for (const v of r.validation) values.push({ run: r.name, panel: '5 validation accuracy (%)', series: 'validation', iteration: v.iteration, value: v.valAccuracy });
  }
  return values.filter((v) => drawable(v.value));
}

/** Values beyond this are a diverged run, not a curve: a chart scaled to them would put NaN into the SVG's coordinates. */
export const MAX_DRAWN = 1e30;

function drawable(v: number): boolean {
  return Number.isFinite(v) && Math.abs(v) <= MAX_DRAWN;
}

/** The mean of the drawable values of a window (NaN when there are none, and then not drawn); divided first, so ±1e308 cannot overflow. */
function meanOf(win: readonly number[]): number {
  const ok = win.filter(drawable);
  return ok.length ? ok.reduce((a, v) => a + v / ok.length, 0) : NaN;
}

/** How many values of the runs runCurvesSvg leaves out (not finite, or beyond ±MAX_DRAWN). */
export function undrawnValues(runs: readonly RunMetrics[]): number {
  let n = 0;
  for (const r of runs) {
    for (const s of r.steps) for (const v of [s.loss, s.lr, s.teacherTemp, s.imagesPerSecond, ...Object.values(s.terms ?? {})]) if (v !== undefined && !drawable(v)) n++;
    for (const v of r.validation) if (!drawable(v.valAccuracy)) n++;
  }
  return n;
}

export async function runCurvesSvg(runs: readonly RunMetrics[], title: string): Promise<string> {
  const values = runCurveValues(runs);
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    data: { values },
    facet: { row: { field: 'panel', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left', labelExpr: 'slice(datum.value, 2)' } } },
    spec: {
      width: 560,
      height: 150,
      mark: { type: 'line' },
      encoding: {
        x: { field: 'iteration', type: 'quantitative', title: 'iteration' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '~r' } },
        color: { field: 'run', type: 'nominal', title: 'run', legend: { orient: 'bottom', labelLimit: 400 } },
        strokeDash: { field: 'series', type: 'nominal', title: 'term', legend: { orient: 'bottom' } },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
  return vegaLiteSvg(spec);
}
