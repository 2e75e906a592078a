// `smkd classify <support-folder> <query>...`: few-shot classification of the user's own images with the
// shipped model (or a checkpoint), prototype classifier on its features (train/classify.ts).
import { checkOutputFile, writeOutputFile } from '../output-file.js';
import { Command, Option } from 'commander';
import { init } from '../../engine/index.js';
import { loadBackbone, type Network } from '../backbone-file.js';
import { classifyRows, formatPredictions, decodeGray, imageFeatures, modelBackground, readQueries, toModelImage, readSupportFolder, type Background } from '../classify.js';
import { defaultModel } from '../default-model.js';
import { loadSharp } from '../optional-deps.js';
import { FEATURE_KINDS, type FeatureKind } from '../features.js';
import { checkpointPreparation } from '../show/input.js';
import { describeBackbone } from './extraction.js';
import { positive, resolveShifts, SHIFT_TTA_HELP, shiftTta } from './options.js';

interface ClassifyCliOpts {
  model?: string;
  background: Background | 'auto';
  features?: FeatureKind;
  json?: string;
  batchSize: number;
  network: Network;
  shiftTta: number | 'auto';
}

export function classifyCommand(): Command {
  return new Command('classify')
    .description(
      'few-shot classification of your own images: <support-folder> holds one folder per class (1 or more images each); every query image gets the class whose prototype is most cosine-similar, its score and the runner-up',
    )
    .argument('<support-folder>', 'one sub-folder per class, named for the class, with its example images')
    .argument('<queries...>', 'image files, or folders of images, to classify')
    .option('--model <checkpoint>', 'run directory, checkpoint directory or ViT .safetensors (default: the shipped Omniglot model, models/)')
    .addOption(
      new Option('--background <kind>', "the images' background: light (dark ink on paper), dark (bright strokes), or auto: judged from each image's border")
        .choices(['auto', 'light', 'dark'])
        .default('auto'),
    )
    .addOption(new Option('--features <kind>', "feature kind (default: the model's)").choices(FEATURE_KINDS))
    .option('--json <file>', "write the predictions as JSON ('-': on stdout)")
    .option('--batch-size <n>', 'images per GPU batch', positive, 64)
    .option('--shift-tta <px|auto>', SHIFT_TTA_HELP, shiftTta, 'auto')
    .addOption(new Option('--network <name>', 'which network of a training checkpoint').choices(['teacher', 'student']).default('teacher'))
    .action(async (supportDir: string, queryArgs: string[], o: ClassifyCliOpts) => {
      const log = o.json === '-' ? (m: string) => console.error(m) : (m: string) => console.log(m);
      // Every input is checked and decoded before the model is loaded.
      if (o.json && o.json !== '-') checkOutputFile('classify', '--json', o.json);
      await loadSharp('smkd classify');
      const support = await readSupportFolder(supportDir);
      const queries = await readQueries(queryArgs);
      const supportFiles = support.files.flat();
      const decoded = [];
      for (const f of [...supportFiles, ...queries]) decoded.push(await decodeGray(f));
      const modelPath = o.model ?? defaultModel();
      await init();
      const loaded = await loadBackbone(modelPath, { network: o.network });
      try {
        const prep = await checkpointPreparation(loaded);
        const model = modelBackground(prep.normalize);
        const side = prep.decode.resize ?? loaded.config.imgSize;
        const opts = { side, model, background: o.background };
        const prepared = [];
        for (const g of decoded) prepared.push(await toModelImage(g, opts));
        const unsure = prepared.filter((p) => p.unsure);
        if (unsure.length > 0)
          console.warn(
            `classify: warning: the background of ${unsure.length} image(s) is close to mid-gray (${unsure
              .slice(0, 3)
              .map((p) => p.file)
              .join(', ')}${unsure.length > 3 ? ', ...' : ''}); taken as ${unsure[0].background}: pass --background light or dark if that is wrong`,
          );
        const features = o.features ?? prep.features;
        const tta = resolveShifts(o.shiftTta, loaded.config);
        log(describeBackbone(loaded));
        log(
          `${support.classes.length} classes, ${supportFiles.length} support image(s), ${queries.length} query image(s); ${features} features, prototype classifier (score: cosine similarity); ${tta.note}`,
        );
        const f = await imageFeatures(
          loaded.backbone,
          prepared.map((p) => p.image),
          { size: loaded.config.imgSize, normalize: prep.normalize, resizeRatio: prep.resizeRatio ?? 1, features, batchSize: o.batchSize, shifts: tta.shifts },
        );
        const preds = classifyRows(
          f.data,
          f.dim,
          support.files.map((x) => x.length),
          support.classes,
          prepared.slice(supportFiles.length),
        );
        log(formatPredictions(preds));
        const json = { model: loaded.file, features, shiftTta: tta.radius, classes: support.classes, support: support.files, predictions: preds };
        if (o.json === '-') process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        else if (o.json) await writeOutputFile(o.json, JSON.stringify(json, null, 2));
      } finally {
        loaded.backbone.dispose();
      }
    });
}
