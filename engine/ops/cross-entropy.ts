// Cross-entropy against class indices (torch.nn.functional.cross_entropy), composed from logSoftmax
// and a host-built target matrix, so its backward comes from theirs: (softmax(x) - target) / N.
import { fmt } from '../shape.js';
import { fromArray, type Tensor } from '../tensor.js';
import { mul, neg } from './elementwise.js';
import { reshape } from './layout.js';
import { mean, sum } from './reduce.js';
import { logSoftmax } from './softmax.js';

/** [N, C] rows of (1 - eps) * onehot(label) + eps / C, for host labels in [0, C). */
export function oneHot(labels: ArrayLike<number>, numClasses: number, smoothing = 0): Tensor<'f32'> {
  const n = labels.length;
  const data = new Float32Array(n * numClasses).fill(smoothing / numClasses);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) throw new Error(`oneHot: label ${l} at row ${i} is outside [0, ${numClasses})`);
    data[i * numClasses + l] += 1 - smoothing;
  }
  return fromArray(data, [n, numClasses]);
}

export interface CrossEntropyOptions {
  /** 'mean' over rows (PyTorch's default) or 'sum'. */
  reduction?: 'mean' | 'sum';
  /** Label smoothing as PyTorch's: targets (1 - eps) * onehot + eps / C. */
  labelSmoothing?: number;
}

/** Cross-entropy of logits [N, C] against host class indices [N]; a scalar. */
export function crossEntropy(logits: Tensor, labels: ArrayLike<number>, options: CrossEntropyOptions = {}): Tensor<'f32'> {
  if (logits.rank !== 2) throw new Error(`crossEntropy: logits must be [N, C], got ${fmt(logits.shape)}`);
  const [n, c] = logits.shape;
  if (labels.length !== n) throw new Error(`crossEntropy: ${labels.length} labels for logits ${fmt(logits.shape)} (expected ${n})`);
  let target: Tensor<'f32'>;
  try {
    target = oneHot(labels, c, options.labelSmoothing ?? 0);
  } catch (e) {
    throw new Error(`crossEntropy: ${(e as Error).message} for logits ${fmt(logits.shape)}`);
  }
  const perRow = neg(sum(mul(logSoftmax(logits), target), 1));
  target.dispose();
  return reshape(options.reduction === 'sum' ? sum(perRow) : mean(perRow), []);
}
