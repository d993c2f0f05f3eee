"""Where training runs: one `device` value, chosen once, passed down to `fit` and the fast path.

The CLI's `--device {auto,cpu,cuda}` and the app's `LENET_DEVICE` give a name; `resolve`
turns it into a torch.device (auto: CUDA when available, else the CPU). Nothing else in
the engine calls `.cuda()`: data and models move with `.to(device)` where training starts,
and a trained net is handed back on the device it came from (the CPU for every Net).
"""
from __future__ import annotations


import torch

from lenet import settings

CHOICES = ("auto", "cpu", "cuda")
ENV = "LENET_DEVICE"


def resolve(device: str | torch.device | None = None) -> torch.device:
    """torch.device for a name; None reads LENET_DEVICE (default "auto")."""
    if isinstance(device, torch.device):
        name = device.type
    else:
        name = settings.device() if device is None else str(device)
        name = name.strip().lower()
    if name not in CHOICES:
        where = f"{ENV}={name!r}" if device is None else f"device {name!r}"
        raise ValueError(f"{where}: use one of {', '.join(CHOICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but this PyTorch sees no CUDA GPU "
                         f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use --device cpu")
    return torch.device(name) if isinstance(device, str) or device is None else device


def describe(device: torch.device) -> str:
    """A short name for logs and benchmark output, e.g. 'cuda (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
