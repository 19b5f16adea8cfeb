"""`provenance inspect FILE`: the embedded signals and facts of one file, no catalog needed.

Hashing, decoding and the perceptual hash go through `ingest.analyze.analyze_bytes`, the same
code path ingest uses, so `inspect` shows exactly what the catalog would record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.domain import ImageFacts, Signal, SignalKind
from provenance.errors import BadInput
from provenance.ingest.analyze import analyze_bytes
from provenance.signals.embedded import read_embedded

# A single file is read whole; beyond this it is refused rather than risking memory.
MAX_INSPECT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class InspectReport:
    """What one file holds. `error` is set when the bytes are not a whole, decodable image."""

    path: str
    image: ImageFacts
    signals: tuple[Signal, ...]

    @property
    def error(self) -> str | None:
        return self.image.error

    def signal(self, kind: SignalKind) -> Signal | None:
        """The signal of `kind`, if it was read."""
        return next((s for s in self.signals if s.kind == kind), None)

    def to_json(self) -> dict[str, Any]:
        """The CLI.md `inspect --json` shape, plus size, decode status, facts and evidence."""
        c2pa = self.signal(SignalKind.C2PA)
        iptc = self.signal(SignalKind.IPTC)
        c2pa_extra: dict[str, Any] = dict(c2pa.extra) if c2pa else {}
        iptc_extra: dict[str, Any] = dict(iptc.extra) if iptc else {}
        return {
            "path": self.path,
            "sha256": self.image.sha256,
            "phash": self.image.phash,
            "phash_alg": self.image.phash_alg,
            "width": self.image.width,
            "height": self.image.height,
            "format": self.image.format,
            "size": self.image.byte_size,
            "decode_ok": self.image.decode_ok,
            "error": self.image.error,
            "c2pa": {
                "present": bool(c2pa_extra.get("present", False)),
                "validation_state": c2pa_extra.get("validation_state"),
                "training_mining": c2pa_extra.get("training_mining", {}),
                "error": c2pa_extra.get("error"),
                "validation_codes": c2pa_extra.get("validation_codes", []),
                "assertion_labels": c2pa_extra.get("assertion_labels", []),
            },
            "iptc_data_mining": iptc_extra.get("data_mining"),
            "iptc_other_constraints": iptc_extra.get("other_constraints"),
            "facts": dict(self.image.facts),
            "signals": [{**s.to_json(), "evidence": s.evidence} for s in self.signals],
        }


def read_file_bytes(path: Path) -> bytes:
    """The bytes of `path`, or BadInput with what went wrong (missing, a folder, unreadable)."""
    if not path.exists():
        raise BadInput(f"no such file: {path}")
    if not path.is_file():
        raise BadInput(f"not a regular file: {path}")
    try:
        size = path.stat().st_size
        if size > MAX_INSPECT_BYTES:
            raise BadInput(
                f"{path} is {size} bytes, more than the {MAX_INSPECT_BYTES} inspect reads"
            )
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from exc


def inspect_bytes(data: bytes, path: str) -> InspectReport:
    """Analyze bytes already read. Signals are read even when the pixels cannot be decoded
    (truncated file, decompression bomb): C2PA needs no pixel data, and IPTC is then UNKNOWN."""
    facts = analyze_bytes(data)
    signals = facts.signals
    if not signals and data:
        signals, _ = read_embedded(data, None, None)
    return InspectReport(path=path, image=facts, signals=signals)


def inspect_file(path: Path) -> InspectReport:
    """Read `path` and report its hashes, dimensions, embedded signals and rights facts."""
    return inspect_bytes(read_file_bytes(path), str(path))
