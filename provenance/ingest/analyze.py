"""Hashing and decoding one image's bytes: sha256, perceptual hash, size, format, embedded signals.

This is the one code path for every image the catalog learns about (ingest and fetch alike).
It runs inside worker processes, never raises on bad bytes, and reports problems as data.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from typing import Any

import imagehash
from PIL import Image, UnidentifiedImageError

from provenance.domain import ImageFacts, Signal

# imagehash.phash (8x8 DCT of a 32x32 grey image, 64 bits). JPEGs are decoded with Pillow's
# draft() straight to the smallest DCT scale that is still >= 32x32 (bench/ingest.py measures
# how far this is from a full decode). The name is stored with every hash.
PHASH_ALG = "phash64-dct32-draft32"
DRAFT_SIZE = (32, 32)
# Decompression bombs: refuse images above this many pixels (Pillow's default warns at ~89 MP).
MAX_PIXELS = 100_000_000
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

MIME_BY_FORMAT = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
}

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _embedded(
    data: bytes, img: Image.Image | None, mime: str | None
) -> tuple[tuple[Signal, ...], dict[str, Any]]:
    from provenance.signals.embedded import read_embedded

    return read_embedded(data, img, mime)


def _decode(data: bytes) -> tuple[Image.Image, str | None, int, int]:
    """Open and fully decode (at draft scale for JPEG); raises on anything not a whole image."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise Image.DecompressionBombError(
                f"{width}x{height} exceeds the limit of {MAX_PIXELS} pixels"
            )
        if fmt == "JPEG":
            img.draft("L", DRAFT_SIZE)
        img.load()
    return img, fmt, width, height


def analyze_bytes(
    data: bytes, mime_hint: str | None = None, *, embedded: bool = True
) -> ImageFacts:
    """Everything the catalog records about one image's bytes. Never raises on bad input."""
    sha = hashlib.sha256(data).hexdigest()
    if not data:
        return ImageFacts(sha256=sha, byte_size=0, decode_ok=False, error="empty file (0 bytes)")
    try:
        img, fmt, width, height = _decode(data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return ImageFacts(
            sha256=sha,
            byte_size=len(data),
            decode_ok=False,
            format=None,
            error=f"decompression bomb refused: {exc}",
        )
    except UnidentifiedImageError:
        return ImageFacts(sha256=sha, byte_size=len(data), decode_ok=False, error="not an image")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        fmt_guess = _sniff_format(data)
        signals, facts = (
            _embedded(data, None, MIME_BY_FORMAT.get(fmt_guess or ""))
            if (embedded and fmt_guess)
            else ((), {})
        )
        return ImageFacts(
            sha256=sha,
            byte_size=len(data),
            decode_ok=False,
            format=fmt_guess,
            error=f"cannot decode: {exc}",
            signals=signals,
            facts=facts,
        )
    try:
        phash = str(imagehash.phash(img))
    except (OSError, ValueError) as exc:  # pragma: no cover - decoded images always hash
        return ImageFacts(sha256=sha, byte_size=len(data), decode_ok=False, error=f"phash: {exc}")
    signals, facts = (
        _embedded(data, img, MIME_BY_FORMAT.get(fmt or "", mime_hint)) if embedded else ((), {})
    )
    return ImageFacts(
        sha256=sha,
        byte_size=len(data),
        decode_ok=True,
        phash=phash,
        phash_alg=PHASH_ALG,
        width=width,
        height=height,
        format=(fmt or "").lower() or None,
        signals=signals,
        facts=facts,
    )


def _sniff_format(data: bytes) -> str | None:
    """Format of bytes Pillow identified but could not decode (e.g. a truncated JPEG)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return (img.format or "").lower() or None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def read_range(path: str, offset: int | None, length: int | None, max_bytes: int) -> bytes:
    """Bytes of a whole file, or of `length` bytes at `offset` (a tar member)."""
    with open(path, "rb") as fh:
        if offset is None:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise ValueError(f"file is {size} bytes, larger than the limit of {max_bytes}")
            return fh.read()
        fh.seek(offset)
        return fh.read(length or 0)


def analyze_location(job: tuple[str, int | None, int | None, int, bool]) -> ImageFacts | str:
    """Worker entry point: read and analyze. Returns an error string when unreadable."""
    path, offset, length, max_bytes, embedded = job
    try:
        data = read_range(path, offset, length, max_bytes)
    except (OSError, ValueError) as exc:
        return f"unreadable: {exc}"
    if offset is not None and len(data) != (length or 0):
        return f"truncated: expected {length} bytes at offset {offset}, read {len(data)}"
    return analyze_bytes(data, embedded=embedded)
