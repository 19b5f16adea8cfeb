"""The compiled SQL and the pure Python decision agree exactly on random catalogs (included set
and per-reason counts), on SQLite and PostgreSQL, and partitions add up to the whole."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance.db.engine import make_engine
from provenance.policy import parse_policy
from provenance.services.policy import decide_keys, evaluate_catalog
from tests import policy_catalog as pc

HOSTS = [None, "a.com", "x.a.com", "c.net", "xa.com"]
TOKENS = ["gptbot", "ccbot", "other_bot"]
LICENSES = [None, "CC-BY-4.0", "CC-BY-NC-4.0", "MIT", "GPL-3.0-only", "CC0-1.0", "cc-by-4.0"]
TIMES = [pc.T0 - timedelta(days=d) for d in (0, 10, 40, 100)]
# A few kinds, so random signals often hit what the random policy counts; two image-level
# kinds, which the present-time query reads packed together.
KINDS = ["robots", "tdmrep", "content-usage", "c2pa", "iptc", "rsl"]
ALLOW_LISTS = [["cc0"], ["cc-by", "MIT"], ["cc-by-nc", "cc0"]]
HELD = "https://pub.example/license.xml"


def _framed(tokens: list[str]) -> str:
    return "," + "".join(f"{t}," for t in tokens)


tok_list = st.one_of(st.none(), st.lists(st.sampled_from(TOKENS), unique=True).map(_framed))


@st.composite
def catalogs(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 7))
    shas = sorted({draw(st.sampled_from("0123456789abcdef")) + f"{i:063x}" for i in range(n)})
    images = [pc.image(sha, width=draw(st.sampled_from([None, 0, 50, 100, 300])),
                       height=draw(st.sampled_from([None, 50, 100, 300])),
                       format=draw(st.sampled_from([None, "JPEG", "png", "GIF"])),
                       decode_ok=draw(st.booleans()),
                       phash=draw(st.sampled_from([None, "0000000000000000", "0000000000000003",
                                                   "ffffffffffffffff"])))
              for sha in shas]
    sightings, sid = [], 0
    for sha in shas:
        for _ in range(draw(st.integers(0, 3))):
            sid += 1
            host = draw(st.sampled_from(HOSTS))
            url = None if host is None else f"https://{host}/p{draw(st.integers(0, 2))}.jpg"
            sightings.append(pc.sighting(
                sid, sha, url=url, host=host,
                status=draw(st.sampled_from(["ok", "fetched", "pending", "bad"])),
                source_name=draw(st.sampled_from([None, "crawl", "own", "cover"])),
                license_spdx=draw(st.sampled_from(LICENSES)),
                caption=draw(st.sampled_from([None, "", " ", "a cat"]))))
    subjects = ([("url", s["url"]) for s in sightings if s["url"]]
                + [("host", h) for h in HOSTS if h] + [("image", sha) for sha in shas])
    signals = []
    for oid in range(1, draw(st.integers(0, 20)) + 1):
        scope, subject = draw(st.sampled_from(subjects))
        kind = draw(st.sampled_from(KINDS))
        data = draw(st.sampled_from([None, json.dumps({"extra": {"validation_state": "Invalid"}},
                                                      sort_keys=True)]))
        signals.append(pc.signal(oid, scope, subject, kind,
                                 draw(st.sampled_from(["allowed", "reserved", "unknown"])),
                                 tokens_reserved=draw(tok_list), tokens_unknown=draw(tok_list),
                                 tokens_allowed=draw(tok_list), data=data,
                                 source=draw(st.sampled_from([None, HELD])),
                                 observed_at=draw(st.sampled_from(TIMES))))
    requests = [pc.request(r, draw(st.sampled_from(["active", "withdrawn"])))
                for r in range(1, draw(st.integers(0, 2)) + 1)]
    matches = []
    for mid, r in enumerate(requests, start=1):
        if sightings and draw(st.booleans()):
            matches.append(pc.match(mid, r["id"], sid=draw(st.sampled_from(sightings))["id"]))
        else:
            matches.append(pc.match(mid, r["id"], sha=draw(st.sampled_from(shas))))
    entries = draw(st.lists(st.sampled_from([("domain", "a.com"), ("domain", "b.org"),
                                             ("url-prefix", "https://c.net/p1")]), unique=True))
    return {"images": images, "sightings": sightings, "signals": signals, "requests": requests,
            "matches": matches, "blocklists": [("court", "v1", entries)] if entries else []}


@st.composite
def policies(draw: Any) -> str:
    kinds = draw(st.lists(st.sampled_from(KINDS), unique=True, min_size=1))
    tokens = draw(st.lists(st.sampled_from(TOKENS), min_size=1, unique=True))
    unknown = draw(st.lists(st.sampled_from(KINDS), unique=True, max_size=2))
    ages = draw(st.lists(st.sampled_from(KINDS), unique=True))
    lines = ['name = "random"', "[licenses]",
             f"allow = {json.dumps(draw(st.sampled_from(ALLOW_LISTS)))}",
             "[signals]", f"tokens = {json.dumps(tokens)}", f"count = {json.dumps(kinds)}",
             f"c2pa_invalid_allowed_counts = {str(draw(st.booleans())).lower()}",
             "[signals.unknown]", *[f'{k} = "allow"' for k in unknown],
             "[signals.max_age_days]", *[f"{k} = {draw(st.sampled_from([5, 30]))}" for k in ages],
             "[quality]"]
    if draw(st.booleans()):
        lines += ["min_width = 100", "min_height = 60", "max_aspect_ratio = 2.5",
                  'formats = ["jpeg", "png"]', "require_caption = true",
                  f"near_duplicate_distance = {draw(st.sampled_from([0, 2]))}"]
    lines.append(f"require_decode_ok = {str(draw(st.booleans())).lower()}")
    lines += ["[domains]", f"deny = {json.dumps(draw(st.sampled_from([[], ['c.net']])))}",
              f"allow = {json.dumps(draw(st.sampled_from([[], ['a.com', 'b.org']])))}"]
    lines += ["[[trusted_sources]]", 'source_name = "own"', 'contract = "C-1"',
              "[[trusted_sources]]", 'source_name = "cover"', 'contract = "C-2"',
              "covers_embedded = true"]
    if draw(st.booleans()):
        lines += ["[[rsl_licenses]]", f'source = "{HELD}"', 'reference = "order 1"']
    return "\n".join(lines) + "\n"


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(catalog=catalogs(), text=policies(), as_of=st.sampled_from([None, TIMES[1]]))
def test_sql_and_python_agree(catalog_url: str, catalog: dict[str, Any], text: str,
                              as_of: Any) -> None:
    engine = make_engine(catalog_url)
    try:
        pc.clear(engine)
        pc.insert(engine, **catalog)
        policy = parse_policy(text)
        now = pc.T0 if as_of is None else as_of
        result = evaluate_catalog(engine, policy, now, as_of=as_of)
        keys = [i["sha256"] for i in catalog["images"]]
        decisions = decide_keys(engine, policy, keys, now, as_of=as_of)
        py_included = sorted(k for k, d in decisions.items() if d.include)
        py_counts = Counter(code for d in decisions.values() for code in set(d.codes))
        assert result.included == py_included
        assert result.excluded == dict(py_counts)
        assert result.total == len(keys)
        assert result.excluded_total == len(keys) - len(py_included)
        # Ranges evaluated concurrently (forked processes on a SQLite file, threads on
        # PostgreSQL; one connection each) or one after the other: the same document, the
        # same included keys.
        for workers in (1, 3):
            other = evaluate_catalog(engine, policy, now, as_of=as_of, workers=workers)
            assert (other.to_json(), other.included) == (result.to_json(), result.included)
        parts = [evaluate_catalog(engine, policy, now, as_of=as_of, partition=(i, 3))
                 for i in range(3)]
        assert sorted(k for p in parts for k in p.included) == result.included
        assert sum(p.total for p in parts) == result.total
    finally:
        engine.dispose()


HOST_ONLY_POLICY = """name = "hosts"
[licenses]
allow = ["cc0"]
[signals]
tokens = ["gptbot"]
count = ["tdmrep", "content-usage", "rsl", "robots"]
[signals.max_age_days]
content-usage = 30
[quality]
"""


def test_images_whose_hosts_disagree_are_decided_per_kind(catalog_url: str) -> None:
    """Host-only kinds are packed per host and an image takes the OR of its smallest and
    largest value; with three or more sightings whose hosts differ that is not enough, and
    those images are decided again per kind. Both paths agree with the pure decision."""
    from provenance.db.policy_sql import compile_policy
    from provenance.db.policy_tokens import blocklist_in_force, load_token_decisions

    engine = make_engine(catalog_url)
    try:
        pc.clear(engine)
        old = pc.T0 - timedelta(days=40)
        hosts = {"a.com": [("tdmrep", "reserved", pc.T0)],
                 "b.com": [("content-usage", "allowed", old), ("rsl", "allowed", pc.T0)],
                 "c.com": [("tdmrep", "allowed", pc.T0), ("content-usage", "unknown", pc.T0)],
                 "d.com": []}
        signals = [pc.signal(i, "host", h, kind, status, observed_at=at)
                   for i, (h, kind, status, at) in enumerate(
                       [(h, *o) for h, obs in hosts.items() for o in obs], start=1)]
        shas = [f"{i:x}" * 64 for i in range(1, 6)]
        layouts = [["a.com", "b.com", "c.com"], ["b.com", "c.com", "d.com", "b.com"],
                   ["c.com", "c.com", "c.com"], ["a.com", "d.com"], ["b.com"]]
        sightings = [pc.sighting(10 * n + j, sha, host=h, url=f"https://{h}/{n}{j}.jpg",
                                 license_spdx="CC0-1.0")
                     for n, (sha, hs) in enumerate(zip(shas, layouts, strict=True))
                     for j, h in enumerate(hs)]
        pc.insert(engine, images=[pc.image(sha) for sha in shas], sightings=sightings,
                  signals=signals)
        policy = parse_policy(HOST_ONLY_POLICY)
        with engine.connect() as conn:
            query = compile_policy(policy, pc.T0, load_token_decisions(conn, policy.signals.tokens),
                                   blocklist_in_force(conn, None), dialect=conn.dialect.name,
                                   present={"url": [], "image": []}).query
            unsure = {row.sha256 for row in conn.execute(query) if row.ambiguous}
        assert unsure == {shas[0], shas[1]}
        result = evaluate_catalog(engine, policy, pc.T0)
        decisions = decide_keys(engine, policy, shas, pc.T0)
        assert result.included == sorted(k for k, d in decisions.items() if d.include)
        assert result.excluded == dict(Counter(c for d in decisions.values() for c in set(d.codes)))
        assert result.excluded_total == 5 - len(result.included)
    finally:
        engine.dispose()


IMAGE_KINDS_POLICY = """name = "images"
[licenses]
allow = ["cc0"]
[signals]
tokens = ["gptbot"]
count = ["c2pa", "iptc"]
[signals.max_age_days]
c2pa = 30
iptc = 30
[quality]
"""


def test_image_level_kinds_read_together_keep_their_own_verdicts(catalog_url: str) -> None:
    """At present both image-level kinds come from one packed value per image; each kind's
    status and staleness must come out as its own (as of a past time they are joined per
    kind). Both agree with the pure decision, image by image."""
    engine = make_engine(catalog_url)
    try:
        pc.clear(engine)
        old = pc.T0 - timedelta(days=40)
        evidence = [[("c2pa", "allowed", pc.T0), ("iptc", "reserved", pc.T0)],
                    [("c2pa", "reserved", pc.T0)],
                    [("c2pa", "allowed", old), ("iptc", "allowed", pc.T0)],
                    [],
                    [("c2pa", "unknown", pc.T0), ("iptc", "allowed", old)],
                    [("c2pa", "allowed", pc.T0), ("iptc", "allowed", pc.T0)]]
        shas = [f"{i:x}" * 64 for i in range(1, len(evidence) + 1)]
        signals = [pc.signal(i, "image", sha, kind, status, observed_at=at)
                   for i, (sha, kind, status, at) in enumerate(
                       [(sha, *o) for sha, obs in zip(shas, evidence, strict=True) for o in obs],
                       start=1)]
        pc.insert(engine, images=[pc.image(sha) for sha in shas],
                  sightings=[pc.sighting(n, sha, license_spdx="CC0-1.0")
                             for n, sha in enumerate(shas, start=1)], signals=signals)
        policy = parse_policy(IMAGE_KINDS_POLICY)
        for as_of in (None, pc.T0):
            result = evaluate_catalog(engine, policy, pc.T0, as_of=as_of)
            decisions = decide_keys(engine, policy, shas, pc.T0, as_of=as_of)
            assert result.included == [shas[5]]
            assert result.included == sorted(k for k, d in decisions.items() if d.include)
            assert result.excluded == {
                "evidence-stale:c2pa": 1, "evidence-stale:iptc": 1, "signal-reserved:c2pa": 1,
                "signal-reserved:iptc": 1, "signal-unknown:c2pa": 2, "signal-unknown:iptc": 2}
            assert result.excluded == dict(Counter(c for d in decisions.values()
                                                   for c in set(d.codes)))
    finally:
        engine.dispose()


def test_partition_bounds_cover_the_key_space() -> None:
    from provenance.db.policy_sql import partition_bounds

    assert partition_bounds((0, 1)) == (None, None)
    assert partition_bounds((0, 2)) == (None, "8000")
    assert partition_bounds((1, 2)) == ("8000", None)
    assert partition_bounds((1, 3)) == ("5556", "aaab")


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_ranges_fork_only_with_no_connection_in_use(
    catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forked range scan must inherit no open connection (release_for_fork): while the
    caller holds one, the ranges run in threads instead, and the result is the same."""
    from provenance.db.engine import release_for_fork
    from provenance.services import policy as service

    engine = make_engine(catalog_url)
    forked: list[int] = []
    real = service._forked_scans
    monkeypatch.setattr(service, "_forked_scans",
                        lambda *a: forked.append(1) or real(*a))  # type: ignore[func-returns-value]
    try:
        pc.clear(engine)
        shas = [f"{i:x}" * 64 for i in range(1, 9)]
        pc.insert(engine, images=[pc.image(sha) for sha in shas], sightings=[
            pc.sighting(n, sha, host="a.com", url=f"https://a.com/{n}.jpg",
                        license_spdx="CC0-1.0" if n % 2 else "CC-BY-NC-4.0")
            for n, sha in enumerate(shas, start=1)])
        policy = parse_policy(IMAGE_KINDS_POLICY)
        free = evaluate_catalog(engine, policy, pc.T0, workers=2)
        with engine.connect() as held:
            assert not release_for_fork(engine)
            busy = evaluate_catalog(engine, policy, pc.T0, workers=2)
            held.exec_driver_sql("SELECT 1")  # the held connection is still usable
        assert (busy.to_json(), busy.included) == (free.to_json(), free.included)
        assert busy.total == 8 and busy.excluded_total == 8  # no evidence: unknown excludes
        sqlite = engine.dialect.name == "sqlite"
        assert forked == ([1] if sqlite else [])
        assert release_for_fork(engine) and engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        engine.dispose()
