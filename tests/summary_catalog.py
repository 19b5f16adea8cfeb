"""A small catalog with known domains, sources, crawls and exclusions for the summary tests,
inserted directly with SQLAlchemy Core (every expected number is derivable from here)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from provenance.db.models import (
    Blocklist,
    Export,
    ExportMember,
    FetchAttempt,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
    SignalObservation,
)

UA = "provenance-bot/0.1 (+https://example.com/crawler)"
T0 = datetime(2026, 1, 15, tzinfo=UTC)
FETCH0 = datetime(2026, 2, 25, tzinfo=UTC)
EXPORTED = datetime(2026, 4, 1, tzinfo=UTC)
EXCLUDED = {"signal-reserved:robots": 3, "signal-unknown:tdmrep": 1, "evidence-stale:robots": 1,
            "opted-out": 2, "blocklisted": 1, "near-duplicate": 4, "license-unknown": 5}
POLICY = """name = "test"
[licenses]
allow = ["cc-by", "cc0"]
[signals]
tokens = ["provenance-bot", "gptbot"]
count = ["robots", "tdmrep"]
[signals.max_age_days]
robots = 30
"""
ABOUT = """
[provider]
name = "Example Imaging GmbH"
contact = "ai@example.com"
[model]
name = "ExampleVision"
version = "1.0"
sme = false
training_continues = true
[sources]
"laion-sub" = "public-dataset"
"stock" = "licensed"
"crawl" = "own-crawl"
"synth" = "synthetic"
[[public_datasets]]
name = "LAION subset"
source_name = "laion-sub"
url = "https://laion.example/"
version = "2021"
[crawler]
purposes = ["training ExampleVision"]
"""


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


class Builder:
    """Rows collected, then inserted in dependency order."""

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []
        self.sightings: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []

    def image(self, name: str, size: int) -> str:
        key = sha(name)
        self.images.append({"sha256": key, "byte_size": size, "decode_ok": True,
                            "first_seen_at": T0})
        return key

    def sighting(self, key: str | None, source: str, *, domain: str | None = None,
                 status: str = "ok", caption: str | None = None, spdx: str | None = None,
                 fetched_at: datetime | None = None) -> None:
        n = len(self.sightings)
        host = f"img.{domain}" if domain else None
        self.sightings.append({
            "sighting_key": sha(f"s{n}"), "image_sha256": key, "status": status,
            "url": f"https://{host}/{n}.jpg" if host else None, "host": host, "domain": domain,
            "source_name": source, "origin_kind": "manifest-row", "origin": f"row {n}",
            "license_spdx": spdx, "caption": caption, "seen_at": T0, "fetched_at": fetched_at})
        if fetched_at is not None:
            self.attempts.append({"sighting_id": n + 1, "url": self.sightings[-1]["url"],
                                  "attempted_at": fetched_at, "outcome": "fetched",
                                  "user_agent": UA, "image_sha256": key})


def build(conn: Connection) -> list[str]:
    """Insert the catalog; returns the member keys of export 1."""
    b = Builder()
    members: list[str] = []
    for k in range(11):  # crawled: site{k}.example, 1000*(k+1) bytes, fetched one a day
        key = b.image(f"crawl{k}", 1000 * (k + 1))
        b.sighting(key, "crawl", domain=f"site{k}.example", spdx="CC-BY-4.0",
                   fetched_at=FETCH0 + timedelta(days=k))
        members.append(key)
    b.sighting(members[0], "laion-sub", domain="laion.example", caption="a cat", spdx="CC-BY-4.0")
    for k in range(4):  # public dataset: 500 bytes, two captioned, never fetched by us
        key = b.image(f"laion{k}", 500)
        b.sighting(key, "laion-sub", domain="laion.example", caption="x" if k < 2 else " ",
                   spdx="CC-BY-4.0")
        members.append(key)
    for k in range(3):  # licensed stock, license not recorded
        key = b.image(f"stock{k}", 2000)
        b.sighting(key, "stock")
        members.append(key)
    key = b.image("synth0", 100)
    b.sighting(key, "synth", spdx="CC0-1.0")
    b.sighting(key, "ghost", status="pending")  # not counted: no bytes from it
    members.append(key)
    outsider = b.image("outside", 10**6)  # not exported: must count nowhere
    b.sighting(outsider, "crawl", domain="other.example",
               fetched_at=datetime(2026, 5, 1, tzinfo=UTC))
    _insert(conn, b, members)
    return members


def _insert(conn: Connection, b: Builder, members: list[str]) -> None:
    conn.execute(insert(Image), b.images)
    conn.execute(insert(Sighting), b.sightings)
    conn.execute(insert(FetchAttempt), b.attempts + [
        {"sighting_id": 1, "url": f"https://r{i}.example/a.jpg", "attempted_at": T0,
         "outcome": outcome, "user_agent": None, "image_sha256": None}
        for i, outcome in enumerate(["skipped-reserved", "skipped-reserved",
                                     "skipped-blocklisted"])])
    conn.execute(insert(Export).values(
        id=1, name="train", status="complete", out_dir="/x", policy_name="test",
        policy_sha256=sha(POLICY), policy_text=POLICY, included=len(members),
        excluded=json.dumps(EXCLUDED), created_at=EXPORTED, completed_at=EXPORTED))
    conn.execute(insert(ExportMember), [
        {"export_id": 1, "image_sha256": k, "shard_index": 0, "position": i}
        for i, k in enumerate(sorted(members))])
    conn.execute(insert(Blocklist), [
        {"name": "court", "version": "v1", "source": "Court order 1", "imported_at": T0,
         "entries": 2},
        {"name": "court", "version": "v2", "source": None,
         "imported_at": EXPORTED + timedelta(days=1), "entries": 3}])
    conn.execute(insert(OptOutRequest), [
        {"requester": "artist", "received_at": T0, "recorded_at": T0, "scope_kind": "domain",
         "scope_value": "site3.example", "status": "active"},
        {"requester": "b", "received_at": T0, "recorded_at": T0, "scope_kind": "url",
         "scope_value": "x.example/1", "status": "withdrawn"}])
    conn.execute(insert(OptOutMatch), [
        {"request_id": 1, "image_sha256": members[3], "how": "domain", "matched_at": EXPORTED},
        {"request_id": 2, "image_sha256": members[4], "how": "url", "matched_at": EXPORTED}])
    conn.execute(insert(SignalObservation), [
        {"scope": "host", "subject": f"h{i}", "kind": kind, "status": status,
         "observed_at": T0}
        for i, (kind, status) in enumerate([("robots", "reserved"), ("robots", "reserved"),
                                            ("robots", "allowed"), ("tdmrep", "unknown")])])
