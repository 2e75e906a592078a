// The few-shot page's DOM-free core (web/page/), run in Node on the shipped model: drawings become 28-px
// ink by whole-block area averaging; one-shot prediction on Omniglot test characters (another drawer's
// image as the query) finds the character; the attention and the matches have the model's grid; and
// "learn these" moves only the last blocks, lowers the loss, and "reset model" restores the exact scores.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { openOmniglotPack } from '../../train/data/omniglot-pack.js';
import { inkFromPaper } from '../../web/page/paper.js';
import { predict, queryAttention, queryMatches } from '../../web/page/few-shot.js';
import { fineTune } from '../../web/page/fine-tune.js';
import { modelFromBytes, resetPretrained, type PretrainedModel } from '../../web/page/pretrained.js';
import { gpu } from '../helpers/check.js';

const test = suite('web page');
test.before(gpu);

const MODEL = path.resolve(import.meta.dirname, '../../models/omniglot-vit.safetensors');

/** The first `n` Tagalog characters of the pack: drawer 0 as the support, drawer 1 as the query. */
async function tagalog(n: number): Promise<{ names: string[]; support: Uint8Array[]; queries: Uint8Array[] }> {
  const { test: split } = await openOmniglotPack(28);
  const classes = split.classes.map((c, k) => [c, k] as const).filter(([c]) => c.startsWith('Tagalog/'));
  const ink = async (i: number): Promise<Uint8Array> => {
    const img = await split.load(i);
    return Uint8Array.from({ length: 28 * 28 }, (_, p) => img.data[3 * p]);
  };
  const byClass = (k: number): number[] => Array.from({ length: split.size }, (_, i) => i).filter((i) => split.label(i) === k);
  const picked = classes.slice(0, n);
  return {
    names: picked.map(([c]) => c),
    support: await Promise.all(picked.map(([, k]) => ink(byClass(k)[0]))),
    queries: await Promise.all(picked.map(([, k]) => ink(byClass(k)[1]))),
  };
}

let model: PretrainedModel;
test.before(async () => {
  model = modelFromBytes(new Uint8Array(await readFile(MODEL)), MODEL);
});
test.after(() => model?.backbone.dispose());

test('a drawing is averaged over whole blocks into bright strokes on black', () => {
  const paper = 16;
  const rgba = new Uint8ClampedArray(paper * paper * 4).fill(255);
  const paint = (x: number, y: number, v: number): void => rgba.set([v, v, v, 255], 4 * (y * paper + x));
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) paint(x, y, 0);
  for (let y = 8; y < 16; y++) for (let x = 8; x < 12; x++) paint(x, y, 0);
  assert.equal([...inkFromPaper(rgba, paper, 2)], [255, 0, 0, 128]);
  assert.throws(() => inkFromPaper(rgba, paper, 3), /whole blocks/);
});

test("the shipped model's metadata builds the page's model", () => {
  assert.equal([model.config.imgSize, model.config.patchSize, model.config.embedDim, model.config.depth, model.config.numHeads], [28, 7, 64, 4, 2]);
  assert.is(model.preprocessing.features, 'tokens');
  assert.is(model.background, 'dark');
});

test("one-shot: another drawer's image of each character is classified as that character", async () => {
  const { names, support, queries } = await tagalog(5);
  for (const [k, q] of queries.entries()) {
    const p = await predict(model, names, support, q);
    assert.is(p.classes[p.predicted], names[k]);
    assert.equal(p.order.length, 5);
    assert.ok(p.order.every((c, i) => i === 0 || p.scores[p.order[i - 1]] >= p.scores[c]));
  }
});

test('attention over the 4x4 patches per head, and one match per query patch', async () => {
  const { support, queries } = await tagalog(2);
  const a = await queryAttention(model, queries[0]);
  assert.equal([a.heads, a.gh, a.gw, a.data.length], [2, 4, 4, 32]);
  const m = await queryMatches(model, queries[0], support[0]);
  assert.is(m.matches.length, 16);
  assert.ok(m.matches.every((x) => x.to >= 0 && x.to < 16 && x.similarity <= 1 + 1e-5));
});

test('learn these: the last blocks move, the loss falls; reset restores the pretrained scores exactly', async () => {
  const { names, support, queries } = await tagalog(3);
  const before = await predict(model, names, support, queries[0]);
  const first = (await model.backbone.stateDict()).get('blocks.0.attn.qkv.weight')!.data.slice();
  const losses: number[] = [];
  await fineTune(model, support, { steps: 4, copies: 2 }, (_, __, l) => losses.push(l));
  assert.is(losses.length, 4);
  assert.ok(losses.every(Number.isFinite) && losses[3] < losses[0], `losses ${losses.join(', ')}`);
  const sd = await model.backbone.stateDict();
  assert.equal([...sd.get('blocks.0.attn.qkv.weight')!.data], [...first], 'a frozen block moved');
  const tuned = await predict(model, names, support, queries[0]);
  assert.ok(
    tuned.scores.some((s, k) => s !== before.scores[k]),
    'fine-tuning changed nothing',
  );
  resetPretrained(model);
  assert.equal((await predict(model, names, support, queries[0])).scores, before.scores);
});

test.run();
