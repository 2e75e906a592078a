// Basic layers with PyTorch's names, shapes and defaults: Linear, LayerNorm, GELU, Dropout,
// DropPath (stochastic depth) and the timm MLP.
import { gelu, mul } from '../ops/elementwise.js';
import { linear, linearGelu } from '../ops/matmul.js';
import { layerNorm } from '../ops/norm.js';
import { bernoulli, dropout } from '../ops/random.js';
import type { Tensor } from '../tensor.js';
import { truncNormal } from './init.js';
import { Module, type ParamInit } from './module.js';

export interface LinearOptions {
  bias?: boolean;
  /** Weight init; default timm's trunc_normal(std=0.02), as ViT/DINO. */
  weightInit?: ParamInit;
  biasInit?: ParamInit;
}

/** y = x W^T + b with `weight` [out, in] (torch.nn.Linear). */
export class Linear extends Module {
  readonly hasBias: boolean;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    this.hasBias = opts.bias ?? true;
    this.registerParameter('weight', [outFeatures, inFeatures], opts.weightInit ?? truncNormal(0.02));
    if (this.hasBias) this.registerParameter('bias', [outFeatures], opts.biasInit ?? 0);
  }

  /**
   * x [..., in] -> [..., out]; `gelu` fuses the activation into the matmul epilogue. A `residual`
   * ([..., out]) is added to the output in the same kernel (not with `gelu`).
   */
  forward(x: Tensor, fuseGelu = false, residual?: Tensor): Tensor<'f32'> {
    const b = this.hasBias ? this.param('bias') : undefined;
    if (fuseGelu && residual) throw new Error('Linear.forward: a residual cannot be fused with the GELU epilogue');
    return fuseGelu ? linearGelu(x, this.param('weight'), b) : linear(x, this.param('weight'), b, residual);
  }
}

/** torch.nn.LayerNorm over the last axis (weight 1, bias 0). */
export class LayerNorm extends Module {
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.registerParameter('weight', [dim], 1);
    this.registerParameter('bias', [dim], 0);
  }

  forward(x: Tensor): Tensor<'f32'> {
    return layerNorm(x, this.param('weight'), this.param('bias'), this.eps);
  }
}

/** Exact (erf) GELU. */
export class GELU extends Module {
  forward(x: Tensor): Tensor<'f32'> {
    return gelu(x);
  }
}

/** A module drawing a fresh seed for every call, restartable with `reseed()`. */
abstract class StochasticModule extends Module {
  abstract readonly p: number;
  private seedBase = 0x1234567;
  private calls = 0;

  /** Whether forward() changes anything (training with p > 0); when not, callers may fuse around it. */
  get active(): boolean {
    return this.training && this.p > 0;
  }

  protected nextSeed(): number {
    return (this.seedBase + Math.imul(++this.calls, 0x9e3779b1)) >>> 0;
  }

  protected override onReseed(seed: number): void {
    this.seedBase = seed;
    this.calls = 0;
  }
}

/** Inverted dropout (torch.nn.Dropout); identity in eval mode or at p = 0. */
export class Dropout extends StochasticModule {
  constructor(readonly p = 0.5) {
    super();
  }

  forward(x: Tensor): Tensor<'f32'> {
    if (!this.active) return x as Tensor<'f32'>;
    return dropout(x, this.p, this.nextSeed());
  }
}

/**
 * Stochastic depth (timm's DropPath): per sample, keep the whole residual branch with probability
 * 1 - p and scale it by 1 / (1 - p), or drop it. x is [B, ...].
 */
export class DropPath extends StochasticModule {
  constructor(readonly p = 0) {
    super();
  }

  forward(x: Tensor): Tensor<'f32'> {
    if (!this.active) return x as Tensor<'f32'>;
    const keep = bernoulli([x.shape[0], ...x.shape.slice(1).map(() => 1)], this.nextSeed(), 1 - this.p, 1 / (1 - this.p));
    const y = mul(x, keep);
    keep.dispose();
    return y;
  }
}

/** timm's Mlp: fc1, GELU, fc2 (GELU fused into fc1's epilogue). */
export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(inFeatures: number, hidden: number, outFeatures = inFeatures) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(inFeatures, hidden));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, outFeatures));
  }

  /** fc2(gelu(fc1(x))), plus `residual` when given, added in fc2's kernel. */
  forward(x: Tensor, residual?: Tensor): Tensor<'f32'> {
    const h = this.fc1.forward(x, true);
    const y = this.fc2.forward(h, false, residual);
    h.dispose();
    return y;
  }
}
