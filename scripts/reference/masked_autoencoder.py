# The PyTorch twin of examples/masked-autoencoder.ts, for comparing the two programs' length and results:
# the same SimMIM set-up (a pre-norm ViT with a mask token, a linear decoder to each patch's pixels, L1 on
# the hidden patches), the same generated images, AdamW with warm-up and cosine. torch only (no timm):
# nn.TransformerEncoderLayer(norm_first, GELU) is timm's Block. Not part of the tests (torch is not a
# dependency): /usr/bin/python3 scripts/reference/masked_autoencoder.py [--steps 400]
import argparse, math, torch, torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=400); p.add_argument("--batch", type=int, default=32)
p.add_argument("--lr", type=float, default=2e-3); p.add_argument("--mask", type=float, default=0.4)
a = p.parse_args()
SIZE, P, D = 32, 4, 64
G = SIZE // P
torch.manual_seed(0)

class SimMIM(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, D, P, P)
        self.cls_token, self.mask_token = nn.Parameter(torch.zeros(1, 1, D)), nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + G * G, D) * 0.02)
        layer = nn.TransformerEncoderLayer(D, 2, 4 * D, 0.0, "gelu", batch_first=True, norm_first=True, layer_norm_eps=1e-6)
        self.blocks, self.norm, self.decoder = nn.TransformerEncoder(layer, 4), nn.LayerNorm(D, eps=1e-6), nn.Linear(D, 3 * P * P)

    def forward(self, x, masks):
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.where(masks[..., None] > 0, self.mask_token.expand_as(t), t)
        t = torch.cat([self.cls_token.expand(len(x), -1, -1), t], 1) + self.pos_embed
        return self.decoder(self.norm(self.blocks(t))[:, 1:])

def patchify(x):
    return x.reshape(len(x), 3, G, P, G, P).permute(0, 2, 4, 1, 3, 5).reshape(len(x), G * G, 3 * P * P)

def batch(B):
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    angle, period, cx, cy, r = torch.rand(B) * math.pi, 12 + 20 * torch.rand(B), SIZE * torch.rand(B), SIZE * torch.rand(B), 3 + 6 * torch.rand(B)
    stripe = 0.5 * torch.sin(2 * math.pi * (xx * angle.cos()[:, None, None] + yy * angle.sin()[:, None, None]) / period[:, None, None])
    disc = (xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2 < (r**2)[:, None, None]
    images = torch.where(disc[:, None], torch.rand(B, 3, 1, 1), stripe[:, None].expand(B, 3, SIZE, SIZE))
    masks = torch.zeros(B, G * G)  # random patches (the engine's example hides blocks)
    masks.scatter_(1, torch.rand(B, G * G).argsort(1)[:, : round(a.mask * G * G)], 1.0)
    return images, masks

model = SimMIM()
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.05)
warm = math.ceil(a.steps / 20)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / warm if s < warm else 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (s - warm) / (a.steps - warm))))
for step in range(a.steps):
    x, m = batch(a.batch)
    loss = ((model(x, m) - patchify(x)).abs() * m[..., None]).sum() / (m.sum() * 3 * P * P)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if (step + 1) % 25 == 0: print(f"step {step + 1}/{a.steps}  masked L1 {loss.item():.4f}")
model.eval()
with torch.no_grad():
    x, m = batch(64)
    err, truth = (model(x, m) - patchify(x)).abs(), patchify(x)
    fill = (truth * (1 - m[..., None])).sum((1, 2)) / ((1 - m).sum(1) * 3 * P * P)
    hidden = m[..., None].expand_as(truth) > 0
    base = (fill[:, None, None] - truth).abs()
    print(f"hidden patches of 64 new images: L1 {err[hidden].mean():.4f} (the visible pixels' mean: {base[hidden].mean():.4f})")
