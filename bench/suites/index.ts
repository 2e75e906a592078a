// Every benchmark suite, in report order.
import type { BenchCase, Sizes } from '../case.js';
import { adamwCases } from './adamw.js';
import { attentionCases } from './attention.js';
import { cosineArgmaxCases } from './cosine-argmax.js';
import { emaCases } from './ema.js';
import { softCrossEntropyCases } from './soft-cross-entropy.js';

export const SUITES: Record<string, { title: string; cases: (sizes: Sizes) => BenchCase[] }> = {
  attention: { title: 'Attention (scaledDotProductAttention)', cases: attentionCases },
  softCrossEntropy: { title: 'Soft cross-entropy (softCrossEntropy, τs = 0.1, τt = 0.04, centred)', cases: softCrossEntropyCases },
  cosineArgmax: { title: 'Cosine argmax (cosineArgmax)', cases: cosineArgmaxCases },
  ema: { title: 'Teacher EMA (emaUpdate), momentum 0.996', cases: emaCases },
  adamw: { title: 'AdamW (AdamW.step), lr 5e-4, weight decay 0.04', cases: adamwCases },
};

/** The cases of the named suites (all when `names` is empty). */
export function selectCases(sizes: Sizes, names: readonly string[] = []): BenchCase[] {
  const unknown = names.filter((n) => !(n in SUITES));
  if (unknown.length) throw new Error(`unknown suite(s) ${unknown.join(', ')}; suites are ${Object.keys(SUITES).join(', ')}`);
  return Object.entries(SUITES)
    .filter(([n]) => names.length === 0 || names.includes(n))
    .flatMap(([, s]) => s.cases(sizes));
}
