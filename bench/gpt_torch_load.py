"""Loads a GPT that clpar-train saved into nanoGPT's module with load_state_dict (strict,
the tied lm_head.weight added as nanoGPT's own checkpoints hold it) and prints its mean
cross-entropy over the held-out part of the text file clpar trained on (the last 10% of the
bytes, samples of ctx tokens), which clpar-train reported as its test loss.
  /usr/bin/python3 bench/gpt_torch_load.py MODEL.safetensors TEXT_FILE"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data"))
from nanogpt import GPT  # noqa: E402
import safetensors_file  # noqa: E402

header, payload = safetensors_file.read(sys.argv[1])
state = {name: torch.frombuffer(bytearray(safetensors_file.tensor_bytes(header, payload, name)),
                                dtype=torch.float32).view(header[name]["shape"])
         for name in safetensors_file.names(header)}
hp = dict(kv.split("=") for kv in header["__metadata__"]["clpar.model"].split(":")[1].split(","))
L, H, C, T, V = (int(hp[k]) for k in ("layers", "heads", "embd", "ctx", "vocab"))
net = GPT(L, H, C, T, V)
state["lm_head.weight"] = state["transformer.wte.weight"]
net.load_state_dict(state, strict=True)

data = torch.tensor(list(open(sys.argv[2], "rb").read()), dtype=torch.long)
val = data[len(data) * 9 // 10:]
count = (len(val) - 1) // T
x = torch.stack([val[j * T:j * T + T] for j in range(count)])
y = torch.stack([val[j * T + 1:j * T + T + 1] for j in range(count)])
with torch.no_grad():
    loss = sum(F.cross_entropy(net(x[i:i + 64]).reshape(-1, V), y[i:i + 64].reshape(-1), reduction="sum")
               for i in range(0, count, 64)) / (count * T)
print(f"pytorch validation loss {loss.item():.6f} over {count} samples")
