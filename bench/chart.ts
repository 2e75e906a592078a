// The SVG bar chart of RESULTS.md: per case, how many times faster ours is than tfjs-webgpu,
// tfjs-wasm, jax-js-webgpu, jax-js-wasm and PyTorch on the CPU (log scale, with the 1x and 2x lines), rendered headless with vega-lite.
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { CaseResult } from './harness.js';

export async function ratioChart(cases: readonly CaseResult[], title: string): Promise<string> {
  const values = cases.flatMap((c) =>
    [
      ['tfjs-webgpu time / ours', c.vsWebgpu],
      ['tfjs-wasm time / ours', c.vsWasm],
      ['jax-js-webgpu time / ours', c.vsJaxWebgpu],
      ['jax-js-wasm time / ours', c.vsJaxWasm],
      ['PyTorch CPU time / ours', c.vsTorch],
    ]
      .filter((x): x is [string, number] => typeof x[1] === 'number' && Number.isFinite(x[1]))
      .map(([against, ratio]) => ({ case: `${c.suite}: ${c.name}`.slice(0, 90), against, ratio })),
  );
  const ratios = values.map((v) => v.ratio);
  // A log scale has no zero: bars run from 1x (as fast as tfjs) to the ratio, left when ours is slower.
  const domain = [Math.min(0.5, ...ratios.map((r) => r / 1.25)), Math.max(4, ...ratios.map((r) => r * 1.25))];
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 420,
    data: { values },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y: { field: 'case', type: 'nominal', sort: null, title: null, axis: { labelLimit: 520 } },
          yOffset: { field: 'against' },
          x: { field: 'ratio', type: 'quantitative', scale: { type: 'log', domain }, title: 'speed-up of ours (x, log scale; > 1: ours is faster)' },
          x2: { datum: 1 },
          color: { field: 'against', type: 'nominal', title: null, legend: { orient: 'top', labelLimit: 400 } },
        },
      },
      { data: { values: [{ x: 1 }, { x: 2 }] }, mark: { type: 'rule', strokeDash: [4, 3], color: '#555' }, encoding: { x: { field: 'x', type: 'quantitative' } } },
    ],
  };
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
