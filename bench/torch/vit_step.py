"""The bench's whole training step in PyTorch: the maths of bench/tfjs/vit.ts and bench/jaxjs/vit.ts.

ViT + iBOT/DINO head (scripts/reference/make_golden.py's backbone_forward and head_forward, the
functions the golden tests prove equal to ours) on fixed images, soft cross-entropy of every token's
logits against fixed teacher logits (teacher temperature and centre applied once, as a constant of
the student), backward, and torch.optim.AdamW with torch's decoupled decay for the decay group
(betas 0.9 / 0.999, eps 1e-8). Weights, images, teacher logits and centre are ours, read from the
setup file bench/torch/peer.ts writes; the decay group and the trainable parameters are ours too.
"""
import torch
import torch.nn.functional as F

import make_golden as mg


class VitStep:
    def __init__(self, T, cfg):
        self.vit = cfg['vit']
        self.P = {}
        for p in cfg['params']:
            x = torch.from_numpy(T[f'param.{p["name"]}'])
            self.P[p['name']] = torch.nn.Parameter(x) if p['trainable'] else x
        self.backbone = mg.sub(self.P, 'backbone.')
        self.head = mg.sub(self.P, 'head.')
        self.images = torch.from_numpy(T['in.images'])
        self.student_temp = cfg['student_temp']
        # The teacher side is a constant of the student: softmax((teacher - centre) / τt), once.
        self.targets = F.softmax((torch.from_numpy(T['in.teacher']) - torch.from_numpy(T['in.center'])) / cfg['teacher_temp'], -1)
        trainable = [p for p in cfg['params'] if p['trainable']]
        groups = [{'params': [self.P[p['name']] for p in trainable if p['decay']], 'weight_decay': cfg['weight_decay']},
                  {'params': [self.P[p['name']] for p in trainable if not p['decay']], 'weight_decay': 0.0}]
        self.opt = torch.optim.AdamW(groups, lr=cfg['lr'], betas=(0.9, 0.999), eps=1e-8)

    def step(self):
        """Forward, loss, backward, AdamW; the loss before the update."""
        tokens, _ = mg.backbone_forward(self.backbone, self.images, self.vit)
        logits = mg.head_forward(self.head, tokens.reshape(-1, tokens.shape[-1]))
        loss = (-(self.targets * F.log_softmax(logits / self.student_temp, -1)).sum(-1)).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {'loss': loss.item()}

    def agree(self, steps):
        return {'losses': [self.step() for _ in range(steps)]}
