"""The modified Hausdorff distance between two drawings (Dubuisson & Jain 1994), as Omniglot's own
one-shot demo computes it (brendenlake/omniglot, demo_classification): the ink's pixel coordinates,
each set centred on its mean; the larger of the two mean distances to the nearest point of the other."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from lenet.errors import DataError


def points(ink: np.ndarray) -> np.ndarray:
    """(H, W) bool ink -> (n, 2) float (row, col) coordinates of the ink, centred on their mean."""
    rows, cols = np.nonzero(np.asarray(ink, dtype=bool))
    if not len(rows):
        raise DataError("the drawing is blank: no ink to compare")
    p = np.stack([rows, cols], axis=1).astype(np.float64)
    return p - p.mean(axis=0)


def modified_hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """max(mean over a of the distance to the nearest point of b, the same from b to a); a, b: (n, 2), (m, 2)."""
    d = cdist(a, b)  # (n, m)
    return float(max(d.min(axis=1).mean(), d.min(axis=0).mean()))


def modified_hausdorff_matrix(rows: list[np.ndarray], cols: list[np.ndarray]) -> np.ndarray:
    """(len(rows), len(cols)) modified Hausdorff distances, equal to `modified_hausdorff` pair by pair:
    each set's k-d tree answers the nearest-point queries (O(n log m) instead of cdist's n x m)."""
    trees_r, trees_c = [cKDTree(p) for p in rows], [cKDTree(p) for p in cols]
    out = np.empty((len(rows), len(cols)))
    for i, (a, ta) in enumerate(zip(rows, trees_r)):
        for j, (b, tb) in enumerate(zip(cols, trees_c)):
            out[i, j] = max(tb.query(a)[0].mean(), ta.query(b)[0].mean())
    return out
