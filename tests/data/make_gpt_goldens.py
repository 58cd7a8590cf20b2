"""Generates the GPT goldens used by tests/test_gpt.c (run with Debian's python3-torch:
/usr/bin/python3 tests/data/make_gpt_goldens.py). A tiny nanoGPT (its model.py's layers, no
dropout) is initialized as nanoGPT does, saved under nanoGPT's names (the tied lm_head once,
as transformer.wte.weight), and run on one batch: logits, loss, every gradient, and the
weights after three Adam steps on that batch."""
import math
import os
import sys
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import save_file  # noqa: E402  (the same hand-written safetensors writer)

L, H, C, T, V, B = 2, 2, 16, 8, 32, 3


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(C, 3 * C)
        self.attn.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(C, 4 * C)
        self.mlp.c_proj = nn.Linear(4 * C, C)

    def attention(self, x):
        q, k, v = self.attn.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float("-inf")).softmax(-1)
        return self.attn.c_proj((att @ v).transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(V, C)
        self.transformer.wpe = nn.Embedding(T, C)
        self.transformer.h = nn.ModuleList([Block() for _ in range(L)])
        self.transformer.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, V, bias=False)
        self.lm_head.weight = self.transformer.wte.weight
        for name, p in self.named_parameters():  # nanoGPT's initialization
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))
            elif name.endswith(".weight") and p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif "ln_" not in name:
                nn.init.zeros_(p)

    def forward(self, idx):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


torch.manual_seed(7)
net = GPT()
# non-trivial layer norms and biases, so that their gradients are checked on real values
with torch.no_grad():
    for name, p in net.named_parameters():
        if "ln_" in name or name.endswith(".bias"):
            p.add_(0.1 * torch.randn_like(p))
state = {k: v.detach().clone() for k, v in net.state_dict().items() if k != "lm_head.weight"}
here = os.path.dirname(os.path.abspath(__file__))
meta = {"format": "pt", "clpar.gpt": f"layers={L},heads={H},embd={C},ctx={T},vocab={V}"}
save_file(state, os.path.join(here, "gpt_model.safetensors"), metadata=meta)

idx = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B, T))
ref = {"idx": idx.float(), "targets": targets.float()}
logits = net(idx)
loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
loss.backward()
ref["logits"] = logits.detach()
ref["loss"] = loss.detach().reshape(1)
for k, p in net.named_parameters():
    ref[f"grad.{k}"] = p.grad.detach().clone()
net.load_state_dict(state, strict=False)
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for _ in range(3):
    opt.zero_grad()
    F.cross_entropy(net(idx).view(-1, V), targets.view(-1)).backward()
    opt.step()
for k, v in net.state_dict().items():
    if k != "lm_head.weight":
        ref[f"adam.{k}"] = v.detach().clone()
# AdamW as nanoGPT configures it (weight decay on 2-D tensors only) with the gradients'
# global norm clipped below its size here, so that clipping acts
net.load_state_dict(state, strict=False)
decay = [p for p in net.parameters() if p.dim() >= 2]
no_decay = [p for p in net.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                         {"params": no_decay, "weight_decay": 0.0}], lr=1e-2)
CLIP = 0.05
for _ in range(3):
    opt.zero_grad()
    F.cross_entropy(net(idx).view(-1, V), targets.view(-1)).backward()
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
    assert norm > CLIP, f"the norm {norm} would not be clipped"
    opt.step()
ref["clip"] = torch.tensor([CLIP])
for k, v in net.state_dict().items():
    if k != "lm_head.weight":
        ref[f"adamw_clip.{k}"] = v.detach().clone()
save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(here, "gpt_reference.safetensors"))
print("wrote", len(ref), "GPT reference tensors")
