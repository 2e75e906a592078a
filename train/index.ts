// The SMKD trainer (`smkd-webgpu/train`): configuration, the data layer, losses, schedules, the
// two-phase training loop, resumable checkpoints and few-shot evaluation. The `smkd` command line
// is built from these.
export { TrainConfigSchema, preset, validateConfig, resolveConfig, type TrainConfig, type DeepPartial } from './config.js';
export { train, modelsFor, recordStep, updateStep, type StepMetrics, type StepOptions, type TrainHooks, type TrainResult, type UpdateOptions } from './trainer.js';
export { openSplits, type DataSplits } from './sources.js';
export * from './data/index.js';
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
export { saveCheckpoint, loadCheckpoint, latestCheckpoint, markBest, type TrainState, type CheckpointParts } from './checkpoint.js';
export { evaluateBackbone, episodesReport, formatReport, type EvalOptions, type EvalRow, type EvalReport } from './evaluate.js';
export { extractFeatures, selectFeatures, capPerClass, FEATURE_KINDS, type FeatureKind, type ExtractedFeatures, type ExtractOptions } from './features.js';
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
export { main, program } from './cli.js';
