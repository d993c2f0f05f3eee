"""The paper's claims about Figures 2-5, each a stated test with a statistic and a 95% interval.

Every claim is a statistic that is > 0 when the claim is true, computed from the runs of one
class split. Within a split the trials are paired (trial t of every (n, k) shares its training
draw and initialisation, `run_seed`), so the split's interval resamples whole trials; pooled
over splits, the statistic is the mean of the splits' statistics and its interval resamples
whole splits (percentile bootstrap, BOOT resamples, seeded). Any "best n" is chosen on the
validation set of that split; the test set only reports. Verdicts: "holds" when the interval
lies above 0, "fails" when it lies below, "inconclusive" otherwise (and without an interval:
one trial, or one split pooled).
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Callable

import numpy as np

BOOT = 2000
LEVEL = 0.95
UPPER = (3, 4, 5)        # "retaining more levels" in the paper's small-k claim
TRANSFER = (1, 2, 3, 4, 5)

CLAIMS = {
    "small-k": "With few samples per class (k = 1 and k = 5), retaining more levels wins: the best of "
               "n = 3, 4, 5 (chosen on validation) beats no transfer (n = 0). Statistic: the smaller of the "
               "two test-accuracy margins.",
    "capacity": "As k grows, capacity matters: at k = 40 the least-capacity net (n = 5) is not the best; the "
                "best of n = 0..4 (chosen on validation) beats it. Statistic: that margin at k = 40.",
    "n5-flat": "With C1-C5 retained (n = 5) the net learns little beyond about 10 samples: its accuracy rises "
               "less from k = 10 to k = 40 than that of every other n. Statistic: the smallest other rise minus "
               "n = 5's.",
    "c1-s2": "Retaining only C1 (n = 1) or C1-S2 (n = 2) already helps at k = 1 (Figure 2). Statistic: the "
             "smaller of n = 1's and n = 2's margins over n = 0 at k = 1.",
    "gap": "Transfer nets generalise better: their train-test accuracy gap is smaller than n = 0's. Statistic: "
           "n = 0's gap minus that of the best transfer net (n >= 1, chosen on validation), mean over k.",
    "effort": "Transfer needs less training: the best transfer net (n >= 1, chosen on validation) takes fewer "
              "SGD steps than n = 0. Statistic: mean over k of log(steps of n = 0 / steps of the transfer net).",
}
VERDICTS = ("holds", "fails", "inconclusive")


class Table:
    """Per (n, k): the trials' test accuracy, training accuracy and steps (arrays in trial order),
    and the mean validation accuracy (for choosing n)."""

    def __init__(self, runs):
        cells: dict[tuple[int, int], dict[int, object]] = {}
        for r in runs:
            r = SimpleNamespace(**r) if isinstance(r, dict) else r  # RunResults or their dicts (report.html)
            cells.setdefault((r.n, r.k), {})[r.trial] = r
        trials = sorted({t for c in cells.values() for t in c})
        self.cells = {nk: c for nk, c in cells.items() if sorted(c) == trials}  # complete cells only
        self.trials = trials
        self.test = {nk: np.array([c[t].test_acc for t in trials]) for nk, c in self.cells.items()}
        self.train = {nk: np.array([c[t].train_acc for t in trials]) for nk, c in self.cells.items()}
        self.steps = {nk: np.array([max(c[t].steps, 1) for t in trials], float) for nk, c in self.cells.items()}
        self.val = {nk: float(np.nanmean([c[t].val_acc for t in trials])) if any(
            math.isfinite(c[t].val_acc) for t in trials) else math.nan for nk, c in self.cells.items()}

    def has(self, *cells) -> bool:
        return all(c in self.cells for c in cells)

    def best(self, k: int, levels) -> int | None:
        """The n of `levels` with the highest mean validation accuracy at k (None without validation)."""
        have = [n for n in levels if (n, k) in self.cells and math.isfinite(self.val[n, k])]
        return max(have, key=lambda n: (self.val[n, k], -n)) if have else None


# Each statistic: (needs(table) -> bool, stat(table, idx) -> float); idx resamples the trials.
def _small_k(t: Table):
    ns = {k: t.best(k, UPPER) for k in (1, 5)}
    ok = all(ns[k] is not None and t.has((0, k), (ns[k], k)) for k in (1, 5))
    return ok, lambda i: min(t.test[ns[k], k][i].mean() - t.test[0, k][i].mean() for k in (1, 5)), \
        "; ".join(f"k={k}: n={ns[k]}" for k in (1, 5)) if ok else ""


def _capacity(t: Table):
    n = t.best(40, (0, 1, 2, 3, 4))
    ok = n is not None and t.has((5, 40), (n, 40))
    return ok, lambda i: t.test[n, 40][i].mean() - t.test[5, 40][i].mean(), f"k=40: n={n} vs n=5" if ok else ""


def _n5_flat(t: Table):
    others = [n for n in range(5) if t.has((n, 10), (n, 40))]
    ok = bool(others) and t.has((5, 10), (5, 40))

    def rise(n, i):
        return t.test[n, 40][i].mean() - t.test[n, 10][i].mean()
    return ok, lambda i: min(rise(n, i) for n in others) - rise(5, i), \
        f"k=10->40, n=5 vs n={','.join(map(str, others))}" if ok else ""


def _c1_s2(t: Table):
    ok = t.has((0, 1), (1, 1), (2, 1))
    return ok, lambda i: min(t.test[1, 1][i].mean(), t.test[2, 1][i].mean()) - t.test[0, 1][i].mean(), "k=1"


def _per_k(t: Table, f: Callable[[int, int, np.ndarray], float]):
    ks = sorted({k for (_, k) in t.cells if (0, k) in t.cells and t.best(k, TRANSFER) is not None})
    ns = {k: t.best(k, TRANSFER) for k in ks}
    return bool(ks), lambda i: float(np.mean([f(ns[k], k, i) for k in ks])), \
        "; ".join(f"k={k}: n={ns[k]}" for k in ks)


def _gap(t: Table):
    def gap(n, k, i):
        return t.train[n, k][i].mean() - t.test[n, k][i].mean()
    return _per_k(t, lambda n, k, i: gap(0, k, i) - gap(n, k, i))


def _effort(t: Table):
    return _per_k(t, lambda n, k, i: math.log(t.steps[0, k][i].mean() / t.steps[n, k][i].mean()))


STATISTICS = {"small-k": _small_k, "capacity": _capacity, "n5-flat": _n5_flat, "c1-s2": _c1_s2,
              "gap": _gap, "effort": _effort}


def bootstrap(stat: Callable[[np.ndarray], float], n: int, seed: int = 0) -> tuple[float, float]:
    """Percentile interval (LEVEL) of stat over BOOT resamples of range(n) with replacement."""
    rng = np.random.default_rng(seed)
    vals = np.array([stat(rng.integers(0, n, n)) for _ in range(BOOT)])
    a = (1 - LEVEL) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def verdict(lo: float, hi: float) -> str:
    return "holds" if lo > 0 else "fails" if hi < 0 else "inconclusive"


def describe(c: dict) -> str:
    """A claim row in a few words: statistic, interval and what the validation set chose."""
    if c["verdict"] == "not checked":
        return "the grid lacks the cells it compares"
    if math.isnan(c["lo"]):
        return (f"{100 * c['statistic']:+.1f} points" if c["claim"] != "effort" else f"{c['statistic']:+.2f}") + \
            " (no interval from a single trial)"
    return (f"{100 * c['statistic']:+.1f} points, 95% interval {100 * c['lo']:+.1f} to {100 * c['hi']:+.1f}"
            if c["claim"] != "effort" else
            f"{c['statistic']:+.2f} (log ratio), 95% interval {c['lo']:+.2f} to {c['hi']:+.2f}") + \
        (f" ({c['chosen']})" if c["chosen"] else "")


def check(runs) -> list[dict]:
    """One row per claim for the runs of one class split: statistic, interval (trials resampled,
    paired), verdict, and which n the validation set chose (None where the grid lacks cells)."""
    t = Table(runs)
    out = []
    for cid, f in STATISTICS.items():
        ok, stat, chosen = f(t)
        if not ok or not t.trials:
            out.append({"claim": cid, "text": CLAIMS[cid], "statistic": math.nan, "lo": math.nan, "hi": math.nan,
                        "verdict": "not checked", "chosen": ""})
            continue
        every = np.arange(len(t.trials))
        lo, hi = bootstrap(stat, len(t.trials)) if len(t.trials) > 1 else (math.nan, math.nan)  # 1 trial: no interval
        s = stat(every)
        out.append({"claim": cid, "text": CLAIMS[cid], "statistic": s, "lo": lo, "hi": hi,
                    "verdict": verdict(lo, hi), "chosen": chosen})
    return out


def check_splits(by_seed: dict[int, list]) -> list[dict]:
    """check() per split (rows with "seed"), then a pooled row per claim ("seed": "pooled"): the mean of
    the splits' statistics with its interval over resampled splits."""
    rows = [{"seed": seed, **c} for seed, runs in sorted(by_seed.items()) for c in check(runs)]
    for cid in CLAIMS:
        s = [r["statistic"] for r in rows if r["claim"] == cid and r["verdict"] != "not checked"]
        if len(s) < 2:
            continue
        m, lo, hi = pooled(s)
        rows.append({"seed": "pooled", "claim": cid, "text": CLAIMS[cid], "statistic": m,
                     "lo": lo, "hi": hi, "verdict": verdict(lo, hi), "chosen": f"{len(s)} splits"})
    return rows


def split_margins(by_seed: dict[int, list], levels=None) -> dict[int, dict[int, float]]:
    """{k: {seed: test-accuracy margin of a transfer net over n = 0 (trials paired, mean)}}.
    levels=None: the best n >= 1 of each split on validation; an int: that fixed n."""
    per: dict[int, dict[int, float]] = {}
    for seed, runs in by_seed.items():
        t = Table(runs)
        for k in sorted({k for (_, k) in t.cells}):
            n = t.best(k, TRANSFER) if levels is None else levels
            if n is not None and t.has((0, k), (n, k)):
                per.setdefault(k, {})[seed] = float(t.test[n, k].mean() - t.test[0, k].mean())
    return per


def pooled(values) -> tuple[float, float, float]:
    """(mean, 95% interval) of per-split values, splits resampled."""
    v = np.asarray(list(values), float)
    lo, hi = bootstrap(lambda i: v[i].mean(), len(v)) if len(v) > 1 else (math.nan, math.nan)
    return float(v.mean()), lo, hi


def margins(by_seed: dict[int, list], levels=None) -> list[dict]:
    """Per k: the margin of split_margins pooled over splits, with its 95% interval."""
    out = []
    for k, v in sorted(split_margins(by_seed, levels).items()):
        m, lo, hi = pooled(v.values())
        out.append({"k": k, "n": "best on validation" if levels is None else levels, "margin": m,
                    "lo": lo, "hi": hi, "splits": len(v)})
    return out


def cell_interval(values) -> tuple[float, float]:
    """95% interval of the mean of one cell's per-split means, over resampled splits."""
    return pooled(values)[1:]
