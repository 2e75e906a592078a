// The Vision Transformer backbone of DINO/iBOT/SMKD (docs/algorithm.md §1), with timm's parameter names and shapes,
// so a PyTorch state dict loads by name.
import {
  add,
  broadcastTo,
  clsAttention,
  concat,
  fromArray,
  keep,
  linear,
  matmul,
  mergeHeads,
  mul,
  narrow,
  permute,
  reshape,
  scaledDotProductAttention,
  scaledDotProductAttentionPacked,
  slice,
  softmax,
  splitHeads,
  tidy,
  where,
  type Tensor,
  truncNormal,
  uniform,
  DropPath,
  LayerNorm,
  Linear,
  Mlp,
  Module,
  fmt,
} from '../engine/api.js';
import type { VitConfig } from './configs.js';
import { bicubicGrid } from './pos-embed.js';

/** Multi-head self-attention: fused qkv projection, fused attention kernel, output projection. */
export class Attention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;

  constructor(
    readonly dim: number,
    readonly numHeads: number,
  ) {
    super();
    this.qkv = this.registerModule('qkv', new Linear(dim, 3 * dim));
    this.proj = this.registerModule('proj', new Linear(dim, dim));
  }

  /**
   * x [B, T, D] -> [B, T, D] (plus `residual` when given, added in the output projection's kernel);
   * with `wantCls` also the head-averaged [cls] attention [B, T - 1].
   */
  forward(x: Tensor, wantCls = false, residual?: Tensor): { out: Tensor<'f32'>; cls?: Tensor<'f32'> } {
    const h = this.numHeads;
    return tidy(() => {
      // qkv feature j = which * D + head * dh + e (docs/algorithm.md §1.6). Without the [cls] attention the
      // kernels read q, k, v from the projection [B, T, 3 * D] and write the heads merged, [B, T, D].
      if (!wantCls) return { out: this.proj.forward(scaledDotProductAttentionPacked(this.qkv.forward(x), h), false, residual) };
      // [B, T, 3 * D] -> q, k, v [B, h, T, dh] for clsAttention too; the projection is freed before the attention runs.
      const [q, k, v] = tidy(() => splitHeads(this.qkv.forward(x), 3, h));
      const o = scaledDotProductAttention(q, k, v);
      return { out: this.proj.forward(mergeHeads([o]), false, residual), cls: clsAttention(q, k) };
    });
  }

  /**
   * x [B, T, D] -> each head's attention of the [cls] query over the patch keys, [B, h, T - 1]
   * (softmax over all T keys, the [cls] key's column left out, as `clsAttention` before its head
   * mean). Built from matmul and softmax because the fused kernels never write probabilities out;
   * for inspection, not training (no masks, T x 1 scores per head only).
   */
  clsAttentionHeads(x: Tensor): Tensor<'f32'> {
    const [B, T, D] = x.shape;
    const h = this.numHeads;
    return tidy(() => {
      const [q, k] = splitHeads(this.qkv.forward(x), 3, h);
      // [B, h, 1, dh] x [B, h, T, dh]^T -> [B, h, 1, T]
      const scores = matmul(narrow(q, 2, 0, 1), k, { transB: true });
      const probs = softmax(mul(scores, (D / h) ** -0.5), -1);
      return reshape(narrow(probs, 3, 1, T - 1), [B, h, T - 1]);
    });
  }
}

/** Pre-norm transformer block with stochastic depth on both residual branches (docs/algorithm.md §1.6, §1.7). */
export class Block extends Module {
  readonly norm1: LayerNorm;
  readonly attn: Attention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  private readonly dropPath: DropPath;

  constructor(c: VitConfig, dropPathRate: number) {
    super();
    this.norm1 = this.registerModule('norm1', new LayerNorm(c.embedDim, c.lnEps));
    this.attn = this.registerModule('attn', new Attention(c.embedDim, c.numHeads));
    this.norm2 = this.registerModule('norm2', new LayerNorm(c.embedDim, c.lnEps));
    this.mlp = this.registerModule('mlp', new Mlp(c.embedDim, Math.round(c.embedDim * c.mlpRatio)));
    // One module, two draws per forward: the two branches get independent masks.
    this.dropPath = this.registerModule('drop_path', new DropPath(dropPathRate));
  }

  forward(x: Tensor, wantCls = false): { out: Tensor<'f32'>; cls?: Tensor<'f32'> } {
    return tidy(() => {
      if (!this.dropPath.active) {
        // No stochastic depth: both residual adds ride in the branches' last matmuls (same values).
        const { out: x1, cls } = this.attn.forward(this.norm1.forward(x), wantCls, x);
        return { out: this.mlp.forward(this.norm2.forward(x1), x1), cls };
      }
      const { out: a, cls } = this.attn.forward(this.norm1.forward(x), wantCls);
      const x1 = add(x, this.dropPath.forward(a));
      return { out: add(x1, this.dropPath.forward(this.mlp.forward(this.norm2.forward(x1)))), cls };
    });
  }

  /** The block's per-head [cls] attention for input x [B, T, D]: [B, h, T - 1] (see Attention.clsAttentionHeads). */
  clsAttentionHeads(x: Tensor): Tensor<'f32'> {
    return tidy(() => this.attn.clsAttentionHeads(this.norm1.forward(x)));
  }
}

/** Patch embedding: a stride-p p x p convolution, computed as patches [B, N, Cp^2] times [D, Cp^2]^T (C channels, 3 by default). */
export class PatchEmbed extends Module {
  readonly proj: ConvWeights;

  constructor(
    readonly patchSize: number,
    readonly embedDim: number,
    readonly inChans = 3,
  ) {
    super();
    this.proj = this.registerModule('proj', new ConvWeights(embedDim, inChans, patchSize));
  }

  /** images [B, C, H, W] -> ([B, gh * gw, D], gh, gw); remainder pixels are ignored as by the conv. */
  forward(images: Tensor): { tokens: Tensor<'f32'>; gh: number; gw: number } {
    const C = this.inChans;
    if (images.rank !== 4 || images.shape[1] !== C) throw new Error(`PatchEmbed: images must be [B, ${C}, H, W] (inChans ${C}), got ${fmt(images.shape)}`);
    const [B, , H, W] = images.shape;
    const p = this.patchSize;
    const gh = Math.floor(H / p);
    const gw = Math.floor(W / p);
    if (gh === 0 || gw === 0) throw new Error(`PatchEmbed: images ${fmt(images.shape)} are smaller than one ${p}x${p} patch`);
    const tokens = tidy(() => {
      const cropped = H % p || W % p ? slice(images, [0, 0, 0, 0], [B, C, gh * p, gw * p]) : images;
      // [B, C, gh, p, gw, p] -> [B, gh, gw, C, p, p]: each patch flattened as (channel, row, column).
      const patches = reshape(permute(reshape(cropped, [B, C, gh, p, gw, p]), [0, 2, 4, 1, 3, 5]), [B, gh * gw, C * p * p]);
      return linear(patches, reshape(this.proj.param('weight'), [this.embedDim, C * p * p]), this.proj.param('bias'));
    });
    return { tokens, gh, gw };
  }
}

/** The parameters of a Conv2d (`weight` [out, in, k, k], `bias` [out]) with PyTorch's default init. */
class ConvWeights extends Module {
  constructor(out: number, inChannels: number, k: number) {
    super();
    const bound = 1 / Math.sqrt(inChannels * k * k);
    this.registerParameter('weight', [out, inChannels, k, k], uniform(bound));
    this.registerParameter('bias', [out], uniform(bound));
  }
}

export interface VitOutput {
  /** All tokens after the final LayerNorm, [B, 1 + N, D]; token 0 is [cls]. */
  tokens: Tensor<'f32'>;
  /** Last block's [cls] -> patch attention averaged over heads, [B, N] (when requested). */
  clsAttention?: Tensor<'f32'>;
  /** Last block's [cls] -> patch attention of each head, [B, numHeads, N] (when requested). */
  clsAttentionHeads?: Tensor<'f32'>;
  gh: number;
  gw: number;
}

export interface VitForwardOptions {
  /** Per-image patch masks [B, gh * gw] or [B, gh, gw], non-zero = masked (needs the mask token). */
  masks?: Tensor;
  /** Also return the last block's [cls] attention. */
  clsAttention?: boolean;
  /** Also return the last block's [cls] attention of every head (inspection: an extra qkv projection). */
  clsAttentionHeads?: boolean;
}

export class VisionTransformer extends Module {
  readonly patchEmbed: PatchEmbed;
  readonly blocks: Block[];
  readonly norm: LayerNorm;
  /** The classifier of `config.numClasses` (timm's `head`), when there is one. */
  readonly head?: Linear;
  /** Side of the position-embedding grid (img_size / patch). */
  readonly grid: number;
  private readonly resizeMaps = new Map<string, Tensor<'f32'>>();

  constructor(readonly config: VitConfig) {
    super();
    const c = config;
    this.grid = c.imgSize / c.patchSize;
    this.registerParameter('cls_token', [1, 1, c.embedDim], truncNormal(0.02));
    this.registerParameter('pos_embed', [1, 1 + this.grid * this.grid, c.embedDim], truncNormal(0.02));
    if (c.maskToken) this.registerParameter('masked_embed', [1, c.embedDim], 0);
    this.patchEmbed = this.registerModule('patch_embed', new PatchEmbed(c.patchSize, c.embedDim, c.inChans ?? 3));
    this.blocks = Array.from({ length: c.depth }, (_, l) => this.registerModule(`blocks.${l}`, new Block(c, c.depth > 1 ? (c.dropPath * l) / (c.depth - 1) : 0)));
    this.norm = this.registerModule('norm', new LayerNorm(c.embedDim, c.lnEps));
    if (c.numClasses) this.head = this.registerModule('head', new Linear(c.embedDim, c.numClasses));
  }

  /** images [B, C, H, W] -> logits [B, numClasses] of the classifier on the [cls] token (timm's forward). */
  logits(images: Tensor, opts: VitForwardOptions = {}): Tensor<'f32'> {
    if (!this.head) throw new Error('VisionTransformer.logits: this model has no classifier (build it with numClasses > 0)');
    const { tokens } = this.forward(images, opts);
    return this.classify(reshape(narrow(tokens, 1, 0, 1), [images.shape[0], this.config.embedDim]));
  }

  /** [cls] tokens [N, D] -> logits [N, numClasses] of the classifier. */
  classify(cls: Tensor): Tensor<'f32'> {
    if (!this.head) throw new Error('VisionTransformer.classify: this model has no classifier (build it with numClasses > 0)');
    return this.head.forward(cls);
  }

  /** images [B, C, H, W] -> tokens [B, 1 + gh * gw, D] (docs/algorithm.md §1.2-§1.8). */
  forward(images: Tensor, opts: VitForwardOptions = {}): VitOutput {
    const { tokens: patches, gh, gw } = this.patchEmbed.forward(images);
    const B = images.shape[0];
    const D = this.config.embedDim;
    let x = patches;
    if (opts.masks) {
      if (!this.config.maskToken) throw new Error('VisionTransformer: masks were given but this model has no mask token (maskToken: false)');
      if (opts.masks.size !== B * gh * gw) throw new Error(`VisionTransformer: masks ${fmt(opts.masks.shape)} do not match ${B} images of ${gh}x${gw} patches`);
      // Masked patch embeddings are replaced by the mask token before positions are added (docs/algorithm.md §1.3).
      x = where(reshape(opts.masks, [B, gh * gw, 1]), this.param('masked_embed'), patches);
      patches.dispose();
    }
    const square = images.shape[2] === images.shape[3];
    let h = tidy(() => add(concat([broadcastTo(this.param('cls_token'), [B, 1, D]), x], 1), this.positionEmbedding(gh, gw, square)));
    x.dispose();
    let clsAttn: Tensor<'f32'> | undefined;
    let clsHeads: Tensor<'f32'> | undefined;
    this.blocks.forEach((blk, l) => {
      const last = l === this.blocks.length - 1;
      if (last && opts.clsAttentionHeads) clsHeads = blk.clsAttentionHeads(h);
      const { out, cls: a } = blk.forward(h, last && !!opts.clsAttention);
      h.dispose();
      h = out;
      if (a) clsAttn = a;
    });
    const tokens = this.norm.forward(h);
    h.dispose();
    return { tokens, clsAttention: clsAttn, clsAttentionHeads: clsHeads, gh, gw };
  }

  /**
   * The position embedding for a gh x gw grid, [1, 1 + gh * gw, D]: pos_embed itself when the grid
   * is the trained one and the image square, else its grid resized bicubically (docs/algorithm.md §1.5).
   */
  positionEmbedding(gh: number, gw: number, square = gh === gw): Tensor<'f32'> {
    const pos = this.param('pos_embed');
    const g0 = this.grid;
    if (gh * gw === g0 * g0 && square) return pos;
    const D = this.config.embedDim;
    const key = `${gh}x${gw}`;
    let map = this.resizeMaps.get(key);
    if (!map) {
      map = keep(fromArray(bicubicGrid(g0, gh, gw), [gh * gw, g0 * g0], 'f32'));
      this.resizeMaps.set(key, map);
    }
    return tidy(() => {
      const gridRows = reshape(narrow(pos, 1, 1, g0 * g0), [g0 * g0, D]);
      return concat([narrow(pos, 1, 0, 1), reshape(matmul(map, gridRows), [1, gh * gw, D])], 1);
    });
  }

  override dispose(): void {
    for (const m of this.resizeMaps.values()) m.dispose();
    this.resizeMaps.clear();
    super.dispose();
  }
}
