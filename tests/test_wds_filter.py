"""The revocation filter on real WebDataset shards, read back with the `webdataset` library."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import webdataset as wds

from provenance.errors import BadInput
from provenance.export.wds_filter import drop_revoked, load_revocations, revocation_filter
from provenance.samples import image_bytes


def _write_shards(tmp_path: Path, count: int = 6) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    urls: list[str] = []
    for shard in range(2):
        path = tmp_path / f"shard-{shard:05d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for i in range(shard * count // 2, (shard + 1) * count // 2):
                data = image_bytes(i, size=(64, 48))
                key = hashlib.sha256(data).hexdigest()
                keys.append(key)
                sink.write({"__key__": key, "jpg": data, "json": {"sha256": key}})
        urls.append(str(path))
    return urls, keys


def _revocations(tmp_path: Path, keys: list[str]) -> Path:
    path = tmp_path / "revocations.json"
    doc = {
        "export_id": 1,
        "revoked": [{"key": k.upper(), "reason": "opted-out", "request_id": 7} for k in keys],
    }
    path.write_text(json.dumps(doc))
    return path


def test_select_drops_revoked_samples(tmp_path: Path) -> None:
    urls, keys = _write_shards(tmp_path)
    revoked = load_revocations(_revocations(tmp_path, [keys[1], keys[4]]))
    dataset = wds.WebDataset(urls, shardshuffle=False).select(revocation_filter(revoked))
    seen = [sample["__key__"] for sample in dataset]
    assert seen == [k for i, k in enumerate(keys) if i not in (1, 4)]


def test_pipeline_stage_drops_revoked_samples(tmp_path: Path) -> None:
    urls, keys = _write_shards(tmp_path)
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.tarfile_to_samples(),
        drop_revoked([keys[0]]),
        wds.decode("pil"),
    )
    samples = list(pipeline)
    assert [s["__key__"] for s in samples] == keys[1:]
    assert samples[0]["jpg"].size == (64, 48)


def test_prefixed_keys_are_compared_by_last_component() -> None:
    keep = revocation_filter(["ab" * 32])
    assert keep({"__key__": "part-0/" + "AB" * 32}) is False
    assert keep({"__key__": "cd" * 32}) is True


def test_bare_list_and_bad_documents(tmp_path: Path) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(["AA" * 32]))
    assert load_revocations(bare) == frozenset({"aa" * 32})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(BadInput, match="not JSON"):
        load_revocations(broken)
    keyless = tmp_path / "keyless.json"
    keyless.write_text(json.dumps({"revoked": [{"reason": "opted-out"}]}))
    with pytest.raises(BadInput, match="no key"):
        load_revocations(keyless)
