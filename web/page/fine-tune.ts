// "Learn these": a few steps of supervised fine-tuning on the page's classes, one image each. A copy of
// the backbone with a linear head on [cls] (timm's VisionTransformer(num_classes=C)) learns to tell the
// classes apart under small random shifts (the only augmentation a one-shot class can take without a
// stroke model), with AdamW; only the last blocks and the final norm move, so the features the
// prototypes use stay close to the pretrained ones. The tuned weights are copied back into the
// inference backbone, and the head is thrown away: classification stays the prototype classifier's.
import { AdamW, backward, crossEntropy, fromArray, Rng, rt, tidy } from '../../engine/browser.js';
import { VisionTransformer } from '../../model/browser.js';
import { shiftImages } from '../../train/image-features.js';
import { modelInput } from './few-shot.js';
import type { PretrainedModel } from './pretrained.js';

export interface FineTuneOptions {
  /** Optimizer steps (default 30). */
  steps?: number;
  /** Shifted copies of each class's image per step (default 8). */
  copies?: number;
  /** Largest shift in pixels, each direction (default 2). */
  maxShift?: number;
  /** Learning rate of the backbone's trained blocks (default 1e-4). */
  lr?: number;
  /** Learning rate of the new head (default 1e-2): it starts from nothing. */
  headLr?: number;
  /** How many of the last blocks train (default 2); the rest stay frozen. */
  trainBlocks?: number;
  weightDecay?: number;
  seed?: number;
}

/** Called after every step with the step's cross-entropy. */
export type StepListener = (step: number, steps: number, loss: number) => void;

/** Fine-tune `model.backbone` in place on one image (ink) per class; returns the last step's loss. */
export async function fineTune(model: PretrainedModel, support: readonly Uint8Array[], opts: FineTuneOptions = {}, onStep?: StepListener): Promise<number> {
  const { steps = 30, copies = 8, maxShift = 2, lr = 1e-4, headLr = 1e-2, trainBlocks = 2, weightDecay = 0.05, seed = 0 } = opts;
  const size = model.preprocessing.imageSize;
  const len = 3 * size * size;
  const classes = support.length;
  const images = modelInput(model, support);
  const tuned = new VisionTransformer({ ...model.config, numClasses: classes }).build({ seed, label: 'fine-tune' });
  let loss = NaN;
  try {
    tuned.loadStateDict(await model.backbone.stateDict(), false);
    const depth = model.config.depth;
    const trained = (name: string): boolean =>
      name.startsWith('head.') ||
      name.startsWith('norm.') ||
      Array.from({ length: Math.min(trainBlocks, depth) }, (_, i) => `blocks.${depth - 1 - i}.`).some((b) => name.startsWith(b));
    const optimizer = new AdamW(tuned.arena);
    const rng = new Rng(seed);
    const labels = Array.from({ length: classes * copies }, (_, i) => Math.floor(i / copies));
    for (let step = 1; step <= steps; step++) {
      const batch = new Float32Array(classes * copies * len);
      labels.forEach((c, i) => {
        const shifted = shiftImages(images.subarray(c * len, (c + 1) * len), 1, size, rng.int(-maxShift, maxShift), rng.int(-maxShift, maxShift));
        batch.set(shifted, i * len);
      });
      const x = fromArray(batch, [labels.length, 3, size, size]);
      tuned.arena.zeroGrad();
      const l = tidy(() => crossEntropy(tuned.logits(x), labels));
      backward(l);
      optimizer.step({ lr, weightDecay, groups: [{ params: (n) => n.startsWith('head.'), lr: headLr }], frozen: (n) => !trained(n) });
      // One submission per step; reading the loss waits for it, which also paces the progress bar.
      await rt().flush();
      loss = await l.item();
      x.dispose();
      l.dispose();
      onStep?.(step, steps, loss);
    }
    // The head's weights are not the backbone's: left out as unexpected keys.
    model.backbone.loadStateDict(await tuned.stateDict(), false);
  } finally {
    tuned.dispose();
  }
  return loss;
}
