"""The stopping rules of a recipe each do what they say, in fit and in the fast path alike."""
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet.core import checkpoint
from lenet.core.codes import transfer_codes
from lenet.config import RECIPE_CANDIDATES, Recipe
from lenet.data import load, to_net_input
from lenet.data.protocol import transfer_split
from lenet.core.train import evaluate, fit
from lenet.core.transfer import transfer


ROOT = Path(__file__).resolve().parents[1]
BASE = Recipe(lr=0.01, batch_size=4, max_epochs=30, target_train_acc=1.01)


@pytest.fixture(scope="module")
def task():
    """3 samples of each of 10 new characters, 10 validation samples each, above the shipped
    synthetic source net's C1-C3 (n=3): learned in ~13 epochs, outputs near their codes later."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    source = checkpoint.load(ROOT / "assets" / "source-synthetic")
    ds = load("synthetic")
    targets = [c for c in ds.classes if c not in source.classes][:10]
    split = transfer_split(ds, targets, 3, test_per_class=10, val_per_class=10)
    yield (source, to_net_input(split.train.images), torch.from_numpy(split.train.labels),
           to_net_input(split.val.images), torch.from_numpy(split.val.labels),
           transfer_codes("random", len(targets), 1, 20))
    torch.set_num_threads(threads)


def _fit(task, recipe):
    source, x, y, xv, yv, codes = task
    model = transfer(source.model, 3, seed=5)
    return model, fit(model, x, y, codes, recipe, x_val=xv, y_val=yv)


def test_fixed_epochs_runs_every_epoch(task):
    _, r = _fit(task, BASE)
    assert r.epochs == BASE.max_epochs and r.train_acc == 1.0  # learned long before, trained on anyway
    assert r.val_acc is not None and r.best_epoch is None


def test_train_accuracy_rule_stops_at_the_first_epoch_that_learns_the_set(task):
    _, r = _fit(task, BASE.replace(target_train_acc=1.0))
    accs = [s.train_acc for s in r.history]
    assert accs[-1] == 1.0 and all(a < 1.0 for a in accs[:-1]) and r.epochs < BASE.max_epochs


def test_train_loss_rule_stops_at_the_first_epoch_under_the_target(task):
    target = 0.05
    _, r = _fit(task, BASE.replace(target_train_loss=target))
    losses = [s.train_loss for s in r.history]
    assert losses[-1] <= target and all(v > target for v in losses[:-1]) and r.epochs < BASE.max_epochs
    _, acc_rule = _fit(task, BASE.replace(target_train_acc=1.0))
    assert r.epochs > acc_rule.epochs  # outputs near their codes come after a learned training set


def test_best_validation_epoch_rule_keeps_the_best_weights(task):
    _, x, y, xv, yv, codes = task
    patience = 5
    model, r = _fit(task, BASE.replace(val_patience=patience))
    vals = [s.val_acc for s in r.history]
    best = int(np.argmax(vals))  # the first epoch with the best validation accuracy
    assert r.best_epoch == best + 1 and r.val_acc == vals[best]
    assert r.epochs == min(BASE.max_epochs, r.best_epoch + patience)  # stopped `patience` epochs after it
    assert r.best_epoch < r.epochs  # the later epochs were worse on validation, and were undone:
    assert evaluate(model, xv, yv, codes)[1] == pytest.approx(r.val_acc)  # the returned weights are the best's
    assert evaluate(model, x, y, codes)[1] == pytest.approx(r.train_acc)
    assert vals[-1] < r.val_acc


def test_validation_is_only_evaluated_every_epoch_when_a_rule_needs_it(task):
    _, r = _fit(task, BASE.replace(max_epochs=3))
    assert all(s.val_acc is None for s in r.history) and r.val_acc is not None


def test_recipe_rejects_bad_stopping_settings():
    for bad, msg in (({"target_train_loss": -1}, "target_train_loss"), ({"val_patience": -2}, "val_patience")):
        with pytest.raises(ValueError, match=msg):
            Recipe(**bad).validate()
    assert {"train-acc", "epochs", "train-loss", "val-best"} <= set(RECIPE_CANDIDATES)
