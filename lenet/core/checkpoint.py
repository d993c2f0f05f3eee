"""Nets on disk: weights in safetensors, everything else in JSON.

`save(net, dir)` writes `dir/model.safetensors` (weights, codes, and the JSON
config in its metadata, so the one file is enough to load) and `dir/config.json`
(the same config, for people). Nothing is unpickled when loading: safetensors
holds only raw tensors. Both files are written to temporary names and renamed,
so a crash mid-save leaves the previous model intact.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from lenet.core.model import LeNet5, free_parameters
from lenet.core.net import Net
from lenet.core.transfer import freeze_bottom
from lenet.files import ASSETS, atomic_write

FORMAT = "lenet-transfer-lab/1"
ARCHITECTURE = "lenet5-gutstein2007"
WEIGHTS, CONFIG = "model.safetensors", "config.json"
MAX_BYTES = 16 << 20  # a real model is ~210 kB; anything far larger is not one of ours


class ModelFileError(ValueError):
    """A model file that cannot be used, with the reason."""


def shipped(data: str) -> Path | None:
    """The folder of the source net that ships for a data kind ("emnist", "synthetic"):
    assets/source-<kind>, or None where this copy has none."""
    folder = ASSETS / f"source-{data}"
    return folder if (folder / WEIGHTS).exists() else None


def config_of(net: Net) -> dict:
    return {"format": FORMAT, "architecture": ARCHITECTURE, "n_outputs": net.model.f6.out_features,
            "classes": list(net.classes), "retained": net.retained,
            "free_parameters": free_parameters(net.model), "meta": net.meta}


def to_bytes(net: Net) -> bytes:
    tensors = {k: v.detach().contiguous() for k, v in net.model.state_dict().items()}
    tensors["codes"] = net.codes.contiguous()
    return st_save(tensors, metadata={"config": json.dumps(config_of(net))})


def save(net: Net, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / WEIGHTS, to_bytes(net))
    atomic_write(out / CONFIG, json.dumps(config_of(net), indent=2).encode())
    return out / WEIGHTS


def load(path: str | Path) -> Net:
    """Load a net from a folder written by `save` or from its model.safetensors."""
    p = Path(path)
    if p.is_dir():
        p = p / WEIGHTS
    if not p.exists():
        raise ModelFileError(f"{path}: no such model (expected a folder with {WEIGHTS} or the file itself)")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise ModelFileError(f"{p}: {size:,} bytes is far too large for a LeNet-5 model file")
    return from_bytes(p.read_bytes(), str(p))


def from_bytes(data: bytes, name: str = "model") -> Net:
    """Validate and rebuild a Net from safetensors bytes; every problem is a ModelFileError."""
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
        config = json.loads(header.get("__metadata__", {}).get("config", "null"))
    except (SafetensorError, ValueError, UnicodeDecodeError, RuntimeError) as e:
        raise ModelFileError(f"{name}: not a safetensors model file ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{name}: the file has no LeNet Transfer Lab config in its metadata")
    if config.get("format") != FORMAT or config.get("architecture") != ARCHITECTURE:
        raise ModelFileError(f"{name}: format {config.get('format')!r} / architecture "
                             f"{config.get('architecture')!r} is not {FORMAT} / {ARCHITECTURE}")
    classes, n_out, retained = config.get("classes"), config.get("n_outputs"), config.get("retained", 0)
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
        raise ModelFileError(f"{name}: 'classes' must list at least 2 characters")
    if len(set(classes)) != len(classes):
        raise ModelFileError(f"{name}: 'classes' lists a character twice")
    if not isinstance(n_out, int) or n_out < 1:
        raise ModelFileError(f"{name}: 'n_outputs' must be a positive integer")
    if not isinstance(retained, int) or not 0 <= retained <= 5:
        raise ModelFileError(f"{name}: 'retained' must be 0..5 (got {retained!r})")
    model = LeNet5(n_outputs=n_out)
    expected = model.state_dict()
    codes = tensors.pop("codes", None)
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ModelFileError(f"{name}: weights do not match the architecture "
                             f"(missing {missing or 'none'}, unexpected {extra or 'none'})")
    for key, t in tensors.items():
        if t.shape != expected[key].shape or t.dtype != torch.float32:
            raise ModelFileError(f"{name}: {key} has shape {tuple(t.shape)} {t.dtype}, "
                                 f"expected {tuple(expected[key].shape)} float32")
        if not torch.isfinite(t).all():
            raise ModelFileError(f"{name}: {key} holds NaN or infinite values")
    if codes is None or codes.shape != (len(classes), n_out) or not torch.isfinite(codes).all():
        raise ModelFileError(f"{name}: target codes must be a finite ({len(classes)}, {n_out}) tensor")
    model.load_state_dict(tensors)
    freeze_bottom(model, retained)
    model.eval()
    meta = config.get("meta") if isinstance(config.get("meta"), dict) else {}
    acc = meta.get("train_acc")
    if acc is not None and not (isinstance(acc, (int, float)) and (math.isnan(acc) or 0 <= acc <= 1)):
        raise ModelFileError(f"{name}: recorded accuracy {acc!r} is not a fraction")
    return Net(model, classes, codes.float(), meta)
