"""The studies' cross-split results as text: the Studies page's shipped tables and the generated block of
docs/studies.md (`python -m lenet tables --write docs/studies.md`), from OUT/NAME/splits.csv
(lenet.studies.splits). Every figure is a mean over the class splits with its 95% interval, splits resampled."""
from __future__ import annotations

import math
from pathlib import Path

from lenet.files import ASSETS

SHIPPED = ASSETS / "results-studies"  # made by: python -m lenet study all --seeds 0 1 2 --data emnist --out ...
SHIPPED_COMMAND = "python -m lenet study all --seeds 0 1 2 --data emnist --out assets/results-studies"
HUNDREDS = ASSETS / "results-hundreds"  # source-classes --preset hundreds: S up to 200 (Omniglot characters too)
HUNDREDS_COMMAND = ("python -m lenet study source-classes --preset hundreds --seeds 0 1 2 --data emnist "
                    "--out assets/results-hundreds")
# every shipped set of results: (study, folder, its command, a title); a study may have several
SHIPPED_SETS = [*[(name, SHIPPED, SHIPPED_COMMAND, "") for name in
                  ("finetune", "partial", "source-classes", "class-choice", "controls")],
                ("source-classes", HUNDREDS, HUNDREDS_COMMAND, "S in the hundreds (preset hundreds)")]
POINTS = ("gain", "vs_random", "vs_whole", "vs_AnB", "vs_none", "source_drop", "spread", "growth")  # differences, in points


def interval(row: dict, v: str) -> str:
    """'52.1% [51.1, 53.0]' (an accuracy) or '+3.2 [+1.0, +5.1]' (a difference in points); no interval
    from a single split."""
    m, lo, hi = (row.get(f"{v}{s}", math.nan) for s in ("", "_low", "_high"))
    if not isinstance(m, (int, float)) or not math.isfinite(m):
        return "–"
    if v == "spearman":
        text = f"{m:+.2f}" + (f" [{lo:+.2f}, {hi:+.2f}]" if math.isfinite(lo) else "")
    elif v in POINTS:
        text = f"{100 * m:+.1f}" + (f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if math.isfinite(lo) else "")
    else:
        text = f"{100 * m:.1f}%" + (f" [{100 * lo:.1f}, {100 * hi:.1f}]" if math.isfinite(lo) else "")
    return text


def spread(row: dict, v: str) -> str:
    """min to max over the splits."""
    lo, hi = row.get(f"{v}_min", math.nan), row.get(f"{v}_max", math.nan)
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (lo, hi)):
        return "–"
    scale = 1 if v == "spearman" else 100
    return f"{scale * lo:.2f} to {scale * hi:.2f}" if v == "spearman" else f"{scale * lo:.1f} to {scale * hi:.1f}"


def shipped_rows(mod, rows: list[dict]) -> list[dict]:
    """The cross-split rows as a readable table: the cell, then each value with its 95% interval and its
    range over the splits."""
    keys, values = mod.ACROSS
    out = []
    for r in rows:
        row = {k: r[k] for k in keys}
        for v in values:
            row[f"{v} [95% interval]"] = interval(r, v)
            row[f"{v}, splits min to max"] = spread(r, v)
        row["splits"] = r["splits"]
        out.append(row)
    return out


def have_shipped(name: str, folder: Path = SHIPPED) -> bool:
    return (Path(folder) / name / "splits.csv").exists()


# --- the generated block of docs/studies.md: each study's answer, worded by its intervals -------------

CLEAR = 0.0005  # an interval must clear 0 by what the tables show (0.1 point, rounded) to count


def _above(r: dict, v: str) -> bool:
    return math.isfinite(r.get(f"{v}_low", math.nan)) and r[f"{v}_low"] >= CLEAR


def _below(r: dict, v: str) -> bool:
    return math.isfinite(r.get(f"{v}_high", math.nan)) and r[f"{v}_high"] <= -CLEAR


def _cells(rows: list[dict], name) -> str:
    return ", ".join(name(r) for r in rows) if rows else "none"


def _md_table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |",
            *["| " + " | ".join(str(c) for c in r) + " |" for r in rows]]


def _finetune(rows: list[dict]) -> tuple[str, list[str]]:
    tuned = [r for r in rows if r["lr_mult"] > 0]
    cell = lambda r: f"n={r['n']} k={r['k']} x{r['lr_mult']:g} ({interval(r, 'gain')})"
    up, down = [r for r in tuned if _above(r, "gain")], [r for r in tuned if _below(r, "gain")]
    worst = max(tuned, key=lambda r: r["source_drop"]) if tuned else None
    line = (f"Fine-tuning the retained levels (AnB+) beats freezing them (AnB), 95% interval above 0, in "
            f"{len(up)} of {len(tuned)} cells: {_cells(up, cell)}; it is worse in {len(down)}: {_cells(down, cell)}; "
            f"elsewhere the interval includes 0." +
            (f" The source net forgets most at n={worst['n']} k={worst['k']} x{worst['lr_mult']:g}: "
             f"{interval(worst, 'source_drop')} points of its held-out accuracy (AnB forgets nothing)." if worst else ""))
    ks = sorted({r["k"] for r in rows})
    mults = sorted({r["lr_mult"] for r in tuned})
    table = _md_table(["n", "k", "AnB (frozen)", *[f"AnB+ x{m:g}: gain" for m in mults], "source drop at x1"],
                      [[n, k, interval(next(r for r in rows if (r["n"], r["k"], r["lr_mult"]) == (n, k, 0.0)), "target_acc"),
                        *[interval(next((r for r in rows if (r["n"], r["k"], r["lr_mult"]) == (n, k, m)), {}), "gain")
                          for m in mults],
                        interval(next((r for r in rows if (r["n"], r["k"], r["lr_mult"]) == (n, k, max(mults, default=1))), {}),
                                 "source_drop")]
                       for n in sorted({r["n"] for r in rows}) for k in ks if any(
                           (r["n"], r["k"], r["lr_mult"]) == (n, k, 0.0) for r in rows)])
    return line, table


def _partial(rows: list[dict]) -> tuple[str, list[str]]:
    mid = [r for r in rows if 0 < r["kept_fraction"] < 1]
    cell = lambda r: f"{r['criterion']} p={r['kept_fraction']:g} k={r['k']} ({interval(r, 'vs_whole')})"
    better, worse = [r for r in mid if _above(r, "vs_whole")], [r for r in mid if _below(r, "vs_whole")]
    crit = [r for r in mid if r["criterion"] != "random"]
    beat = [r for r in crit if _above(r, "vs_random")]
    rcell = lambda r: f"{r['criterion']} p={r['kept_fraction']:g} k={r['k']} ({interval(r, 'vs_random')})"
    line = (f"A partly transferred C3 beats the whole C3 (interval above 0) in {len(better)} of {len(mid)} "
            f"(criterion, p, k) cells: {_cells(better, cell)}; it is worse in {len(worse)}. A ranking criterion "
            f"beats random maps (paired, interval above 0) in {len(beat)} of {len(crit)} cells: {_cells(beat, rcell)}.")
    ks = sorted({r["k"] for r in rows})
    ps = sorted({r["kept_fraction"] for r in rows})
    crits = list(dict.fromkeys(r["criterion"] for r in rows))
    table = _md_table(["criterion", "p", *[f"k={k}" for k in ks], *[f"vs random, k={k}" for k in ks]],
                      [[c, f"{p:g}", *[interval(next((r for r in rows if (r["criterion"], r["kept_fraction"], r["k"]) ==
                                                      (c, p, k)), {}), "target_acc") for k in ks],
                        *[interval(next((r for r in rows if (r["criterion"], r["kept_fraction"], r["k"]) == (c, p, k)),
                                        {}), "vs_random") for k in ks]]
                       for c in crits for p in ps if 0 < p < 1 or c == crits[0]])
    return line, table


def _source_classes(rows: list[dict]) -> tuple[str, list[str]]:
    ks = sorted({r["k"] for r in rows})
    arms = [a for a in ("per-class", "fixed-total") if any(r["arm"] == a for r in rows)]
    parts = []
    for arm in arms:
        Ss = sorted({r["S"] for r in rows if r["arm"] == arm})
        wins = []
        for S in Ss:
            five = [r for r in rows if (r["arm"], r["S"], r["n"]) == (arm, S, 5)]
            wins.append(f"S={S}: " + (", ".join(f"k={r['k']}" for r in five if _above(r, "vs_none")) or "no k"))
        parts.append(f"{arm}: " + "; ".join(wins))
    line = ("Where retaining every level (n=5) beats no transfer (interval above 0), by the number of source "
            "classes S — " + " | ".join(parts) + ".")
    table = _md_table(["arm", "S", "n", *[f"k={k}" for k in ks], *[f"vs n=0, k={k}" for k in ks]],
                      [[a, S, n, *[interval(next((r for r in rows if (r["arm"], r["S"], r["n"], r["k"]) == (a, S, n, k)),
                                                 {}), "target_acc") for k in ks],
                        *[interval(next((r for r in rows if (r["arm"], r["S"], r["n"], r["k"]) == (a, S, n, k)), {}),
                                   "vs_none") for k in ks]]
                       for a, S, n in sorted({(r["arm"], r["S"], r["n"]) for r in rows}, key=lambda x: (x[0] != "none",
                                                                                               x[0], x[2], x[1]))])
    return line, table


def _class_choice(rows: list[dict]) -> tuple[str, list[str]]:
    words = []
    for r in rows:
        agree = "agrees (interval above 0)" if _above(r, "spearman") else \
            "disagrees (interval below 0)" if _below(r, "spearman") else "is not shown to agree (interval includes 0)"
        words.append(f"k={r['k']}: best minus worst set {interval(r, 'spread')} points; the proxy's rank "
                     f"correlation {interval(r, 'spearman')} {agree}")
    line = "Equal-sized source sets differ — " + "; ".join(words) + "."
    table = _md_table(["k", "best set", "worst set", "spread (points)", "Spearman proxy vs real"],
                      [[r["k"], interval(r, "best_acc"), interval(r, "worst_acc"), interval(r, "spread"),
                        interval(r, "spearman")] for r in rows])
    return line, table


def _controls(rows: list[dict]) -> tuple[str, list[str]]:
    parts = []
    for arm in ("random-frozen", "random-scaled", "in-domain", "nearest-centroid"):
        rs = [r for r in rows if r["arm"] == arm]
        if not rs:
            continue
        up = [f"n={r['n']} k={r['k']}" for r in rs if _above(r, "vs_AnB")]
        down = [f"n={r['n']} k={r['k']}" for r in rs if _below(r, "vs_AnB")]
        parts.append(f"{arm} beats AnB at {', '.join(up) or 'no cell'} and loses at {', '.join(down) or 'no cell'} "
                     f"(of {len(rs)})")
    line = "Against the transferred levels (AnB), intervals of the paired difference: " + "; ".join(parts) + "."
    ks = sorted({r["k"] for r in rows})
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    table = _md_table(["n", "arm", *[f"k={k}" for k in ks], *[f"vs AnB, k={k}" for k in ks]],
                      [[n, a, *[interval(next((r for r in rows if (r["n"], r["arm"], r["k"]) == (n, a, k)), {}),
                                         "target_acc") for k in ks],
                        *[interval(next((r for r in rows if (r["n"], r["arm"], r["k"]) == (n, a, k)), {}), "vs_AnB")
                          for k in ks]]
                       for n in sorted({r["n"] for r in rows}) for a in arms
                       if any((r["n"], r["arm"]) == (n, a) for r in rows)])
    return line, table


ANSWERS = {"finetune": _finetune, "partial": _partial, "source-classes": _source_classes,
           "class-choice": _class_choice, "controls": _controls}


def answers(folder: Path = SHIPPED) -> dict[str, tuple[dict, str, list[str]]]:
    """{study: (splits.json, its one-line answer, its table lines)} for every study with results in folder."""
    from lenet.studies.splits import read_splits
    out = {}
    for name, fn in ANSWERS.items():
        if have_shipped(name, folder):
            meta, rows, _ = read_splits(Path(folder) / name)
            out[name] = (meta, *fn(rows))
    return out


def markdown(name: str, folder: Path = SHIPPED) -> str:
    """Block `studies` (each study's answer and table) or `studies-line` (one line for the README)."""
    from lenet.grid.tables import begin, end
    found = answers(folder)
    if name == "studies-line":
        seeds = sorted({s for meta, _, _ in found.values() for s in meta["seeds"]})
        body = [f"Shipped: {', '.join(found)} on {len(seeds)} twin-free class splits, each figure with a 95% "
                f"interval over the splits ([Studies](docs/studies.md))" +
                ("; source-classes also with S up to 200, Omniglot's background characters joining EMNIST's "
                 "([in the hundreds](docs/studies.md#source-classes-in-the-hundreds))."
                 if Path(folder).resolve() == SHIPPED.resolve() and have_shipped("source-classes", HUNDREDS) else ".")]
    else:
        body = []
        for study, (meta, line, table) in found.items():
            secs = sum(meta.get("seconds", {}).values())
            body += [f"#### {study}", "", f"**Answer.** {line}", "",
                     f"{len(meta['seeds'])} class splits (seeds {', '.join(map(str, meta['seeds']))}), "
                     f"{secs / 60:.1f} min of wall time (the shipped run, on the shared 2-core machine); mean over "
                     f"the splits [95% interval, splits resampled]; accuracies in %, differences in points.", "",
                     *table, ""]
    return "\n".join([begin(name), *body, end(name)]) + "\n"


def source_nets(folder: Path) -> list[dict]:
    """Each (arm, S)'s source nets in a source-classes folder of several splits: their held-out accuracy,
    mean over every split and order, with its min and max, from each split's sources.csv."""
    from lenet.grid.runfolder import read_csv
    nets: dict[tuple, list[float]] = {}
    for path in sorted(Path(folder).glob("seed-*/sources.csv")):
        for r in read_csv(path):
            nets.setdefault((r["arm"], r["S"], r["per_class"]), []).append(float(r["heldout_acc"]))
    return [{"arm": a, "S": S, "per_class": per, "heldout_acc": sum(v) / len(v), "min": min(v), "max": max(v),
             "nets": len(v)} for (a, S, per), v in sorted(nets.items(), key=lambda i: (i[0][0] != "per-class", i[0][1]))]


def growth(per: dict[int, list[dict]], lo: int, hi: int) -> list[dict]:
    """Per (arm, n, k) with n > 0: test accuracy at S = hi minus at S = lo, each split's own difference (the same
    trials and draws), pooled over the splits with its 95% interval (splits resampled) and min to max."""
    from lenet.report.claims import pooled
    diffs: dict[tuple, list[float]] = {}
    for rows in per.values():
        acc = {(r["arm"], r["S"], r["n"], r["k"]): r["target_acc"] for r in rows}
        for (arm, S, n, k), a in acc.items():
            if S == hi and (arm, lo, n, k) in acc:
                diffs.setdefault((arm, n, k), []).append(a - acc[arm, lo, n, k])
    out = []
    for (arm, n, k), v in sorted(diffs.items(), key=lambda i: (i[0][0] != "per-class", i[0])):
        m, low, high = pooled(v)
        out.append({"arm": arm, "n": n, "k": k, "growth": m, "growth_low": low, "growth_high": high,
                    "growth_min": min(v), "growth_max": max(v), "splits": len(v)})
    return out


def hundreds_markdown(folder: Path = HUNDREDS) -> str:
    """Block `studies-hundreds`: source-classes with S up to 200 (the answer, the gain's move from S = 40 to the
    largest S, the table, and the source nets' held-out accuracy)."""
    from lenet.grid.tables import begin, end
    from lenet.studies.splits import read_splits
    name = "studies-hundreds"
    if not have_shipped("source-classes", folder):
        return "\n".join([begin(name), f"(no results in {folder}: run `{HUNDREDS_COMMAND}`)", end(name)]) + "\n"
    meta, rows, per = read_splits(Path(folder) / "source-classes")
    line, table = _source_classes(rows)
    top = max(r["S"] for r in rows)
    grow = growth(per, 40, top)
    cell = lambda r: f"{r['arm']} n={r['n']} k={r['k']} ({interval(r, 'growth')})"
    up, down = [r for r in grow if _above(r, "growth")], [r for r in grow if _below(r, "growth")]
    secs = sum(meta.get("seconds", {}).values())
    nets = source_nets(Path(folder) / "source-classes")
    body = [f"**Answer.** {line}", "",
            f"**From S=40 to S={top}.** Test accuracy at S={top} minus at S=40 (each split's own difference, "
            f"pooled): higher, interval above 0, in {len(up)} of {len(grow)} (arm, n, k) cells: {_cells(up, cell)}; "
            f"lower in {len(down)}: {_cells(down, cell)}; elsewhere the interval includes 0.", "",
            *_md_table(["arm", "n", "k", f"S={top} minus S=40 [95% interval]", "splits min to max"],
                       [[r["arm"], r["n"], r["k"], interval(r, "growth"), spread(r, "growth")] for r in grow]), "",
            f"{len(meta['seeds'])} class splits (seeds {', '.join(map(str, meta['seeds']))}), {secs / 60:.1f} min of "
            f"transfer runs' wall time; mean over the splits [95% interval, splits resampled]; accuracies in %, "
            f"differences in points. Made by `{HUNDREDS_COMMAND}`.", "", *table, "",
            "The source nets (held-out accuracy on their own characters, mean over every split and order, min to max):",
            "", *_md_table(["arm", "S", "per class", "held-out accuracy", "min to max", "nets"],
                           [[n["arm"], n["S"], n["per_class"], f"{100 * n['heldout_acc']:.1f}%",
                             f"{100 * n['min']:.1f} to {100 * n['max']:.1f}", n["nets"]] for n in nets])]
    return "\n".join([begin(name), *body, end(name)]) + "\n"


def renderers(folder: Path = SHIPPED) -> dict:
    """The studies' blocks (`studies`, `studies-line`, `studies-hundreds`), each drawn from the shipped results
    when a file holds it."""
    return {**{b: (lambda b=b: markdown(b, folder)) for b in ("studies", "studies-line")},
            "studies-hundreds": hundreds_markdown}

