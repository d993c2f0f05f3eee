"""The result tables of the README and docs/reproduction.md, generated from the shipped CSVs, never retyped.

`python -m lenet tables --write README.md docs/reproduction.md` rewrites each block a file holds
("headline": the cells and margins; "results": those, the claims and the twin comparison) from
assets/results-emnist (the twin-free default splits) and assets/results-emnist-twins (the
older picks of seeds 0-2), and "oneshot" (where the paper's method stands on Omniglot's one-shot
benchmark) and "oneshot-table" (every source net x n x readout, docs/omniglot.md) from
assets/results-oneshot/oneshot.json (`bench oneshot --json`), and the readouts side by
side per n and k with each readout's paired margin over the paper's ("readouts-emnist" from
assets/results-readouts, "readouts-omniglot" from assets/results-omniglot, each several class splits;
"omniglot-margins": that grid's transfer margins); a test checks the files hold what it writes.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

from lenet.files import ASSETS, write_text
from lenet.grid import experiment as E
from lenet.report.claims import CLAIMS, pooled, split_margins

BLOCKS = ("headline", "results", "oneshot", "oneshot-table", "readouts-emnist", "readouts-omniglot", "omniglot-margins")
ONESHOT = ASSETS / "results-oneshot" / "oneshot.json"
READOUTS = {"readouts-emnist": ASSETS / "results-readouts", "readouts-omniglot": ASSETS / "results-omniglot"}


def begin(name: str) -> str:
    return f"<!-- {name}: written by python -m lenet tables --write FILE, do not edit -->"


def end(name: str) -> str:
    return f"<!-- {name}: end -->"


def _pts(v: float) -> str:
    return f"{100 * v:+.1f}"


def _ci(lo: float, hi: float, pct: bool = True) -> str:
    if math.isnan(lo):
        return ""
    return f"[{100 * lo:.1f}, {100 * hi:.1f}]" if pct else f"[{_pts(lo)}, {_pts(hi)}]"


def _table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)] + \
        ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def cells(folder) -> list[str]:
    """Mean test accuracy per (n, k) over the splits with its 95% interval, and the capped runs."""
    rows = E.read_seed_outputs(folder)["seeds"]
    ns, ks = sorted({r["n"] for r in rows}), sorted({r["k"] for r in rows})
    at = {(r["n"], r["k"]): r for r in rows}
    body = []
    for k in ks:
        line = [k]
        for n in ns:
            r = at[n, k]
            cap = f" ({r['capped']} capped)" if r["capped"] else ""
            line.append(f"{100 * r['mean']:.1f} {_ci(r['ci_lo'], r['ci_hi'])}{cap}")
        body.append(line)
    first = next(iter(at.values()))
    return _table(["k \\ n"] + [str(n) for n in ns], body) + [
        "", f"Mean test accuracy (%) over {first['seeds']} class splits (each split's mean over its trials), "
            f"95% interval with the splits resampled; \"capped\": runs (of {first['runs']}) that ended at the "
            f"training budget without fitting their training set. Runs of n = 0 below 100% training accuracy: "
            f"{sum(r['unfitted'] for r in rows if r['n'] == 0)} of {sum(r['runs'] for r in rows if r['n'] == 0)}."]


def margins(folder) -> list[str]:
    m = E.read_seed_outputs(folder)["margins"]
    best = {r["k"]: r for r in m if r["n"] == "best on validation"}
    five = {r["k"]: r for r in m if r["n"] == 5}
    body = [[k, f"{_pts(best[k]['margin'])} {_ci(best[k]['lo'], best[k]['hi'], False)}",
             f"{_pts(five[k]['margin'])} {_ci(five[k]['lo'], five[k]['hi'], False)}"] for k in sorted(best)]
    return _table(["k", "best n >= 1 (on validation) minus n = 0", "n = 5 minus n = 0"], body) + [
        "", "Test-accuracy margin in points, paired within each split (same trials), mean over the splits, "
            "95% interval with the splits resampled."]


def claims(folder) -> list[str]:
    rows = E.read_seed_outputs(folder)["claims"]
    body = []
    for cid in CLAIMS:
        p = next((r for r in rows if r["claim"] == cid and r["seed"] == "pooled"), None)
        per = [r["verdict"] for r in rows if r["claim"] == cid and r["seed"] != "pooled"]
        if p is None:
            continue
        stat = (f"{p['statistic']:+.2f} [{p['lo']:+.2f}, {p['hi']:+.2f}]" if cid == "effort"
                else f"{_pts(p['statistic'])} {_ci(p['lo'], p['hi'], False)}")
        body.append([f"`{cid}`: {CLAIMS[cid].split(' Statistic:')[0]}", stat, f"**{p['verdict']}**",
                     ", ".join(f"{per.count(v)} {v}" for v in ("holds", "inconclusive", "fails") if per.count(v))])
    return _table(["claim (`lenet/report/claims.py`)", "pooled statistic [95% interval]", "pooled verdict",
                   "per split"], body) + [
        "", "Statistics in points of test accuracy (`effort`: a log ratio of SGD steps), > 0 when the claim is "
            "true; per split, the 5 trials resampled (paired); pooled, the mean over the splits with the splits "
            "resampled. `claims.csv` has every split's row."]


def twins(free, with_twins) -> list[str]:
    """Margins with twins (the older pick) minus twin-free, on the splits both hold, paired by split."""
    a, b = E.read_splits(free), E.read_splits(with_twins)
    common = sorted(set(a) & set(b))
    fa = {s: a[s][1] for s in common}
    fb = {s: b[s][1] for s in common}
    body = []
    for label, levels in (("n = 5 minus n = 0", 5), ("best n >= 1 minus n = 0", None)):
        ma, mb = split_margins(fa, levels), split_margins(fb, levels)
        for k in sorted(ma):
            d = [mb[k][s] - ma[k][s] for s in common]
            m, lo, hi = pooled(d)
            body.append([label, k, _pts(sum(mb[k].values()) / len(common)), _pts(sum(ma[k].values()) / len(common)),
                         f"{_pts(m)} {_ci(lo, hi, False)}"])
    pairs = {s: ", ".join(f"{x}/{y}" for x, y in _twin_pairs(b[s][0])) for s in common}
    return _table(["margin", "k", "with twins", "twin-free", "difference [95% interval]"], body) + [
        "", f"Splits (seeds) {', '.join(map(str, common))}: the same source nets, new characters picked with "
            f"and without twins. Twin pairs (source/new) in the older picks: " +
            "; ".join(f"seed {s}: {p}" for s, p in pairs.items()) + "."]


def _twin_pairs(meta: dict) -> list[tuple[str, str]]:
    from lenet.data.twins import twin_pairs
    return twin_pairs(meta["settings"]["source_classes"], meta["settings"]["target_classes"])


def oneshot(path=ONESHOT) -> list[str]:
    """Omniglot's 20 one-shot runs (% error over 400 drawings, 95% Wilson interval): the baselines, and per
    source net the paper's readout at its best n beside this project's best configuration."""
    result = json.loads(Path(path).read_text())
    show = lambda r: f"{r['error']:.2f}% [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]"
    rows = [[r["method"], "-", show(r)] for r in result["rows"] if r["method"] != "LeNet-5"]
    nets = [r for r in result["rows"] if r["method"] == "LeNet-5"]
    for source in dict.fromkeys(r["source"] for r in nets):
        mine = [r for r in nets if r["source"] == source]
        paper = min((r for r in mine if r["readout"] == "mse"), key=lambda r: r["error"])
        best = min(mine, key=lambda r: r["error"])
        rows.append([f"LeNet-5 from the {source} source net, the paper's readout (mse)", f"n={paper['n']}", show(paper)])
        rows.append([f"LeNet-5 from the {source} source net, its best readout ({best['readout']})", f"n={best['n']}",
                     show(best)])
    return _table(["method", "retained levels", "error"], rows)


def oneshot_table(path=ONESHOT) -> list[str]:
    """The whole benchmark (`bench oneshot --json`): % error (its 95% Wilson interval), a row per source net
    and n, a column per readout, the baselines below."""
    result = json.loads(Path(path).read_text())
    nets = [r for r in result["rows"] if r["method"] == "LeNet-5"]
    kinds = list(dict.fromkeys(r["readout"] for r in nets))
    show = lambda r: f"{r['error']:.2f}%" + (f" ({r['ci95'][0]:.1f}-{r['ci95'][1]:.1f})" if "ci95" in r else "")
    cell = {(r["source"], r["n"], r["readout"]): show(r) for r in nets}
    body = [[source, n, *(cell.get((source, n, k), "") for k in kinds)]
            for source in dict.fromkeys(r["source"] for r in nets)
            for n in sorted({r["n"] for r in nets if r["source"] == source})]
    body += [[r["method"], "-", show(r), *[""] * (len(kinds) - 1)] for r in result["rows"] if r["method"] != "LeNet-5"]
    return _table(["source net", "n", *kinds], body)


def readouts(folder) -> list[str]:
    """Mean test accuracy per k and n over the class splits of a `reproduce --seeds --readouts` folder, a
    column per readout (mse: the paper's, the grid's runs), 95% intervals (readouts-seeds.csv); then each
    readout's margin over mse, paired within each split (readouts-margins.csv)."""
    from lenet.grid import readouts as R

    rows, at, kinds, nks = _readout_cells(Path(folder) / R.SEEDS)
    show = lambda r: "" if r is None else f"{100 * r['mean']:.1f} {_ci(r['ci_lo'], r['ci_hi'])}"
    body = [[k, n, *(show(at.get((n, k, kind))) for kind in kinds)] for n, k in nks]
    note = (f"Mean test accuracy (%) over {max(r['seeds'] for r in rows)} class splits (each split's mean over its "
            f"trials), 95% interval with the splits resampled.")
    head = ["k", "n", *[f"{k} (the paper's)" if k == "mse" else k for k in kinds]]
    return _table(head, body) + ["", note, "", *readout_margins(folder)]


def _readout_cells(path) -> tuple[list[dict], dict, list[str], list[tuple[int, int]]]:
    """A readouts CSV (one row per n, k and readout): its rows, {(n, k, readout): row}, the readouts it holds
    (in lenet.core.readouts' order) and its (n, k) cells, by k then n."""
    from lenet.core.readouts import READOUTS
    from lenet.grid.runfolder import read_csv

    rows = read_csv(path)
    at = {(r["n"], r["k"], r["readout"]): r for r in rows}
    kinds = [k for k in READOUTS if any(key[2] == k for key in at)]
    return rows, at, kinds, sorted({(n, k) for n, k, _ in at}, key=lambda t: (t[1], t[0]))


def readout_margins(folder) -> list[str]:
    """Each readout minus the paper's (mse), in points, paired within each split, from readouts-margins.csv."""
    from lenet.grid import readouts as R

    _, at, kinds, nks = _readout_cells(Path(folder) / R.MARGINS)
    show = lambda r: "" if r is None else f"{_pts(r['margin'])} {_ci(r['lo'], r['hi'], False)}"
    body = [[k, n, *(show(at.get((n, k, kind))) for kind in kinds)] for n, k in nks]
    return _table(["k", "n", *[f"{k} minus mse" for k in kinds]], body) + [
        "", "Test-accuracy margin over the paper's readout in points, paired within each split (the same cells), "
            "mean over the splits, 95% interval with the splits resampled."]


def markdown(name: str, results, with_twins=None) -> str:
    """Block `name` (one of BLOCKS), markers included."""
    if name == "oneshot":
        return "\n".join([begin(name), *oneshot(), end(name)]) + "\n"
    if name == "oneshot-table":  # the whole benchmark (docs/omniglot.md)
        return "\n".join([begin(name), *oneshot_table(), end(name)]) + "\n"
    if name in READOUTS:
        return "\n".join([begin(name), *readouts(READOUTS[name]), end(name)]) + "\n"
    if name == "omniglot-margins":  # the transfer margins of the grid on Omniglot (README)
        return "\n".join([begin(name), *margins(READOUTS["readouts-omniglot"]), end(name)]) + "\n"
    parts = [*cells(results), "", *margins(results)]
    if name == "results":
        parts = ["#### Accuracy per cell", *cells(results), "", "#### Transfer margins", *margins(results), "",
                 "#### The paper's claims", *claims(results)]
        if with_twins is not None and Path(with_twins).is_dir():
            parts += ["", "#### The effect of twin characters", *twins(results, with_twins)]
    return "\n".join([begin(name), *parts, end(name)]) + "\n"


def rewrite(path, render: dict[str, Callable[[], str]]) -> list[str]:
    """Rewrite every block of `render` (name -> its new text) that the file at path holds; the names of
    those that changed. A file with none of them is an error."""
    p = Path(path)
    text = p.read_text()
    found = [b for b in render if begin(b) in text and end(b) in text]
    if not found:
        raise ValueError(f"{p}: no result block to rewrite (a block is the lines from {begin('NAME')!r} to "
                         f"{end('NAME')!r}; NAME one of {', '.join(render)})")
    changed = []
    for b in found:
        head, rest = text.split(begin(b), 1)
        new = head + render[b]() + "\n" + rest.split(end(b), 1)[1].lstrip("\n")
        if new != text:
            changed.append(b)
        text = new
    if changed:
        write_text(p, text)
    return changed


def renderers(results, with_twins=None) -> dict[str, Callable[[], str]]:
    """The grid's blocks, each drawn from the results when a file holds it."""
    return {b: (lambda b=b: markdown(b, results, with_twins)) for b in BLOCKS}

