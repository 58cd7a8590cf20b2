"""PyTorch reference for bench/fashion_mnist.sh: the same MLP, optimizer, batch and data as
clpar-train's defaults, timed per epoch (training loop only), on this machine's CPU.
Run with Debian's python3-torch: /usr/bin/python3 bench/torch_mlp.py EPOCHS [THREADS]"""
import gzip
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

D = "/usr/share/datasets/fashion-mnist"


def load(prefix):
    with gzip.open(f"{D}/{prefix}-images-idx3-ubyte.gz") as f:
        _, n, r, c = struct.unpack(">IIII", f.read(16))
        x = np.frombuffer(f.read(), np.uint8).reshape(n, r * c).astype(np.float32) / 255
    with gzip.open(f"{D}/{prefix}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        y = np.frombuffer(f.read(), np.uint8).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
if len(sys.argv) > 2:
    torch.set_num_threads(int(sys.argv[2]))
xtr, ytr = load("train")
xte, yte = load("t10k")
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(epochs):
    perm = torch.randperm(len(xtr))
    t0 = time.perf_counter()
    for i in range(0, len(xtr), 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        nn.functional.cross_entropy(net(xtr[idx]), ytr[idx]).backward()
        opt.step()
    dt = time.perf_counter() - t0
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    print(f"torch epoch {epoch + 1}: {dt:.2f} s, test accuracy {acc:.4f}", flush=True)
