// Masked image modelling (SimMIM, Xie et al. 2022) from the library's public entry points alone: a ViT
// whose masked patches are replaced by its mask token, a linear decoder from each token back to its
// patch's pixels, an L1 loss on the masked patches only; trained on images it generates (stripes of any
// angle and period, and a disc), then scored on new images against filling each hidden patch with the
// mean of the visible ones.
//   npx tsx examples/masked-autoencoder.ts [--steps 400] [--batch 32] [--lr 2e-3] [--mask 0.4]
// In your own project the imports are 'smkd-webgpu/engine' and 'smkd-webgpu/model'.
import { parseArgs } from 'node:util';
import * as E from '../engine/index.js';
import { blockMask, VisionTransformer, vitConfig } from '../model/index.js';

const opts = { steps: '400', batch: '32', lr: '2e-3', mask: '0.4' };
const { values } = parseArgs({ options: Object.fromEntries(Object.entries(opts).map(([k, v]) => [k, { type: 'string', default: v }])) });
const [STEPS, BATCH, LR, MASK] = [Number(values.steps), Number(values.batch), Number(values.lr), Number(values.mask)];
const [SIZE, P, G] = [32, 4, 8];

class SimMIM extends E.Module {
  readonly encoder = this.registerModule('encoder', new VisionTransformer(vitConfig('tiny', { imgSize: SIZE, patchSize: P, maskToken: true })));
  readonly decoder = this.registerModule('decoder', new E.Linear(64, 3 * P * P));
  /** images [B, 3, H, W], masks [B, G*G] (1 = hidden) -> predicted pixels of every patch [B, G*G, 3*P*P]. */
  forward(images: E.Tensor, masks: E.Tensor): E.Tensor<'f32'> {
    return this.decoder.forward(E.narrow(this.encoder.forward(images, { masks }).tokens, 1, 1, G * G));
  }
}

/** images [B, 3, H, W] -> patches [B, G*G, 3*P*P], each flattened as (channel, row, column) like the patch embedding. */
const patchify = (x: E.Tensor): E.Tensor => {
  const [B] = x.shape as [number];
  return E.reshape(E.permute(E.reshape(x, [B, 3, G, P, G, P]), [0, 2, 4, 1, 3, 5]), [B, G * G, 3 * P * P]);
};

const rng = new E.Rng(0);
/** B generated images (stripes of any angle and period, and a disc of one colour) and their block masks, on the GPU. */
function batch(B: number): { x: E.Tensor; m: E.Tensor } {
  const [images, masks] = [new Float32Array(B * 3 * SIZE * SIZE), new Float32Array(B * G * G)];
  for (let b = 0; b < B; b++) {
    const u = (): number => rng.random();
    const [angle, period, cx, cy, r, colour] = [Math.PI * u(), 12 + 20 * u(), SIZE * u(), SIZE * u(), 3 + 6 * u(), [u(), u(), u()]];
    for (let i = 0; i < 3 * SIZE * SIZE; i++) {
      const [c, y, x] = [Math.floor(i / SIZE / SIZE), Math.floor(i / SIZE) % SIZE, i % SIZE];
      const disc = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      images[b * 3 * SIZE * SIZE + i] = disc ? colour[c]! : 0.5 * Math.sin((2 * Math.PI * (x * Math.cos(angle) + y * Math.sin(angle))) / period);
    }
    masks.set(blockMask(G, G, MASK, rng), b * G * G);
  }
  return { x: E.fromArray(images, [B, 3, SIZE, SIZE]), m: E.fromArray(masks, [B, G * G]) };
}

/** Mean |prediction - truth| over the pixels of the hidden patches. */
const maskedL1 = (pred: E.Tensor, truth: E.Tensor, m: E.Tensor): E.Tensor<'f32'> => E.div(E.sum(E.mul(E.abs(E.sub(pred, truth)), E.unsqueeze(m, 2))), E.mul(E.sum(m), 3 * P * P));

await E.init();
const model = new SimMIM().build({ seed: 0 });
console.log(model.summary(1));
const optimizer = new E.AdamW(model.arena, { betas: [0.9, 0.95] });
const lrAt = E.warmupCosine({ peak: LR, final: LR / 100, total: STEPS, warmup: Math.ceil(STEPS / 20) });
const t0 = performance.now();
for (let step = 0; step < STEPS; step++) {
  const { x, m } = batch(BATCH);
  model.arena.zeroGrad();
  const loss = E.tidy(() => maskedL1(model.forward(x, m), patchify(x), m));
  E.backward(loss);
  optimizer.step({ lr: lrAt(step), weightDecay: 0.05 });
  await E.rt().flush(); // one submission per step
  const ips = ((step + 1) * BATCH) / ((performance.now() - t0) / 1000);
  if ((step + 1) % 25 === 0 || step === STEPS - 1) console.log(`step ${step + 1}/${STEPS}  masked L1 ${(await loss.item()).toFixed(4)}  ${ips.toFixed(0)} images/s`);
  for (const t of [x, m, loss]) t.dispose();
}

// New images: the model against filling each hidden patch with the mean of the image's visible pixels.
model.eval();
const { x, m } = batch(64);
const [ours, meanFill] = await E.inference(() => {
  const [truth, visible] = [patchify(x), E.unsqueeze(E.sub(1, m), 2)];
  const fill = E.div(E.sum(E.mul(truth, visible), [1, 2], true), E.mul(E.sum(visible, [1, 2], true), 3 * P * P));
  return [maskedL1(model.forward(x, m), truth, m), maskedL1(E.broadcastTo(fill, truth.shape), truth, m)] as const;
});
console.log(`hidden patches of 64 new images: L1 ${ours[0]!.toFixed(4)} (the visible pixels' mean: ${meanFill[0]!.toFixed(4)})`);
