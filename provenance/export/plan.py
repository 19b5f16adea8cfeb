"""Shard boundaries of an export: which samples, in their global order, go into which shard."""

from __future__ import annotations


def plan_shards(
    sizes: list[int], shard_size: int | None, shard_bytes: int | None
) -> list[tuple[int, int]]:
    """Shard boundaries `[start, end)` over samples in their global order.

    A shard closes when it holds `shard_size` samples, or when adding the next image would
    take its image bytes past `shard_bytes` (a shard always takes at least one sample, so an
    image larger than the limit gets a shard of its own). Boundaries depend only on the sorted
    list of included sizes, never on partitioning or on who writes the shard.
    """
    bounds: list[tuple[int, int]] = []
    start = 0
    used = 0
    for i, size in enumerate(sizes):
        count = i - start
        full = shard_size is not None and count >= shard_size
        over = shard_bytes is not None and count > 0 and used + size > shard_bytes
        if full or over:
            bounds.append((start, i))
            start, used = i, 0
        used += size
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    return bounds
