"""Drop revoked samples from a WebDataset pipeline: for training jobs that already hold shards.

    keys = load_revocations("revocations.json")   # `provenance exports revocations ID --json`
    ds = wds.WebDataset(urls).select(revocation_filter(keys))
    # or, in a DataPipeline: wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(),
    #                                         drop_revoked(keys), ...)

A sample's key is the sha256 of its image bytes (CLI.md); a `__key__` written with a folder
prefix (`part-0/<sha256>`) is compared by its last component. Works on raw samples (before
decoding), so revoked images are never decoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from provenance.errors import BadInput

Sample = Mapping[str, Any]


def _sample_key(sample: Sample) -> str:
    key = sample.get("__key__")
    if not isinstance(key, str):
        return ""
    return key.rsplit("/", 1)[-1].strip().lower()


def revocation_filter(revoked_keys: Iterable[str]) -> Callable[[Sample], bool]:
    """A predicate for `WebDataset.select`: True (keep) unless the sample's key is revoked."""
    revoked = frozenset(k.strip().lower() for k in revoked_keys)

    def keep(sample: Sample) -> bool:
        return _sample_key(sample) not in revoked

    return keep


def drop_revoked(revoked_keys: Iterable[str]) -> Callable[[Iterable[Sample]], Iterator[Sample]]:
    """A pipeline stage (for `wds.DataPipeline`) that yields only samples not revoked."""
    keep = revocation_filter(revoked_keys)

    def stage(samples: Iterable[Sample]) -> Iterator[Sample]:
        return (sample for sample in samples if keep(sample))

    return stage


def load_revocations(path: str | Path) -> frozenset[str]:
    """Revoked keys from the JSON of `provenance exports revocations ID --json`
    (`{"export_id": ..., "revoked": [{"key": ...}, ...]}`); a bare JSON list of keys works too."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the revocation list ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    entries = document.get("revoked") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise BadInput(f'{path}: expected {{"revoked": [...]}} as printed by `exports revocations`')
    keys: set[str] = set()
    for position, entry in enumerate(entries):
        key = entry.get("key") if isinstance(entry, dict) else entry
        if not isinstance(key, str) or not key.strip():
            raise BadInput(f"{path}: revoked entry {position} has no key")
        keys.add(key.strip().lower())
    return frozenset(keys)
