"""A trained net as one ONNX file, to read characters outside this project (onnxruntime, a browser, a phone).

The graph takes what the app reads, (N, 28, 28) uint8 characters framed like EMNIST, and does the
rest itself: the 32x32 field and LeNet-5's input range (lenet.data.to_net_input), the net, and the
distance of its outputs to every target code. Outputs: `outputs` (N, 20), the F6 values, and
`distances` (N, C); the prediction is the character of the nearest code, `classes[argmin]`, the
classes being a JSON list in the model's metadata (`metadata_props`, key "classes").

torch.onnx's exporter needs the `onnx` and `onnxscript` packages; reading it back needs
`onnxruntime` (all in requirements.txt).
"""
from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from lenet.core.net import Net

INPUT, OUTPUTS = "images", ("outputs", "distances")


class ExportError(RuntimeError):
    """The export or its check cannot run here (a package is missing), with what to install."""


class _Reader(torch.nn.Module):
    """uint8 characters -> (F6 outputs, distances to the codes): the app's whole reading as one graph."""

    def __init__(self, net: Net):
        super().__init__()
        self.model = net.model
        self.register_buffer("codes", net.codes.detach().clone())

    def forward(self, images: torch.Tensor):
        x = torch.nn.functional.pad(images.float(), (2, 2, 2, 2))   # (N, 32, 32), background 0
        x = (x * (1.275 / 255.0) - 0.1).unsqueeze(1)                 # (N, 1, 32, 32), as to_net_input
        out = self.model(x)                                           # (N, 20)
        d = ((out[:, None, :] - self.codes[None]) ** 2).sum(-1).sqrt()  # (N, C): torch.cdist, spelled out
        return out, d


def missing() -> str | None:
    """The first package the export lacks here (None: it can run)."""
    import importlib.util
    return next((name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None), None)


def to_onnx(net: Net) -> bytes:
    """The net as ONNX bytes (about 250 kB), any batch size."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter imports it; fail here with the message)
    except ImportError as e:
        raise ExportError(f"ONNX export needs the {e.name} package: pip install -r requirements.txt") from None
    net.model.eval()
    example = torch.zeros(2, 28, 28, dtype=torch.uint8)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notes, not ours to act on
        path = Path(tmp) / "net.onnx"
        torch.onnx.export(_Reader(net), (example,), str(path), dynamo=True, input_names=[INPUT],
                          output_names=list(OUTPUTS), dynamic_shapes=({0: torch.export.Dim("batch")},),
                          verbose=False, external_data=False)
        model = onnx.load(str(path))
    model.doc_string = "LeNet-5 (Gutstein et al. 2007) from LeNet Transfer Lab: (N, 28, 28) uint8 -> outputs, distances"
    meta = {"classes": json.dumps(list(net.classes)), "retained": str(net.retained),
            "source": "lenet-transfer-lab", "prediction": "classes[argmin(distances)]"}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def onnx_predict(data: bytes, images: np.ndarray) -> list[str]:
    """The characters an exported net reads in (N, 28, 28) uint8 images, through onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("reading an ONNX net needs onnxruntime: pip install -r requirements.txt") from None
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    classes = json.loads(session.get_modelmeta().custom_metadata_map["classes"])
    _, d = session.run(list(OUTPUTS), {INPUT: np.ascontiguousarray(images, dtype=np.uint8)})
    return [classes[i] for i in d.argmin(1)]
