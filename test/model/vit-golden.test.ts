// Backbone parity with PyTorch: every set of every vit_forward*.safetensors file (sizes read from
// the files), tokens, [cls] attention (per head where the file has the full attention), resized position
// embeddings and evaluation features.
import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import type { HostTensor } from '../../engine/nn/module.js';
import { vitConfig } from '../../model/configs.js';
import { fewShotFeatures } from '../../model/features.js';
import { VisionTransformer } from '../../model/vit.js';
import { close, gpu } from '../helpers/check.js';
import { Golden, needsGolden, type VitMeta } from '../helpers/golden.js';

const test = suite('vit golden');
test.before(gpu);

// Scale-relative tolerance of the golden README (2e-5 target, 1e-4 hard limit).
const TOL = 2e-5;

for (const file of ['vit_forward.safetensors', 'vit_forward_h3d2.safetensors']) {
  needsGolden(test, file)(`${file}: tokens, attention, pos_embed and features match PyTorch`, async () => {
    const g = await Golden.load(file);
    const m = g.meta<VitMeta>('vit');
    const cfg = vitConfig('tiny', {
      imgSize: m.img_size,
      patchSize: m.patch_size,
      embedDim: m.embed_dim,
      depth: m.depth,
      numHeads: m.num_heads,
      mlpRatio: m.mlp_ratio,
      lnEps: m.ln_eps,
      maskToken: true,
    });
    const vit = new VisionTransformer(cfg).build();
    const weights = new Map<string, HostTensor>();
    for (const e of vit.arena.entries) weights.set(e.name, { data: g.f32(e.name), shape: g.shape(e.name) });
    vit.loadStateDict(weights);
    vit.eval();
    const sets = g
      .keys('in.')
      .filter((k) => k.endsWith('.images'))
      .map((k) => k.slice(3, -7));
    if (sets.length === 0) throw new Error('no input sets found');
    for (const set of sets) {
      const images = E.fromArray(g.f32(`in.${set}.images`), g.shape(`in.${set}.images`));
      const full = g.has(`out.${set}.attn`);
      const out = E.noGrad(() => vit.forward(images, { clsAttention: true, clsAttentionHeads: full }));
      close(await out.tokens.toArray(), g.f32(`out.${set}.tokens`), TOL, `${file} ${set} tokens`);
      close(await out.clsAttention!.toArray(), g.f32(`out.${set}.cls_attn`), TOL, `${file} ${set} cls_attn`);
      if (full) {
        // The full last-block attention [n, h, T, T]: the engine gives its [cls] query row per head (patch keys).
        const [n, h, T] = g.shape(`out.${set}.attn`);
        const attn = g.f32(`out.${set}.attn`);
        const want = Float32Array.from({ length: n * h * (T - 1) }, (_, i) => attn[Math.floor(i / (T - 1)) * T * T + 1 + (i % (T - 1))]);
        close(await out.clsAttentionHeads!.toArray(), want, TOL, `${file} ${set} per-head cls attention`);
      }
      if (g.has(`out.${set}.eval_features`)) close(await E.noGrad(() => fewShotFeatures(out)).toArray(), g.f32(`out.${set}.eval_features`), TOL, `${file} ${set} features`);
      if (g.has(`out.${set}.pos_embed`)) {
        const [, , H, W] = images.shape;
        const pos = vit.positionEmbedding(Math.floor(H / cfg.patchSize), Math.floor(W / cfg.patchSize), H === W);
        close(await pos.toArray(), g.f32(`out.${set}.pos_embed`), TOL, `${file} ${set} pos_embed`);
      }
      if (g.has(`in.${set}.masks`)) {
        const masks = E.fromArray(g.ints(`in.${set}.masks`), [g.shape(`in.${set}.masks`)[0], out.gh * out.gw], 'u32');
        const masked = E.noGrad(() => vit.forward(images, { masks, clsAttention: true }));
        close(await masked.tokens.toArray(), g.f32(`out.${set}_masked.tokens`), TOL, `${file} ${set} masked tokens`);
        close(await masked.clsAttention!.toArray(), g.f32(`out.${set}_masked.cls_attn`), TOL, `${file} ${set} masked cls_attn`);
      }
    }
    vit.dispose();
  });
}

test.run();
