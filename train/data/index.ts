// The data layer of the trainer: datasets (image folders, CIFAR-100 splits, synthetic glyphs),
// multi-crop augmentation, the batch loader with its worker threads, and evaluation batches.
export {
  channelStats,
  indicesByClass,
  InMemoryDataset,
  NORMALIZATION,
  meanIntensity,
  modelBackground,
  normalizationFor,
  polarityWarning,
  subsetByClasses,
  type Background,
  type ImageDataset,
  type Normalization,
  type RgbImage,
} from './dataset.js';
export { decodeImage, findClassFolders, ImageFolderDataset, openImageFolder, readClassList, type ImageFolderOptions } from './image-folder.js';
export { openCifar100, type Cifar100Options, type CifarBenchmark } from './cifar100.js';
export { CIFAR_FS_CLASSES, FC100_SUPERCLASSES, type SplitPart } from './cifar-splits.js';
export { SyntheticGlyphs, type SyntheticOptions, type SyntheticSplit } from './synthetic.js';
export {
  augmentCrop,
  DEFAULT_JITTER,
  evalTransform,
  multiCropPipelines,
  randomResizedCropBox,
  resizeBox,
  type AugmentSettings,
  type ColorJitterStrength,
  type CropPipeline,
} from './augment.js';
export { ClassBalancedSampler, UniformSampler, type BatchSampler } from './sampler.js';
export { evalBatches, MultiCropLoader, type CropBatch, type EvalBatch, type MultiCropLoaderOptions } from './loader.js';
export { keyedRng } from './seed.js';
export { DataLoader, type ArrayDataset, type DataBatch, type DataLoaderOptions } from './data-loader.js';
