"""Built-in synthetic characters: handwriting fonts + random affine and elastic distortion, redrawn with a pen.

Not real handwriting. It exists so the lab works with no download at all, and it is
framed exactly like EMNIST (framing.frame_character), so nets move between the two.
Half the distorted glyphs (REDRAWN) are thinned to their skeletons and redrawn with a round
pen of EMNIST's range of stroke widths (lenet.ink.strokes, config.STROKE_PEN_RANGE), as the
canvas pipeline redraws drawings; the other half keep the font's own strokes (a thin or a
broad nib), whose varying width is closer to a writer's.
The 62 classes are EMNIST ByClass's: 0-9, A-Z, a-z.
"""
from __future__ import annotations

import os
import zipfile
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from lenet import settings
from lenet.ink import strokes
from lenet.config import STROKE_PEN_RANGE
from lenet.data.base import BYCLASS, CharacterSet
from lenet.ink.framing import frame_character

VERSION = 3  # bump when the generator changes: it is part of the cache key
# fontpkg families: every handwriting-style font packaged as fontpkg-* on PyPI (Google Fonts'
# "handwriting" category among the ~200 fontpkg packages); all 12 draw all 62 characters
# (checked by glyph_covered, see tests), so none is dropped. Multi-weight families give several pens.
FONTS = ("caveat", "dancing-script", "delius", "great-vibes", "indie-flower", "kalam", "pacifico",
         "permanent-marker", "satisfy", "shadows-into-light", "yellowtail", "zeyada")
WEIGHTS = {"caveat": (400, 700), "dancing-script": (400, 700), "kalam": (300, 400, 700)}
DROPPED: dict[str, str] = {}  # font -> why it is not used
CANVAS = 64  # px; each glyph is scaled so its larger side is GLYPH, leaving room to rotate
GLYPH = 40
ROTATION = 12.0  # degrees, +-
SHEAR = 0.3  # +-
SCALE = (0.85, 1.15)  # overall, then up to +-15 % aspect change
ELASTIC = 0.04  # std of the smooth displacement, in units of half the canvas (~1.3 px)
REDRAWN = 0.5  # fraction of the glyphs redrawn with a pen of EMNIST's widths; the rest keep the font's strokes
# (measured on real EMNIST characters: all redrawn 66.0%, half 71.2%, none 67.9%; docs/data.md, Drawn characters)
PER_CLASS = 500


def _font(name: str, size: float, weight: int = 400) -> ImageFont.FreeTypeFont:
    from fontpkg.pil import truetype  # sets the weight axis of variable fonts

    return truetype(name, size, weight=weight)


def _render(font: ImageFont.FreeTypeFont, ch: str, size: int = 2 * CANVAS) -> np.ndarray:
    im = Image.new("L", (size, size))
    ImageDraw.Draw(im).text((size / 2, size / 2), ch, font=font, fill=255, anchor="mm")
    return np.asarray(im)


def glyph_covered(name: str, ch: str, weight: int = 400) -> bool:
    """True if the font really draws ch: some ink, and not the .notdef box a
    private-use code point (U+E000, mapped by no text font) renders as."""
    font = _font(name, GLYPH, weight)
    img = _render(font, ch)
    return bool(img.max() > 0) and not np.array_equal(img, _render(font, "\ue000"))


def _glyph(name: str, weight: int, ch: str) -> np.ndarray:
    """ch centred on the canvas with its larger side GLYPH px, as float 0..1 ink."""
    box = _font(name, 100, weight).getbbox(ch, anchor="mm")
    size = 100 * GLYPH / max(box[2] - box[0], box[3] - box[1])
    font = _font(name, size, weight)
    l, t, r, b = font.getbbox(ch, anchor="mm")
    im = Image.new("L", (CANVAS, CANVAS))
    ImageDraw.Draw(im).text((CANVAS / 2 - (l + r) / 2, CANVAS / 2 - (t + b) / 2), ch, font=font, fill=255, anchor="mm")
    return np.asarray(im, np.float32) / 255.0


@lru_cache(maxsize=1)
def glyph_bank() -> torch.Tensor:
    """(S, 2, 62, CANVAS, CANVAS) float: every pen (font x weight) drawing every class,
    thin and broad (3x3 dilation: a broader pen nib)."""
    pens = [(f, w) for f in FONTS for w in WEIGHTS.get(f, (400,))]
    bank = torch.from_numpy(np.stack([[_glyph(f, w, c) for c in BYCLASS] for f, w in pens]))  # (S, 62, H, W)
    return torch.stack([bank, F.max_pool2d(bank, 3, 1, 1)], 1)


@lru_cache(maxsize=1)
def _basis() -> torch.Tensor:
    """(28, H*W): rows 0-2 are the output pixel centres in [-1, 1] as homogeneous (x, y, 1);
    rows 3-27 are bicubic weights turning a 5x5 grid of displacements into a smooth field.
    So one matrix product gives affine map + elastic field for a whole batch."""
    ys, xs = torch.meshgrid(*[(torch.arange(CANVAS) + 0.5) / CANVAS * 2 - 1] * 2, indexing="ij")
    smooth = F.interpolate(torch.eye(25).view(25, 1, 5, 5), size=(CANVAS, CANVAS), mode="bicubic", align_corners=True)
    return torch.cat([xs.reshape(1, -1), ys.reshape(1, -1), torch.ones(1, CANVAS * CANVAS), smooth.view(25, -1)])


def _distort(glyphs: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """(B, 1, H, W) -> same, each through its own random affine map and elastic field."""
    b = len(glyphs)
    rot = np.radians(rng.uniform(-ROTATION, ROTATION, b))
    shear = rng.uniform(-SHEAR, SHEAR, b)
    scale = rng.uniform(*SCALE, b)
    aspect = np.exp(rng.uniform(-0.15, 0.15, b))
    cos, sin = np.cos(rot), np.sin(rot)
    # maps output to input coordinates: rotation @ shear @ scale, about the centre
    a = np.stack([cos, cos * shear - sin, sin, sin * shear + cos], 1).reshape(b, 2, 2)
    a = a / np.stack([scale * aspect, scale / aspect], 1)[:, None, :]
    coefs = np.concatenate([a, np.zeros((b, 2, 1)), rng.normal(0, ELASTIC, (b, 2, 25))], 2)  # (B, 2, 3 + 25)
    grid = torch.from_numpy(coefs).float().view(2 * b, 28) @ _basis()  # (2B, H*W): x and y sources
    grid = grid.view(b, 2, CANVAS, CANVAS).permute(0, 2, 3, 1)  # (B, H, W, 2)
    return F.grid_sample(glyphs, grid, align_corners=False)


def generate(seed: int = 0, per_class: int = PER_CLASS, batch: int = 2048) -> CharacterSet:
    """per_class samples of each of the 62 classes, fully determined by seed."""
    rng = np.random.default_rng(seed)
    bank = glyph_bank()
    labels = np.repeat(np.arange(len(BYCLASS)), per_class)
    pens = rng.integers(len(bank), size=len(labels))
    broad = rng.integers(2, size=len(labels))
    widths = rng.uniform(*STROKE_PEN_RANGE, size=len(labels))  # the redrawing pen, px at 28x28
    redraw = rng.random(len(labels)) < REDRAWN
    images = np.empty((len(labels), 28, 28), np.uint8)
    for s in range(0, len(labels), batch):
        glyphs = bank[pens[s:s + batch], broad[s:s + batch], labels[s:s + batch]].unsqueeze(1)  # (B, 1, 64, 64)
        out = _distort(glyphs, rng).squeeze(1).numpy()  # (B, 64, 64)
        images[s:s + batch] = [frame_character(strokes.normalise(g, w) if r else g, ink_is_dark=False)
                               for g, w, r in zip(out, widths[s:s + batch], redraw[s:s + batch])]
    return CharacterSet(images, labels.astype(np.int64), list(BYCLASS), "synthetic",
                        f"synthetic characters from {len(FONTS)} handwriting fonts (not real handwriting), "
                        f"{len(labels):,} characters")


def load_synthetic(seed: int = 0, per_class: int | None = None) -> CharacterSet:
    """generate(), cached as .npz so the second load takes well under a second."""
    per_class = PER_CLASS if per_class is None else per_class
    path = settings.cache() / f"synthetic-v{VERSION}-seed{seed}-n{per_class}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return CharacterSet(z["images"], z["labels"], list(BYCLASS), "synthetic", str(z["description"]))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass  # a corrupt cache is regenerated below
    ds = generate(seed, per_class)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, images=ds.images, labels=ds.labels, description=ds.description)
    os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return ds
