// inChans (timm's in_chans): a 1-channel ViT is the 3-channel one whose patch weights of the other two
// channels are zero, whatever those channels hold; its forward and gradients agree with that twin.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.js';
import { vitConfig } from '../../model/configs.js';
import { VisionTransformer } from '../../model/vit.js';
import { close, gpu } from '../helpers/check.js';

const test = suite('vit channels');
test.before(gpu);

test('a grey (inChans 1) ViT equals an RGB one with zero weights on two channels: tokens and gradients', async () => {
  const cfg = { depth: 1, imgSize: 20, patchSize: 5, embedDim: 24, numHeads: 2 };
  const grey = new VisionTransformer(vitConfig('tiny', { ...cfg, inChans: 1 })).build({ seed: 4 });
  const rgb = new VisionTransformer(vitConfig('tiny', cfg)).build({ seed: 9 });
  assert.equal(grey.param('cls_token').shape, rgb.param('cls_token').shape);
  assert.equal(grey.patchEmbed.proj.param('weight').shape, [24, 1, 5, 5]);
  const sd = await grey.stateDict();
  const w1 = sd.get('patch_embed.proj.weight')!;
  // [D, 1, p, p] -> [D, 3, p, p] with channels 1 and 2 zero.
  const w3 = new Float32Array(24 * 3 * 25);
  for (let d = 0; d < 24; d++) w3.set(w1.data.subarray(d * 25, (d + 1) * 25), d * 75);
  sd.set('patch_embed.proj.weight', { shape: [24, 3, 5, 5], data: w3 });
  rgb.loadStateDict(sd);
  const B = 3;
  const g = E.randn([B, 1, 20, 20], 11);
  const noise = E.randn([B, 2, 20, 20], 12);
  const x3 = E.concat([g, noise], 1);
  // One network at a time: a backward() frees the whole tape, the other forward's graph included.
  const outs: E.Tensor<'f32'>[] = [];
  const grads: Float32Array[][] = [];
  for (const [net, x] of [
    [grey, g],
    [rgb, x3],
  ] as const) {
    const tokens = net.forward(x).tokens;
    outs.push(tokens);
    net.arena.zeroGrad();
    E.backward(E.sum(E.mul(tokens, tokens)));
    const gr = await net.arena.grads.read();
    grads.push([gr.get('blocks.0.mlp.fc1.weight')!, gr.get('patch_embed.proj.weight')!]);
  }
  close(await outs[0].toArray(), await outs[1].toArray(), 1e-5, 'tokens');
  close(grads[0][0], grads[1][0], 1e-4, 'a block weight gradient');
  // The grey channel's patch-weight gradient is the RGB twin's channel 0.
  const rgbCh0 = Float32Array.from({ length: 24 * 25 }, (_, i) => grads[1][1][Math.floor(i / 25) * 75 + (i % 25)]);
  close(grads[0][1], rgbCh0, 1e-4, 'patch weight gradient');
  assert.throws(() => grey.forward(x3), /images must be \[B, 1, H, W\] \(inChans 1\), got \[3, 3, 20, 20\]/);
  assert.throws(() => vitConfig('tiny', { inChans: 0 }), /inChans must be a positive whole number/);
  for (const t of [g, noise, x3, ...outs]) t.dispose();
  grey.dispose();
  rgb.dispose();
});

test.run();
