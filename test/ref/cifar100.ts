// The CIFAR-100 class hierarchy (fine class -> superclass), for writing synthetic
// cifar-100-binary files in tests and checking the few-shot splits against it.

export const SUPERCLASSES: Record<string, readonly string[]> = {
  aquatic_mammals: ['beaver', 'dolphin', 'otter', 'seal', 'whale'],
  fish: ['aquarium_fish', 'flatfish', 'ray', 'shark', 'trout'],
  flowers: ['orchid', 'poppy', 'rose', 'sunflower', 'tulip'],
  food_containers: ['bottle', 'bowl', 'can', 'cup', 'plate'],
  fruit_and_vegetables: ['apple', 'mushroom', 'orange', 'pear', 'sweet_pepper'],
  household_electrical_devices: ['clock', 'keyboard', 'lamp', 'telephone', 'television'],
  household_furniture: ['bed', 'chair', 'couch', 'table', 'wardrobe'],
  insects: ['bee', 'beetle', 'butterfly', 'caterpillar', 'cockroach'],
  large_carnivores: ['bear', 'leopard', 'lion', 'tiger', 'wolf'],
  'large_man-made_outdoor_things': ['bridge', 'castle', 'house', 'road', 'skyscraper'],
  large_natural_outdoor_scenes: ['cloud', 'forest', 'mountain', 'plain', 'sea'],
  large_omnivores_and_herbivores: ['camel', 'cattle', 'chimpanzee', 'elephant', 'kangaroo'],
  medium_mammals: ['fox', 'porcupine', 'possum', 'raccoon', 'skunk'],
  'non-insect_invertebrates': ['crab', 'lobster', 'snail', 'spider', 'worm'],
  people: ['baby', 'boy', 'girl', 'man', 'woman'],
  reptiles: ['crocodile', 'dinosaur', 'lizard', 'snake', 'turtle'],
  small_mammals: ['hamster', 'mouse', 'rabbit', 'shrew', 'squirrel'],
  trees: ['maple_tree', 'oak_tree', 'palm_tree', 'pine_tree', 'willow_tree'],
  vehicles_1: ['bicycle', 'bus', 'motorcycle', 'pickup_truck', 'train'],
  vehicles_2: ['lawn_mower', 'rocket', 'streetcar', 'tank', 'tractor'],
};

/** Names in the release's order (alphabetical), i.e. index = label byte. */
export const COARSE_NAMES = Object.keys(SUPERCLASSES).sort();
export const FINE_NAMES = Object.values(SUPERCLASSES).flat().sort();

/** FC100 as published by coarse-label index (Oreshkin et al. 2018). */
export const FC100_COARSE_INDICES = {
  train: [1, 2, 3, 4, 5, 6, 9, 10, 15, 17, 18, 19],
  val: [8, 11, 13, 16],
  test: [0, 7, 12, 14],
};
