// The shipped model, fetched as bytes: the ViT built from the file's own metadata (shapes, `vit`) and
// loaded with its weights, with the preprocessing it was trained with. The bytes are kept so that
// "reset model" puts the pretrained weights back after fine-tuning without a second download.
import { parseSafetensors } from '../../engine/browser.js';
import { loadModelBytes, VisionTransformer, type VitConfig } from '../../model/browser.js';
import { backboneTensors, inferVitConfig, parsePreprocessing, trainedOn } from '../../train/backbone.js';
import type { Preprocessing } from '../../train/checkpoint.js';
import { modelBackground, type Background } from '../../train/data/dataset.js';

export const MODEL_URL = 'models/omniglot-vit.safetensors';

export interface PretrainedModel {
  /** Inference backbone: no gradients, eval mode; fine-tuning writes its weights (fine-tune.ts). */
  backbone: VisionTransformer;
  config: VitConfig;
  preprocessing: Preprocessing;
  /** Bright strokes on black ('dark') or ink on paper ('light'), as the model's training images were. */
  background: Background;
  /** The alphabets it was trained on (the shipped model's `made_by` metadata). */
  trainedOn?: string[];
  /** The file's bytes: the pretrained weights, for resetPretrained. */
  bytes: Uint8Array;
  /** Where the bytes came from, for error messages. */
  what: string;
}

/** Fetch `url` whole, or an error naming it and the HTTP status. */
export async function fetchBytes(url: string): Promise<Uint8Array<ArrayBuffer>> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** The model at `url`, ready for inference (the engine must be initialised). */
export async function loadPretrained(url = MODEL_URL): Promise<PretrainedModel> {
  return modelFromBytes(await fetchBytes(url), url);
}

/** A model from safetensors bytes (`what` names them in errors). */
export function modelFromBytes(bytes: Uint8Array, what: string): PretrainedModel {
  const file = parseSafetensors(bytes, what);
  // The configuration comes from the weights' shapes and the file's `vit` metadata (the number of heads).
  const { config } = inferVitConfig(backboneTensors(file, 'teacher', what), file.metadata);
  if (!file.metadata.preprocessing) throw new Error(`${what}: no "preprocessing" metadata: the page needs the normalisation the model was trained with`);
  const preprocessing = parsePreprocessing(file.metadata.preprocessing);
  const backbone = new VisionTransformer(config).build({ requiresGrad: false, label: 'backbone' });
  try {
    loadModelBytes(bytes, backbone, true, what);
  } catch (e) {
    backbone.dispose();
    throw e;
  }
  return { backbone: backbone.eval(), config, preprocessing, background: modelBackground(preprocessing.normalize), trainedOn: trainedOn(file.metadata), bytes, what };
}

/** Put the pretrained weights back (after fine-tuning). */
export function resetPretrained(model: PretrainedModel): void {
  loadModelBytes(model.bytes, model.backbone, true, model.what);
}
