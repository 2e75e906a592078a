// The reference configuration runs: vit_small/16 at 224 px (21.7M parameters, Dh = 64, T = 197).
import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import { vitConfig } from '../../model/configs.js';
import { VisionTransformer } from '../../model/vit.js';
import { gpu } from '../helpers/check.js';

const test = suite('vit_small');
test.before(gpu);

test('vit_small forward at 224 px: shapes, parameter count, finite normalised tokens', async () => {
  const vit = new VisionTransformer(vitConfig('vit_small', { maskToken: true })).build({ seed: 1 }).eval();
  const count = vit.arena.entries.reduce((a, e) => a + e.size, 0);
  // docs/algorithm.md §1.1: 21,665,664 parameters plus 384 for the mask token.
  if (count !== 21_665_664 + 384) throw new Error(`vit_small has ${count} parameters`);
  const out = E.noGrad(() => vit.forward(E.randn([1, 3, 224, 224], 2), { clsAttention: true }));
  if (out.tokens.shape.join() !== '1,197,384' || out.clsAttention!.shape.join() !== '1,196') throw new Error(`shapes ${out.tokens.shape} ${out.clsAttention!.shape}`);
  const t = await out.tokens.toArray();
  if (!t.every(Number.isFinite)) throw new Error('non-finite tokens');
  // The final LayerNorm has weight 1 and bias 0 at init: every token has mean 0 and variance 1.
  for (const tok of [0, 100, 196]) {
    const row = t.subarray(tok * 384, (tok + 1) * 384);
    const mean = row.reduce((a, v) => a + v, 0) / 384;
    const v = row.reduce((a, x) => a + (x - mean) ** 2, 0) / 384;
    if (Math.abs(mean) > 1e-4 || Math.abs(v - 1) > 1e-3) throw new Error(`token ${tok}: mean ${mean}, variance ${v}`);
  }
  const a = await out.clsAttention!.toArray();
  const s = a.reduce((x, y) => x + y, 0);
  if (!(s > 0 && s < 1)) throw new Error(`[cls] attention to patches sums to ${s}`);
  vit.dispose();
});

test.run();
