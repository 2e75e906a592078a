// The iBOT/DINO projection head (docs/algorithm.md §2): MLP with GELU, L2-normalised bottleneck, and a
// weight-normalised last layer shared by the [cls] and patch tokens.
import { l2Normalize, linear, mul, tidy, type Tensor, uniform, Linear, Module } from '../engine/api.js';
import type { HeadConfig } from './configs.js';

/** torch weight_norm(Linear(in, out, bias=False)): W = g * v / ||v|| per output row, no epsilon. */
export class WeightNormLinear extends Module {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    normFixed: boolean,
  ) {
    super();
    // norm_last_layer: the norm g stays at 1 and is not trained.
    this.registerParameter('weight_g', [outFeatures, 1], 1, { requiresGrad: !normFixed });
    this.registerParameter('weight_v', [outFeatures, inFeatures], uniform(1 / Math.sqrt(inFeatures)));
  }

  /** The effective weight [out, in]. */
  weight(): Tensor<'f32'> {
    return tidy(() => mul(l2Normalize(this.param('weight_v'), -1, 0), this.param('weight_g')));
  }

  forward(x: Tensor): Tensor<'f32'> {
    return tidy(() => linear(x, this.weight()));
  }
}

export class DinoHead extends Module {
  readonly layers: Linear[];
  readonly lastLayer: WeightNormLinear;

  constructor(readonly config: HeadConfig) {
    super();
    const c = config;
    // Indices 0, 2, 4 as in PyTorch's nn.Sequential(Linear, GELU, Linear, GELU, Linear).
    this.layers = [
      this.registerModule('mlp.0', new Linear(c.inDim, c.hiddenDim)),
      this.registerModule('mlp.2', new Linear(c.hiddenDim, c.hiddenDim)),
      this.registerModule('mlp.4', new Linear(c.hiddenDim, c.bottleneckDim)),
    ];
    this.lastLayer = this.registerModule('last_layer', new WeightNormLinear(c.bottleneckDim, c.outDim, c.normLastLayer));
  }

  /** tokens [..., D] -> logits [..., K], token-wise. */
  forward(x: Tensor): Tensor<'f32'> {
    return tidy(() => {
      const b = this.layers[2].forward(this.layers[1].forward(this.layers[0].forward(x, true), true));
      // L2 normalisation of the bottleneck: u / max(||u||, 1e-12).
      return this.lastLayer.forward(l2Normalize(b, -1, 1e-12));
    });
  }
}
