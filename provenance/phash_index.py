"""An in-memory index of 64-bit perceptual hashes: Hamming-distance queries with numpy.

One query XORs the probe with every packed hash and counts bits (`np.bitwise_count` on
numpy >= 2.0, else a byte lookup table): a linear scan, but ~1M hashes in a few milliseconds,
with exactly the answers of a brute-force scan. Also the crop probes of an image request.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Sequence

import imagehash
import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from provenance.errors import BadInput

_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
# Per dimension: crop nothing, 2.5% from one end or both, or 5% from one end. With both
# dimensions that is 36 probes; a copy cropped by up to ~5% is close to one of them.
_CROP_PAIRS = ((0.0, 0.0), (0.0, 0.025), (0.025, 0.0), (0.025, 0.025), (0.0, 0.05), (0.05, 0.0))


def hex_to_int(phash: str) -> int:
    """A 16-hex-digit pHash as an unsigned 64-bit integer."""
    value = int(phash, 16)
    if len(phash) != 16 or value >> 64:
        raise ValueError(f"not a 64-bit hex pHash: {phash!r}")
    return value


def popcount(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Set bits per element of a uint64 array."""
    if hasattr(np, "bitwise_count"):
        return np.asarray(np.bitwise_count(values), dtype=np.uint8)
    as_bytes = values.view(np.uint8).reshape(*values.shape, 8)
    return np.asarray(_BYTE_POPCOUNT[as_bytes].sum(axis=-1), dtype=np.uint8)


def distances(probes: Sequence[int], hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Minimum Hamming distance of each hash to any of the probes."""
    best = np.full(hashes.shape, 64, dtype=np.uint8)
    for probe in probes:
        np.minimum(best, popcount(np.bitwise_xor(hashes, np.uint64(probe))), out=best)
    return best


class PHashIndex:
    """sha256 -> 64-bit pHash, packed in sha256 order for deterministic answers."""

    def __init__(self, keys: Sequence[str], hashes: npt.NDArray[np.uint64]) -> None:
        if len(keys) != len(hashes):
            raise ValueError("keys and hashes differ in length")
        self.keys = list(keys)
        self.hashes = hashes

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> PHashIndex:
        """Build from (sha256, hex pHash) pairs; sorted by sha256 here, unusable hashes skipped."""
        keys: list[str] = []
        values: list[int] = []
        for sha, phash in sorted(pairs):
            try:
                values.append(hex_to_int(phash))
            except ValueError:
                continue
            keys.append(sha)
        return cls(keys, np.array(values, dtype=np.uint64))

    def __len__(self) -> int:
        return len(self.keys)

    def query(self, probes: Sequence[int] | int, max_distance: int) -> list[tuple[str, int]]:
        """(sha256, distance) of every hash within `max_distance` of the nearest probe,
        sorted by distance, then sha256."""
        wanted = [probes] if isinstance(probes, int) else list(probes)
        if not wanted or not self.keys:
            return []
        dist = distances(wanted, self.hashes)
        hits = np.flatnonzero(dist <= max_distance)
        found = [(self.keys[i], int(dist[i])) for i in hits]
        found.sort(key=lambda item: (item[1], item[0]))
        return found


def crop_probes(data: bytes) -> list[str]:
    """pHashes of 36 light crops (0-5% per dimension) of a picture, the uncropped one first.

    A catalogued copy that was cropped a little is near one of these even when its own pHash
    moved (pHash is sensitive to crops: 5% can flip 20 of 64 bits)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            img = opened.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise BadInput(f"cannot decode the request image: {exc}") from exc
    width, height = img.size
    out: list[str] = []
    for (left, right), (top, bottom) in itertools.product(_CROP_PAIRS, _CROP_PAIRS):
        box = (
            round(width * left),
            round(height * top),
            width - round(width * right),
            height - round(height * bottom),
        )
        probe = str(imagehash.phash(img.crop(box)))
        if probe not in out:
            out.append(probe)
    return out
