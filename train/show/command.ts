// `smkd show attention | matches | embedding`: pictures of what a checkpoint has learnt.
import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { init } from '../../engine/index.js';
import { PRESETS, type PresetName, type TrainConfig } from '../config.js';
import { FEATURE_KINDS, type FeatureKind } from '../features.js';
import type { Network } from '../backbone-file.js';
import { defaultModel, modelAndInputs } from '../default-model.js';
import { showAttention } from './attention.js';
import { showEmbedding } from './embedding.js';
import { showMatches } from './matches.js';

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${v}' is not a positive integer`);
  return n;
};
const count = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`'${v}' is not a non-negative integer`);
  return n;
};
const ratio = (v: string): number => {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`'${v}' is not a ratio between 0 and 1`);
  return n;
};

interface ModelOpts {
  network: Network;
  numHeads?: number;
  scale?: number;
}

/** The options every `show` command shares: which network, how many heads. */
function modelOptions(c: Command): Command {
  return c
    .addOption(new Option('--network <name>', 'which network of a training checkpoint').choices(['teacher', 'student']).default('teacher'))
    .option('--num-heads <n>', 'attention heads, when neither the run config nor the file records them', positiveInt);
}

export function showCommand(): Command {
  const show = new Command('show')
    .description('pictures of a checkpoint: [cls] attention per head, patch matches between two images, a 2-D map of the held-out classes')
    .showHelpAfterError();

  modelOptions(
    show
      .command('attention')
      .description("the last block's [cls] attention of each head over each image (prepared as `smkd embed` prepares it), one PNG per image: the image, then a panel per head")
      .argument('[checkpoint]', 'run directory, checkpoint directory, or ViT .safetensors (default: the shipped model)')
      .argument('<images...>', 'image files')
      .option('-o, --output <dir>', 'the folder the PNGs go to (<image name>-attention.png)', '.')
      .option('--scale <n>', 'screen pixels per image pixel (default: the crop at least 224 px wide)', positiveInt),
  ).action(async (first: string | undefined, rest: string[], o: ModelOpts & { output: string }) => {
    // Commander fills the optional checkpoint first: an image there means no checkpoint was given.
    const { model: ckpt, inputs: images } = modelAndInputs([...(first ? [first] : []), ...rest]);
    if (images.length === 0) throw new Error('show attention: no image files given');
    await init();
    const files = await showAttention({ checkpoint: ckpt, images, outDir: o.output, scale: o.scale, network: o.network, numHeads: o.numHeads });
    console.log(files.join('\n'));
  });

  modelOptions(
    show
      .command('matches')
      .description(
        "each patch of image A joined to its most cosine-similar patch of image B (the teacher's final-norm patch tokens, as phase 2 matches them), lines coloured by cosine (viridis, 0 dark to 1 yellow); PNG",
      )
      .argument('<args...>', '[checkpoint] imageA imageB: the model (default: the shipped model), the image whose patches are matched, the image they are matched into')
      .option('-o, --output <file>', 'the picture to write (PNG)', 'matches.png')
      .option('--scale <n>', 'screen pixels per image pixel (default: each crop at least 224 px wide)', positiveInt)
      .option('--masked [ratio]', "only A's patches a block mask of this ratio hides (the student's masked patches; ratio default 0.3)", ratio)
      .option('--seed <n>', 'seed of the block mask', count, 0),
  ).action(async (args: string[], o: ModelOpts & { output: string; masked?: number | true; seed: number }) => {
    const { model: ckpt, inputs } = modelAndInputs(args);
    if (inputs.length !== 2) throw new Error(`show matches: expected two images after the optional checkpoint, got ${inputs.length} (${inputs.join(' ')})`);
    const [a, b] = inputs;
    await init();
    const r = await showMatches({
      checkpoint: ckpt,
      imageA: a,
      imageB: b,
      output: o.output,
      scale: o.scale,
      maskRatio: o.masked === true ? 0.3 : o.masked,
      maskSeed: o.seed,
      network: o.network,
      numHeads: o.numHeads,
    });
    const sims = r.lines.map((l) => l.similarity);
    const range = sims.length ? `, cosine ${Math.min(...sims).toFixed(2)} to ${Math.max(...sims).toFixed(2)}` : '';
    console.log(
      `${o.output}: ${r.lines.length} of ${r.matches.length} patches of ${path.basename(a)} (${r.gh}x${r.gw} grid) joined to their best match in ${path.basename(b)}${range}`,
    );
  });

  modelOptions(
    show
      .command('embedding')
      .description('the features of the held-out classes (as `smkd eval` extracts them) in 2-D with UMAP, coloured by class, with thumbnails; SVG')
      .argument('[checkpoint]', 'run directory, checkpoint directory, or ViT .safetensors (default: the shipped model)')
      .option('-o, --output <file>', 'the SVG to write', 'embedding.svg')
      .addOption(new Option('--preset <name>', 'the preset whose data and evaluation settings apply when the checkpoint has no run').choices(PRESETS).default('omniglot'))
      .option('--config <file>', "JSON config file (instead of the run's)")
      .option('--data <path>', "image folder, Omniglot folder or cifar-100-binary folder (default: the run's data)")
      .option('--data-kind <kind>', 'synthetic | folder | omniglot | cifar-fs | fc100')
      .addOption(new Option('--split <name>', 'the held-out split').choices(['test', 'val']).default('test'))
      .addOption(new Option('--features <kind>', "feature kind (default: the run's eval.features)").choices(FEATURE_KINDS))
      .option('--classes <n>', 'the first n classes of the split', positiveInt, 20)
      .option('--per-class <n>', "at most n images of each class (0: all; default: the run's eval.maxPerClass)", count)
      .option('--thumbnails <n>', 'thumbnails of the first image of this many classes', count, 10)
      .option('--seed <n>', "seed of UMAP (default: the run's seed)", count)
      .option('--batch-size <n>', 'images per GPU batch of the feature extraction', positiveInt, 64),
  ).action(
    async (
      ckptArg: string | undefined,
      o: ModelOpts & {
        output: string;
        preset: PresetName;
        config?: string;
        data?: string;
        dataKind?: TrainConfig['data']['kind'];
        split: 'test' | 'val';
        features?: FeatureKind;
        classes: number;
        perClass?: number;
        thumbnails: number;
        seed?: number;
        batchSize: number;
      },
    ) => {
      const ckpt = ckptArg ?? defaultModel();
      await init();
      const r = await showEmbedding({ checkpoint: ckpt, ...o });
      console.log(`${o.output}: ${r.points.length} images of ${r.classes.length} classes of ${r.dataset}, ${r.featureDim}-d features, ${r.thumbnails.length} thumbnails`);
    },
  );
  return show;
}
