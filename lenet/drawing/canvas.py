"""From what a person draws or uploads to the 28x28 image the net classifies.

Every input becomes an ink map (0 = paper, 1 = full ink), is redrawn along its
skeleton with EMNIST's stroke width (`strokes.normalise`: any pen, any size) and
is then framed by `frame_character`, exactly like the EMNIST training data: crop
to the ink, keep the aspect ratio, centre, pad, 28x28, ink high.

Ink is measured against the background colour, taken as the most common colour
on the image border, so dark-on-light, light-on-dark and coloured strokes all
work. A transparent pixel is never ink; on a transparent background (the
drawing canvas's default) every opaque pixel is ink whatever its colour.
"""
from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps

from lenet.ink import strokes
from lenet.data import DataError, to_net_input
from lenet.ink.framing import frame_character

MAX_PIXELS = 4_000_000  # far beyond any canvas or phone photo of one character, far below a memory problem
NOISE_FLOOR = 0.1  # ink below this is JPEG / antialiasing noise, not a stroke
MIN_INK_PIXELS = 4  # fewer clearly inked pixels than this (per 280x280) is a speck, not a character
MARGIN = 4  # px kept around the ink when cropping: more than the framing blur's reach (3)
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")


class BlankImage(DataError):
    """Nothing is drawn (or only specks)."""


def _as_float(a, what: str) -> np.ndarray:
    """Validate an image array and return it as float32 on a 0..255 scale."""
    if not isinstance(a, np.ndarray):
        raise DataError(f"{what}: expected a numpy image array, got {type(a).__name__}")
    if a.dtype == bool:
        return a.astype(np.float32) * 255
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DataError(f"{what}: expected a numeric image array, got dtype {a.dtype}")
    ok = a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))
    if not ok:
        raise DataError(f"{what}: expected shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise DataError(f"{what}: the image is empty (shape {a.shape})")
    if a.shape[0] * a.shape[1] > MAX_PIXELS:
        raise DataError(f"{what}: {a.shape[0]}x{a.shape[1]} pixels is too large (limit {MAX_PIXELS:,})")
    if a.dtype == np.uint8:  # the canvas: already 0..255
        return a.astype(np.float32)
    f = a.astype(np.float32, copy=False)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(f).all():
            raise DataError(f"{what}: the image holds NaN or infinite values")
        if f.max() <= 1.0 and f.min() >= 0.0:  # a 0..1 float image
            f = f * 255
    return np.clip(f, 0, 255)


def _border_colour(px: np.ndarray) -> np.ndarray:
    """Most common value (a colour vector) among the border pixels of (H, W, C)."""
    border = np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]])  # (2H + 2W, C)
    q = np.round(border).astype(np.int64) // 8  # bins of 8 levels absorb antialiasing / JPEG noise
    key = np.zeros(len(q), np.int64)
    for c in range(q.shape[1]):
        key = key * 32 + q[:, c]
    keys, counts = np.unique(key, return_counts=True)
    return border[key == keys[counts.argmax()]].mean(axis=0)


def ink_map(image: np.ndarray, what: str = "the image") -> np.ndarray:
    """(H, W) float32 ink in 0..1 for a grey, RGB or RGBA image array."""
    f = _as_float(image, what)
    px = f[:, :, None] if f.ndim == 2 else f
    bg = _border_colour(px)
    colours = min(px.shape[2], 3)
    # Channel by channel: numpy reduces a short last axis (max(axis=2)) ~40x slower.
    colour = np.abs(px[:, :, 0] - bg[0])
    for c in range(1, colours):
        np.maximum(colour, np.abs(px[:, :, c] - bg[c]), out=colour)
    colour *= 1 / 255
    if px.shape[2] == 4:
        # On an opaque background ink is the colour difference; on a transparent one, any paint.
        ink = (px[:, :, 3] * (1 / 255)) * np.maximum(colour, 1 - bg[3] / 255)
    else:
        ink = colour
    ink[ink < NOISE_FLOOR] = 0
    return ink.astype(np.float32, copy=False)


def frame_ink(ink: np.ndarray, normalise: bool = True) -> np.ndarray:
    """(H, W) ink map -> (28, 28) uint8 framed like EMNIST; BlankImage if nothing is drawn.
    normalise: redraw the strokes with EMNIST's stroke width (lenet.ink.strokes), whatever the pen."""
    peak = float(ink.max())
    strong = ink >= max(NOISE_FLOOR, 0.5 * peak)
    need = max(1, round(MIN_INK_PIXELS * ink.size / 78_400))
    if peak <= 0 or strong.sum() < need:
        raise BlankImage("the canvas is empty: draw a character first")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    # Crop before framing (speed); the zero margin keeps the framing blur identical.
    crop = np.pad(ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1], MARGIN)
    if normalise:
        crop = strokes.normalise(crop)
    with np.errstate(invalid="raise", divide="raise"):
        try:
            return frame_character(crop, ink_is_dark=False)
        except FloatingPointError:
            raise BlankImage("the canvas is empty: draw a character first") from None


def canvas_to_image(rgba: np.ndarray, normalise: bool = True) -> np.ndarray:
    """The drawing canvas's image_data (H, W, 4) uint8 (or any grey/RGB array) -> (28, 28) uint8.
    normalise=False keeps the pen's own stroke width (the behaviour before stroke normalisation)."""
    return frame_ink(ink_map(rgba, "the canvas image"), normalise)


def image_bytes_to_image(data: bytes, max_pixels: int = MAX_PIXELS, *, name: str = "the upload",
                         normalise: bool = True) -> np.ndarray:
    """An uploaded PNG/JPEG of one character (any ink/paper colours) -> (28, 28) uint8."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"{name}: expected the file's bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise DataError(f"{name} is empty (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(bytes(data)))
            if im.format not in FORMATS:
                raise DataError(f"{name} is a {im.format} file; use PNG or JPEG")
            w, h = im.size  # from the header: checked before any pixel is decoded
            if w * h > max_pixels:
                raise DataError(f"{name} is {w}x{h} pixels, too large (limit {max_pixels:,} pixels)")
            im.load()
            im = ImageOps.exif_transpose(im)  # phone photos are stored sideways with an EXIF flag
        except DataError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            # Pillow refuses the header of a giant image before we see its size.
            raise DataError(f"{name} is too large to decode safely ({str(e)[:90]})") from None
        except Image.UnidentifiedImageError:
            raise DataError(f"{name} is not an image (PNG or JPEG expected)") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
            raise DataError(f"{name} is not a readable image ({type(e).__name__}: {str(e)[:80]})") from None
    has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    px = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    return frame_ink(ink_map(px, name), normalise)


def net_view(image28: np.ndarray) -> np.ndarray:
    """(32, 32) float32: exactly what the net's input layer sees for a 28x28 image."""
    a = np.asarray(image28)
    if a.shape != (28, 28) or a.dtype != np.uint8:
        raise DataError(f"expected a (28, 28) uint8 image, got {a.shape} {a.dtype}")
    return to_net_input(a[None])[0, 0].numpy()


def trajectory_to_image(path: np.ndarray) -> np.ndarray:
    """The pen's centre line on the canvas ((H, W) bool, e.g. `fabric_paths`) -> (28, 28) uint8, redrawn
    along it with EMNIST's stroke width (strokes.along) and framed: a thick pen's filled loops stay open."""
    p = np.asarray(path, dtype=bool)
    if p.ndim != 2 or p.sum() < 2:
        raise BlankImage("the canvas is empty: draw a character first")
    with np.errstate(invalid="raise", divide="raise"):
        return frame_character(np.pad(strokes.along(p), MARGIN), ink_is_dark=False)


def fabric_paths(objects: list, width: int, height: int) -> np.ndarray:
    """The drawing canvas's json_data objects (fabric.js freehand paths: M, Q, L commands in canvas px)
    -> the pens' centre lines, (height, width) bool. Other objects and malformed commands are skipped."""
    from PIL import ImageDraw
    img = Image.new("1", (width, height))
    pen = ImageDraw.Draw(img)
    for obj in objects or []:
        if not isinstance(obj, dict) or obj.get("type") != "path":
            continue
        pts = []
        for cmd in obj.get("path") or []:
            if not isinstance(cmd, (list, tuple)) or not cmd:
                continue
            xy = [float(v) for v in cmd[1:] if isinstance(v, (int, float)) and math.isfinite(v)]
            if cmd[0] in ("M", "L") and len(xy) >= 2:
                pts.append((xy[0], xy[1]))
            elif cmd[0] == "Q" and len(xy) >= 4:  # a quadratic Bezier: its control point and end, sampled
                (x0, y0), (cx, cy), (x1, y1) = pts[-1] if pts else xy[:2], xy[:2], xy[2:4]
                for t in np.linspace(0.25, 1, 4):
                    pts.append(((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1,
                                (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1))
        pts = [(min(max(x, -1.0), width + 1.0), min(max(y, -1.0), height + 1.0)) for x, y in pts]  # on the canvas
        if len(pts) == 1:
            pen.point(pts[0], fill=1)
        elif pts:
            pen.line(pts, fill=1, width=1)
    return np.asarray(img)


def drawing_to_image(rgba: np.ndarray, objects: list | None = None) -> np.ndarray:
    """What the Draw and Teach canvases read: the pens' trajectory when the canvas recorded one (its
    json_data objects), so a thick pen's loops stay open; else the pixels (`canvas_to_image`)."""
    if objects:
        path = fabric_paths(objects, rgba.shape[1], rgba.shape[0])
        if path.sum() >= 2:
            return trajectory_to_image(path)
    return canvas_to_image(rgba)
