"""The lesson's answers, computed from the shipped results and the live nets (no number is written in here).

Each function turns plain data (rows of the shipped grid's seeds.csv and margins.csv, a net's meta) into
the sentence a teacher reads out after the class has guessed. The Lesson page asks the questions.
"""
from __future__ import annotations

from lenet.config import LEVELS
from lenet.core.transfer import trainable_fraction

QUICK_K = (1, 40)  # the lesson's quick grid: the fewest and the most samples per class of the paper


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _levels(n: int) -> str:
    return "none (a fresh net)" if n == 0 else ("C1" if n == 1 else f"C1-{LEVELS[n - 1].upper()}")


def source_answer(meta: dict, classes: list[str]) -> str:
    train, held = meta.get("train_acc"), meta.get("heldout_acc")
    if not isinstance(held, float):
        return f"It knows {len(classes)} characters; this net does not record its held-out accuracy."
    per = meta.get("train_per_class")
    return (f"It knows {len(classes)} characters ({' '.join(classes)}). It was right on {_pct(train)} of the "
            f"{per or 'few'} samples per character it trained on, and on {_pct(held)} of samples it never saw: "
            f"it generalises to new handwriting of the same characters, not perfectly.")


def freezing_answer(n: int) -> str:
    kept = trainable_fraction(n)
    if n == 0:
        return "Nothing is frozen: all of the net learns, from scratch (no transfer)."
    text = f"Freezing n = {n} ({_levels(n)}) leaves {_pct(kept)} of the free parameters to learn."
    if n < 5:
        text += (f" C5 alone holds most of the weights: at n = 5 (C1-C5 frozen) only F6 learns, "
                 f"{_pct(trainable_fraction(5))}.")
    else:
        text += f" At n = 4, with C5 still learning, it is {_pct(trainable_fraction(4))}: C5 holds most of the weights."
    return text


def _cell(rows: list[dict], n: int, k: int) -> dict | None:
    return next((r for r in rows if r["n"] == n and r["k"] == k), None)


def best_levels(rows: list[dict], k: int) -> tuple[dict, list[int]]:
    """The row of the best mean test accuracy at k, and every n whose 95% interval overlaps its interval
    (the n the results cannot tell apart from the best)."""
    at_k = [r for r in rows if r["k"] == k]
    if not at_k:
        raise ValueError(f"the results have no k = {k}")
    best = max(at_k, key=lambda r: r["mean"])
    ties = sorted(r["n"] for r in at_k if r["ci_hi"] >= best["ci_lo"] and r is not best)
    return best, ties


def _mean(r: dict) -> str:
    return f"{_pct(r['mean'])} [{_pct(r['ci_lo'])}, {_pct(r['ci_hi'])}]"


def quick_grid_answer(rows: list[dict], ks=QUICK_K) -> str:
    """Per k: the best n with its mean and 95% interval, the n it cannot be told from, and n = 0 beside it."""
    parts = []
    for k in ks:
        best, ties = best_levels(rows, k)
        scratch = _cell(rows, 0, k)
        same = f" (n = {', '.join(map(str, ties))} within its interval)" if ties else ""
        line = f"k = {k}: n = {best['n']} is best, {_mean(best)}{same}"
        if scratch is not None and best["n"] != 0:
            line += f"; no transfer (n = 0): {_mean(scratch)}"
        parts.append(line + ".")
    return " ".join(parts)


def margins_answer(margins: list[dict]) -> str:
    """Where transfer helps most and least (the best n on validation minus n = 0), and where keeping
    every level (n = 5) falls below no transfer."""
    best = sorted((m for m in margins if m["n"] == "best on validation"), key=lambda m: m["k"])
    if not best:
        return "The shipped results hold no margins."
    top, low = max(best, key=lambda m: m["margin"]), min(best, key=lambda m: m["margin"])
    pts = lambda m: f"{100 * m['margin']:+.1f} points [{100 * m['lo']:+.1f}, {100 * m['hi']:+.1f}]"
    text = (f"Transfer helps most at k = {top['k']} ({pts(top)}) and least at k = {low['k']} ({pts(low)}): "
            f"the fewer the samples, the more the source net's levels are worth.")
    below = [m for m in margins if m["n"] == 5 and m["hi"] < 0]
    if below:
        text += (" Keeping all of C1-C5 (n = 5) is worse than no transfer at k = "
                 + ", ".join(f"{m['k']} ({pts(m)})" for m in sorted(below, key=lambda m: m["k"]))
                 + ": with many samples, the frozen net has too little left to learn with.")
    return text


MAPS_ANSWER = ("Each C1 map is one 5x5 kernel (shown above the maps) slid over the character: it stands out from the "
               "background where the strokes match its kernel's pattern (an edge on one side, a stroke in one "
               "direction), so each map picks out other parts of the strokes. C3 combines them into larger parts. "
               "None of this is about any one character, which is why a new net can keep these levels "
               "(a transferred net with n >= 1 computes exactly these maps).")

DRAWING_ANSWER = ("Always one of its own characters: it reads its outputs as the nearest of its target codes and "
                  "has no answer 'none of these'. For characters it never learned, a new net keeps its lower "
                  "levels and trains the rest: that is the paper's transfer (the Transfer page).")
