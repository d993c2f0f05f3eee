"""The Transfer page's readout choice (AppTest, a real job): the run reports its accuracy read out that way,
the very accuracy lenet.core.readouts gives on the same split."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import torch

from lenet.core import checkpoint
from lenet.core.readouts import readout
from lenet.data import load, to_net_input
from lenet.data.emnist import SUBSET_DIR
from appsession import open_app

ROOT = Path(__file__).resolve().parents[1]
SID = uuid.uuid4().hex


pytestmark = pytest.mark.usefixtures("emnist_app_env")  # tests/conftest.py


def test_transfer_page_runs_the_chosen_readout():
    at = open_app("app_pages/transfer.py", SID, timeout=90)
    box = at.selectbox(key="tr-readout")
    assert box.options == ["mse (the paper's): the levels above n learn towards random codes",
                           "ce: the levels above n learn one output per character (cross-entropy)",
                           "centroid: nearest class mean of the level-n features, nothing trained",
                           "probe: logistic regression on the level-n features"]
    assert box.value == "mse"  # the paper's unless chosen
    box.set_value("centroid")
    at.slider(key="tr-n").set_value(5)
    at.number_input(key="tr-k").set_value(3).run()
    chars = list(at.multiselect(key="tr-chars").value)
    next(b for b in at.button if b.label == "Start").click().run()
    end = time.monotonic() + 60
    while "Done" not in " | ".join(str(e.value) for e in at.success):
        assert time.monotonic() < end, "the readout job did not finish in time"
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    import ui
    (run_id,) = ui.sessions()[SID].runs
    job = ui.pool().get(run_id)
    assert job.spec["task"] == "readout" and job.meta["readout"] == "centroid"
    (rec,) = ui.epoch_records(job.snapshot().records)
    # the same split, read out by the engine directly: the page's run reports exactly this accuracy
    ds, source = load("emnist", SUBSET_DIR), checkpoint.load(checkpoint.shipped("emnist"))
    split = ui.make_transfer_split(ds, source, chars, 3, 0, 0)
    pred = readout("centroid", source.model, 5, to_net_input(split.train.images),
                   torch.from_numpy(split.train.labels), to_net_input(split.test.images))
    assert rec["test_acc"] == pytest.approx(float((pred.numpy() == split.test.labels).mean()))
    assert 0 <= rec["train_acc"] <= 1 and 1 / 20 < rec["test_acc"] < 1  # well above guessing
    assert "read out by centroid" in " | ".join(str(e.value) for e in at.success)
    assert f"test accuracy {rec['test_acc']:.1%}" in " | ".join(str(e.value) for e in at.success)
    assert "centroid" in str(at.table[-1].value["readout"].tolist())  # the session's runs table names it
