// Head parity with PyTorch (head_forward.safetensors): [cls] and patch outputs of the shared,
// weight-normalised head, with the reference code's last_layer2 aliases accepted (docs/algorithm.md §2.4).
import { suite } from 'uvu';
import * as E from '../../engine/index.js';
import type { HostTensor } from '../../engine/nn/module.js';
import { DinoHead } from '../../model/head.js';
import { close, gpu } from '../helpers/check.js';
import { Golden, needsGolden, type HeadMeta } from '../helpers/golden.js';

const test = suite('head golden');
test.before(gpu);
const golden = needsGolden(test, 'head_forward.safetensors');

golden('head outputs match PyTorch', async () => {
  const g = await Golden.load('head_forward.safetensors');
  const m = g.meta<HeadMeta>('head');
  const head = new DinoHead({ inDim: m.in_dim, hiddenDim: m.hidden_dim, bottleneckDim: m.bottleneck_dim, outDim: m.out_dim, normLastLayer: m.norm_last_layer }).build();
  const weights = new Map<string, HostTensor>();
  for (const e of head.arena.entries) weights.set(e.name, { data: g.f32(`head.${e.name}`), shape: g.shape(`head.${e.name}`) });
  for (const k of ['weight_g', 'weight_v']) close(g.f32(`head.last_layer2.${k}`), g.f32(`head.last_layer.${k}`), 0, `last_layer2.${k} alias`);
  head.loadStateDict(weights);
  for (const set of g.keys('in.').map((k) => k.slice(3, -7))) {
    const tokens = E.fromArray(g.f32(`in.${set}.tokens`), g.shape(`in.${set}.tokens`));
    const [B, T] = tokens.shape;
    const out = E.noGrad(() => head.forward(tokens));
    const K = m.out_dim;
    close(await E.reshape(E.narrow(out, 1, 0, 1), [B, K]).toArray(), g.f32(`out.${set}.cls`), 2e-5, `${set} cls`);
    if (g.has(`out.${set}.patch`)) close(await E.narrow(out, 1, 1, T - 1).toArray(), g.f32(`out.${set}.patch`), 2e-5, `${set} patch`);
  }
  head.dispose();
});

test.run();
