"""Stroke normalisation: any pen and size give EMNIST's stroke width; the drawn-characters benchmark."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lenet.core import checkpoint
from lenet.drawing import drawn
from lenet.ink import strokes
from lenet.config import STROKE_WIDTH
from lenet.data import load
from lenet.drawing.canvas import canvas_to_image, image_bytes_to_image

ROOT = Path(__file__).resolve().parents[1]
EMNIST = ROOT.parent / "shared" / "data" / "emnist"


def corr(a, b):
    return np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1]


def four(pen: int, box) -> np.ndarray:
    """A '4' on the 280 px canvas (transparent, black round pen), in the box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    im = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    w, h = x1 - x0, y1 - y0
    pts = [(x0 + 0.6 * w, y0 + h), (x0 + 0.6 * w, y0), (x0, y0 + 0.65 * h), (x1, y0 + 0.65 * h)]
    d.line(pts, fill=(0, 0, 0, 255), width=pen, joint="curve")
    for x, y in (pts[0], pts[-1], pts[1], pts[2]):  # round caps
        d.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=(0, 0, 0, 255))
    return np.asarray(im)


def test_width_measures_lines_of_known_width():
    for w in (1, 3, 5):  # an even width reads 1 px less: its skeleton is off-centre
        a = np.zeros((40, 40), np.uint8)
        a[5:35, 20 - w // 2:20 - w // 2 + w] = 255
        assert strokes.width(a) == pytest.approx(w, abs=0.3)
    assert strokes.width(np.zeros((28, 28), np.uint8)) == 0.0


def test_thin_and_thick_renderings_give_nearly_the_same_image():
    thin_big = canvas_to_image(four(4, (20, 20, 260, 260)))
    thick_small = canvas_to_image(four(24, (80, 80, 200, 200)))
    mid = canvas_to_image(four(18, (50, 50, 210, 210)))
    # Without normalisation the same character differs a lot with the pen...
    before = corr(canvas_to_image(four(4, (20, 20, 260, 260)), normalise=False),
                  canvas_to_image(four(24, (80, 80, 200, 200)), normalise=False))
    # ...with it, nearly the same 28x28 image whatever the pen and the size.
    assert corr(thin_big, thick_small) > 0.85 > before + 0.1
    assert corr(thin_big, mid) > 0.85 and corr(mid, thick_small) > 0.85
    for img in (thin_big, thick_small, mid):
        assert strokes.width(img) == pytest.approx(STROKE_WIDTH, abs=0.6)


def test_uploads_are_normalised_too():
    paper = Image.new("RGB", (280, 280), "white")
    paper.paste(Image.fromarray(four(30, (40, 40, 240, 240))), mask=Image.fromarray(four(30, (40, 40, 240, 240))))
    img = image_bytes_to_image(_png(paper))
    assert strokes.width(img) == pytest.approx(STROKE_WIDTH, abs=0.6)
    assert strokes.width(image_bytes_to_image(_png(paper), normalise=False)) > STROKE_WIDTH + 0.8


def _png(im):
    import io
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_normalised_width_matches_emnist_on_redrawn_characters():
    """EMNIST skeletons drawn with a 4 px and a 40 px pen measure EMNIST's width after normalisation."""
    ds = load("synthetic", per_class=2)
    rng = np.random.default_rng(0)
    skeletons = [drawn.skeleton(im) for im in ds.images[::4][:20]]
    for pen, size in ((4, 0.9), (40, 0.9), (18, 0.5)):
        widths = [strokes.width(canvas_to_image(drawn.draw(s, pen, size, rng))) for s in skeletons]
        assert np.mean(widths) == pytest.approx(STROKE_WIDTH, abs=0.4), (pen, size)


def test_drawn_benchmark_has_a_floor():
    """The benchmark end to end (quick): normalised drawings are read far above chance and no worse
    than before on average. EMNIST and the EMNIST net when present, else the synthetic net on its data."""
    emnist = EMNIST.exists() and (ROOT / "assets" / "source-emnist" / "model.safetensors").exists()
    name = "source-emnist" if emnist else "source-synthetic"
    ds = load("emnist", EMNIST) if emnist else load("synthetic")
    net = checkpoint.load(ROOT / "assets" / name)
    out = drawn.run({name: net}, ds, pens=(4, 40), sizes=(0.5, 0.9), per_class=3, say=lambda m: None)
    res = out["nets"][name]
    assert res["heldout_acc"] > 0.8
    assert min(res["after"].values()) >= 0.5, res["after"]  # chance is 5%
    assert res["mean_after"] >= res["mean_before"], res
