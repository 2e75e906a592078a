// The model building blocks on every platform: the DINO/iBOT/timm Vision Transformer and its parts,
// the projection head, block masks, few-shot features, the SMKD student/teacher pair, and safetensors
// checkpoints (as bytes) under PyTorch's names. `smkd-webgpu/model` is this plus checkpoint files in
// Node (model/index.ts), this alone in a browser (model/browser.ts).
export { VisionTransformer, Block, Attention, PatchEmbed, type VitOutput, type VitForwardOptions } from './vit.js';
export { VIT_CONFIGS, HEAD_CONFIGS, vitConfig, type VitConfig, type VitName, type HeadConfig } from './configs.js';
export { DinoHead, WeightNormLinear } from './head.js';
export { SmkdNetwork, StudentTeacher, type StudentTeacherOptions } from './smkd.js';
export { blockMask, maskRatio, type MaskOptions } from './masking.js';
export { fewShotFeatures, type FeatureComponent } from './features.js';
export { modelBytes, loadModelBytes, fitStateDict, exportStateDict, normalizeKey } from './checkpoint.js';
