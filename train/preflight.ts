// The size check a training configuration passes before anything is allocated, compiled or loaded: the
// largest tensors one step makes (the shapes below follow trainer.ts, model/ and losses.ts) against the
// adapter's per-buffer limits. Without it a batch or crop too large for the adapter ran for half a minute,
// then failed inside an op with a shape and a byte count that name no setting (`concat([128, 1, 64],
// [128, 4096, 64]): a tensor of 134250496 bytes exceeds ... maxStorageBufferBindingSize`). Every size
// here grows with the batch, so the message can give the largest batch that fits.
import type { TrainConfig } from './config.js';

/** One tensor of a training step: what it is and its size in 4-byte elements. */
export interface StepTensor {
  what: string;
  elements: number;
}

/** The adapter limits a step's tensors must respect (GPUSupportedLimits' names). */
export interface BufferLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/**
 * Patch-loss problems of a phase-2 batch (losses.ts, patchPlan): E = G(G-1) view pairs x label groups,
 * kmax images per group. The P x K sampler makes exactly `classes` groups of `perClass`; a uniform batch
 * is taken as pairs (its typical make-up: a batch with more images of one label needs more).
 */
function patchProblems(cfg: TrainConfig): { E: number; kmax: number } {
  const G = cfg.crops.global;
  const B = cfg.batch.size;
  const [groups, kmax] = cfg.batch.sampler === 'pk' ? (cfg.batch.perClass >= 2 ? [cfg.batch.classes, cfg.batch.perClass] : [0, 0]) : [Math.floor(B / 2), 2];
  return { E: G * (G - 1) * groups, kmax };
}

/**
 * Parameters of the student network (ViT, projection head, classifier): its arena, one buffer, as are its
 * gradients, the teacher's copy and AdamW's two moments.
 */
export function studentParameters(cfg: TrainConfig, classes = 0): number {
  const { embedDim: D, patchSize: p, depth } = cfg.model;
  const H = Math.round(D * 4);
  const T = Math.floor(cfg.crops.globalSize / p) ** 2 + 1;
  const block = 2 * D + (3 * D * D + 3 * D) + (D * D + D) + 2 * D + (H * D + H) + (D * H + D);
  // patch embedding, [cls], the mask token, positions, blocks, final norm
  const vit = 3 * p * p * D + D + D + D + T * D + depth * block + 2 * D;
  const { hiddenDim: h, bottleneckDim: b, outDim: K } = cfg.head;
  const head = D * h + h + h * h + h + h * b + b + K * b + K;
  const withClassifier = classes > 0 && (cfg.objective === 'ce' || cfg.loss.supervisedCe > 0);
  const classifier = withClassifier ? classes * D + classes : 0;
  // Each parameter starts 256-byte aligned in the arena (engine/arena.ts): at most 63 elements of padding.
  const tensors = 7 + 12 * depth + 8 + (withClassifier ? 2 : 0);
  return vit + head + classifier + 63 * tensors;
}

/** The largest tensors of one training step of `cfg` (forward and backward alike: a gradient is its tensor's size). */
export function stepTensors(cfg: TrainConfig, classes = 0): StepTensor[] {
  const { embedDim: D, patchSize: p } = cfg.model;
  const H = Math.round(D * 4); // vitConfig's MLP ratio (model/configs.ts)
  const B = cfg.batch.size;
  const G = cfg.crops.global;
  const L = cfg.objective === 'ce' ? 0 : cfg.crops.local;
  const S = cfg.crops.globalSize;
  const Np = Math.floor(S / p) ** 2;
  const T = Np + 1;
  const n = G * B;
  const s = cfg.crops.localSize;
  const Tl = Math.floor(s / p) ** 2 + 1;
  const m = L * B;
  const out: StepTensor[] = [
    {
      what: `the student's parameters (embedDim ${D}, depth ${cfg.model.depth}, head ${cfg.head.hiddenDim}/${cfg.head.bottleneckDim}/${cfg.head.outDim})`,
      elements: studentParameters(cfg, classes),
    },
    { what: `the ${n} global crops (${G} per image)`, elements: n * 3 * S * S },
    { what: `the tokens of the ${n} global crops (${T} each, width ${D})`, elements: n * T * D },
    { what: `the attention's q, k and v of the ${n} global crops (${T} tokens, 3 x ${D})`, elements: n * T * 3 * D },
    { what: `the MLP's hidden activations of the ${n} global crops (${T} tokens, width ${H})`, elements: n * T * H },
  ];
  if (m > 0)
    out.push(
      { what: `the ${m} local crops (${L} per image)`, elements: m * 3 * s * s },
      { what: `the MLP's hidden activations of the ${m} local crops (${Tl} tokens, width ${H})`, elements: m * Tl * H },
    );
  if (cfg.objective === 'smkd') {
    // The projection head runs on every token of the global crops (docs/algorithm.md §1.10), then its loss.
    const { hiddenDim, bottleneckDim, outDim: K } = cfg.head;
    out.push(
      { what: `the projection head's hidden activations of ${n} x ${T} tokens (width ${hiddenDim})`, elements: n * T * hiddenDim },
      { what: `the projection head's bottleneck of ${n} x ${T} tokens (width ${bottleneckDim})`, elements: n * T * bottleneckDim },
      { what: `the projection head's ${K} prototype scores of ${n} x ${T} tokens`, elements: n * T * K },
    );
    if (cfg.phase === 2) {
      const { E, kmax } = patchProblems(cfg);
      if (E > 0)
        out.push(
          { what: `the patch matching's similarities (${E} problems of ${kmax} images x ${Np} patches, each against ${kmax} x ${Np})`, elements: E * kmax * kmax * Np * Np },
          { what: `the patch matching's queries (${E * kmax} x ${kmax * Np} patches, width ${D})`, elements: E * kmax * kmax * Np * D },
          { what: `the patch loss's targets (${E * kmax * Np} patches x ${K} prototypes)`, elements: E * kmax * Np * K },
        );
    }
  }
  return out;
}

/** The step's largest tensor and its size in bytes. */
export function largestStepTensor(cfg: TrainConfig, classes = 0): StepTensor & { bytes: number } {
  const top = stepTensors(cfg, classes).reduce((a, b) => (b.elements > a.elements ? b : a));
  return { ...top, bytes: top.elements * 4 };
}

/**
 * A lower bound of the memory one training step holds at its peak, in bytes: the parameters five times
 * (student, its gradients, the teacher, AdamW's two moments) and, kept for the backward pass, at least
 * the MLP's hidden activations of every block for every crop of the student. The real peak is higher
 * (the test measures it), so a run this refuses could never have fit.
 */
export function stepMemoryLowerBound(cfg: TrainConfig, classes = 0): number {
  const H = Math.round(cfg.model.embedDim * 4);
  const B = cfg.batch.size;
  const T = Math.floor(cfg.crops.globalSize / cfg.model.patchSize) ** 2 + 1;
  const Tl = Math.floor(cfg.crops.localSize / cfg.model.patchSize) ** 2 + 1;
  const L = cfg.objective === 'ce' ? 0 : cfg.crops.local;
  const activations = cfg.model.depth * (cfg.crops.global * B * T + L * B * Tl) * H;
  return 4 * (5 * studentParameters(cfg, classes) + activations);
}

/** `cfg` with another batch size (the P x K sampler: another number of classes). */
function withBatch(cfg: TrainConfig, size: number): TrainConfig {
  const classes = cfg.batch.sampler === 'pk' ? size / cfg.batch.perClass : cfg.batch.classes;
  return { ...cfg, batch: { ...cfg.batch, size, classes } };
}

const MIB = 1024 * 1024;
const mib = (bytes: number): string => `${(bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0)} MiB`;

const GIB = 1024 ** 3;

/**
 * Refuse `cfg` when one of its step's tensors cannot be a storage buffer of this adapter, or when, given
 * `memoryBytes` (a software adapter's buffers live in main memory: the machine's), not even the step's
 * lower bound of memory fits; the error names the tensor or the memory, the settings, the limit, and
 * the largest batch that fits (or, when not even the smallest batch does, that the crops or the model
 * must shrink).
 */
export function checkStepSizes(cfg: TrainConfig, limits: BufferLimits, source = 'the configuration', memoryBytes = Infinity): void {
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const fitsIn = (c: TrainConfig): boolean => largestStepTensor(c).bytes <= limit && stepMemoryLowerBound(c) <= memoryBytes;
  if (fitsIn(cfg)) return;
  const top = largestStepTensor(cfg);
  const step = cfg.batch.sampler === 'pk' ? cfg.batch.perClass : 1;
  let fits = 0;
  for (let size = step; size < cfg.batch.size && fitsIn(withBatch(cfg, size)); size += step) fits = size;
  const settings = `batch.size ${cfg.batch.size}, ${cfg.crops.globalSize}-px global crops at patch ${cfg.model.patchSize}, embedDim ${cfg.model.embedDim}, depth ${cfg.model.depth}`;
  const advice = fits
    ? `at most batch.size ${fits}${cfg.batch.sampler === 'pk' ? ` (batch.classes ${fits / step} x ${step})` : ''} fits`
    : `not even batch.size ${step} fits: use smaller crops (crops.globalSize), a larger patch (model.patchSize) or a smaller model`;
  const need =
    top.bytes > limit
      ? `${mib(top.bytes)} for ${top.what}, more than this adapter's largest storage buffer (${mib(limit)})`
      : `at least ${(stepMemoryLowerBound(cfg) / GIB).toFixed(1)} GiB of memory (the parameters five times over and the activations the backward pass keeps), more than this machine's ${(memoryBytes / GIB).toFixed(1)} GiB, where a software adapter keeps its buffers`;
  throw new Error(`${source}: one training step would need ${need}; with ${settings}, ${advice}`);
}

/**
 * Refuse an inference batch (eval, embed, classify: the backbone's forward, no head) whose largest tensor,
 * the MLP's hidden activations of every token, cannot be a storage buffer of this adapter, with the
 * largest batch that fits.
 */
export function checkForwardBatch(vit: { embedDim: number; patchSize: number; mlpRatio: number }, count: number, size: number, limits: BufferLimits): void {
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const T = Math.floor(size / vit.patchSize) ** 2 + 1;
  const H = Math.round(vit.embedDim * vit.mlpRatio);
  const perImage = 4 * T * Math.max(H, 3 * vit.embedDim);
  if (count * perImage <= limit) return;
  const fits = Math.floor(limit / perImage);
  throw new Error(
    `a batch of ${count} images of ${size} px needs ${mib(count * perImage)} for the MLP's hidden activations (${T} tokens each, width ${H}), more than this adapter's largest storage buffer (${mib(limit)}): ${fits ? `at most ${fits} images per batch fit (--batch-size ${fits})` : 'not even one image fits: a smaller --image-size'}`,
  );
}
