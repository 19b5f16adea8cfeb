"""Near-duplicate clusters by perceptual hash. Pure (numpy), shared by both decision paths.

Rule: an image is a near-duplicate when another catalogued image whose sha256 is smaller lies
within the Hamming distance; it points at the smallest such image. The smallest sha256 of every
cluster is therefore always kept, and the outcome depends neither on licenses or opt-outs nor on
how the catalog is partitioned.

Search: multi-index hashing. Two 64-bit hashes within distance d agree exactly on at least one
of d+1 disjoint bit blocks (pigeonhole), so only images sharing a block value are compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_BITS = 64


def near_duplicates(items: Iterable[tuple[str, str | None]], distance: int) -> dict[str, str]:
    """Map each near-duplicate sha256 to the smallest smaller-sha256 image within `distance`.

    `items` are (sha256, phash hex); images without a valid 64-bit hash take no part.
    """
    pairs = sorted((sha, int(ph, 16)) for sha, ph in items if ph and _HEX16.fullmatch(ph))
    if len(pairs) < 2:
        return {}
    shas = [sha for sha, _ in pairs]
    hashes = np.array([h for _, h in pairs], dtype=np.uint64)
    best = np.full(len(pairs), len(pairs), dtype=np.int64)  # len = "none"
    for offset, width in _blocks(distance):
        _scan_block(hashes, offset, width, distance, best)
    return {shas[i]: shas[int(j)] for i, j in enumerate(best) if j < len(pairs)}


def _blocks(distance: int) -> list[tuple[int, int]]:
    count = min(distance + 1, _BITS)
    base, extra = divmod(_BITS, count)
    out, offset = [], 0
    for i in range(count):
        width = base + (1 if i < extra else 0)
        out.append((offset, width))
        offset += width
    return out


def _scan_block(hashes: npt.NDArray[np.uint64], offset: int, width: int, distance: int,
                best: npt.NDArray[np.int64]) -> None:
    """Compare every pair sharing this block's value; record smaller-index neighbours."""
    mask = np.uint64((1 << width) - 1)
    keys = (hashes >> np.uint64(offset)) & mask
    order = np.lexsort((np.arange(len(hashes)), keys))  # by key, then by sha rank
    sorted_keys = keys[order]
    sorted_hashes = hashes[order]
    shift = 1
    while shift < len(order):
        same = sorted_keys[shift:] == sorted_keys[:-shift]
        if not same.any():
            break
        later = np.nonzero(same)[0]
        close = np.bitwise_count(sorted_hashes[later] ^ sorted_hashes[later + shift]) <= distance
        earlier_idx = order[later[close]]
        later_idx = order[later[close] + shift]
        np.minimum.at(best, later_idx, earlier_idx)
        shift += 1
