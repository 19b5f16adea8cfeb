"""Deterministic generated images for the demo, the benchmarks and the tests (no downloads)."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def make_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A picture with structure (gradient, shapes), so perceptual hashes differ between seeds
    but survive resizing and re-encoding of the same seed."""
    rng = random.Random(seed)
    width, height = size
    base = Image.new("RGB", (64, 48))
    c1 = [rng.randrange(256) for _ in range(3)]
    c2 = [rng.randrange(256) for _ in range(3)]
    px = base.load()
    assert px is not None
    for y in range(48):
        for x in range(64):
            t = (x + y) / (64 + 48)
            px[x, y] = tuple(int(a * (1 - t) + b * t) for a, b in zip(c1, c2, strict=True))
    img = base.resize(size)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(4, 9)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width, x0 + rng.randint(width // 10, width // 2))
        y1 = min(height, y0 + rng.randint(height // 10, height // 2))
        fill = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=fill)
    return img


def image_bytes(
    seed: int, size: tuple[int, int] = (320, 240), fmt: str = "JPEG", quality: int = 90
) -> bytes:
    """Encoded bytes of `make_image(seed, size)`."""
    buf = io.BytesIO()
    img = make_image(seed, size)
    if fmt.upper() == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, fmt)
    return buf.getvalue()
