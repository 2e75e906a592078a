// Class splits of the two CIFAR-100 few-shot benchmarks, as data so a wrong entry is a one-line fix.
// Lists as published with torchmeta (tristandeleu/pytorch-meta, datasets/assets/cifar100), which
// reproduces the original split files; checked in test/train/data/cifar100.test.ts for sizes,
// disjointness and coverage of the 100 fine / 20 coarse CIFAR-100 names.

export type SplitPart = 'train' | 'val' | 'test';

/** CIFAR-FS (Bertinetto et al., ICLR 2019): 64 / 16 / 20 fine classes. */
export const CIFAR_FS_CLASSES: Record<SplitPart, readonly string[]> = {
  train: [
    'apple', 'aquarium_fish', 'bear', 'bee', 'bottle', 'bowl', 'boy', 'bridge', 'bus', 'can', 'castle', 'caterpillar',
    'chair', 'clock', 'cloud', 'cockroach', 'couch', 'cup', 'dinosaur', 'dolphin', 'elephant', 'forest', 'girl',
    'hamster', 'house', 'kangaroo', 'keyboard', 'lawn_mower', 'lion', 'lizard', 'lobster', 'mountain', 'mouse',
    'mushroom', 'oak_tree', 'orange', 'orchid', 'palm_tree', 'pear', 'pine_tree', 'plate', 'porcupine', 'possum',
    'rabbit', 'raccoon', 'ray', 'road', 'seal', 'shrew', 'skunk', 'skyscraper', 'snake', 'spider', 'squirrel',
    'streetcar', 'sunflower', 'tank', 'tiger', 'train', 'trout', 'tulip', 'turtle', 'willow_tree', 'wolf',
  ],
  val: [
    'beaver', 'beetle', 'butterfly', 'camel', 'cattle', 'crab', 'crocodile', 'flatfish', 'lamp', 'maple_tree',
    'motorcycle', 'otter', 'sea', 'shark', 'television', 'tractor',
  ],
  test: [
    'baby', 'bed', 'bicycle', 'chimpanzee', 'fox', 'leopard', 'man', 'pickup_truck', 'plain', 'poppy', 'rocket',
    'rose', 'snail', 'sweet_pepper', 'table', 'telephone', 'wardrobe', 'whale', 'woman', 'worm',
  ],
};

/**
 * FC100 (Oreshkin et al., NeurIPS 2018): split by CIFAR-100 superclass, 12 / 4 / 4 (coarse labels
 * {1-6, 9, 10, 15, 17-19} / {8, 11, 13, 16} / {0, 7, 12, 14}), i.e. 60 / 20 / 20 fine classes.
 */
export const FC100_SUPERCLASSES: Record<SplitPart, readonly string[]> = {
  train: [
    'fish', 'flowers', 'food_containers', 'fruit_and_vegetables', 'household_electrical_devices',
    'household_furniture', 'large_man-made_outdoor_things', 'large_natural_outdoor_scenes', 'reptiles', 'trees',
    'vehicles_1', 'vehicles_2',
  ],
  val: ['large_carnivores', 'large_omnivores_and_herbivores', 'non-insect_invertebrates', 'small_mammals'],
  test: ['aquatic_mammals', 'insects', 'medium_mammals', 'people'],
};
