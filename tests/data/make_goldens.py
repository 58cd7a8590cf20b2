"""Generates the PyTorch goldens used by tests/test_golden.c (run with Debian's python3-torch:
/usr/bin/python3 tests/data/make_goldens.py). Writes model.safetensors (an nn.Sequential
state dict, as a PyTorch user would save it) and reference.safetensors (inputs, gradients
of both losses, and weights after three steps of each optimizer)."""
import os
import sys
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_file  # noqa: E402


def save_file(tensors, path, metadata=None):
    """torch tensors as F32, through the hand-written writer (no extra package needed)."""
    safetensors_file.write(path, {name: ("F32", t.shape, t.to(torch.float32).contiguous().numpy().tobytes())
                                  for name, t in tensors.items()}, metadata)


def main():
    torch.manual_seed(1234)
    sizes = [6, 9, 7, 4]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    net = nn.Sequential(*layers)
    here = os.path.dirname(os.path.abspath(__file__))
    init = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    save_file(init, os.path.join(here, "model.safetensors"), metadata={"format": "pt"})

    x = torch.randn(8, 6)
    labels = torch.tensor([0, 3, 1, 2, 3, 0, 1, 1])
    targets = torch.randn(8, 4)
    ref = {"x": x, "labels": labels.float(), "targets": targets}

    def grads(loss_fn):
        net.load_state_dict(init)
        net.zero_grad()
        out = net(x)
        loss = loss_fn(out)
        loss.backward()
        return loss.detach(), {k: p.grad.detach().clone() for k, p in net.named_parameters()}

    for name, fn in [("xent", lambda o: nn.functional.cross_entropy(o, labels)),
                     ("mse", lambda o: nn.functional.mse_loss(o, targets))]:
        loss, g = grads(fn)
        ref[f"{name}.loss"] = loss.reshape(1)
        for k, v in g.items():
            ref[f"{name}.grad.{k}"] = v
        ref[f"{name}.out"] = net(x).detach()

    optims = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
        "adam": lambda p: torch.optim.Adam(p, lr=0.01),
        "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    }
    for name, make in optims.items():
        net.load_state_dict(init)
        opt = make(net.parameters())
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), labels).backward()
            opt.step()
        for k, v in net.state_dict().items():
            ref[f"{name}.{k}"] = v.detach().clone()
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(here, "reference.safetensors"))
    print("wrote", len(ref), "reference tensors")

    # The training path (tests/test_golden.c, trainer tests): from the same initial model, a data
    # set of 24 samples visited in order in batches of 8, three optimizer steps on three different
    # batches for each optimizer; written apart so the tensors above stay as they were.
    torch.manual_seed(99)
    tx = torch.randn(24, 6)
    tlabels = torch.randint(0, 4, (24,))
    train = {"x": tx, "labels": tlabels.float()}
    for name, make in optims.items():
        net.load_state_dict(init)
        opt = make(net.parameters())
        for step in range(3):
            rows = slice(8 * step, 8 * step + 8)
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(tx[rows]), tlabels[rows])
            loss.backward()
            opt.step()
            train[f"{name}.loss{step}"] = loss.detach().reshape(1)
        for k, v in net.state_dict().items():
            train[f"{name}.{k}"] = v.detach().clone()
    save_file({k: v.contiguous() for k, v in train.items()}, os.path.join(here, "training.safetensors"))
    print("wrote", len(train), "training tensors")


if __name__ == "__main__":
    main()
