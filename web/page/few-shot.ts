// One-shot classification of a query against a few support images, as `smkd classify` does it: every
// image through the evaluation transform, features of the model's kind (the shipped model's: [cls] and
// the patch tokens, each L2-normalised), and the class whose prototype is the most cosine-similar.
// Images come in as "ink": side x side bytes, bright strokes on black (the Omniglot pack's layout).
import type { RgbImage } from '../../train/data/dataset.js';
import { evalTransform } from '../../train/data/augment.js';
import { prototypeScores } from '../../train/fewshot.js';
import { imageFeatures } from '../../train/image-features.js';
import { clsAttentionMaps, type ClsAttentionMaps } from '../../train/show/attention-maps.js';
import { patchMatches, type PatchMatches } from '../../train/show/patch-matches.js';
import type { PretrainedModel } from './pretrained.js';

export interface Prediction {
  /** Class names, in the order given. */
  classes: string[];
  /** Cosine similarity of the query to each class's prototype, in class order. */
  scores: number[];
  /** Class indices, best score first. */
  order: number[];
  /** The best class's index. */
  predicted: number;
}

/** Ink bytes as the model's training images looked: inverted for a model trained on dark ink on paper, 3 equal channels. */
export function modelImage(model: PretrainedModel, ink: Uint8Array): RgbImage {
  const side = Math.round(Math.sqrt(ink.length));
  const data = new Uint8Array(3 * ink.length);
  const flip = model.background === 'light';
  ink.forEach((v, i) => data.fill(flip ? 255 - v : v, 3 * i, 3 * i + 3));
  return { width: side, height: side, data };
}

/** Images [count, 3, size, size] through the evaluation transform (normalised with the model's statistics). */
export function modelInput(model: PretrainedModel, inks: readonly Uint8Array[]): Float32Array {
  const { imageSize: size, normalize, resizeRatio } = model.preprocessing;
  const len = 3 * size * size;
  const out = new Float32Array(inks.length * len);
  inks.forEach((ink, k) => evalTransform(modelImage(model, ink), size, normalize, out, k * len, resizeRatio));
  return out;
}

/**
 * The query's scores against one support image per class (`shifts`: test-time shifts, the features
 * averaged over them; none by default, since each shift is another forward pass).
 */
export async function predict(
  model: PretrainedModel,
  classes: readonly string[],
  support: readonly Uint8Array[],
  query: Uint8Array,
  shifts: readonly (readonly [number, number])[] = [],
): Promise<Prediction> {
  const { imageSize: size, normalize, resizeRatio, features } = model.preprocessing;
  const images = [...support, query].map((ink) => modelImage(model, ink));
  // One batch: the support images and the query through the backbone together.
  const f = await imageFeatures(model.backbone, images, { size, normalize, resizeRatio, features, shifts });
  const ways = support.length;
  const rows = Int32Array.from({ length: ways }, (_, i) => i);
  const [scores] = prototypeScores({ data: f.data, dim: f.dim, labels: rows }, rows, rows, ways, Int32Array.of(ways));
  const order = [...scores.keys()].sort((a, b) => scores[b] - scores[a]);
  return { classes: [...classes], scores: [...scores], order, predicted: order[0] };
}

/** The last block's [cls] attention of each head over the query's patches. */
export async function queryAttention(model: PretrainedModel, query: Uint8Array): Promise<ClsAttentionMaps> {
  return clsAttentionMaps(model.backbone, modelInput(model, [query]), 1, model.preprocessing.imageSize);
}

/** For each patch token of the query, the most similar patch token of `support`. */
export async function queryMatches(model: PretrainedModel, query: Uint8Array, support: Uint8Array): Promise<PatchMatches> {
  return patchMatches(model.backbone, modelInput(model, [query, support]), model.preprocessing.imageSize);
}
