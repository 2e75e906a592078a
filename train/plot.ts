// Line charts as SVG (learning curves of the demo and the study), rendered headless with vega-lite.
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

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
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
