"""Generates the GPT goldens used by tests/test_gpt.c (run with Debian's python3-torch:
/usr/bin/python3 tests/data/make_gpt_goldens.py). A tiny nanoGPT (its model.py's layers, no
dropout) is initialized as nanoGPT does, saved under nanoGPT's names (the tied lm_head once,
as transformer.wte.weight), and run on one batch: logits, loss, every gradient, and the
weights after three Adam steps on that batch."""
import os
import sys
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import save_file  # noqa: E402  (the same hand-written safetensors writer)
from nanogpt import GPT  # noqa: E402

L, H, C, T, V, B = 2, 2, 16, 8, 32, 3


torch.manual_seed(7)
net = GPT(L, H, C, T, V)
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
