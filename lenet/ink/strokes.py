"""Stroke width: measure it, and redraw a character with the pen EMNIST's writers used.

A drawing's stroke width at 28x28 depends on the pen and on how big the character is
drawn (framing scales the character to fill the frame): an 18 px pen on a character that
fills the 280 px canvas is ~2 px thick at 28x28, on a small one 4-5 px. `normalise`
thins the ink to its skeleton and redraws it with a round pen whose width, once the
character is framed, measures `config.STROKE_WIDTH` (EMNIST's, measured with `width`).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from lenet.config import STROKE_PEN
from lenet.ink.framing import BORDER, SIGMA, SIZE

INK = 0.5  # a pixel is ink at >= this fraction of the peak: an antialiased edge is half covered
WORK_SIDE = 128  # px: larger drawings are thinned at this size (the cost is O(pixels); 112 let JPEG noise sprout spurs)
_BLUR_REACH = 2 * SIGMA  # px the framing blur adds on each side of the ink before cropping at 5%


def width(image: np.ndarray) -> float:
    """Mean stroke width of one character image (ink high), in its own pixels.

    2 x the mean distance from the skeleton to the paper, minus 1: a pixel's distance is to
    the nearest paper pixel's centre, so a one-pixel line measures 2 x 1 - 1 = 1, a five-pixel
    line 2 x 3 - 1 = 5. Ink is >= INK of the peak. 0.0 for a blank image.
    """
    a = np.asarray(image, dtype=np.float32)
    if not a.max() > 0:
        return 0.0
    ink = a >= INK * a.max()
    skeleton = skeletonize(ink)
    return float(2 * ndimage.distance_transform_edt(ink)[skeleton].mean() - 1)


def pen_for(skeleton_side: float, pen28: float = STROKE_PEN) -> float:
    """The pen width (px of the drawing) that is pen28 px wide once framing scales the
    character, whose skeleton's larger side is skeleton_side px, to SIZE x SIZE.

    Framing maps (ink side + blur reach + 2 BORDER) to SIZE px and the ink side is the
    skeleton's plus one pen width: solve pen28 = pen * SIZE / (side + pen + 2 (reach + BORDER)).
    """
    return pen28 * (skeleton_side + 2 * (_BLUR_REACH + BORDER)) / (SIZE - pen28)


def redraw(skeleton: np.ndarray, pen: float) -> np.ndarray:
    """An antialiased round pen of width `pen` px along a (H, W) bool skeleton -> float ink 0..1,
    padded so the pen fits. Coverage falls from 1 to 0 over the pixel at distance pen / 2."""
    pad = int(np.ceil(pen / 2)) + 2
    far = ~np.pad(skeleton, pad)
    return np.clip(pen / 2 + 0.5 - ndimage.distance_transform_edt(far), 0, 1).astype(np.float32)


def normalise(ink: np.ndarray, pen28: float = STROKE_PEN) -> np.ndarray:
    """(H, W) ink (0 = paper) -> ink of the same character redrawn along its skeleton with the pen
    that is pen28 px wide at 28x28. Returns the input unchanged if there is no ink."""
    a = np.asarray(ink, dtype=np.float32)
    peak = float(a.max()) if a.size else 0.0
    if not peak > 0:
        return a
    rows, cols = np.flatnonzero((a >= INK * peak).any(1)), np.flatnonzero((a >= INK * peak).any(0))
    a = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = max(a.shape)
    if side > WORK_SIDE:  # thin at a bounded size; box-filter shrinking keeps thin lines' mass
        from PIL import Image
        f = WORK_SIDE / side
        size = (max(1, round(a.shape[1] * f)), max(1, round(a.shape[0] * f)))
        a = np.asarray(Image.fromarray(a, mode="F").resize(size, Image.Resampling.BOX))
        peak = float(a.max())
    # Shrinking may thin a thin stroke's peak below half; one pixel of padding lets the skeleton reach the edge.
    skeleton = skeletonize(np.pad(a >= INK * peak, 1))
    ys, xs = np.nonzero(skeleton)
    skel_side = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
    return redraw(skeleton, pen_for(skel_side, pen28))


def along(path: np.ndarray, pen28: float = STROKE_PEN) -> np.ndarray:
    """(H, W) bool centre line of the pen (the trajectory a canvas records) -> ink redrawn along it with
    the pen that is pen28 px wide at 28x28: `normalise` without thinning, so a thick pen's loops,
    which fill in on the raster, stay open. Returns float zeros if the path is empty."""
    p = np.asarray(path, dtype=bool)
    if not p.any():
        return np.zeros(p.shape, np.float32)
    ys, xs = np.nonzero(p)
    p = p[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    f = int(np.ceil(WORK_SIDE / max(p.shape)))
    if f > 1:  # a small drawing's path is coarse: redraw it at about WORK_SIDE, as `normalise` thins
        p = skeletonize(np.pad(np.kron(p, np.ones((f, f), bool)), 1))
    return redraw(p, pen_for(max(p.shape), pen28))
