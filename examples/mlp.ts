// A two-layer MLP classifier trained on the GPU with the engine alone (no SMKD), on a seeded
// synthetic problem (Gaussian blobs), printing its loss as it falls.
// In your own project: import * as E from 'smkd-webgpu/engine'.
import * as E from '../engine/index.js';

const CLASSES = 4;
const FEATURES = 32;
const HIDDEN = 128;
const N = 1024;
const STEPS = 150;
const LR = 0.5;

/** Seeded blobs: class c has a random mean; points are that mean plus unit noise. */
function blobs(seed: number): { x: Float32Array; y: Int32Array } {
  let s = seed >>> 0;
  const rand = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const means = Array.from({ length: CLASSES }, () => Array.from({ length: FEATURES }, () => 0.6 * gauss()));
  const x = new Float32Array(N * FEATURES);
  const y = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    y[i] = i % CLASSES;
    for (let f = 0; f < FEATURES; f++) x[i * FEATURES + f] = means[i % CLASSES]![f]! + gauss();
  }
  return { x, y };
}

const rt = await E.init();
console.log(`adapter: ${E.adapterName(rt.gpu.info)}`);
const data = blobs(1);
const x = E.fromArray(data.x, [N, FEATURES]);
const labels = E.fromArray(data.y, [N], 'i32');
// One-hot targets: compare each label with the class indices.
const onehot = E.keep(E.compare('eq', E.reshape(labels, [N, 1]), E.fromArray([...Array(CLASSES).keys()], [1, CLASSES], 'i32')));

let params = [E.randn([HIDDEN, FEATURES], 2, 0, 1 / Math.sqrt(FEATURES)), E.zeros([HIDDEN]), E.randn([CLASSES, HIDDEN], 3, 0, 1 / Math.sqrt(HIDDEN)), E.zeros([CLASSES])];
for (const p of params) p.requiresGrad = true;

const forward = (): E.Tensor<'f32'> => {
  const [w1, b1, w2, b2] = params;
  return E.linear(E.gelu(E.linear(x, w1!, b1!)), w2!, b2!);
};

const t0 = performance.now();
for (let step = 0; step <= STEPS; step++) {
  const loss = E.tidy(() => E.neg(E.mean(E.sum(E.mul(E.logSoftmax(forward()), onehot), 1))));
  E.backward(loss);
  // Plain SGD, outside autograd: each parameter is replaced by p - lr * grad.
  params = params.map((p) => {
    const next = E.keep(E.tidy(() => E.noGrad(() => E.sub(p, E.mul(p.grad!, LR)))));
    next.requiresGrad = true;
    p.grad!.dispose();
    p.dispose();
    return next;
  });
  if (step % 25 === 0) console.log(`step ${String(step).padStart(3)}  loss ${(await loss.item()).toFixed(4)}`);
  loss.dispose();
}
const logits = E.noGrad(forward);
const pred = await logits.toArray();
let correct = 0;
for (let i = 0; i < N; i++) {
  const row = pred.subarray(i * CLASSES, (i + 1) * CLASSES);
  if (row.indexOf(Math.max(...row)) === data.y[i]!) correct++;
}
const ms = (performance.now() - t0) / (STEPS + 1);
console.log(`train accuracy ${((100 * correct) / N).toFixed(1)}%  (${ms.toFixed(1)} ms per step, ${rt.submitCount} submits)`);
