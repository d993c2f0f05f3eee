"""Drawn copies of characters: the drawing pipeline as training data (issue #22).

A net that has only seen scanned pencil strokes reads the same characters drawn with one round
pen worse. A drawn copy of a (28, 28) character is what the Draw page would read had a person
traced it: a small affine and elastic distortion, the skeleton (`drawn.skeleton`), traced on the
canvas at a random size and place (`drawn.trace`), read back from the pen's trajectory
(`canvas.trajectory_to_image`). The ranges are `config.DrawnCopies`; the choice of mix and
distortion is in lenet/config.py.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from lenet.config import DrawnCopies
from lenet.data import CharacterSet
from lenet.data.protocol import Split
from lenet.drawing import drawn
from lenet.drawing.canvas import BlankImage, trajectory_to_image


def distort(image: np.ndarray, rng: np.random.Generator, cfg: DrawnCopies) -> np.ndarray:
    """A small random affine map and elastic field (Simard, Steinkraus & Platt 2003) of a (28, 28) image."""
    a = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation))
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    shear = np.array([[1.0, rng.uniform(-cfg.shear, cfg.shear)], [rng.uniform(-cfg.shear, cfg.shear), 1.0]])
    m = rot @ shear @ np.diag(rng.uniform(*cfg.scale, size=2))  # output -> input coordinates
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    pts = np.stack([yy.ravel() - centre[0], xx.ravel() - centre[1]])  # (2, H*W)
    src = (m @ pts).reshape(2, h, w) + centre[:, None, None]
    if cfg.elastic_alpha > 0:
        field = rng.uniform(-1, 1, size=(2, h, w))
        field = np.stack([ndimage.gaussian_filter(f, cfg.elastic_sigma) for f in field])
        field *= cfg.elastic_alpha / (np.abs(field).max() or 1.0)  # the largest displacement is alpha px
        src = src + field
    out = ndimage.map_coordinates(image.astype(np.float32), src, order=1, mode="constant")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def drawn_copy(image: np.ndarray, rng: np.random.Generator, cfg: DrawnCopies) -> np.ndarray:
    """One drawn copy of a (28, 28) uint8 character: distorted, thinned, traced on the canvas at a random
    size and place, and read back from the pen's trajectory as the Draw page reads a drawing
    (canvas.trajectory_to_image; a round pen's width does not change that reading, so none is drawn)."""
    out = distort(image, rng, cfg)
    size = rng.uniform(*cfg.size)
    for im in (out, image):  # distorted to a speck (not at these ranges): trace the original
        skel = drawn.skeleton(im) if im.max() > 0 else np.zeros((1, 1), bool)
        if skel.sum() >= 2:
            return trajectory_to_image(drawn.trace(skel, size, rng))
    raise BlankImage("a character with no strokes to trace")


def drawn_copies(data: CharacterSet, cfg: DrawnCopies, seed: int = 0) -> CharacterSet:
    """cfg.copies drawn copies of each character of `data` (a fractional part: a seeded share of them
    gets one more), labelled as their originals; seeded by (seed, character index, copy)."""
    whole, part = int(cfg.copies), cfg.copies - int(cfg.copies)
    pick = np.random.default_rng([seed, 22]).random(len(data)) < part
    images, labels = [], []
    for i, (im, y) in enumerate(zip(data.images, data.labels)):
        for c in range(whole + int(pick[i])):
            images.append(drawn_copy(im, np.random.default_rng([seed, 22, i, c]), cfg))
            labels.append(y)
    images = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
    return CharacterSet(images, np.asarray(labels, np.int64), list(data.classes), data.source,
                        f"{data.description}, drawn copies")


def augment_split(split: Split, cfg: DrawnCopies, seed: int = 0) -> Split:
    """The split with drawn copies of its training characters added to them (test and validation
    untouched): Teach's augmentation of a user's few drawn samples."""
    if cfg.copies <= 0 or len(split.train) == 0:
        return split
    extra = drawn_copies(split.train, cfg, seed)
    train = CharacterSet(np.concatenate([split.train.images, extra.images]),
                         np.concatenate([split.train.labels, extra.labels]), list(split.train.classes),
                         split.train.source, split.train.description)
    return Split(train, split.test, split.classes, split.val)
