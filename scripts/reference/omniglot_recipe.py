"""Recipe search for the `omniglot` preset, in PyTorch (a diagnostic, not part of the project: it needs
Debian's python3-torch and python3-pil, and no test runs it). It trains the tiny ViT on the packed
Omniglot split (train alphabets), scores 5-way 1-shot prototype accuracy on the validation alphabet
during training and on the test alphabets at the end, and prints one JSON line per evaluation.

  python3 scripts/reference/omniglot_recipe.py '{"ce":1,"cls":0,"crops":20000}'
  python3 scripts/reference/omniglot_recipe.py '{"ce":1,"cls":1,"crops":20000,"K":256,"tt":0.04}'

It reads the pack the project ships (data/omniglot/omniglot-28.u8.gz + .json), so it sees exactly the
images the engine trains on. Options (JSON, defaults in `o.get`): S/P (image/patch side), D/depth/H,
B (images per step), Pk (images per class in a batch, P x K sampling when > 1), views (augmented
views per image), crops (budget: images x views), lr, warm (warm-up steps), wd, ce / cls / self
(weights of: cross-entropy on [cls]; supervised [cls] distillation between different images of a
class, docs/algorithm.md §5.4; same-image cross-view distillation, §5.3), K, tt (teacher temperature), ts,
mom (EMA momentum start), rot90 (rotated copies as extra training classes), rot/scale/shift (affine
augmentation ranges), every (validation every N crops), seed, threads.
"""
import gzip, json, math, os, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

o = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
torch.set_num_threads(o.get('threads', 2))
seed = o.get('seed', 0)
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../data/omniglot')
S, P = o.get('S', 28), o.get('P', 4)
D, DEPTH, H = o.get('D', 64), o.get('depth', 4), o.get('H', 2)


def load_pack():
    meta = json.load(open(f'{ROOT}/omniglot-{S}.json'))
    raw = np.frombuffer(gzip.open(f'{ROOT}/omniglot-{S}.u8.gz').read(), dtype=np.uint8).reshape(-1, S, S)
    splits = {}
    off = 0
    for c in meta['classes']:
        n = c['images']
        splits.setdefault(meta['splits'][c['alphabet']], []).append(torch.tensor(raw[off:off + n], dtype=torch.float32) / 255)
        off += n
    return splits


splits = load_pack()
tr, va, te = splits['train'], splits['val'], splits['test']
if o.get('rot90', 0):
    tr = tr + [torch.rot90(c, k, (1, 2)) for k in (1, 2, 3) for c in tr]
allpix = torch.cat(tr)
MEAN, STD = allpix.mean().item(), allpix.std().item()
C = len(tr)


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1, s.n2 = nn.LayerNorm(D, eps=1e-6), nn.LayerNorm(D, eps=1e-6)
        s.qkv, s.proj, s.fc1, s.fc2 = nn.Linear(D, 3 * D), nn.Linear(D, D), nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(s, x):
        B, T, _ = x.shape
        q, k, v = s.qkv(s.n1(x)).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-1, -2) * (D // H) ** -0.5).softmax(-1)
        x = x + s.proj((a @ v).transpose(1, 2).reshape(B, T, D))
        return x + s.fc2(F.gelu(s.fc1(s.n2(x)))), a


class Net(nn.Module):
    def __init__(s, K):
        super().__init__()
        n = (S // P) ** 2
        s.pe = nn.Conv2d(3, D, P, P)  # PyTorch's default conv init, as the reference code
        s.cls = nn.Parameter(torch.zeros(1, 1, D))
        s.pos = nn.Parameter(torch.zeros(1, n + 1, D))
        s.blocks = nn.ModuleList([Block() for _ in range(DEPTH)])
        s.norm = nn.LayerNorm(D, eps=1e-6)
        hd, bd = o.get('hidden', 128), o.get('bottleneck', 64)
        s.mlp = nn.Sequential(nn.Linear(D, hd), nn.GELU(), nn.Linear(hd, hd), nn.GELU(), nn.Linear(hd, bd))
        s.last = nn.utils.weight_norm(nn.Linear(bd, K, bias=False))
        s.last.weight_g.data.fill_(1)
        s.last.weight_g.requires_grad = False
        s.head = nn.Linear(D, C)
        for m in [s.blocks, s.mlp, s.head]:
            for mm in m.modules():
                if isinstance(mm, nn.Linear):
                    nn.init.trunc_normal_(mm.weight, std=0.02)
                    nn.init.zeros_(mm.bias)
        nn.init.trunc_normal_(s.pos, std=0.02)
        nn.init.trunc_normal_(s.cls, std=0.02)

    def tokens(s, x):
        x = ((x - MEAN) / STD)[:, None].expand(-1, 3, -1, -1)
        t = s.pe(x).flatten(2).transpose(1, 2)
        t = torch.cat([s.cls.expand(len(t), -1, -1), t], 1) + s.pos
        for b in s.blocks:
            t, a = b(t)
        return s.norm(t), a

    def feats(s, x):
        t, a = s.tokens(x)
        w = a[:, :, 0, 1:].mean(1)
        w = w / w.sum(1, keepdim=True)
        pooled = (w[:, :, None] * t[:, 1:]).sum(1)
        parts = {'cls': t[:, 0], 'weighted': pooled, 'mean': t[:, 1:].mean(1), 'flat': t[:, 1:].flatten(1)}
        return torch.cat([F.normalize(parts[k], dim=-1) for k in o.get('feat', 'flat').split(',')], 1)

    def project(s, c):
        return s.last(F.normalize(s.mlp(c), dim=-1))


def affine(x):
    B = x.shape[0]
    ang = (torch.rand(B) * 2 - 1) * math.radians(o.get('rot', 15))
    sc = 1 + (torch.rand(B) * 2 - 1) * o.get('scale', 0.15)
    t = (torch.rand(B, 2) * 2 - 1) * o.get('shift', 0.1) * 2
    th = torch.stack([torch.stack([torch.cos(ang) / sc, -torch.sin(ang) / sc, t[:, 0]], 1), torch.stack([torch.sin(ang) / sc, torch.cos(ang) / sc, t[:, 1]], 1)], 1)
    g = F.affine_grid(th, (B, 1, S, S), align_corners=False)
    return F.grid_sample(x[:, None], g, align_corners=False, padding_mode='zeros')[:, 0]


@torch.no_grad()
def evaluate(net, classes, ways=5, shots=1, eps=300, q=15):
    net.eval()
    f = [net.feats(c) for c in classes]
    r = np.random.default_rng(0)
    accs = []
    for _ in range(eps):
        cs = r.choice(len(classes), ways, replace=False)
        sup, qry = [], []
        for c in cs:
            idx = r.permutation(len(classes[c]))[: shots + q]
            sup.append(f[c][idx[:shots]].mean(0))
            qry.append(f[c][idx[shots:]])
        protos = F.normalize(torch.stack(sup), dim=-1)
        pred = (torch.cat(qry) @ protos.T).argmax(1)
        lab = torch.arange(ways).repeat_interleave(q)
        accs.append((pred == lab).float().mean().item())
    net.train()
    a = np.array(accs) * 100
    return round(float(a.mean()), 2), round(float(1.96 * a.std() / math.sqrt(len(a))), 2)


def pixels(classes, ways=5, shots=1, eps=300, q=15):
    class Px:
        def eval(self): pass
        def train(self): pass
        def feats(self, x): return F.normalize(((x - MEAN) / STD).flatten(1), dim=-1)
    return evaluate(Px(), classes, ways, shots, eps, q)


K = o.get('K', 256)
net = Net(K)
teacher = Net(K)
teacher.load_state_dict(net.state_dict())
for p in teacher.parameters():
    p.requires_grad_(False)
B, V, Pk = o.get('B', 32), o.get('views', 2), o.get('Pk', 1)
steps = o.get('crops', 20000) // (B * V)
lr, warm, wd = o.get('lr', 2e-3), o.get('warm', 20), o.get('wd', 0.04)
lam_ce, lam_cls, lam_self = o.get('ce', 1.0), o.get('cls', 0.0), o.get('self', 0.0)
tt, ts, m0 = o.get('tt', 0.04), o.get('ts', 0.1), o.get('mom', 0.99)
decay = [p for n, p in net.named_parameters() if p.requires_grad and p.ndim >= 2]
no_decay = [p for n, p in net.named_parameters() if p.requires_grad and p.ndim < 2]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': wd}, {'params': no_decay, 'weight_decay': 0}], lr=lr)
center = None
every = o.get('every', 5000)
print(json.dumps({'opts': o, 'steps': steps, 'train_classes': C, 'pixels_val': pixels(va), 'pixels_test': pixels(te), 'init_val': evaluate(teacher, va)}), flush=True)
t0 = time.time()
for it in range(steps):
    f = min(1, (it + 1) / warm) * 0.5 * (1 + math.cos(math.pi * it / steps))
    for g in opt.param_groups:
        g['lr'] = lr * f
    if Pk > 1:
        cls_idx = rng.choice(C, B // Pk, replace=False).repeat(Pk)
    else:
        cls_idx = rng.integers(0, C, B)
    img = torch.stack([tr[c][rng.integers(0, len(tr[c]))] for c in cls_idx])
    labels = torch.tensor(cls_idx)
    x = torch.cat([affine(img) for _ in range(V)])
    lab = labels.repeat(V)
    t, _ = net.tokens(x)
    loss = torch.zeros(())
    terms = {}
    if lam_ce:
        ce = F.cross_entropy(net.head(t[:, 0]), lab)
        loss = loss + lam_ce * ce
        terms['ce'] = ce.item()
    if lam_cls or lam_self:
        with torch.no_grad():
            tt_tok, _ = teacher.tokens(x)
            tout = teacher.project(tt_tok[:, 0])
            if center is None:
                center = tout.mean(0, keepdim=True)
            tprob = F.softmax((tout - center) / tt, -1)
            center = 0.9 * center + 0.1 * tout.mean(0, keepdim=True)
        slog = F.log_softmax(net.project(t[:, 0]) / ts, -1)
        xent = -(tprob @ slog.T)  # [teacher row, student row]
        view = torch.arange(V * B) // B
        image = torch.arange(V * B) % B
        same_img = image[:, None] == image[None, :]
        same_cls = lab[:, None] == lab[None, :]
        diff_view = view[:, None] != view[None, :]
        if lam_cls:
            pairs = same_cls & ~same_img  # docs/algorithm.md §5.4: other images of the class, every view pair
            c = (xent * pairs).sum() / pairs.sum().clamp(min=1)
            loss = loss + lam_cls * c
            terms['cls'] = c.item()
        if lam_self:
            pairs = same_img & diff_view
            c = (xent * pairs).sum() / pairs.sum()
            loss = loss + lam_self * c
            terms['self'] = c.item()
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        m = 1 - (1 - m0) * 0.5 * (1 + math.cos(math.pi * it / steps))
        for pt, ps in zip(teacher.parameters(), net.parameters()):
            pt.mul_(m).add_(ps.detach(), alpha=1 - m)
    done = (it + 1) * B * V
    if done // every != it * B * V // every or it == steps - 1:
        ev = teacher if (lam_cls or lam_self) else net
        print(json.dumps({'crops': done, 'loss': round(loss.item(), 4), **{k: round(v, 4) for k, v in terms.items()}, 'val': evaluate(ev, va), 's': round(time.time() - t0)}), flush=True)
ev = teacher if (lam_cls or lam_self) else net
# Features are chosen on the validation alphabet only; the test alphabets are scored once, at the end.
chosen = o.get('feat', 'flat')
by_feat, init_by_feat = {}, {}
fresh = Net(K)
for kinds in ['cls,weighted', 'cls', 'mean', 'flat', 'cls,flat']:
    o['feat'] = kinds
    by_feat[kinds] = evaluate(ev, va, eps=300)
    init_by_feat[kinds] = evaluate(fresh, va, eps=300)
print(json.dumps({'val_by_features': by_feat, 'init_val_by_features': init_by_feat}))
o['feat'] = chosen
print(json.dumps({'final': True, 'crops': steps * B * V, 'val': evaluate(ev, va, eps=600), 'test': evaluate(ev, te, eps=600), 'test_student': evaluate(net, te, eps=600), 's': round(time.time() - t0)}), flush=True)
