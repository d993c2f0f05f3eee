"""What a net misreads (lenet.report.confusion), its ONNX export read back by onnxruntime
(lenet.core.export), and the one-page summary of a run (lenet.report.summary)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lenet.report.confusion import confusion, figure, of_net

ROOT = Path(__file__).resolve().parents[1]


def test_confusion_counts_per_class_accuracy_and_misread_samples():
    classes = ["a", "b", "c"]
    truth = ["a", "a", "a", "b", "b", "c", "c", "c", "c", "a"]
    read = ["a", "b", "a", "b", "a", "c", "b", "b", "c", "b"]
    c = confusion(truth, read, classes)
    assert c.matrix.tolist() == [[2, 2, 0], [1, 1, 0], [0, 2, 2]]
    assert c.accuracy == pytest.approx(5 / 10)
    assert [(r["character"], r["correct"], r["samples"]) for r in c.per_class()] == [("a", 2, 4), ("b", 1, 2),
                                                                                   ("c", 2, 4)]
    assert c.samples("a", "b").tolist() == [1, 9]       # which samples: their positions in the input
    assert c.samples("c", "b").tolist() == [6, 7]
    assert c.samples("b", "c").tolist() == []
    assert c.misreadings() == [("a", "b", 2), ("c", "b", 2), ("b", "a", 1)]
    assert confusion([0, 2], [2, 2], classes).matrix[0, 2] == 1  # indices work as labels too
    with pytest.raises(ValueError, match="'z' is not one of the classes"):
        confusion(["z"], ["a"], classes)
    with pytest.raises(ValueError, match="truth has 2 labels, read has 1"):
        confusion(["a", "b"], ["a"], classes)
    # the figure: one clickable point per cell, row by row, the count written in it
    trace = figure(c).data[0]
    assert len(trace.x) == 9 and (trace.y[1], trace.x[1]) == ("a", "b") and trace.text[1] == "2"


@pytest.fixture(scope="module")
def emnist():
    """The shipped source net and the shipped subset's characters of its classes (real handwriting)."""
    from lenet.core import checkpoint
    from lenet.data import load
    from lenet.data.emnist import SUBSET_DIR
    net = checkpoint.load(ROOT / "assets" / "source-emnist")
    ds = load("emnist", SUBSET_DIR)
    rows = np.flatnonzero(np.isin(ds.labels, [ds.classes.index(c) for c in net.classes]))
    return net, ds.subset(np.random.default_rng(0).choice(rows, 1000, replace=False))


def test_of_net_agrees_with_the_nets_accuracy(emnist):
    net, data = emnist
    c = of_net(net, data)
    assert c.matrix.sum() == len(data)
    assert c.accuracy == pytest.approx(net.accuracy(data), abs=1e-6)
    true, read, n = c.misreadings()[0]
    rows = c.samples(true, read)
    assert len(rows) == n and set(net.predict(data.images[rows])) == {read}
    assert {data.classes[l] for l in data.labels[rows]} == {true}


def test_onnx_export_reads_as_the_app_does(emnist):
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (requirements.txt)")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (requirements.txt)")
    import onnxruntime

    from lenet.core.export import onnx_predict, to_onnx
    net, data = emnist
    model = to_onnx(net)
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert json.loads(session.get_modelmeta().custom_metadata_map["classes"]) == net.classes
    app = net.predict(data.images)
    assert onnx_predict(model, data.images) == app         # every one of 1,000 test characters
    assert onnx_predict(model, data.images[:1]) == app[:1]  # any batch size
    outputs, _ = session.run(None, {"images": data.images[:64]})
    assert np.abs(outputs - net.outputs(data.images[:64]).numpy()).max() < 1e-4


def test_run_summary_holds_settings_curves_and_matrix(emnist):
    from lenet.report.summary import run_summary_html
    net, data = emnist
    c = of_net(net, data.subset(np.arange(300)))
    records = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 10, "test_acc": 0.4 + e / 10}
               for e in (1, 2, 3)]
    page = run_summary_html("Run 1: n=4 k=5 <trial 0>", {"retained levels n": 4, "samples per class k": 5},
                            records, c)
    assert page.startswith("<!DOCTYPE html>") and page.count("<script") >= 1
    assert "Run 1: n=4 k=5 &lt;trial 0&gt;" in page                    # escaped
    assert "<td class=\"l\">retained levels n</td><td class=\"l\">4</td>" in page
    assert "train loss" in page and "test acc" in page                  # the curves
    assert "Confusion matrix" in page and "read as" in page             # the matrix
    true, read, n = c.misreadings()[0]
    assert f"<td class=\"l\">{true}</td><td class=\"l\">{read}</td><td>{n}</td>" in page
    assert "cdn.plot.ly" not in page.split("<body>")[1][:200]           # plotly.js inline: opens offline
