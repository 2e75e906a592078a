// Every benchmark suite, in report order.
import type { BenchCase, Sizes } from '../case.js';
import { adamwCases } from './adamw.js';
import { attentionCases } from './attention.js';
import { cosineArgmaxCases } from './cosine-argmax.js';
import { emaCases } from './ema.js';
import { geluCases } from './gelu.js';
import { layerNormCases } from './layernorm.js';
import { matmulCases } from './matmul.js';
import { softCrossEntropyCases } from './soft-cross-entropy.js';
import { smkdIterationCases } from './smkd-iteration.js';
import { trainingStepCases } from './training-step.js';

export const SUITES: Record<string, { title: string; cases: (sizes: Sizes) => BenchCase[] }> = {
  matmul: { title: 'Matmul at the step shapes (x · Wᵀ as nn.Linear)', cases: matmulCases },
  attention: { title: 'Attention (scaledDotProductAttention)', cases: attentionCases },
  layerNorm: { title: 'LayerNorm (layerNorm, eps 1e-6, with weight and bias)', cases: layerNormCases },
  gelu: { title: 'GELU (exact, erf)', cases: geluCases },
  softCrossEntropy: { title: 'Soft cross-entropy (softCrossEntropy, τs = 0.1, τt = 0.04, centred)', cases: softCrossEntropyCases },
  cosineArgmax: { title: 'Cosine argmax (cosineArgmax)', cases: cosineArgmaxCases },
  ema: { title: 'Teacher EMA (emaUpdate), momentum 0.996', cases: emaCases },
  adamw: { title: 'AdamW (AdamW.step), lr 5e-4, weight decay 0.04', cases: adamwCases },
  trainingStep: {
    title: "Whole training step (ViT + head forward, soft cross-entropy, backward, AdamW), and SMKD iterations of the 'omniglot' preset",
    cases: (sizes) => [...trainingStepCases(sizes), ...smkdIterationCases(sizes)],
  },
};

/** The cases of the named suites (all when `names` is empty); `quickOnly` keeps the --quick subset. */
export function selectCases(sizes: Sizes, names: readonly string[] = [], quickOnly = false): BenchCase[] {
  const unknown = names.filter((n) => !(n in SUITES));
  if (unknown.length) throw new Error(`unknown suite(s) ${unknown.join(', ')}; suites are ${Object.keys(SUITES).join(', ')}`);
  return Object.entries(SUITES)
    .filter(([n]) => names.length === 0 || names.includes(n))
    .flatMap(([, s]) => s.cases(sizes))
    .filter((c) => !quickOnly || c.quick);
}
