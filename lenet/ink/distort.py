"""Random affine distortions of framed characters: more drawings from few, for training a source net.

The ranges are Koch, Zemel & Salakhutdinov's (2015) for Omniglot (their siamese nets' training):
rotation +-10 degrees, shear +-0.3, scale 0.8-1.2 per axis, translation +-2 px, each drawn uniformly.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

ROTATION = 10.0  # degrees
SHEAR = 0.3
SCALE = (0.8, 1.2)
SHIFT = 2.0  # px at 28x28


def distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random affine distortion of a (28, 28) uint8 image about its centre, bilinear."""
    a = np.deg2rad(rng.uniform(-ROTATION, ROTATION))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    shear = np.array([[1.0, rng.uniform(-SHEAR, SHEAR)], [rng.uniform(-SHEAR, SHEAR), 1.0]])
    m = rot @ shear @ np.diag(rng.uniform(*SCALE, size=2))  # output -> input coordinates
    centre = (np.array(image.shape) - 1) / 2
    offset = centre - m @ centre + rng.uniform(-SHIFT, SHIFT, size=2)
    out = ndimage.affine_transform(image.astype(np.float32), m, offset=offset, order=1, mode="constant")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def distorted_copies(images: np.ndarray, labels: np.ndarray, copies: int, seed: int = 0):
    """(images, labels) followed by `copies` distorted copies of each, seeded."""
    rng = np.random.default_rng([seed, 20])
    extra = [np.stack([distort(im, rng) for im in images]) for _ in range(copies)]
    return np.concatenate([images, *extra]), np.concatenate([labels] * (copies + 1))
