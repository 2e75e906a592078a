// `smkd embed`: features of images from a checkpoint, into a safetensors file.
import { checkOutputFile } from '../output-file.js';
import { Command, Option } from 'commander';
import { init } from '../../engine/index.js';
import { loadBackbone, type Network } from '../backbone-file.js';
import { resolveConfig, type TrainConfig } from '../config.js';
import { NORMALIZATION, type Normalization } from '../data/index.js';
import { modelAndInputs } from '../default-model.js';
import { embedImages, listImages, readFileList, writeEmbeddings } from '../embed.js';
import { FEATURE_KINDS, type FeatureKind } from '../features.js';
import { openSplits } from '../sources.js';
import { describeBackbone, extractionBar } from './extraction.js';
import { positive, resolveShifts, SHIFT_TTA_HELP, shiftTta } from './options.js';

interface EmbedCliOpts {
  list?: string;
  output: string;
  features?: FeatureKind;
  imageSize?: number;
  normalize?: string;
  resize?: number;
  invert?: boolean;
  batchSize: number;
  numHeads?: number;
  network: Network;
  shiftTta: number | 'auto';
}

/** `imagenet`, `cifar`, `run` (the run's training-split statistics, as its training used) or 'm,m,m/s,s,s'. */
async function normalizationArg(v: string, run: TrainConfig | undefined): Promise<Normalization> {
  if (v === 'imagenet' || v === 'cifar') return NORMALIZATION[v];
  if (v === 'run') {
    if (!run) throw new Error('--normalize run: the checkpoint is not inside a run directory with a config.json');
    return run.data.normalize ?? (await openSplits(run.data, run.seed)).normalize;
  }
  const parts = v.split('/').map((p) => p.split(',').map(Number));
  if (parts.length !== 2 || parts.some((p) => p.length !== 3 || p.some((x) => !Number.isFinite(x))) || parts[1].some((x) => x <= 0)) {
    throw new Error(`--normalize '${v}': expected imagenet, cifar, run, or three means and three positive stds as 'm,m,m/s,s,s'`);
  }
  return { mean: parts[0] as [number, number, number], std: parts[1] as [number, number, number] };
}

export function embedCommand(): Command {
  return new Command('embed')
    .description('features of images (every image under folders, or files) from a checkpoint, into a safetensors file with the paths in its metadata')
    .argument('[checkpoint]', 'run directory, checkpoint directory, or ViT .safetensors (default: the shipped model)')
    .argument('[inputs...]', 'image folders (every image below, at any depth) or image files')
    .option('--list <file>', 'a text file of image paths, one per line (relative to the current folder)')
    .option('-o, --output <file>', 'the safetensors file to write', 'embeddings.safetensors')
    .addOption(
      new Option('--features <kind>', "feature kind (concat = [cls] + attention-pooled patch tokens; default: the run's eval.features, else concat)").choices(FEATURE_KINDS),
    )
    .option('--image-size <px>', "crop side of the evaluation transform (default: the model's image size)", positive)
    .option(
      '--normalize <stats>',
      "imagenet | cifar | run (the statistics of the run's training split) | 'm,m,m/s,s,s' (default: run when the checkpoint is in a run, else imagenet)",
    )
    .option('--resize <px>', "decode each image with its shorter side at px first (default: the run's data.imageSize, else none)", positive)
    .option('--invert', 'invert the images (bright strokes on dark, as Omniglot runs; default: as the run)')
    .option('--no-invert', 'do not invert the images')
    .option('--batch-size <n>', 'images per GPU batch', positive, 64)
    .option('--num-heads <n>', 'attention heads, when neither the run config nor the file records them', positive)
    .option('--shift-tta <px|auto>', SHIFT_TTA_HELP, shiftTta, 'auto')
    .addOption(new Option('--network <name>', 'which network of a training checkpoint').choices(['teacher', 'student']).default('teacher'))
    .action(async (first: string | undefined, rest: string[], o: EmbedCliOpts) => {
      // Commander fills the optional checkpoint first: an image or image folder there means no checkpoint was given.
      const { model: ckpt, inputs } = modelAndInputs([...(first ? [first] : []), ...rest]);
      // Fail before any work when the output cannot be written.
      checkOutputFile('embed', '-o', o.output);
      const files = await listImages([...inputs, ...(o.list ? await readFileList(o.list) : [])]);
      if (files.length === 0) throw new Error('embed: no images given (folders, files, or --list FILE)');
      await init();
      const loaded = await loadBackbone(ckpt, { network: o.network, numHeads: o.numHeads });
      try {
        const run = loaded.runConfig ? await resolveConfig('tiny', 1, loaded.runConfig, {}) : undefined;
        const pre = loaded.preprocessing;
        const normalize = o.normalize || run || !pre ? await normalizationArg(o.normalize ?? (run ? 'run' : 'imagenet'), run) : pre.normalize;
        const size = o.imageSize ?? loaded.config.imgSize;
        const tta = resolveShifts(o.shiftTta, loaded.config);
        console.log(`${describeBackbone(loaded)}\n${tta.note}`);
        const bar = extractionBar();
        const e = await embedImages(loaded.backbone, files, {
          size,
          normalize,
          kind: o.features ?? run?.eval.features ?? pre?.features ?? 'concat',
          decode: { resize: o.resize ?? run?.data.imageSize ?? pre?.imageSize, invert: o.invert ?? run?.data.invert ?? pre?.invert ?? false },
          resizeRatio: run?.eval.resizeRatio ?? pre?.resizeRatio,
          batchSize: o.batchSize,
          shifts: tta.shifts,
          onProgress: bar.update,
          onWarning: (m) => {
            bar.stop();
            console.warn(m);
          },
        });
        bar.stop();
        await writeEmbeddings(o.output, e, {
          checkpoint: loaded.file,
          network: o.network,
          model: JSON.stringify(loaded.config),
          image_size: String(size),
          normalize: JSON.stringify(normalize),
          shift_tta: String(tta.radius),
        });
        console.log(`${o.output}: ${e.paths.length} x ${e.dim} ${e.kind} features${e.skipped.length ? `, ${e.skipped.length} unreadable image(s) skipped` : ''}`);
      } finally {
        loaded.backbone.dispose();
      }
    });
}
