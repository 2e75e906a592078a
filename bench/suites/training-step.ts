// A whole training step, ours against tfjs, jax-js and PyTorch: ViT + iBOT head on a batch of images, soft
// cross-entropy of every token's logits against fixed random teacher logits (temperatures, centre), backward,
// AdamW over every parameter. The weights start equal (tfjs, jax-js and PyTorch get a copy of ours).
import { AdamW, backward, mean, randn, reshape, softCrossEntropy, type Tensor } from '../../engine/index.js';
import { HEAD_CONFIGS, vitConfig, type HeadConfig, type VitConfig } from '../../model/configs.js';
import { SmkdNetwork } from '../../model/smkd.js';
import { compareArrays, toTf } from '../agree.js';
import { readJax, toJax } from '../jaxjs/backends.js';
import { jaxTrainer, type JaxStepConfig } from '../jaxjs/vit.js';
import type { BenchCase, Instance, Sizes, Variant } from '../case.js';
import { readTf } from '../tfjs/backends.js';
import { tfTrainer, type TfParam, type TfStepConfig } from '../tfjs/vit.js';
import { torchVitStep } from '../torch/vit.js';

interface StepConfig {
  name: string;
  vit: VitConfig;
  head: Omit<HeadConfig, 'inDim'>;
  batch: number;
  quick: boolean;
}

const TEMPS = { studentTemp: 0.1, teacherTemp: 0.04 };
const LR = 5e-4;
const WEIGHT_DECAY = 0.04;

const FULL: StepConfig[] = [
  // model/configs.ts 'tiny' with train/config.ts preset('tiny')'s head and batch (16 images, one 32 px crop each).
  { name: "preset 'tiny' (dim 64, depth 4, 2 heads, head out 256), 32 px, batch 16", vit: vitConfig('tiny'), head: HEAD_CONFIGS.tiny, batch: 16, quick: true },
  // ViT-Tiny-like: dim 192, 3 heads, depth 4, 32 px, patch 4, batch 32; the 'small' preset's head.
  {
    name: 'ViT-Tiny-like (dim 192, depth 4, 3 heads, head out 1024), 32 px, batch 32',
    vit: vitConfig('tiny', { embedDim: 192, numHeads: 3, depth: 4 }),
    head: HEAD_CONFIGS.small,
    batch: 32,
    quick: false,
  },
];
const REDUCED: StepConfig[] = [
  {
    name: 'reduced (dim 24, depth 2, 3 heads, head out 37), 12 px, batch 3',
    vit: vitConfig('tiny', { imgSize: 12, embedDim: 24, depth: 2, numHeads: 3 }),
    head: { hiddenDim: 20, bottleneckDim: 8, outDim: 37, normLastLayer: true },
    batch: 3,
    quick: true,
  },
];

/** Forward FLOPs of the backbone and head on B images (matmuls and attention), x3 for the step. */
function stepFlops(c: StepConfig): number {
  const { embedDim: D, depth, patchSize: p, imgSize, mlpRatio } = c.vit;
  const N = (imgSize / p) ** 2;
  const T = N + 1;
  const M = c.batch * T;
  const { hiddenDim: hd, bottleneckDim: bn, outDim: K } = c.head;
  const block = 2 * M * D * (3 * D + D + 2 * mlpRatio * D) + 4 * c.batch * T * T * D;
  const fwd = 2 * c.batch * N * 3 * p * p * D + depth * block + 2 * M * (D * hd + hd * hd + hd * bn + bn * K);
  return 3 * fwd;
}

function stepCase(c: StepConfig, seed: number): BenchCase {
  const { vit, head, batch: B } = c;
  const T = (vit.imgSize / vit.patchSize) ** 2 + 1;
  return {
    suite: 'trainingStep',
    name: c.name,
    work: { flops: stepFlops(c) },
    quick: c.quick,
    tfjs: 'bench/tfjs/vit.ts: tf.matMul/tf.softmax/tf.moments/tf.erf ViT and head, tf.variableGrads, tf.train.adam + decoupled decay',
    jax: 'bench/jaxjs/vit.ts: np.matmul/nn.softmax/lax.erf ViT and head, valueAndGrad, AdamW by hand, the whole step under one jit',
    torch: "bench/torch/vit_step.py: make_golden.py's backbone_forward and head_forward (F.conv2d, F.layer_norm, F.gelu, softmax attention), autograd, torch.optim.AdamW",
    setup(): Instance {
      const net = new SmkdNetwork(vit, head).build({ seed, label: 'bench student' });
      const optimizer = new AdamW(net.arena);
      const images = randn([B, 3, vit.imgSize, vit.imgSize], seed + 1);
      const teacher = randn([B * T, head.outDim], seed + 2);
      const center = randn([head.outDim], seed + 3, 0, 0.1);
      const fused: Variant = {
        step: (): Tensor[] => {
          const { tokens } = net.backbone.forward(images);
          const logits = net.head.forward(reshape(tokens, [B * T, vit.embedDim]));
          const loss = mean(softCrossEntropy(logits, teacher, { ...TEMPS, center }));
          backward(loss);
          optimizer.step({ lr: LR, weightDecay: WEIGHT_DECAY });
          net.arena.zeroGrad();
          return [loss];
        },
      };
      return {
        fused,
        async tfjs(tf) {
          const values = await net.stateDict();
          const params: TfParam[] = net.arena.entries.map((e) => ({ name: e.name, shape: e.shape, values: values.get(e.name)!.data, trainable: e.requiresGrad, decay: e.decay }));
          const inputs = [await toTf(tf, images), await toTf(tf, teacher), await toTf(tf, center)];
          const cfg: TfStepConfig = { vit, head, ...TEMPS, lr: LR, weightDecay: WEIGHT_DECAY };
          const trainer = tfTrainer(tf, cfg, params, inputs[0], inputs[1], inputs[2]);
          return {
            step: () => [trainer.step()],
            async agree() {
              // The same weights on both sides: the losses before the update must agree.
              const [ours] = fused.step();
              const theirs = tf.tidy(() => trainer.step());
              try {
                return compareArrays(['loss'], await readTf([theirs]), [Float32Array.from(await ours.toArray())], 1e-4);
              } finally {
                ours.dispose();
                theirs.dispose();
              }
            },
            dispose: () => {
              trainer.dispose();
              tf.dispose(inputs);
            },
          };
        },
        async jax(env, device) {
          const values = await net.stateDict();
          const params: TfParam[] = net.arena.entries.map((e) => ({ name: e.name, shape: e.shape, values: values.get(e.name)!.data, trainable: e.requiresGrad, decay: e.decay }));
          const cfg: JaxStepConfig = { vit, head, ...TEMPS, lr: LR, weightDecay: WEIGHT_DECAY };
          const trainer = jaxTrainer(env, device, cfg, params, await toJax(env, images, device), await toJax(env, teacher, device), await toJax(env, center, device));
          return {
            step: () => [trainer.step()],
            async agree() {
              // The same weights on both sides: the losses before the update must agree.
              const [ours] = fused.step();
              try {
                return compareArrays(['loss'], await readJax([trainer.step()]), [Float32Array.from(await ours.toArray())], 1e-4);
              } finally {
                ours.dispose();
              }
            },
            dispose: () => trainer.dispose(),
          };
        },
        async torch(env) {
          const values = await net.stateDict();
          const params: TfParam[] = net.arena.entries.map((e) => ({ name: e.name, shape: e.shape, values: values.get(e.name)!.data, trainable: e.requiresGrad, decay: e.decay }));
          const peer = await torchVitStep(env, { vit, ...TEMPS, lr: LR, weightDecay: WEIGHT_DECAY }, params, images, teacher, center);
          return {
            run: (n) => peer.steps(n),
            async agree() {
              // The same weights on both sides: the losses before the update must agree.
              const [ours] = fused.step();
              try {
                const [theirs] = (await peer.agree(1)).losses;
                return compareArrays(['loss'], [Float64Array.of(theirs.loss)], [Float32Array.from(await ours.toArray())], 1e-4);
              } finally {
                ours.dispose();
              }
            },
            dispose: () => peer.close(),
          };
        },
        dispose: () => {
          for (const t of [images, teacher, center]) t.dispose();
          net.dispose();
        },
      };
    },
  };
}

export function trainingStepCases(sizes: Sizes): BenchCase[] {
  return (sizes === 'full' ? FULL : REDUCED).map((c, i) => stepCase(c, 900 + 10 * i));
}
