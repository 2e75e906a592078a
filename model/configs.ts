// Named backbone and head configurations: timm/DINO sizes and the CPU presets of docs/algorithm.md §10.2.

export interface VitConfig {
  imgSize: number;
  patchSize: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  /** LayerNorm epsilon of the backbone (1e-6 in DINO/iBOT/SMKD). */
  lnEps: number;
  /** Stochastic depth of the last block; rates grow linearly from 0 (docs/algorithm.md §1.7). */
  dropPath: number;
  /** The student's learnable mask token `masked_embed` (MIM); the teacher has none. */
  maskToken: boolean;
  /** timm's `num_classes`: a linear classifier `head` on the [cls] token; 0 or absent (DINO backbones): none. */
  numClasses?: number;
  /** timm's `in_chans`: image channels (default 3; 1 for grey images, without copying them to RGB). */
  inChans?: number;
}

export interface HeadConfig {
  inDim: number;
  hiddenDim: number;
  bottleneckDim: number;
  outDim: number;
  normLastLayer: boolean;
}

const base = { mlpRatio: 4, lnEps: 1e-6, dropPath: 0, maskToken: false };

export const VIT_CONFIGS = {
  vit_tiny: { ...base, imgSize: 224, patchSize: 16, embedDim: 192, depth: 12, numHeads: 3 },
  vit_small: { ...base, imgSize: 224, patchSize: 16, embedDim: 384, depth: 12, numHeads: 6 },
  vit_base: { ...base, imgSize: 224, patchSize: 16, embedDim: 768, depth: 12, numHeads: 12 },
  /** `tiny` (docs/algorithm.md §10.2): tests and parity runs (the demo uses the `omniglot` preset). */
  tiny: { ...base, imgSize: 32, patchSize: 4, embedDim: 64, depth: 4, numHeads: 2 },
  /** `small` (docs/algorithm.md §10.2): an hours-long CPU run. */
  small: { ...base, imgSize: 32, patchSize: 4, embedDim: 96, depth: 6, numHeads: 3, dropPath: 0.1 },
} satisfies Record<string, VitConfig>;

export type VitName = keyof typeof VIT_CONFIGS;

export const HEAD_CONFIGS = {
  /** iBOT/SMKD head of ViT-S (docs/algorithm.md §2). */
  reference: { hiddenDim: 2048, bottleneckDim: 256, outDim: 8192, normLastLayer: false },
  tiny: { hiddenDim: 128, bottleneckDim: 64, outDim: 256, normLastLayer: true },
  small: { hiddenDim: 192, bottleneckDim: 64, outDim: 1024, normLastLayer: false },
} satisfies Record<string, Omit<HeadConfig, 'inDim'>>;

/** A configuration by name with overrides, checked. */
export function vitConfig(name: VitName, overrides: Partial<VitConfig> = {}): VitConfig {
  const c: VitConfig = { ...VIT_CONFIGS[name], ...overrides };
  if (c.embedDim % c.numHeads !== 0) throw new Error(`vit config: embedDim ${c.embedDim} is not divisible by numHeads ${c.numHeads}`);
  if (c.inChans !== undefined && !(Number.isInteger(c.inChans) && c.inChans >= 1)) throw new Error(`vit config: inChans must be a positive whole number, got ${c.inChans}`);
  if (c.imgSize % c.patchSize !== 0) throw new Error(`vit config: imgSize ${c.imgSize} is not a multiple of patchSize ${c.patchSize}`);
  return c;
}
