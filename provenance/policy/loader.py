"""Reading policy files: TOML -> a validated `Policy`, or `BadInput` naming the key and line.

tomllib reports line numbers only for syntax errors, so the lines of keys are found by
scanning the text (tables, array-of-tables, dotted and inline-table keys).
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from provenance.errors import BadInput
from provenance.licenses import license_facts, table_ids
from provenance.policy.model import (
    ALL_KINDS,
    HeldRslLicense,
    LicenseRule,
    Policy,
    QualityRule,
    SignalRule,
    TrustedSource,
)

DEFAULT_POLICY = "strict.toml"
_TOP = {"name", "description", "licenses", "signals", "quality", "domains", "trusted_sources",
        "rsl_licenses"}
_NOT_SWITCHABLE = {
    "optouts": "opt-outs are always honored and cannot be configured",
    "opt_outs": "opt-outs are always honored and cannot be configured",
    "blocklists": "blocklists are always honored and cannot be configured",
}
_LICENSES = {"allow", "commercial_use", "derivatives", "attribution", "share_alike"}
_SIGNALS = {"tokens", "count", "unknown", "max_age_days", "c2pa_invalid_allowed_counts"}
_QUALITY = {"min_width", "min_height", "max_aspect_ratio", "formats", "require_decode_ok",
            "require_caption", "near_duplicate_distance"}
_DOMAINS = {"allow", "deny"}
_TRUSTED = {"source_name", "contract", "covers_embedded"}
_RSL = {"source", "reference"}
_TOKEN = re.compile(r"[a-z0-9][a-z0-9._-]*")
_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_MAX_DISTANCE = 32


def default_policy_path() -> Path:
    """The shipped strict policy (inside the installed package, so it works anywhere)."""
    return Path(str(resources.files("provenance").joinpath("policies", DEFAULT_POLICY)))


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; `BadInput` (exit 2) names the file, key and line."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read policy {file}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"policy {file} is not UTF-8 text ({exc})") from exc
    return parse_policy(text, str(file), sha256=hashlib.sha256(raw).hexdigest())


def parse_policy(text: str, path: str = "<policy>", *, sha256: str | None = None) -> Policy:
    """Validate policy text (see policies/README.md for every key)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: {exc}") from exc
    v = _Validator(path, text)
    v.keys(data, "", _TOP)
    name = v.string(data, "name", required=True)
    return Policy(
        name=name,
        description=v.string(data, "description") or "",
        text=text,
        sha256=sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest(),
        path=path,
        licenses=_license_rule(v, v.table(data, "licenses", required=True)),
        signals=_signal_rule(v, v.table(data, "signals", required=True)),
        quality=_quality_rule(v, v.table(data, "quality")),
        domains_allow=_domains(v, v.table(data, "domains"), "allow"),
        domains_deny=_domains(v, v.table(data, "domains"), "deny"),
        trusted_sources=_trusted(v, data),
        rsl_licenses=_rsl(v, data),
    )


def _license_rule(v: _Validator, table: Mapping[str, Any]) -> LicenseRule:
    v.keys(table, "licenses", _LICENSES)
    allow = v.strings(table, "licenses.allow", required=True)
    commercial = v.flag(table, "licenses.commercial_use")
    derivatives = v.flag(table, "licenses.derivatives")
    attribution = v.flag(table, "licenses.attribution")
    share_alike = v.flag(table, "licenses.share_alike")
    families = {license_facts(i).family for i in table_ids()}
    chosen: set[str] = set()
    for entry in allow:
        if entry.lower() in families:
            chosen.update(i for i in table_ids() if license_facts(i).family == entry.lower())
            continue
        info = license_facts(entry)
        if info.spdx_id is None or " " in info.spdx_id:
            v.fail("licenses.allow", f"{entry!r} is neither an SPDX license id nor a family "
                   f"({', '.join(sorted(f for f in families if f))})")
        chosen.add(str(info.spdx_id))
    wanted = {"commercial_use": commercial, "derivatives": derivatives}
    allowed: set[str] = set()
    for spdx in sorted(chosen):
        info = license_facts(spdx)
        facts = {"commercial_use": info.commercial_use, "derivatives": info.derivatives,
                 "attribution": info.attribution, "share_alike": info.share_alike}
        for fact, need in [*wanted.items(), ("attribution", attribution),
                           ("share_alike", share_alike)]:
            if need is not None and facts[fact] is None:
                v.fail("licenses.allow", f"{spdx}: its `{fact}` fact is unknown, so "
                       f"`licenses.{fact}` cannot be checked; remove one of them")
        if all(need is None or facts[f] == need for f, need in wanted.items()) and (
            attribution is not False or facts["attribution"] is False
        ) and (share_alike is not False or facts["share_alike"] is False):
            allowed.add(spdx)
    return LicenseRule(tuple(allow), commercial, derivatives, attribution is not False,
                       share_alike is not False, frozenset(allowed))


def _signal_rule(v: _Validator, table: Mapping[str, Any]) -> SignalRule:
    v.keys(table, "signals", _SIGNALS)
    tokens = v.strings(table, "signals.tokens", required=True)
    clean = tuple(dict.fromkeys(t.strip().lower() for t in tokens))
    for token in clean:
        if not _TOKEN.fullmatch(token):
            v.fail("signals.tokens", f"{token!r} is not a robots.txt product token")
    if not clean:
        v.fail("signals.tokens", "name at least one user-agent token")
    kinds = v.strings(table, "signals.count") if "count" in table else list(ALL_KINDS)
    for kind in kinds:
        if kind not in ALL_KINDS:
            v.fail("signals.count", f"unknown signal kind {kind!r} (known: {', '.join(ALL_KINDS)})")
    unknown = v.table(table, "unknown", path="signals.unknown")
    v.keys(unknown, "signals.unknown", set(ALL_KINDS))
    accept: set[str] = set()
    for kind, value in unknown.items():
        if value not in ("exclude", "allow"):
            v.fail(f"signals.unknown.{kind}", f"must be \"exclude\" or \"allow\" (got {value!r})")
        if value == "allow":
            accept.add(kind)
    ages = v.table(table, "max_age_days", path="signals.max_age_days")
    v.keys(ages, "signals.max_age_days", set(ALL_KINDS))
    max_age = []
    for kind, days in sorted(ages.items()):
        v.number(ages, kind, f"signals.max_age_days.{kind}", minimum=0, exclusive=True)
        max_age.append((kind, timedelta(days=days)))
    return SignalRule(
        tokens=clean,
        kinds=tuple(k for k in ALL_KINDS if k in kinds),
        unknown_allowed=frozenset(accept),
        max_age=tuple(max_age),
        c2pa_invalid_allowed_counts=bool(
            v.flag(table, "signals.c2pa_invalid_allowed_counts") or False
        ),
    )


def _quality_rule(v: _Validator, table: Mapping[str, Any]) -> QualityRule:
    v.keys(table, "quality", _QUALITY)

    def size(key: str) -> int | None:
        return v.integer(table, key, f"quality.{key}", minimum=0)

    ratio = v.number(table, "max_aspect_ratio", "quality.max_aspect_ratio", minimum=1)
    distance = v.integer(table, "near_duplicate_distance", "quality.near_duplicate_distance",
                         minimum=0, maximum=_MAX_DISTANCE)
    formats = v.strings(table, "quality.formats") if "formats" in table else []
    decode = v.flag(table, "quality.require_decode_ok")
    return QualityRule(
        min_width=size("min_width"),
        min_height=size("min_height"),
        max_aspect_ratio=float(ratio) if ratio is not None else None,
        formats=frozenset(f.strip().lower() for f in formats),
        require_decode_ok=decode is not False,
        require_caption=bool(v.flag(table, "quality.require_caption")),
        near_duplicate_distance=distance,
    )


def _domains(v: _Validator, table: Mapping[str, Any], which: str) -> tuple[str, ...]:
    v.keys(table, "domains", _DOMAINS)
    if which not in table:
        return ()
    out = []
    for value in v.strings(table, f"domains.{which}"):
        domain = value.strip().lower().rstrip(".")
        if not _DOMAIN.fullmatch(domain):
            v.fail(f"domains.{which}", f"{value!r} is not a domain name (e.g. example.com)")
        out.append(domain)
    return tuple(sorted(set(out)))


def _trusted(v: _Validator, data: Mapping[str, Any]) -> tuple[TrustedSource, ...]:
    out = []
    for i, entry in enumerate(v.array_of_tables(data, "trusted_sources")):
        path = f"trusted_sources[{i}]"
        v.keys(entry, path, _TRUSTED)
        out.append(TrustedSource(
            source_name=v.string(entry, "source_name", path=path, required=True),
            contract=v.string(entry, "contract", path=path, required=True),
            covers_embedded=bool(v.flag(entry, f"{path}.covers_embedded")),
        ))
    return tuple(out)


def _rsl(v: _Validator, data: Mapping[str, Any]) -> tuple[HeldRslLicense, ...]:
    out = []
    for i, entry in enumerate(v.array_of_tables(data, "rsl_licenses")):
        path = f"rsl_licenses[{i}]"
        v.keys(entry, path, _RSL)
        out.append(HeldRslLicense(
            source=v.string(entry, "source", path=path, required=True),
            reference=v.string(entry, "reference", path=path, required=True),
        ))
    return tuple(out)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PART = r"(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')"
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_-]+)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Map each key path (`signals.max_age_days.robots`, `trusted_sources[1].contract`) to the
    1-based line where it is written."""
    lines: dict[str, int] = {}
    table = ""
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = _dotted(header.group(2))
            if header.group(1) == "[[":
                table = f"{name}[{counts.get(name, 0)}]"
                counts[name] = counts.get(name, 0) + 1
            else:
                table = name
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = f"{table}.{_dotted(key.group(1))}" if table else _dotted(key.group(1))
            lines.setdefault(path, number)
            for inner in _INLINE_KEY.finditer(line[key.end():]):
                lines.setdefault(f"{path}.{inner.group(1)}", number)
    return lines


def _dotted(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.split("."))


class _Validator:
    """Type checks that fail with `BadInput` naming the file, key path and line."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = key_lines(text)

    def fail(self, key: str, problem: str) -> None:
        probe = key
        while probe and probe not in self.lines:
            probe = probe.rpartition(".")[0]
        where = f"line {self.lines[probe]}" if probe else "line 1"
        raise BadInput(f"{self.path}: {where}: `{key}`: {problem}")

    def keys(self, table: Mapping[str, Any], path: str, known: set[str]) -> None:
        for key in table:
            full = f"{path}.{key}" if path else key
            if not path and key in _NOT_SWITCHABLE:
                self.fail(full, _NOT_SWITCHABLE[key])
            if key not in known:
                self.fail(full, f"unknown key (known here: {', '.join(sorted(known))})")

    def _get(self, table: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...],
             what: str, required: bool) -> Any:
        if key not in table:
            if required:
                self.fail(path, "missing required key")
            return None
        value = table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            self.fail(path, f"must be {what} (got {type(value).__name__} {value!r})")
        return value

    def string(self, table: Mapping[str, Any], key: str, *, path: str = "",
               required: bool = False) -> str:
        full = f"{path}.{key}" if path else key
        value = self._get(table, key, full, str, "a string", required)
        if value is not None and not value.strip():
            self.fail(full, "must not be empty")
        return value or ""

    def strings(self, table: Mapping[str, Any], path: str, required: bool = False) -> list[str]:
        key = path.rpartition(".")[2]
        value = self._get(table, key, path, list, "a list of strings", required) or []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                self.fail(path, f"must be a list of non-empty strings (got {item!r})")
        return list(value)

    def flag(self, table: Mapping[str, Any], path: str) -> bool | None:
        value: bool | None = self._get(table, path.rpartition(".")[2], path, bool,
                                       "true or false", False)
        return value

    def number(self, table: Mapping[str, Any], key: str, path: str, *, minimum: float,
               exclusive: bool = False) -> float | None:
        value = self._get(table, key, path, (int, float), "a number", False)
        if value is not None and (not math.isfinite(value) or value < minimum
                                  or (exclusive and value == minimum)):
            bound = f"greater than {minimum}" if exclusive else f"at least {minimum}"
            self.fail(path, f"must be {bound} (got {value!r})")
        return float(value) if value is not None else None

    def integer(self, table: Mapping[str, Any], key: str, path: str, *, minimum: int,
                maximum: int | None = None) -> int | None:
        value = self._get(table, key, path, int, "an integer", False)
        if value is not None and (value < minimum or (maximum is not None and value > maximum)):
            upper = f" and at most {maximum}" if maximum is not None else ""
            self.fail(path, f"must be at least {minimum}{upper} (got {value!r})")
        return int(value) if value is not None else None

    def table(self, table: Mapping[str, Any], key: str, *, path: str = "",
              required: bool = False) -> Mapping[str, Any]:
        value = self._get(table, key, path or key, dict, "a table", required)
        return value or {}

    def array_of_tables(self, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = self._get(data, key, key, list, "an array of tables ([[...]])", False) or []
        for item in value:
            if not isinstance(item, dict):
                self.fail(key, "must be an array of tables ([[...]])")
        return list(value)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)

