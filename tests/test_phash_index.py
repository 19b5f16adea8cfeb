"""PHashIndex gives exactly the answers of a brute-force Hamming scan (property test)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import phash_index
from provenance.phash_index import PHashIndex, crop_probes, popcount
from provenance.samples import image_bytes

hashes = st.integers(min_value=0, max_value=2**64 - 1)


def _brute(pairs: list[tuple[str, int]], probes: list[int], k: int) -> list[tuple[str, int]]:
    out = []
    for sha, value in pairs:
        dist = min(bin(value ^ p).count("1") for p in probes)
        if dist <= k:
            out.append((sha, dist))
    return sorted(out, key=lambda item: (item[1], item[0]))


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(hashes, min_size=0, max_size=60),
    probes=st.lists(hashes, min_size=1, max_size=3),
    near=st.lists(st.integers(0, 63), max_size=4),
    k=st.integers(0, 64),
)
def test_query_equals_brute_force(
    values: list[int], probes: list[int], near: list[int], k: int
) -> None:
    # Also plant hashes a few bits from the first probe, so small k has answers to find.
    planted = [probes[0] ^ (1 << bit) for bit in near]
    pairs = [(f"{i:064x}", v) for i, v in enumerate(values + planted)]
    index = PHashIndex.from_pairs((sha, f"{v:016x}") for sha, v in reversed(pairs))
    assert index.keys == sorted(index.keys)
    assert index.query(probes, k) == _brute(pairs, probes, k)


def test_lookup_table_popcount_matches_numpy(monkeypatch: object) -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 2**63, size=1000, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = [bin(int(v)).count("1") for v in values]
    assert popcount(values).tolist() == expected
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.delattr(phash_index.np, "bitwise_count", raising=False)
        assert popcount(values).tolist() == expected


def test_unusable_hashes_are_skipped_and_probes_start_with_the_whole_picture() -> None:
    index = PHashIndex.from_pairs([("b" * 64, "zz"), ("a" * 64, "00000000000000ff")])
    assert index.keys == ["a" * 64]
    assert index.query(0, 8) == [("a" * 64, 8)]
    assert index.query(0, 7) == []
    probes = crop_probes(image_bytes(3, size=(120, 90)))
    assert 1 < len(probes) <= 36
    assert all(len(p) == 16 for p in probes)
