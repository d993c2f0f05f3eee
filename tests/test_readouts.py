"""Readouts (lenet.core.readouts): each on a constructed case with a known answer, each learns a
small task from frozen levels of the shipped source net, and mse is exactly the paper's transfer run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lenet.config import TRANSFER_RECIPE
from lenet.core import checkpoint
from lenet.core.net import train_transfer
from lenet.core.readouts import READOUTS, centroid, check_readouts, probe, readout
from lenet.data import CharacterSet, to_net_input
from lenet.data.protocol import Split


def bars(n_classes, per_class, seed):
    """Class c is a bar at row 3 + 3c over noise (tests/test_engine.py's task, bars further apart)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    images = rng.integers(0, 60, (len(labels), 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 3 + 3 * c:6 + 3 * c, 4:24] = 255
    return images, labels


@pytest.fixture(scope="module")
def source():
    return checkpoint.load(checkpoint.shipped("emnist"))


def test_centroid_is_the_nearest_class_mean():
    f = torch.tensor([[0.0, 0], [2, 0], [10, 10], [10, 12]])
    y = torch.tensor([0, 0, 1, 1])
    # means (1, 0) and (10, 11): (4, 0) is nearer the first though (2, 0) is not its nearest training point
    assert centroid(f, y, torch.tensor([[4.0, 0], [7, 8], [9, 13]])).tolist() == [0, 1, 1]


def test_probe_separates_what_the_centroid_cannot():
    """Linearly separable by the second feature; the first drags class 0's mean towards class 1,
    so the centroid readout gets a training point wrong and the probe gets all right."""
    f = torch.tensor([[0.0, 0], [0, 0], [0, 0], [12, -1], [5, 1], [5, 1], [5, 1], [5, 1]])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert centroid(f, y, f).tolist() != y.tolist()
    assert probe(f, y, f).tolist() == y.tolist()
    assert probe(f, y, torch.tensor([[12.0, 0.8], [0, -0.5]])).tolist() == [1, 0]


@pytest.mark.parametrize("kind", READOUTS)
def test_each_readout_learns_new_characters_from_frozen_levels(source, kind):
    (x, y), (xt, yt) = bars(5, 3, seed=0), bars(5, 20, seed=1)
    recipe = TRANSFER_RECIPE.replace(max_epochs=40)
    pred = readout(kind, source.model, 4, to_net_input(x), torch.from_numpy(y), to_net_input(xt), recipe)
    assert pred.shape == (len(yt),)
    assert (pred.numpy() == yt).mean() >= 0.8, kind


def test_mse_is_the_papers_transfer_run(source):
    (x, y), (xt, yt) = bars(5, 3, seed=2), bars(5, 10, seed=3)
    classes = [f"bar{c}" for c in range(5)]
    split = Split(CharacterSet(x, y, classes, "bars", "bars"), CharacterSet(xt, yt, classes, "bars", "bars"), classes)
    recipe = TRANSFER_RECIPE.replace(max_epochs=20, seed=7)
    net, _ = train_transfer(source, split, 3, recipe)
    pred = readout("mse", source.model, 3, to_net_input(x), torch.from_numpy(y), to_net_input(xt), recipe)
    assert [classes[i] for i in pred.tolist()] == net.predict(xt)


def test_unknown_readouts_are_refused():
    assert check_readouts(["ce", "mse", "ce"]) == ["ce", "mse"]
    with pytest.raises(ValueError, match="readouts must be some of mse, ce, centroid, probe"):
        check_readouts(["knn"])
