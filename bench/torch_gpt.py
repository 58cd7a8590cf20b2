"""PyTorch reference for bench/gpt.sh and bench/gpt_quality.sh: nanoGPT's model (the layers
of tests/data/make_gpt_goldens.py) at a given size, trained on a text file's bytes, batch B
of ctx T, shuffled samples, with AdamW as nanoGPT configures it (weight decay WD on 2-D
tensors only), optionally a linear warm-up, a cosine decay to LR_MIN and gradient clipping;
timed per step after two warm-up steps. Prints tokens per second and the validation loss.
  /usr/bin/python3 bench/torch_gpt.py FILE LAYERS HEADS EMBD CTX BATCH STEPS THREADS
      [LR WD WARMUP LR_MIN CLIP]"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

path = sys.argv[1]
L, H, C, T, B, steps, threads = map(int, sys.argv[2:9])
LR, WD, WARMUP, LR_MIN, CLIP = (list(map(float, sys.argv[9:14])) + [1e-3, 0.0, 0, 0, 0][len(sys.argv) - 9:])[:5]
torch.set_num_threads(threads)
V = 256


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        self.register_buffer("mask", torch.tril(torch.ones(T, T)))

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (u.view(b, t, H, C // H).transpose(1, 2) for u in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)  # torch 1.13 has no fused kernel
        att = att.masked_fill(self.mask[:t, :t] == 0, float("-inf")).softmax(-1)
        y = att @ v
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(b, t, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.h:
            x = blk(x)
        return self.ln_f(x) @ self.wte.weight.t()


data = torch.tensor(list(open(path, "rb").read()), dtype=torch.long)
split = len(data) * 9 // 10
train, val = data[:split], data[split:]
n = (len(train) - 1) // T
nv = (len(val) - 1) // T
torch.manual_seed(0)
net = GPT()
for name, p in net.named_parameters():  # nanoGPT's initialization, as clpar's
    if name.endswith("c_proj.weight") or name.endswith("mlp_proj.weight"):
        nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))
    elif p.dim() == 2:
        nn.init.normal_(p, 0.0, 0.02)
    elif "ln_" not in name:
        nn.init.zeros_(p)
decay = [p for p in net.parameters() if p.dim() >= 2]
rest = [p for p in net.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": rest, "weight_decay": 0.0}],
                        lr=LR)
total = steps + 2


def lr_at(it):  # nanoGPT's get_lr, over the whole run
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    if LR_MIN <= 0:
        return LR
    ratio = (it - WARMUP) / max(1, total - WARMUP)
    return LR_MIN + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - LR_MIN)
gen = torch.Generator().manual_seed(0)


def batch(src, rows):
    x = torch.stack([src[j * T:(j + 1) * T] for j in rows])
    y = torch.stack([src[j * T + 1:(j + 1) * T + 1] for j in rows])
    return x, y


perm = torch.randperm(n, generator=gen)
t_total, timed = 0.0, 0
for s in range(steps + 2):
    rows = perm[(s * B) % n:(s * B) % n + B].tolist()
    if len(rows) < B:
        perm = torch.randperm(n, generator=gen)
        rows = perm[:B].tolist()
    x, y = batch(train, rows)
    for g in opt.param_groups:
        g["lr"] = lr_at(s)
    t0 = time.perf_counter()
    opt.zero_grad()
    F.cross_entropy(net(x).view(-1, V), y.view(-1)).backward()
    if CLIP > 0:
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
    opt.step()
    if s >= 2:
        t_total += time.perf_counter() - t0
        timed += 1
with torch.no_grad():
    losses = []
    for j in range(0, nv, B):
        x, y = batch(val, range(j, min(nv, j + B)))
        losses.append(F.cross_entropy(net(x).view(-1, V), y.view(-1), reduction="sum").item())
    vloss = sum(losses) / (nv * T)
print(f"torch threads {threads}: {timed * B * T / t_total:.0f} tokens/s, "
      f"validation loss {vloss:.4f} after {steps + 2} steps")
