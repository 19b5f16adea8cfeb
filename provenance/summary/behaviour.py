"""What `provenance fetch` does, stated once for the summary's section 2.3 and the crawler
information page (GPAI Code of Practice, Copyright chapter, Measures 1.3 and 1.3(3)). Every
line describes code in provenance/services/fetch*.py and provenance/net.py; change them
together."""

from __future__ import annotations

ROBOTS_FEATURES: tuple[str, ...] = (
    "robots.txt is read per RFC 9309 before any other request to a host, and cached per host",
    "the group of our own product token is used, else the `*` group; Allow/Disallow by the "
    "longest match, with `*` and `$` patterns",
    "Crawl-delay of the selected group spaces our requests to that host",
    "an unreachable or unparseable robots.txt (5xx, timeout) means nothing is fetched from "
    "that host (fail closed); a missing one (4xx) means no restriction, per RFC 9309",
    "Retry-After on 429/503 is honoured before retrying",
)
OTHER_PROTOCOLS: tuple[str, ...] = (
    "TDMRep (W3C Community Group report): /.well-known/tdmrep.json, tdm-reservation and "
    "tdm-policy headers and HTML meta",
    "ai.txt (Spawning) for the host",
    "X-Robots-Tag response headers (noai, noimageai, per-agent forms): a reserving header "
    "drops the downloaded bytes",
    "Content-Signal (ai-train) and Content-Usage (IETF AI Preferences, train-ai) in robots.txt "
    "and headers",
    "RSL (Really Simple Licensing) license documents",
    "C2PA manifests (c2pa.training-mining assertions) and IPTC/XMP Data Mining fields embedded "
    "in the image",
    "opt-out requests sent to us (URL, URL prefix, domain, exact image, similar image, creator)",
    "crawl blocklists of sites recognised as persistently infringing (never contacted)",
)
BEHAVIOUR: tuple[str, ...] = (
    "robots.txt per RFC 9309 before each host; the tokens listed are evaluated on every URL",
    "rights reservations are checked before any request; a URL whose signals cannot be read "
    "is not fetched",
    "no login, paywall or CAPTCHA is circumvented: requests carry no credentials or cookies, "
    "and refused responses (401/402/403) are recorded as failed",
    "loopback, private, link-local and cloud-metadata addresses are refused on every hop",
    "per-host concurrency limit and delay between requests; Retry-After honoured",
    "blocklisted domains and URL prefixes, and opted-out URLs, are never contacted",
)


def product_token(user_agent: str) -> str:
    """The robots.txt product token of a User-Agent string: its first word before any '/'."""
    word = user_agent.strip().split()[0] if user_agent.strip() else ""
    return word.split("/", 1)[0].lower()
