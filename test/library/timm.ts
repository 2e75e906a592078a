// timm's VisionTransformer state dict, written out from timm's naming (timm/models/vision_transformer.py,
// class_token=True, qkv_bias=True, global_pool='token', no register tokens or layer scale): the
// independent reference the library's names are checked against.
export interface TimmVit {
  imgSize: number;
  patchSize: number;
  embedDim: number;
  depth: number;
  mlpRatio?: number;
  /** num_classes; 0 (default) has no `head.*`. */
  classes?: number;
}

export function timmVitShapes(c: TimmVit): Map<string, number[]> {
  const D = c.embedDim;
  const H = Math.round(D * (c.mlpRatio ?? 4));
  const N = (c.imgSize / c.patchSize) ** 2;
  const out = new Map<string, number[]>([
    ['cls_token', [1, 1, D]],
    ['pos_embed', [1, 1 + N, D]],
    ['patch_embed.proj.weight', [D, 3, c.patchSize, c.patchSize]],
    ['patch_embed.proj.bias', [D]],
  ]);
  for (let l = 0; l < c.depth; l++) {
    const b = `blocks.${l}`;
    for (const [k, s] of [
      ['norm1.weight', [D]],
      ['norm1.bias', [D]],
      ['attn.qkv.weight', [3 * D, D]],
      ['attn.qkv.bias', [3 * D]],
      ['attn.proj.weight', [D, D]],
      ['attn.proj.bias', [D]],
      ['norm2.weight', [D]],
      ['norm2.bias', [D]],
      ['mlp.fc1.weight', [H, D]],
      ['mlp.fc1.bias', [H]],
      ['mlp.fc2.weight', [D, H]],
      ['mlp.fc2.bias', [D]],
    ] as const) {
      out.set(`${b}.${k}`, [...s]);
    }
  }
  out.set('norm.weight', [D]);
  out.set('norm.bias', [D]);
  if (c.classes) {
    out.set('head.weight', [c.classes, D]);
    out.set('head.bias', [c.classes]);
  }
  return out;
}
