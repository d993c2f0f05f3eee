"""Why training ended, in words (lenet.core.train.why_stopped), agrees with what fit actually did."""
from __future__ import annotations

from dataclasses import asdict

import torch

from lenet.core.codes import random_codes
from lenet.config import Recipe
from lenet.core.model import LeNet5
from lenet.core.train import fit, why_stopped


def _fit(recipe: Recipe) -> tuple[list[dict], bool]:
    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 32, 32), torch.arange(40) % 4
    result = fit(LeNet5(), x, y, random_codes(4), recipe)
    return [asdict(h) for h in result.history], result.stopped


def test_each_stopping_rule_is_named_where_fit_stopped():
    cases = [  # (recipe, the words expected, the epochs fit must have run)
        (Recipe(max_epochs=2), "maximum of 2 epochs", 2),
        (Recipe(max_epochs=50, target_train_loss=5.0), "training loss fell to 5", 1),
        (Recipe(max_epochs=50, target_train_acc=0.0), "training accuracy reached 0.0%", 1),
        (Recipe(max_epochs=50, lr=1e-12, patience=2), "had not fallen for 2 epochs", 3),
        (Recipe(max_epochs=50, lr=1e-12, max_steps=6), "training budget of 6 SGD steps", 2),  # 3 steps an epoch
    ]
    for recipe, words, epochs in cases:
        history, stopped = _fit(recipe)
        assert len(history) == epochs, (recipe, len(history))
        assert words in why_stopped(history, recipe, stopped), (recipe, why_stopped(history, recipe, stopped))
    assert why_stopped([], Recipe(), stopped=True) == "it was stopped by hand"


def test_the_words_and_the_rule_agree_on_whether_a_run_stops():
    """StoppingRule.reason (one run, in words) and StoppingRule.stops (the test fit and the fast path run)."""
    import itertools

    from lenet.core.train import StoppingRule
    rule = StoppingRule(Recipe(max_epochs=10, target_train_acc=0.99, target_train_loss=0.05, patience=3,
                               val_patience=4))
    for epoch, acc, loss, best, val in itertools.product((1, 5, 10), (0.5, 1.0), (0.01, 0.5), (0, 3), (0, 4)):
        said = rule.reason(epoch, 10, acc, loss, best, val)
        assert (said is not None) == bool(rule.stops(epoch, 10, acc, loss, best, val)), (epoch, acc, loss, best, val)
