// The computations the browser tests run twice, in Node (Dawn) and in headless Chromium, to compare:
// a ViT forward on the shipped model's weights, and two training steps of a ViT with a classifier.
// Platform-neutral: the page bundle maps the engine's and the model's Node entries to their browser ones.
import { AdamW, backward, crossEntropy, fromArray, parseSafetensors, tidy, type Tensor } from '../../engine/index.js';
import { loadModelBytes, VisionTransformer, vitConfig, type VitConfig } from '../../model/index.js';

/** The ViT of a backbone file's `vit` metadata (the shipped model's), optionally with a classifier. */
function configOf(bytes: Uint8Array, numClasses = 0): VitConfig {
  const meta = JSON.parse(parseSafetensors(bytes).metadata.vit ?? '{}') as Record<string, number>;
  return vitConfig('tiny', {
    imgSize: meta.img_size,
    patchSize: meta.patch_size,
    embedDim: meta.embed_dim,
    depth: meta.depth,
    numHeads: meta.num_heads,
    mlpRatio: meta.mlp_ratio,
    lnEps: meta.ln_eps,
    dropPath: 0,
    maskToken: false,
    numClasses,
  });
}

/** Deterministic input images [n, 3, size, size] in [-1, 3) (the range of normalised strokes). */
export function parityImages(n: number, size: number): Float32Array {
  const x = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = (((i * 2654435761) >>> 0) % 4096) / 1024 - 1;
  return x;
}

/** All tokens of the ViT forward ([n, 1 + grid², D], flattened) of `images` on the weights in `bytes`. */
export async function vitForward(bytes: Uint8Array, images: Float32Array, n: number): Promise<Float32Array> {
  const cfg = configOf(bytes);
  const vit = new VisionTransformer(cfg).build({ seed: 1 });
  loadModelBytes(bytes, vit, true, 'model');
  vit.train(false);
  const out = tidy(() => vit.forward(fromArray(images, [n, 3, cfg.imgSize, cfg.imgSize])).tokens);
  const values = await out.toArray();
  out.dispose();
  vit.dispose();
  return Float32Array.from(values);
}

/**
 * The losses of `steps` training steps (cross-entropy of a new classifier, AdamW on every parameter),
 * and the first values of the parameters after them: the backbone from `bytes`, the head seeded.
 */
export async function trainingSteps(bytes: Uint8Array, images: Float32Array, labels: number[], steps: number): Promise<{ losses: number[]; params: number[] }> {
  const classes = Math.max(...labels) + 1;
  const cfg = configOf(bytes, classes);
  const vit = new VisionTransformer(cfg).build({ seed: 7 });
  loadModelBytes(bytes, vit, false, 'model');
  vit.train(true);
  const optimizer = new AdamW(vit.arena);
  const x = fromArray(images, [labels.length, 3, cfg.imgSize, cfg.imgSize]);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    vit.arena.zeroGrad();
    const loss: Tensor = tidy(() => crossEntropy(vit.logits(x), labels));
    backward(loss);
    optimizer.step({ lr: 1e-3, weightDecay: 0.05 });
    losses.push(await loss.item());
    loss.dispose();
  }
  x.dispose();
  const state = await vit.stateDict();
  const params = [...state.values()].flatMap((t) => Array.from(t.data.subarray(0, 4)));
  vit.dispose();
  return { losses, params };
}
