"""The paper's claims about Figures 2-5, checked on a reproduction's summary (mean test accuracy per (n, k)).

Each check compares means only, and says what it compared, so a reader can judge the margin
against the spread over trials and class splits (summary.csv, seeds.csv).
"""
from __future__ import annotations

CLAIMS = {
    "small-k": "With few samples per class (k = 1 and k = 5), retaining more levels wins: the best of "
               "n = 3, 4, 5 beats no transfer (n = 0).",
    "capacity": "As k grows, capacity matters more: the gain of the best n >= 3 over n = 0 is smaller at "
                "k = 40 than at k = 1, and the least-capacity net (n = 5) is not the best at k = 40.",
    "n5-flat": "With C1-C5 retained (n = 5) the net learns little beyond about 10 samples: its accuracy "
               "rises less from k = 10 to k = 40 than n = 0's.",
    "c1-s2": "Retaining only C1 (n = 1) or C1-S2 (n = 2) already helps at k = 1 (the paper's Figure 2).",
}


def _means(summary: list[dict]) -> dict[tuple[int, int], float]:
    return {(r["n"], r["k"]): r["mean"] for r in summary}


def check(summary: list[dict]) -> list[dict]:
    """One row per claim: holds (True / False, or None when the grid lacks the cells) and the evidence."""
    m = _means(summary)
    have = lambda *cells: all(c in m for c in cells)  # noqa: E731
    out = []

    def row(cid: str, holds, evidence: str) -> None:
        out.append({"claim": cid, "text": CLAIMS[cid], "holds": holds, "evidence": evidence})

    def best_upper(k: int) -> tuple[int, float]:
        n = max((n for n in (3, 4, 5) if (n, k) in m), key=lambda n: m[n, k])
        return n, m[n, k]

    if have((0, 1), (0, 5)) and all(any((n, k) in m for n in (3, 4, 5)) for k in (1, 5)):
        parts, ok = [], True
        for k in (1, 5):
            n, v = best_upper(k)
            ok &= v > m[0, k]
            parts.append(f"k={k}: n={n} {v:.1%} vs n=0 {m[0, k]:.1%} ({100 * (v - m[0, k]):+.1f})")
        row("small-k", ok, "; ".join(parts))
    else:
        row("small-k", None, "needs n=0 and n>=3 at k=1 and k=5")
    if have((0, 1), (0, 40), (5, 40)) and any((n, 1) in m for n in (3, 4, 5)):
        (n1, v1), (n40, v40) = best_upper(1), best_upper(40)
        g1, g40 = v1 - m[0, 1], v40 - m[0, 40]
        best40 = max((n for n in range(6) if (n, 40) in m), key=lambda n: m[n, 40])
        row("capacity", g40 < g1 and best40 != 5,
            f"gain of the best n>=3: k=1 {100 * g1:+.1f}, k=40 {100 * g40:+.1f}; best n at k=40: {best40}")
    else:
        row("capacity", None, "needs n=0 and n>=3 at k=1 and k=40, and n=5 at k=40")
    if have((5, 10), (5, 40), (0, 10), (0, 40)):
        d5, d0 = m[5, 40] - m[5, 10], m[0, 40] - m[0, 10]
        row("n5-flat", d5 < d0, f"k=10 -> 40: n=5 {100 * d5:+.1f}, n=0 {100 * d0:+.1f}")
    else:
        row("n5-flat", None, "needs n=0 and n=5 at k=10 and k=40")
    if have((0, 1), (1, 1), (2, 1)):
        row("c1-s2", m[1, 1] > m[0, 1] and m[2, 1] > m[0, 1],
            f"k=1: n=1 {m[1, 1]:.1%}, n=2 {m[2, 1]:.1%} vs n=0 {m[0, 1]:.1%}")
    else:
        row("c1-s2", None, "needs n=0, 1, 2 at k=1")
    return out


def verdict(holds) -> str:
    return {True: "holds", False: "does not hold", None: "not checked"}[holds]
