"""The 'omniglot' preset's training batches in PyTorch, for the PyTorch peer's end-to-end loop.

The same work as ours (train/data/loader.ts with workers = 0, as bench/profile.ts measures it), on the
main thread and sequential with the step: the packed Omniglot subset (data/omniglot, the training
alphabets, labels in pack order as ours), P classes x K images per batch, G affine views of each
image (rotation, scale and shift drawn as train/data/affine.ts draws them, bilinear with a black
background: torch's affine_grid + grid_sample, whose pixel convention ours follows), normalised with
ours's training statistics, and a block mask per view (make_golden.block_mask, with the ratio drawn
as model/masking.ts maskRatio draws it). The random draws are NumPy's, not ours, so the batches are
alike but not the same; the warp is batched over the G·B views where ours loops over pixels.
"""
import gzip
import json

import numpy as np
import torch
import torch.nn.functional as F

import make_golden as mg


class OmniglotLoader:
    def __init__(self, c):
        meta = json.load(open(c['meta'], encoding='utf-8'))
        size = meta['size']
        raw = np.frombuffer(gzip.open(c['pixels']).read(), dtype=np.uint8).reshape(-1, size, size)
        rows, self.classes, offset = [], [], 0
        for cl in meta['classes']:
            if meta['splits'][cl['alphabet']] == 'train':
                self.classes.append((len(rows), cl['images']))
                rows += range(offset, offset + cl['images'])
            offset += cl['images']
        if len(self.classes) != c['num_classes']:
            raise ValueError(f'{c["meta"]}: {len(self.classes)} training classes, ours has {c["num_classes"]}')
        self.images = torch.tensor(raw[rows], dtype=torch.float32) / 255
        self.c = c
        self.mean = torch.tensor(c['normalize']['mean'], dtype=torch.float32).reshape(1, 3, 1, 1)
        self.std = torch.tensor(c['normalize']['std'], dtype=torch.float32).reshape(1, 3, 1, 1)
        self.grid = c['global_size'] // c['patch']
        self.crops_per_batch = c['G'] * c['classes'] * c['per_class']

    def mask_ratio(self, rng):
        """model/masking.ts maskRatio: one (mean, half-width) pair picked uniformly, the ratio drawn around it."""
        draws = [rng.uniform(m - v, m + v) if v > 0 else m for m, v in zip(self.c['mask']['ratios'], self.c['mask']['ratio_var'])]
        return draws[int(rng.integers(0, len(draws)))]

    def batch_at(self, it):
        """Crop-major global views [G·B, 3, S, S], their masks [G·B, Np] and the B labels of iteration `it`."""
        c = self.c
        rng = np.random.default_rng([c['seed'], it])
        cls = rng.choice(len(self.classes), c['classes'], replace=False)
        idx = np.concatenate([self.classes[k][0] + rng.choice(self.classes[k][1], c['per_class'], replace=False) for k in cls])
        labels = np.repeat(cls, c['per_class']).tolist()
        G, S, st = c['G'], c['global_size'], c['strokes']
        n = G * len(idx)
        views = self.images[idx][:, None].expand(-1, 3, -1, -1).repeat(G, 1, 1, 1)
        # train/data/affine.ts drawAffine for a global view (window 1: the whole character).
        angle = np.radians(rng.uniform(-st['rotation'], st['rotation'], n))
        scale = rng.uniform(1 - st['scale'], 1 + st['scale'], n)
        win = rng.uniform(1, 1, n)
        cx = rng.uniform(-(1 - win), 1 - win) + rng.uniform(-2 * st['shift'], 2 * st['shift'], n)
        cy = rng.uniform(-(1 - win), 1 - win) + rng.uniform(-2 * st['shift'], 2 * st['shift'], n)
        a, b = win / scale * np.cos(angle), win / scale * np.sin(angle)
        theta = torch.tensor(np.stack([np.stack([a, -b, cx], 1), np.stack([b, a, cy], 1)], 1), dtype=torch.float32)
        grid = F.affine_grid(theta, (n, 3, S, S), align_corners=False)
        crops = (F.grid_sample(views, grid, mode='bilinear', padding_mode='zeros', align_corners=False) - self.mean) / self.std
        masks = np.stack([mg.block_mask(rng, self.grid, self.grid, self.mask_ratio(rng)).reshape(-1) for _ in range(n)])
        return crops, torch.from_numpy(masks), labels
