"""Generated benchmark images, made once and reused between runs (bench/out/ is git-ignored)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from provenance.samples import make_image

OUT = Path(__file__).resolve().parent / "out"


def photo_like_jpeg(seed: int, size: tuple[int, int] = (800, 600), quality: int = 85) -> bytes:
    """A structured picture with fine noise, so it compresses like a photo (~100 KB)."""
    base = np.asarray(make_image(seed, size), dtype=np.int16)
    rng = np.random.default_rng(seed)
    noise = rng.integers(-18, 19, size=base.shape, dtype=np.int16)
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def image_folder(count: int, name: str = "jpegs") -> Path:
    """A folder of `count` generated 800x600 JPEGs (created on first use)."""
    folder = OUT / f"{name}-{count}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{i:06d}.jpg").write_bytes(photo_like_jpeg(i))
    marker.write_text("ok")
    return folder
