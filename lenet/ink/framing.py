"""The EMNIST conversion of a character image to 28x28 (Cohen et al. 2017, "EMNIST", section II-A).

Used for NIST SD19 scans, synthetic glyphs, the app's drawing canvas and "teach",
so that every image the net sees is framed exactly like the EMNIST training data.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from lenet.errors import DataError

SIGMA = 1.0  # Gaussian blur that softens the edges before cropping (EMNIST)
THRESHOLD = 0.05  # fraction of the peak ink that counts as ink for the bounding box
BORDER = 2  # px of padding around the square frame before resizing (EMNIST)
SIZE = 28

_x = np.arange(-3, 4, dtype=np.float32)
_KERNEL = np.exp(-0.5 * (_x / SIGMA) ** 2)
_KERNEL /= _KERNEL.sum()  # 7 taps cover +-3 sigma


def _blur(a: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur with zero (background) outside the image; numpy only."""
    r = len(_KERNEL) // 2
    for axis in (0, 1):
        p = np.pad(a, [(r, r) if ax == axis else (0, 0) for ax in (0, 1)])
        n = a.shape[axis]
        a = sum(w * (p[i:i + n] if axis == 0 else p[:, i:i + n]) for i, w in enumerate(_KERNEL))
    return a


def frame_character(gray: np.ndarray, ink_is_dark: bool) -> np.ndarray:
    """Any (H, W) grey image -> (28, 28) uint8, ink 255 on black, cropped, centred, square."""
    a = np.asarray(gray, dtype=np.float32)
    if a.ndim != 2 or a.size == 0:
        raise DataError(f"expected a 2-D grey image, got shape {a.shape}")
    ink = a.max() - a if ink_is_dark else a - a.min()  # paper level -> 0, whatever the dtype
    if not ink.max() > 0:  # uniform image: it is all ink unless it is at the paper level
        full = 255.0 if a.max() > 1 else 1.0
        ink = np.clip(full - a if ink_is_dark else a, 0, None)
    if not ink.max() > 0:
        raise DataError("the image is blank: no ink found")
    ink = _blur(ink / ink.max())
    rows = np.flatnonzero(ink.max(axis=1) > THRESHOLD * ink.max())
    cols = np.flatnonzero(ink.max(axis=0) > THRESHOLD * ink.max())
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = ink.shape
    side = max(h, w)
    top, left = (side - h) // 2 + BORDER, (side - w) // 2 + BORDER  # centre, keep aspect ratio
    frame = np.zeros((side + 2 * BORDER, side + 2 * BORDER), np.float32)
    frame[top:top + h, left:left + w] = ink
    # Pillow's bicubic resize widens its kernel when shrinking, i.e. it antialiases.
    small = np.asarray(Image.fromarray(frame, mode="F").resize((SIZE, SIZE), Image.Resampling.BICUBIC))
    small = np.clip(small, 0, None)
    return np.round(small * (255.0 / small.max())).astype(np.uint8)
