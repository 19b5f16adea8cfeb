"""Crawl blocklists (GPAI Code of Practice, Copyright chapter, Measure 1.2(b): sites recognised
by courts or authorities as persistently infringing are excluded from crawling). Pure parsing
of a list file into entries; the service stores them, `fetch` and the policy layer read them.

A file is either plain lines or CSV:
- lines: one domain (`example.com`, `*.example.com`, `.example.com`) or one URL prefix
  (`https://example.com/gallery/`) per line; `#` starts a comment; blank lines are skipped.
- CSV (a `.csv` file, or a first line that names the columns): a header with `value` (and
  optionally `kind` = domain | url-prefix), or with a `domain` and/or `url` / `url_prefix`
  column; any other columns (source, date, court...) are ignored.

A domain entry covers the domain and all its subdomains. A URL prefix is kept as written and
matched against the URL as recorded (the policy layer and `fetch` compare it so).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from provenance.ingest.keys import normalize_host

DOMAIN = "domain"
URL_PREFIX = "url-prefix"
KINDS = (DOMAIN, URL_PREFIX)
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_CSV_HEADERS = {"value", "kind", "domain", "url", "url_prefix", "url-prefix"}
MAX_VALUE = 1000  # blocklist_entries.value is VARCHAR(1000)


@dataclass(frozen=True)
class BadLine:
    """A line (or CSV row) that could not be read as an entry; kept verbatim with the reason."""

    line: int
    text: str
    reason: str


@dataclass
class ParsedList:
    """Entries as (kind, value), de-duplicated and sorted, and the lines that were refused."""

    entries: list[tuple[str, str]] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)


def parse_domain(text: str) -> str:
    """A blocklist domain in the form sightings store hosts (lower case, IDNA); ValueError if
    it is not a host name or IP address."""
    value = text.strip()
    for lead in ("*.", "."):
        if value.startswith(lead):
            value = value[len(lead):]
    if not value or any(c in value for c in "/:@ \t?#"):
        raise ValueError("not a domain name (write a URL prefix with http:// or https://)")
    host = normalize_host(value)
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(lb) for lb in labels):
        raise ValueError("not a domain name")
    return host


def parse_url_prefix(text: str) -> str:
    """An http(s) URL prefix with a host, kept as written; ValueError otherwise."""
    value = text.strip()
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("a URL prefix needs http:// or https:// and a host")
    if len(value) > MAX_VALUE:
        raise ValueError(f"longer than {MAX_VALUE} characters")
    return value


def parse_entry(text: str, kind: str | None = None) -> tuple[str, str]:
    """(kind, value) of one entry; the kind is inferred from the text when not given."""
    if kind is None:
        kind = URL_PREFIX if "://" in text else DOMAIN
    if kind == DOMAIN:
        return DOMAIN, parse_domain(text)
    if kind == URL_PREFIX:
        return URL_PREFIX, parse_url_prefix(text)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")


def _looks_like_csv(first: str) -> bool:
    names = {c.strip().lower() for c in first.split(",")}
    return ("," in first and bool(names & _CSV_HEADERS)) or first.strip().lower() in _CSV_HEADERS


def parse_blocklist(text: str, *, csv_format: bool = False) -> ParsedList:
    """Parse a blocklist file's text. Bad lines are reported, good ones kept."""
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    if csv_format or _looks_like_csv(first):
        return _parse_csv(lines)
    found: set[tuple[str, str]] = set()
    out = ParsedList()
    for number, raw in enumerate(lines, start=1):
        body = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not body:
            continue
        try:
            found.add(parse_entry(body))
        except ValueError as exc:
            out.bad.append(BadLine(number, raw, str(exc)))
    out.entries = sorted(found)
    return out


def _row_entries(row: dict[str, str]) -> list[tuple[str, str]]:
    kind = (row.get("kind") or "").strip().lower() or None
    entries: list[tuple[str, str]] = []
    if (row.get("value") or "").strip():
        entries.append(parse_entry(row["value"], kind))
    if (row.get("domain") or "").strip():
        entries.append(parse_entry(row["domain"], DOMAIN))
    for column in ("url", "url_prefix", "url-prefix"):
        if (row.get(column) or "").strip():
            entries.append(parse_entry(row[column], URL_PREFIX))
    if not entries:
        raise ValueError("no value, domain or url column is filled")
    return entries


def _parse_csv(lines: list[str]) -> ParsedList:
    body = [ln for ln in lines if not ln.lstrip().startswith("#")]
    numbers = [i for i, ln in enumerate(lines, start=1) if not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
    found: set[tuple[str, str]] = set()
    out = ParsedList()
    for index, row in enumerate(reader, start=1):
        number = numbers[reader.line_num - 1] if reader.line_num - 1 < len(numbers) else index
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        try:
            found.update(_row_entries({k: v for k, v in row.items() if isinstance(k, str)}))
        except ValueError as exc:
            out.bad.append(BadLine(number, body[reader.line_num - 1], str(exc)))
    out.entries = sorted(found)
    return out
