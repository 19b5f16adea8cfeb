"""The about file: what only a person knows about the model and its data (TOML). Pure parsing
and validation; unknown keys and missing required keys are BadInput (exit 2) naming them.
See examples/about.toml for every key."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from provenance.errors import BadInput

# Classes of source names, mapped to the template section that describes them.
SOURCE_CLASSES: dict[str, str] = {
    "public-dataset": "2.1",
    "licensed": "2.2",
    "private-third-party": "2.2",
    "own-crawl": "2.3",
    "user-data": "2.4",
    "synthetic": "2.5",
    "other": "2.6",
}
NARRATIVES = (
    "content_types", "other_characteristics", "public_datasets", "licensed",
    "private_third_party", "crawled_content", "user_data", "synthetic", "other_sources",
    "rights_reservation", "illegal_content", "other_information",
)
_SPEC: dict[str, tuple[set[str], set[str]]] = {  # table -> (required keys, optional keys)
    "provider": ({"name", "contact"}, {"code_of_practice_signatory"}),
    "representative": ({"name", "contact"}, set()),
    "model": ({"name", "version", "sme", "training_continues"},
              {"dependencies", "placed_on_market"}),
    "crawler": (set(), {"purposes", "contact", "info_url", "name"}),
    "narrative": (set(), set(NARRATIVES)),
}
_TOP_REQUIRED = {"provider", "model", "sources"}
_TOP = {*_SPEC, "sources", "public_datasets", "top_domains"}
_DATASET = ({"name", "source_name"}, {"url", "version", "description"})


@dataclass(frozen=True)
class PublicDataset:
    name: str
    source_name: str
    url: str | None = None
    version: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class About:
    """A validated about file, its text's sha256 (recorded with each generation) and path."""

    path: str
    sha256: str
    provider: dict[str, Any]
    representative: dict[str, Any] | None
    model: dict[str, Any]
    sources: dict[str, str]
    public_datasets: tuple[PublicDataset, ...] = ()
    crawler: dict[str, Any] = field(default_factory=dict)
    narrative: dict[str, str] = field(default_factory=dict)
    top_domains: dict[str, Any] = field(default_factory=dict)

    @property
    def sme(self) -> bool:
        return bool(self.model["sme"])


class _Check:
    """Collects every problem so one run names all of them."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def keys(self, table: Any, where: str, required: set[str], optional: set[str]) -> None:
        if not isinstance(table, dict):
            self.problems.append(f"{where} must be a table")
            return
        unknown = sorted(set(table) - required - optional)
        missing = sorted(required - set(table))
        if unknown:
            self.problems.append(f"unknown key(s) in {where}: {', '.join(unknown)}")
        if missing:
            self.problems.append(f"missing required key(s) in {where}: {', '.join(missing)}")

    def typed(
        self, table: dict[str, Any], where: str, key: str, kind: type | tuple[type, ...]
    ) -> None:
        if key in table and not isinstance(table[key], kind):
            kinds = (kind,) if isinstance(kind, type) else kind
            names = " or ".join(k.__name__ for k in kinds)
            self.problems.append(f"{where}.{key} must be {names}")

    def done(self) -> None:
        if self.problems:
            raise BadInput(f"{self.path}: " + "; ".join(self.problems))


def load_about(path: str | Path) -> About:
    """Read and validate an about file."""
    file = Path(path)
    try:
        raw = file.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read about file {file}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{file}: not valid UTF-8 TOML: {exc}") from exc
    return parse_about(data, str(file), hashlib.sha256(raw).hexdigest())


def parse_about(data: dict[str, Any], path: str = "<about>", sha256: str = "") -> About:
    """Validate parsed TOML into an About, naming every unknown or missing key."""
    c = _Check(path)
    c.keys(data, "the top level", _TOP_REQUIRED, _TOP - _TOP_REQUIRED)
    for table, (required, optional) in _SPEC.items():
        if table in data:
            c.keys(data[table], f"[{table}]", required, optional)
    _check_types(c, data)
    sources = data.get("sources", {})
    if isinstance(sources, dict):
        for name, klass in sorted(sources.items()):
            if klass not in SOURCE_CLASSES:
                c.problems.append(f"sources.{name!r} = {klass!r}: use one of "
                                  f"{', '.join(SOURCE_CLASSES)}")
    datasets = data.get("public_datasets", [])
    for i, ds in enumerate(datasets if isinstance(datasets, list) else [datasets]):
        c.keys(ds, f"[[public_datasets]] #{i + 1}", *_DATASET)
    c.done()
    return About(
        path=path,
        sha256=sha256,
        provider=dict(data["provider"]),
        representative=dict(data["representative"]) if "representative" in data else None,
        model=dict(data["model"]),
        sources=dict(sources),
        public_datasets=tuple(PublicDataset(**ds) for ds in datasets),
        crawler=dict(data.get("crawler", {})),
        narrative=dict(data.get("narrative", {})),
        top_domains=dict(data.get("top_domains", {})),
    )


def _check_types(c: _Check, data: dict[str, Any]) -> None:
    model = data.get("model")
    if isinstance(model, dict):
        for key in ("sme", "training_continues"):
            c.typed(model, "model", key, bool)
        c.typed(model, "model", "name", str)
        c.typed(model, "model", "version", str)
        c.typed(model, "model", "dependencies", list)
        c.typed(model, "model", "placed_on_market", (date, str))
    provider = data.get("provider")
    if isinstance(provider, dict):
        c.typed(provider, "provider", "code_of_practice_signatory", bool)
    crawler = data.get("crawler")
    if isinstance(crawler, dict):
        c.typed(crawler, "crawler", "purposes", list)
    narrative = data.get("narrative")
    if isinstance(narrative, dict):
        for key in NARRATIVES:
            c.typed(narrative, "narrative", key, str)
    if "sources" in data and not isinstance(data["sources"], dict):
        c.problems.append("[sources] must be a table of source name = class")
    if "public_datasets" in data and not isinstance(data["public_datasets"], list):
        c.problems.append("public_datasets must be an array of tables ([[public_datasets]])")
    if "top_domains" in data and not isinstance(data["top_domains"], dict):
        c.problems.append("[top_domains] must be a table")
