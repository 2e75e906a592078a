// The benchmark's training step written with jax-js, the same maths as bench/tfjs/vit.ts: the ViT +
// iBOT head (timm names, weights copied from ours), soft cross-entropy against fixed teacher logits,
// valueAndGrad for the backward, AdamW (torch's decoupled decay, then Adam) by hand, the whole step
// under one jit. jax-js moves ownership of arrays into every call (`.ref` keeps a use), so a value
// used twice is taken with `.ref` first.
import type { HeadConfig, VitConfig } from '../../model/configs.js';
import type { TfParam } from '../tfjs/vit.js';
import type { JaxArray, JaxDevice, JaxEnv } from './backends.js';

export interface JaxStepConfig {
  vit: VitConfig;
  head: Omit<HeadConfig, 'inDim'>;
  studentTemp: number;
  teacherTemp: number;
  lr: number;
  weightDecay: number;
}

export interface JaxTrainer {
  /** One step: forward, loss, backward, AdamW, recorded (jax-js runs it when the loss is awaited). Returns the loss (before the update). */
  step(): JaxArray;
  dispose(): void;
}

type Params = Record<string, JaxArray>;

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

/** images [B, 3, H, W], teacher logits [B * T, K], centre [K], all on `device`; the trainer takes ownership of them. */
export function jaxTrainer(env: JaxEnv, device: JaxDevice, cfg: JaxStepConfig, params: TfParam[], images: JaxArray, teacher: JaxArray, center: JaxArray): JaxTrainer {
  const { numpy: np, nn, lax, jit, valueAndGrad, tree } = env.jax;
  const { vit } = cfg;
  const D = vit.embedDim;
  const h = vit.numHeads;
  const dh = D / h;
  const p = vit.patchSize;
  const [B, , H, W] = images.shape;
  const gh = H / p;
  const gw = W / p;
  const T = gh * gw + 1;

  /** The loss of the parameters `ps` (trainable) and `fixed`; consumes every argument. */
  const lossOf = (ps: Params, fixed: Params, x: JaxArray, targets: JaxArray): JaxArray => {
    const P = (name: string): JaxArray => {
      const v = ps[name] ?? fixed[name];
      if (!v) throw new Error(`jax-js ViT: no parameter '${name}'`);
      return v.ref;
    };
    /** x [M, in] -> [M, out] with torch's weight layout [out, in]. */
    const linear = (a: JaxArray, prefix: string): JaxArray => np.matmul(a, P(`${prefix}.weight`).transpose()).add(P(`${prefix}.bias`));
    // Exact GELU, x / 2 * (1 + erf(x / sqrt 2)), as tfjs' version (jax-js' nn.gelu defaults to the tanh form).
    const gelu = (a: JaxArray): JaxArray => a.ref.mul(0.5).mul(lax.erf(a.mul(Math.SQRT1_2)).add(1));
    const layerNorm = (a: JaxArray, prefix: string): JaxArray => {
      const centred = a.sub(a.ref.mean(-1, { keepdims: true }));
      const variance = np.square(centred.ref).mean(-1, { keepdims: true });
      return centred
        .mul(np.reciprocal(np.sqrt(variance.add(vit.lnEps))))
        .mul(P(`${prefix}.weight`))
        .add(P(`${prefix}.bias`));
    };
    const l2norm = (a: JaxArray): JaxArray => np.sqrt(np.square(a).sum(-1, { keepdims: true }));

    // Backbone: images -> final tokens [B * T, D].
    const patches = x
      .reshape([B, 3, gh, p, gw, p])
      .transpose([0, 2, 4, 1, 3, 5])
      .reshape([B * gh * gw, 3 * p * p]);
    const w = P('backbone.patch_embed.proj.weight').reshape([D, 3 * p * p]);
    const emb = np
      .matmul(patches, w.transpose())
      .add(P('backbone.patch_embed.proj.bias'))
      .reshape([B, gh * gw, D]);
    const cls = np.broadcastTo(P('backbone.cls_token'), [B, 1, D]);
    let t = np
      .concatenate([cls, emb], 1)
      .add(P('backbone.pos_embed'))
      .reshape([B * T, D]);
    for (let l = 0; l < vit.depth; l++) {
      const b = `backbone.blocks.${l}`;
      const qkv = linear(layerNorm(t.ref, `${b}.norm1`), `${b}.attn.qkv`)
        .reshape([B, T, 3, h, dh])
        .transpose([2, 0, 3, 1, 4]);
      const [q, k, v] = np.unstack(qkv, 0);
      const att = nn.softmax(np.matmul(q, k.transpose([0, 1, 3, 2])).mul(1 / Math.sqrt(dh)), -1);
      const o = np
        .matmul(att, v)
        .transpose([0, 2, 1, 3])
        .reshape([B * T, D]);
      t = t.add(linear(o, `${b}.attn.proj`));
      t = t.ref.add(linear(gelu(linear(layerNorm(t, `${b}.norm2`), `${b}.mlp.fc1`)), `${b}.mlp.fc2`));
    }
    const tokens = layerNorm(t, 'backbone.norm');

    // Head: MLP, L2-normalised bottleneck, weight-normalised last layer -> logits [B * T, K].
    const bottleneck = linear(gelu(linear(gelu(linear(tokens, 'head.mlp.0')), 'head.mlp.2')), 'head.mlp.4');
    const z = bottleneck.ref.div(np.maximum(l2norm(bottleneck), 1e-12));
    const wv = P('head.last_layer.weight_v');
    const weight = wv.ref.div(l2norm(wv)).mul(P('head.last_layer.weight_g'));
    const logits = np.matmul(z, weight.transpose());

    tree.dispose(ps);
    tree.dispose(fixed);
    return targets
      .mul(nn.logSoftmax(logits.div(cfg.studentTemp), -1))
      .sum(-1)
      .neg()
      .mean();
  };

  const trainable = params.filter((q) => q.trainable);
  const decayed = new Set(params.filter((q) => q.trainable && q.decay).map((q) => q.name));
  const arr = (values: Float32Array, shape: readonly number[]): JaxArray => np.array(values, { device }).reshape([...shape]);
  let ps: Params = Object.fromEntries(trainable.map((q) => [q.name, arr(q.values, q.shape)]));
  const fixed: Params = Object.fromEntries(params.filter((q) => !q.trainable).map((q) => [q.name, arr(q.values, q.shape)]));
  let m: Params = Object.fromEntries(trainable.map((q) => [q.name, np.zeros([...q.shape], { device })]));
  let v: Params = Object.fromEntries(trainable.map((q) => [q.name, np.zeros([...q.shape], { device })]));
  // The teacher side is a constant of the student: softmax((teacher - centre) / τt), once (consumes both).
  const targets = nn.softmax(teacher.sub(center).div(cfg.teacherTemp), -1);

  /** c1, c2: Adam's bias corrections 1 / (1 - β^t), as arrays so that the traced step is reused. */
  const update = (ps: Params, fixed: Params, m: Params, v: Params, c1: JaxArray, c2: JaxArray, x: JaxArray, targets: JaxArray): [JaxArray, Params, Params, Params] => {
    const [loss, grads] = valueAndGrad(lossOf)(tree.ref(ps), fixed, x, targets);
    const next: Params = {};
    const nextM: Params = {};
    const nextV: Params = {};
    for (const name of Object.keys(ps)) {
      const g = grads[name];
      const mt = m[name].mul(BETA1).add(g.ref.mul(1 - BETA1));
      const vt = v[name].mul(BETA2).add(np.square(g).mul(1 - BETA2));
      // torch's AdamW: p <- p * (1 - lr * wd) for the decay group, then the Adam update.
      const decayedP = decayed.has(name) ? ps[name].mul(1 - cfg.lr * cfg.weightDecay) : ps[name];
      const stepSize = mt.ref
        .mul(c1.ref)
        .div(np.sqrt(vt.ref.mul(c2.ref)).add(EPS))
        .mul(cfg.lr);
      next[name] = decayedP.sub(stepSize);
      nextM[name] = mt;
      nextV[name] = vt;
    }
    c1.dispose();
    c2.dispose();
    return [loss, next, nextM, nextV];
  };
  const step = jit(update);
  let t = 0;
  return {
    step() {
      t++;
      const c1 = np.array(1 / (1 - BETA1 ** t), { device });
      const c2 = np.array(1 / (1 - BETA2 ** t), { device });
      const [loss, next, nextM, nextV] = step(ps, tree.ref(fixed), m, v, c1, c2, images.ref, targets.ref);
      ps = next;
      m = nextM;
      v = nextV;
      return loss;
    },
    dispose() {
      step.dispose();
      for (const x of [ps, fixed, m, v]) tree.dispose(x);
      images.dispose();
      targets.dispose();
    },
  };
}
