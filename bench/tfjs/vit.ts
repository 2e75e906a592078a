// The benchmark's training step written with plain tfjs, as simply as tfjs allows: the same ViT +
// iBOT head (timm names, weights copied from ours), soft cross-entropy against fixed teacher logits,
// tf.variableGrads for the backward, tf.train.adam plus torch's decoupled weight decay by hand.
import type { Scalar, Variable } from '@tensorflow/tfjs-core';
import type { HeadConfig, VitConfig } from '../../model/configs.js';
import type { Tf, TfTensor } from './backends.js';

export interface TfParam {
  name: string;
  shape: readonly number[];
  values: Float32Array;
  trainable: boolean;
  decay: boolean;
}

export interface TfStepConfig {
  vit: VitConfig;
  head: Omit<HeadConfig, 'inDim'>;
  studentTemp: number;
  teacherTemp: number;
  lr: number;
  weightDecay: number;
}

export interface TfTrainer {
  /** One step: forward, loss, backward, AdamW. Returns the loss (before the update). */
  step(): TfTensor;
  dispose(): void;
}

let trainers = 0;

/** images [B, 3, H, W], teacher logits [B * T, K], centre [K]. */
export function tfTrainer(tf: Tf, cfg: TfStepConfig, params: TfParam[], images: TfTensor, teacher: TfTensor, center: TfTensor): TfTrainer {
  // tfjs variable names are global: each trainer gets its own prefix.
  const prefix = `bench${++trainers}`;
  const vars = new Map<string, Variable>(params.map((p) => [p.name, tf.variable(tf.tensor(p.values, [...p.shape]), p.trainable, `${prefix}/${p.name}`)]));
  const P = (name: string): Variable => {
    const v = vars.get(name);
    if (!v) throw new Error(`tfjs ViT: no parameter '${name}'`);
    return v;
  };
  const { vit } = cfg;
  const D = vit.embedDim;
  const h = vit.numHeads;
  const dh = D / h;
  const p = vit.patchSize;

  /** x [M, in] -> [M, out] with torch's weight layout [out, in]. */
  const linear = (x: TfTensor, prefix: string, bias = true): TfTensor => {
    const y = tf.matMul(x, P(`${prefix}.weight`), false, true);
    return bias ? tf.add(y, P(`${prefix}.bias`)) : y;
  };
  const gelu = (x: TfTensor): TfTensor => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
  const layerNorm = (x: TfTensor, prefix: string): TfTensor => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, vit.lnEps))), P(`${prefix}.weight`)), P(`${prefix}.bias`));
  };

  /** images -> final tokens [B * T, D]. */
  const backbone = (): { tokens: TfTensor; B: number; T: number } => {
    const [B, , H, W] = images.shape as number[];
    const gh = H / p;
    const gw = W / p;
    const patches = tf.reshape(tf.transpose(tf.reshape(images, [B, 3, gh, p, gw, p]), [0, 2, 4, 1, 3, 5]), [B * gh * gw, 3 * p * p]);
    const w = tf.reshape(P('backbone.patch_embed.proj.weight'), [D, 3 * p * p]);
    const emb = tf.reshape(tf.add(tf.matMul(patches, w, false, true), P('backbone.patch_embed.proj.bias')), [B, gh * gw, D]);
    const T = gh * gw + 1;
    const cls = tf.tile(P('backbone.cls_token'), [B, 1, 1]);
    let x = tf.reshape(tf.add(tf.concat([cls, emb], 1), P('backbone.pos_embed')), [B * T, D]);
    for (let l = 0; l < vit.depth; l++) {
      const b = `backbone.blocks.${l}`;
      const qkv = tf.transpose(tf.reshape(linear(layerNorm(x, `${b}.norm1`), `${b}.attn.qkv`), [B, T, 3, h, dh]), [2, 0, 3, 1, 4]);
      const [q, k, v] = tf.unstack(qkv, 0);
      const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)));
      const o = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * T, D]);
      x = tf.add(x, linear(o, `${b}.attn.proj`));
      x = tf.add(x, linear(gelu(linear(layerNorm(x, `${b}.norm2`), `${b}.mlp.fc1`)), `${b}.mlp.fc2`));
    }
    return { tokens: layerNorm(x, 'backbone.norm'), B, T };
  };

  /** tokens [M, D] -> logits [M, K]: MLP, L2-normalised bottleneck, weight-normalised last layer. */
  const projection = (tokens: TfTensor): TfTensor => {
    const h1 = gelu(linear(tokens, 'head.mlp.0'));
    const h2 = gelu(linear(h1, 'head.mlp.2'));
    const b = linear(h2, 'head.mlp.4');
    const z = tf.div(b, tf.maximum(tf.norm(b, 'euclidean', -1, true), 1e-12));
    const v = P('head.last_layer.weight_v');
    const weight = tf.mul(tf.div(v, tf.norm(v, 'euclidean', -1, true)), P('head.last_layer.weight_g'));
    return tf.matMul(z, weight, false, true);
  };

  const targets = tf.keep(tf.tidy(() => tf.softmax(tf.div(tf.sub(teacher, center), cfg.teacherTemp))));
  const loss = (): TfTensor => {
    const logits = projection(backbone().tokens);
    return tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(tf.div(logits, cfg.studentTemp))), -1)));
  };

  const trainable = params.filter((q) => q.trainable).map((q) => P(q.name));
  const decayed = params.filter((q) => q.trainable && q.decay).map((q) => P(q.name));
  const optimizer = tf.train.adam(cfg.lr, 0.9, 0.999, 1e-8);
  return {
    step() {
      const { value, grads } = tf.variableGrads(loss as () => Scalar, trainable);
      // torch's AdamW: p <- p * (1 - lr * wd) for the decay group, then the Adam update.
      for (const v of decayed) v.assign(tf.mul(v, 1 - cfg.lr * cfg.weightDecay));
      optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })));
      tf.dispose(Object.values(grads));
      return value;
    },
    dispose() {
      optimizer.dispose();
      tf.dispose([targets, ...vars.values()]);
    },
  };
}
