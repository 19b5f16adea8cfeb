"""Natural keys: sighting keys derived from content, normalized hosts, host buckets, domains."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract

# The Public Suffix List snapshot bundled with tldextract; never downloaded at run time.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

SIGHTING_KEY_VERSION = "v1"
# Hosts remembered by the per-host caches below. A manifest cycles through its hosts; once they
# outnumber the cache, every lookup misses and the Public Suffix lookup (~6 us) runs per row.
# 262,144 hosts take at most ~60 MB per cache.
HOST_CACHE = 1 << 18


def sighting_key(*parts: str | None) -> str:
    """sha256 over the version tag and the given parts, unit-separator joined."""
    text = "\x1f".join([SIGHTING_KEY_VERSION, *[p or "" for p in parts]])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@lru_cache(maxsize=HOST_CACHE)
def normalize_host(host: str) -> str:
    """Lower-case, IDNA (punycode), no trailing dot: the form host buckets are computed on."""
    value = host.strip().rstrip(".").lower()
    try:
        return value.encode("idna").decode("ascii")
    except UnicodeError:
        return value


@lru_cache(maxsize=HOST_CACHE)
def host_bucket(host: str) -> int:
    """First 16 bits of sha256(normalized host): the fetch partition key (CLI.md, Scale-out)."""
    digest = hashlib.sha256(normalize_host(host).encode("ascii", "replace")).digest()
    return int.from_bytes(digest[:2], "big")


_HEX = frozenset("0123456789abcdefABCDEF")


def url_bucket(url: str) -> int | None:
    """The host bucket of a URL's host; None for a URL that names no host we fetch."""
    parts = url_parts(url)
    return None if isinstance(parts, str) else host_bucket(parts[1])


def subject_bucket(scope: str, subject: str) -> int | None:
    """The partition bucket of a signal's subject (the same 16-bit space as host buckets and
    sha256 ranges): the host bucket of a host, or of a URL's host, so that a host's signals
    sit beside its sightings; the first 16 bits of an image's sha256. None for a URL that names
    no host we fetch."""
    if scope == "image":
        head = subject[:4]
        return int(head, 16) if len(head) == 4 and all(c in _HEX for c in head) else None
    if scope == "host":
        return host_bucket(subject)
    return url_bucket(subject)


@lru_cache(maxsize=HOST_CACHE)
def registrable_domain(host: str) -> str:
    """The registrable domain by the Public Suffix List (e.g. cdn.example.co.uk -> example.co.uk);
    IP addresses and hosts without a known suffix are returned as they are."""
    ext = _EXTRACT(host)
    if ext.domain and ext.suffix:
        return f"{ext.domain}.{ext.suffix}"
    return host


_UNUSUAL_AUTHORITY = frozenset("@[]\\%")


def url_parts(url: str) -> tuple[str, str, str] | str:
    """(scheme, normalized host, registrable domain), or an error message for a URL we refuse.

    Plain `scheme://host[:port]/...` URLs (nearly all of a LAION manifest) take a fast path;
    anything with user info, IPv6 literals, escapes or backslashes goes through urlsplit."""
    scheme, sep, rest = url.strip().partition("://")
    if sep:
        authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        if authority and not _UNUSUAL_AUTHORITY.intersection(authority):
            lowered = scheme.lower()
            if lowered not in ("http", "https"):
                return f"unsupported URL scheme {lowered!r}: only http and https are fetched"
            host = authority.partition(":")[0]
            if host:
                norm = normalize_host(host)
                return lowered, norm, registrable_domain(norm)
    return _url_parts_slow(url)


def _url_parts_slow(url: str) -> tuple[str, str, str] | str:
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        return f"malformed URL: {exc}"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"unsupported URL scheme {scheme or '(none)'!r}: only http and https are fetched"
    if not host:
        return "URL has no host"
    norm = normalize_host(host)
    return scheme, norm, registrable_domain(norm)


def partition_of_bucket(bucket: int, count: int) -> int:
    """Partition I of N that owns a 16-bit bucket: buckets [I*65536/N, (I+1)*65536/N)."""
    return (bucket * count) >> 16
