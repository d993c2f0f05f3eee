"""Hostile model files, crash-safe saves, and the job pool under load from many sessions."""
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save as st_save

from lenet.core import checkpoint
from lenet.core.checkpoint import ModelFileError
from lenet.core.codes import make_codes
from lenet.config import Recipe
from lenet.data import CharacterSet, to_net_input
from lenet.data.protocol import Split
from lenet.runtime.jobs import DONE, FAILED, STOPPED, JobPool
from lenet.core.model import LeNet5
from lenet.core.net import Net, train_transfer
from lenet.drawing.canvas import canvas_to_image
from lenet.core.train import TrainingError, fit

SOURCE_CHARS = [*"ABCDEFGHIJ"]


@pytest.fixture(scope="module")
def net():
    return Net(LeNet5(seed=3), SOURCE_CHARS, make_codes("random", len(SOURCE_CHARS), 20, 0), {"role": "source"})


def tiny_set(chars, per_class, seed=0) -> CharacterSet:
    """Each character a different bar, plus noise: learnable, made in microseconds."""
    rng = np.random.default_rng(seed)
    images = np.zeros((len(chars) * per_class, 28, 28), np.uint8)
    labels = np.repeat(np.arange(len(chars)), per_class)
    for i, c in enumerate(labels):
        images[i, 4 + c:8 + c, 4:24] = 255
        images[i] += rng.integers(0, 40, (28, 28), dtype=np.uint8)
    return CharacterSet(images, labels.astype(np.int64), list(chars), "tiny", "bars")


# --- (a) no code runs from a model file ---------------------------------------------------------
class Payload:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def pickle_bytes(tmp_path, target) -> bytes:
    f = tmp_path / f"evil-{uuid.uuid4().hex}.pt"
    torch.save({"state_dict": Payload(target)}, f)
    return f.read_bytes()


def test_pickled_model_files_never_run_code(tmp_path):
    canary = Path(f"/tmp/{uuid.uuid4().hex}") / "pwned"
    canary.parent.mkdir()
    # The payload is live: a pickle loader would run it.
    live = canary.parent / "live"
    (tmp_path / "x.pt").write_bytes(pickle_bytes(tmp_path, live))
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert live.exists()
    evil = pickle_bytes(tmp_path, canary)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(evil)
    (tmp_path / "model.pt").write_bytes(evil)
    attempts = (lambda: checkpoint.load(tmp_path / "m"), lambda: checkpoint.load(tmp_path / "m" / "model.safetensors"),
                lambda: checkpoint.load(tmp_path / "model.pt"), lambda: checkpoint.from_bytes(evil, "upload.pt"))
    try:
        for attempt in attempts:
            with pytest.raises(ModelFileError, match="not a safetensors model file"):
                attempt()
        assert not canary.exists()
    finally:
        shutil.rmtree(canary.parent)


# --- (b) damaged files are specific errors ---------------------------------------------------------
def crafted(net, tensors=None, config=None) -> bytes:
    t = {k: v.detach().clone().contiguous() for k, v in net.model.state_dict().items()}
    t["codes"] = net.codes.clone()
    t.update(tensors or {})
    cfg = {**checkpoint.config_of(net), **(config or {})}
    return st_save({k: v for k, v in t.items() if v is not None}, metadata={"config": json.dumps(cfg)})


def test_damaged_model_files_give_specific_errors(net):
    good = checkpoint.to_bytes(net)
    assert checkpoint.from_bytes(good).classes == SOURCE_CHARS  # the crafting baseline loads
    nan_w = net.model.c1.weight.detach().clone()
    nan_w[0, 0, 0, 0] = float("nan")
    cases = [
        (good[: len(good) // 2], "not a safetensors"),
        (os.urandom(4096), "not a safetensors"),
        (b"", "not a safetensors"),
        (crafted(net, {"c1.weight": nan_w}), "c1.weight holds NaN"),
        (crafted(net, {"c5.weight": torch.zeros(120, 16, 3, 3)}), "c5.weight has shape"),
        (crafted(net, {"f6.bias": None}), "missing"),
        (crafted(net, config={"classes": ["A"]}), "at least 2"),
        (crafted(net, config={"classes": ["A", "A", *"CDEFGHIJ"]}), "twice"),
        (crafted(net, config={"classes": [*"ABC"]}), "target codes"),
        (crafted(net, config={"retained": 9}), "retained"),
        (crafted(net, config={"architecture": "resnet"}), "architecture"),
    ]
    for data, words in cases:
        with pytest.raises(ModelFileError, match=words):
            checkpoint.from_bytes(data, "m.safetensors")


# --- (c) a crash mid-save keeps the previous model -------------------------------------------------
def test_crash_during_save_keeps_previous_model(net, tmp_path, monkeypatch):
    checkpoint.save(net, tmp_path)
    x = to_net_input(tiny_set("AB", 3).images)
    before = net.model(x).detach()
    other = Net(LeNet5(seed=99), SOURCE_CHARS, net.codes, {})

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        checkpoint.save(other, tmp_path)
    monkeypatch.undo()
    again = checkpoint.load(tmp_path)
    assert torch.equal(again.model(x).detach(), before)


# --- (d) jobs -----------------------------------------------------------------------------------------
def test_failing_jobs_end_failed_with_the_message(net):
    pool = JobPool(workers=2)

    def boom(job):
        raise ValueError("the data folder vanished")

    def nan_training(job):
        ds = tiny_set("AB", 8)
        x = to_net_input(ds.images)
        x[0, 0, 5, 5] = float("nan")
        return fit(LeNet5(n_outputs=20), x, torch.from_numpy(ds.labels), make_codes("random", 2, 20, 0),
                   Recipe(max_epochs=2))

    a, b = pool.submit(boom, "boom", "s1"), pool.submit(nan_training, "nan", "s1")
    assert a.wait(10) and b.wait(30)
    sa, sb = a.snapshot(), b.snapshot()
    assert sa.state == FAILED and "the data folder vanished" in sa.error
    assert sb.state == FAILED and sb.error.startswith(TrainingError.__name__) and "nan" in sb.error.lower()


def transfer_split(n_train=20, n_test=10, seed=0) -> Split:
    chars = [*"KLMNO"]
    return Split(tiny_set(chars, n_train, seed), tiny_set(chars, n_test, seed + 1), chars)


def test_stop_ends_a_running_transfer_within_a_second(net):
    pool = JobPool(workers=1)
    split = transfer_split(40)
    started = threading.Event()

    def train(job):
        def on_step(step, loss):
            job.record(step=step, loss=loss)
            started.set()
        return train_transfer(net, split, 2, Recipe(max_epochs=10_000), on_step=on_step, stop=job.stop_event)

    job = pool.submit(train, "transfer", "s1")
    assert started.wait(60)
    t = time.perf_counter()
    job.stop()
    assert job.wait(5)
    took = time.perf_counter() - t
    print(f"stop -> finished in {took * 1000:.0f} ms")
    assert job.snapshot().state == STOPPED and took < 1.0


def test_pool_under_load_from_many_sessions(net):
    pool = JobPool(workers=2)
    lock, running, peak = threading.Lock(), [0], [0]
    gate = threading.Event()
    split = transfer_split(15)

    def train(job):
        gate.wait(30)  # hold the first two so the queue can be inspected
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            new, result = train_transfer(net, split, 3, Recipe(max_epochs=10))
            job.record(test_acc=result.test_acc)
            return result.train_acc
        finally:
            with lock:
                running[0] -= 1

    jobs = [pool.submit(train, f"run {i}", owner=f"session-{i % 10}") for i in range(12)]
    time.sleep(0.2)
    queued = [j.snapshot() for j in jobs[2:]]
    assert [s.queue_position for s in queued] == list(range(1, 11))
    assert all(s.state == "queued" for s in queued)
    assert {j.id for j in pool.jobs("session-3")} == {jobs[3].id}
    assert pool.get(jobs[3].id, "session-4") is None  # another session cannot reach it

    # The Draw page keeps classifying while the pool trains.
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(im).line([(80, 40), (200, 240)], fill=(0, 0, 0, 255), width=15)
    rgba = np.asarray(im)
    gate.set()
    latencies = []
    while not all(j.done_event.is_set() for j in jobs):
        t = time.perf_counter()
        top = net.rank(canvas_to_image(rgba), top=5)
        latencies.append(time.perf_counter() - t)
        assert len(top) == 5
        time.sleep(0.05)
    assert all(j.wait(120) for j in jobs)
    assert [j.snapshot().state for j in jobs] == [DONE] * 12
    assert peak[0] == 2
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    print(f"rank latency while 2 jobs train: p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(latencies)} calls")
    assert p95 < 250
