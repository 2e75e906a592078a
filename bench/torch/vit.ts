// The bench's training step in PyTorch (bench/torch/vit_step.py, the maths of bench/tfjs/vit.ts): our
// weights, images, teacher logits and centre, written to its process.
import type { NamedArray, Tensor } from '../../engine/index.js';
import type { VitConfig } from '../../model/configs.js';
import type { TfParam } from '../tfjs/vit.js';
import { startPeer, type TorchEnv, type TorchPeer } from './peer.js';

/** scripts/reference/make_golden.py's names for a backbone configuration (its backbone_forward has no stochastic depth). */
export function goldenVit(v: VitConfig): Record<string, number> {
  if (v.dropPath > 0) throw new Error(`PyTorch peer: stochastic depth (dropPath ${v.dropPath}) is not implemented there`);
  return { img_size: v.imgSize, patch_size: v.patchSize, embed_dim: v.embedDim, depth: v.depth, num_heads: v.numHeads, mlp_ratio: v.mlpRatio, ln_eps: v.lnEps };
}

/** A tensor's values and shape, read back, for the setup file. */
export async function named(t: Tensor): Promise<NamedArray> {
  return { data: Float32Array.from(await t.toArray()), shape: [...t.shape] };
}

export interface TorchStepConfig {
  vit: VitConfig;
  studentTemp: number;
  teacherTemp: number;
  lr: number;
  weightDecay: number;
}

/** A PyTorch process holding the step: images [B, 3, H, W], teacher logits [B * T, K], centre [K]. */
export async function torchVitStep(env: TorchEnv, cfg: TorchStepConfig, params: TfParam[], images: Tensor, teacher: Tensor, center: Tensor): Promise<TorchPeer> {
  const tensors: [string, NamedArray][] = params.map((p) => [`param.${p.name}`, { data: p.values, shape: p.shape }]);
  tensors.push(['in.images', await named(images)], ['in.teacher', await named(teacher)], ['in.center', await named(center)]);
  return startPeer(env, 'vit-step', tensors, {
    vit: goldenVit(cfg.vit),
    params: params.map((p) => ({ name: p.name, trainable: p.trainable, decay: p.decay })),
    student_temp: cfg.studentTemp,
    teacher_temp: cfg.teacherTemp,
    lr: cfg.lr,
    weight_decay: cfg.weightDecay,
  });
}
