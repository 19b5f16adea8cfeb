"""Opt-out request scopes: parsing, normalization and the matching rules. Pure (no I/O).

Normalization rules (what two spellings of one request have in common):

- **url** / **url-prefix**: the key is `host[:port]/path[?query]`. The scheme is dropped
  (a request about `http://example.com/a.jpg` also covers `https://...`: an opt-out names a
  place, not a protocol), the host is lower-cased and IDNA-encoded, default ports (80, 443),
  user info and the fragment are removed, an empty path becomes `/`, percent-escapes are
  upper-cased and escapes of unreserved characters decoded (RFC 3986 6.2.2). Path and query
  stay case-sensitive; dot-segments are not resolved. A url-prefix matches every URL whose key
  starts with it as a plain string, like a robots.txt path (`example.com/art` also covers
  `example.com/artists/`; end it with `/` to mean a folder).
- **domain**: lower-case IDNA host, leading `*.` / `.` and trailing dot removed. It covers the
  host and every subdomain (`example.com` matches `cdn.example.com`, not `badexample.com`).
  A public suffix (`com`, `co.uk`) is refused: it would opt out a whole registry.
- **sha256**: 64 lower-case hex digits of the image bytes.
- **creator**: Unicode NFKD, combining marks (accents) dropped, case-folded, every run of
  non-alphanumerics is one separator, and the words are sorted. So `Zoë Doe`, `zoe  doe`,
  `Doe, Zoë` and `DOE Zoe` (family-name first) are one creator. Initials are not expanded
  (`Z. Doe` is a different key) and two people whose names are permutations of each other
  collide; an opt-out that covers too much fails closed. A creator request matches the
  sightings that name the creator (manifest metadata) and the images that name them in their
  own metadata (XMP dc:creator, IPTC-IIM By-line, EXIF Artist; `embedded_creator_keys`), the
  latter recorded as `embedded-creator` matches of the image.
- **image**: the perceptual hash of the given picture (see DEFAULT_MAX_DISTANCE).
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import tldextract

from provenance.domain import parse_time
from provenance.errors import BadInput
from provenance.ingest.keys import normalize_host, registrable_domain

SCOPE_KINDS = ("url", "url-prefix", "domain", "sha256", "image", "creator")
# Scopes a bulk file can carry; an image request needs the picture itself (`optout add --image`).
IMPORTABLE_KINDS = ("url", "url-prefix", "domain", "sha256", "creator")
URL_KINDS = ("url", "url-prefix")

# Hamming distance (of 64 bits) within which a catalogued image is the requested picture.
# Measured with bench/optout.py and tests/test_optout_phash.py on generated 640x480 pictures:
# copies resized to 1/4, re-encoded at JPEG quality 20-50, converted to PNG and cropped by
# 2-5% (centred or one-sided) are at most 6 bits from the nearest crop probe of the request
# (3,000 copies: 69% at 0, 29% at 2, 2.5% at 4, 0.2% at 6); the nearest of 1,000 unrelated
# generated images is never closer than 8 bits (200 requests; median 14). pHash distances of
# these images move in steps of 2, so 6 is the last step before unrelated pictures begin.
DEFAULT_MAX_DISTANCE = 6
MAX_MAX_DISTANCE = 16

_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ESCAPE = re.compile(r"%([0-9a-fA-F]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_NON_WORD = re.compile(r"[\W_]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ScopeSpec:
    """A normalized scope: `value` is what matching compares; `domain` joins to sightings."""

    kind: str
    value: str
    domain: str | None = None


@dataclass(frozen=True)
class RequestInput:
    """One validated opt-out request, ready to store."""

    scope: ScopeSpec
    requester: str
    reference: str
    received_at: datetime
    contact: str | None = None
    notes: str | None = None
    phash: str | None = None
    phash_probes: str | None = None
    max_distance: int | None = None


def _normalize_escapes(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _ESCAPE.sub(fix, text)


def _split_url(url: str) -> tuple[str, str] | None:
    """(matching key, normalized host) of an http(s) URL, None if unusable."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    norm_host = normalize_host(host)
    netloc = norm_host if port in (None, _DEFAULT_PORTS[scheme]) else f"{norm_host}:{port}"
    path = _normalize_escapes(parts.path) or "/"
    query = f"?{_normalize_escapes(parts.query)}" if parts.query else ""
    return f"{netloc}{path}{query}", norm_host


def url_key(url: str) -> str | None:
    """The matching key of a catalogued URL (`host[:port]/path[?query]`), None if unusable."""
    split = _split_url(url)
    return split[0] if split else None


def normalize_url(text: str) -> tuple[str, str]:
    """A request's URL (or prefix) -> (key, host); a missing scheme means http(s)."""
    value = text.strip()
    if "://" not in value:
        value = f"https://{value}"
    split = _split_url(value)
    if split is None:
        raise BadInput(f"not an http(s) URL with a host: {text!r}")
    return split


def normalize_domain(text: str) -> str:
    """A request's domain: lower-case IDNA, no wildcard or trailing dot, not a public suffix."""
    value = text.strip().lower()
    for lead in ("*.", "."):
        value = value.removeprefix(lead)
    value = value.rstrip(".")
    if not value or any(c in value for c in "/:@ \t?#"):
        raise BadInput(f"not a domain name: {text!r} (give a host such as example.com)")
    host = normalize_host(value)
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    ext = _EXTRACT(host)
    if not ext.domain or not ext.suffix:
        raise BadInput(f"{text!r} is a public suffix or not a registrable domain; name a site")
    return host


def normalize_sha256(text: str) -> str:
    value = text.strip().lower()
    if not _SHA256.match(value):
        raise BadInput(f"not a sha256 (64 hex digits): {text!r}")
    return value


def creator_key(name: str | None) -> str | None:
    """The matching key of a creator name (see the module docstring); None when empty."""
    if not name:
        return None
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = sorted(w for w in _NON_WORD.split(stripped) if w)
    return " ".join(words) or None


# Image facts (signals.xmp) that name the image's creator: XMP dc:creator, IPTC-IIM 2:80
# By-line, EXIF Artist (0x013B). Each may hold one name or several.
EMBEDDED_CREATOR_FACTS = ("creator", "iim_byline", "exif_artist")


def embedded_creator_keys(facts: Mapping[str, Any] | None) -> set[str]:
    """Matching keys of every creator an image names in its own metadata."""
    keys: set[str] = set()
    for fact in EMBEDDED_CREATOR_FACTS:
        value = (facts or {}).get(fact)
        for name in value if isinstance(value, list) else [value]:
            if isinstance(name, str) and (key := creator_key(name)):
                keys.add(key)
    return keys


def normalize_scope(kind: str, value: str) -> ScopeSpec:
    """Validate and normalize one scope (not `image`, which needs the picture's bytes)."""
    kind = kind.strip().lower()
    if kind in URL_KINDS:
        key, host = normalize_url(value)
        return ScopeSpec(kind, key, registrable_domain(host))
    if kind == "domain":
        host = normalize_domain(value)
        return ScopeSpec(kind, host, registrable_domain(host))
    if kind == "sha256":
        return ScopeSpec(kind, normalize_sha256(value))
    if kind == "creator":
        name = creator_key(value)
        if name is None:
            raise BadInput(f"empty creator name: {value!r}")
        return ScopeSpec(kind, name)
    if kind == "image":
        raise BadInput("image requests need the picture: use `optout add --image FILE`")
    raise BadInput(f"unknown scope {kind!r}; use one of {', '.join(IMPORTABLE_KINDS)}")


def url_scope_matches(kind: str, value: str, key: str | None) -> bool:
    """Does a url / url-prefix scope cover the URL with this key?"""
    if key is None:
        return False
    return key == value if kind == "url" else key.startswith(value)


def host_suffixes(host: str, domain: str | None) -> list[str]:
    """The host and each parent down to its registrable domain: the domain scopes covering it."""
    labels = host.split(".")
    stop = domain or host
    out: list[str] = []
    for start in range(len(labels)):
        candidate = ".".join(labels[start:])
        out.append(candidate)
        if candidate == stop:
            break
    return out


def auto_reference(requester: str, scope: ScopeSpec) -> str:
    """A stable reference for requests that came without one, so re-importing a list is a no-op."""
    text = "\x1f".join((requester.strip(), scope.kind, scope.value))
    return "auto-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def request_from_fields(
    fields: Mapping[str, Any], defaults: Mapping[str, str | None], now: datetime
) -> RequestInput:
    """One row of a bulk file (or the options of `optout add`) -> a validated request.

    `defaults` fills scope/requester/contact/notes/received_at where the row has none.
    Raises BadInput with the reason."""

    def get(name: str) -> str | None:
        return _text(fields, name) or _text(defaults, name)

    kind_text, value, requester = get("scope"), _text(fields, "value"), get("requester")
    if kind_text is None:
        raise BadInput("no scope (url, url-prefix, domain, sha256 or creator)")
    if value is None:
        raise BadInput("no value")
    if requester is None:
        raise BadInput("no requester")
    kind = kind_text.strip().lower()
    if kind not in IMPORTABLE_KINDS:
        raise BadInput(f"scope {kind!r} cannot be imported; use {', '.join(IMPORTABLE_KINDS)}")
    scope = normalize_scope(kind, value)
    received_text = get("received_at")
    try:
        received = parse_time(received_text) if received_text else now
    except ValueError:
        raise BadInput(f"received_at is not an ISO-8601 time: {received_text!r}") from None
    return RequestInput(
        scope=scope,
        requester=requester,
        reference=get("reference") or auto_reference(requester, scope),
        received_at=received,
        contact=get("contact"),
        notes=get("notes"),
    )


def parse_request_file(text: str, fmt: str) -> list[tuple[int, dict[str, Any] | str]]:
    """Rows of a bulk file as (row number, fields) or (row number, why it is unreadable).

    `fmt` is `csv` (header with at least `value`), `jsonl` (one object per line) or `list`
    (one value per line, `#` comments: the lists opt-out registries publish). Row numbers are
    1-based lines of the file (the CSV header is line 1). A file that cannot be read as its
    format at all raises BadInput."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if "value" not in header:
            raise BadInput(
                f"CSV header has no `value` column (found: {', '.join(header) or 'nothing'})"
            )
        reader.fieldnames = header
        try:
            return [(reader.line_num, {k: v for k, v in row.items() if k}) for row in reader]
        except csv.Error as exc:
            raise BadInput(f"unreadable CSV at line {reader.line_num}: {exc}") from exc
    rows: list[tuple[int, dict[str, Any] | str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if fmt == "list":
            rows.append((number, {"value": stripped}))
            continue
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            rows.append((number, f"not JSON: {exc.msg}"))
            continue
        rows.append((number, obj if isinstance(obj, dict) else "not a JSON object"))
    if fmt == "jsonl" and rows and all(isinstance(fields, str) for _, fields in rows):
        raise BadInput("no line of the file is a JSON object; is it JSONL?")
    return rows
