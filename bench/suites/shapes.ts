// The activation shapes of the training steps the suites are sized from: [B*T, D] token matrices
// of the tiny preset, the ViT-Tiny-like configuration and vit_small at 224 px.

export interface StepShape {
  /** Short name used in case names. */
  config: string;
  /** Sequences (crops) per step. */
  B: number;
  /** Tokens per sequence (patches + [cls]). */
  T: number;
  D: number;
  heads: number;
}

export const STEP_SHAPES: StepShape[] = [
  // Preset 'tiny': 16 images x 2 global 32 px crops, patch 4 -> 64 patches + [cls]; embed 64.
  { config: 'tiny', B: 32, T: 65, D: 64, heads: 2 },
  // ViT-Tiny-like: dim 192, 3 heads, 32 px images, patch 4, batch 32.
  { config: 'vit-tiny-32px', B: 32, T: 65, D: 192, heads: 3 },
  // vit_small at 224 px, patch 16: 196 patches + [cls]; batch 8.
  { config: 'vit_small-224', B: 8, T: 197, D: 384, heads: 6 },
];

/** Small awkward shapes (no tile or vector multiple) for the smoke test. */
export const REDUCED_SHAPES: StepShape[] = [{ config: 'reduced', B: 3, T: 13, D: 37, heads: 1 }];
