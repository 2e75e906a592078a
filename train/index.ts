// The SMKD trainer (`smkd-webgpu/train`): configuration, the data layer, losses, schedules, the
// two-phase training loop, resumable checkpoints and few-shot evaluation. The `smkd` command line
// is built from these.
export { TrainConfigSchema, PRESETS, preset, validateConfig, resolveConfig, type TrainConfig, type DeepPartial, type PresetName } from './config.js';
export {
  train,
  modelsFor,
  usesClassifier,
  recordStep,
  updateStep,
  checkEvaluations,
  trainingSchedule,
  LOSS_TERMS,
  type LossTerm,
  type StepLosses,
  type StepMetrics,
  type StepOptions,
  type TrainHooks,
  type TrainOptions,
  type TrainResult,
  type UpdateOptions,
} from './trainer.js';
export { openSplits, type DataSplits } from './sources.js';
export * from './data/index.js';
export { openOmniglotPack, OMNIGLOT_SPLITS, packDir, packedSizes, type OmniglotPackMeta, type SplitName } from './data/omniglot-pack.js';
export { affineView, type AffineView } from './data/affine.js';
export type { Box } from './data/augment.js';
export type { CropConfig } from './data/crop-batch.js';
export {
  ibotLoss,
  smkdLoss,
  patchPlan,
  matchPatches,
  updateCenters,
  type HeadOutputs,
  type IbotInputs,
  type SmkdInputs,
  type DistillOptions,
  type IbotLossOptions,
  type SmkdLossOptions,
  type IbotLoss,
  type SmkdLoss,
  type PatchPlan,
} from './losses.js';
export { TrainingSchedule, cosineScheduleAt, linspaceAt, type ScheduleConfig, type ScheduleArrays } from './schedules.js';
export {
  saveCheckpoint,
  loadCheckpoint,
  findCheckpoint,
  checkpointProblem,
  markBest,
  type FoundCheckpoint,
  type TrainState,
  type CheckpointParts,
  type Preprocessing,
  type LoadCheckpointOptions,
} from './checkpoint.js';
export { evaluateBackbone, evaluatePixels, episodesReport, formatReport, type EvalOptions, type EvalRow, type EvalReport } from './evaluate.js';
export { extractFeatures, pixelFeatures, selectFeatures, capPerClass, FEATURE_KINDS, type FeatureKind, type ExtractedFeatures, type ExtractOptions } from './features.js';
export {
  EpisodeSampler,
  evaluateFewShot,
  FEW_SHOT_CLASSIFIERS,
  prototypePredict,
  trainDistLinear,
  distLinearPredict,
  trainLogistic,
  logisticPredict,
  meanConfidence,
  episodeAccuracy,
  type FeatureSet,
  type EpisodeOptions,
  type Episode,
  type DistLinearOptions,
  type DistLinear,
  type Logistic,
  type FewShotClassifier,
  type FewShotOptions,
  type FewShotResult,
} from './fewshot.js';
export { runDemo, DEMO_SETTINGS, type DemoRow, type DemoSummary } from './demo.js';
export { lineChartSvg, type CurvePoint, type LineChartOptions } from './plot.js';
export { showAttention, clsAttentionMaps, attentionPicture, type ClsAttentionMaps, type ShowAttentionOptions } from './show/attention.js';
export {
  showMatches,
  patchMatches,
  matchLines,
  matchesPng,
  type PatchMatch,
  type PatchMatches,
  type MatchLine,
  type MatchLayout,
  type ShowMatchesOptions,
  type ShownMatches,
} from './show/matches.js';
export { showEmbedding, embeddingMap, embeddingSvg, umap2d, type EmbeddingMap, type EmbeddingOptions, type EmbeddingPoint, type ShowEmbeddingOptions } from './show/embedding.js';
export { checkpointPreparation, type ImagePreparation } from './show/input.js';
export { main, program } from './cli.js';
