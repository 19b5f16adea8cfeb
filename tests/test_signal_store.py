"""Append-only persistence of signal observations, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from provenance.db.engine import make_engine
from provenance.db.models import EvidenceBlob, SignalObservation
from provenance.db.signal_store import (
    Evidence,
    evidence_bytes,
    evidence_text,
    history,
    latest_by_source,
    latest_observations,
    record_observations,
)
from provenance.domain import Observation, Scope, Signal, SignalKind, SignalStatus
from tests import policy_catalog as pc

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOST = "https://example.com"


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    eng = make_engine(catalog_url)
    yield eng
    eng.dispose()


def robots_obs(status: SignalStatus, at: datetime, body: str, subject: str = HOST) -> Observation:
    sig = Signal(
        SignalKind.ROBOTS,
        status,
        detail=f"robots.txt said {status}",
        source=f"{subject}/robots.txt",
        tokens={"GPTBot": status, "ccbot": SignalStatus.ALLOWED},
        extra={"http_status": 200},
        evidence=body,
    )
    return Observation(Scope.HOST, subject, sig, at, at + timedelta(hours=24))


def test_two_observations_over_time_are_both_kept(engine: Engine) -> None:
    with engine.begin() as conn:
        record_observations(
            conn, [robots_obs(SignalStatus.ALLOWED, T0, "User-agent: *\nAllow: /\n")]
        )
    later = T0 + timedelta(days=3)
    with engine.begin() as conn:
        record_observations(
            conn, [robots_obs(SignalStatus.RESERVED, later, "User-agent: GPTBot\nDisallow: /\n")]
        )
    with engine.connect() as conn:
        rows = history(conn, Scope.HOST, HOST, SignalKind.ROBOTS)
        assert [r.signal.status for r in rows] == [SignalStatus.ALLOWED, SignalStatus.RESERVED]
        assert [r.observed_at for r in rows] == [T0, later]
        now = latest_observations(conn, Scope.HOST, [HOST])
        assert now[(HOST, SignalKind.ROBOTS)].signal.status == SignalStatus.RESERVED
        then = latest_observations(conn, Scope.HOST, [HOST], as_of=T0 + timedelta(days=1))
        old = then[(HOST, SignalKind.ROBOTS)]
        assert old.signal.status == SignalStatus.ALLOWED
        assert old.observed_at == T0
        assert evidence_text(conn, old.evidence_sha256 or "") == "User-agent: *\nAllow: /\n"
        assert latest_observations(conn, Scope.HOST, [HOST], as_of=T0 - timedelta(seconds=1)) == {}


def test_round_trip_of_tokens_extra_and_framed_columns(engine: Engine) -> None:
    with engine.begin() as conn:
        record_observations(conn, [robots_obs(SignalStatus.RESERVED, T0, "x")])
    with engine.connect() as conn:
        row = conn.execute(select(SignalObservation.__table__)).one()
        stored = latest_observations(conn, Scope.HOST, [HOST], kinds=[SignalKind.ROBOTS])
    assert row.tokens_reserved == ",gptbot,"
    assert row.tokens_allowed == ",ccbot,"
    assert row.tokens_unknown == ","
    assert json.loads(row.data) == {"extra": {"http_status": 200}}  # tokens: columns only
    sig = stored[(HOST, SignalKind.ROBOTS)].signal
    assert sig.tokens == {"gptbot": SignalStatus.RESERVED, "ccbot": SignalStatus.ALLOWED}
    assert sig.extra == {"http_status": 200}
    assert sig.source == f"{HOST}/robots.txt"
    assert stored[(HOST, SignalKind.ROBOTS)].expires_at == T0 + timedelta(hours=24)


def test_rows_that_also_kept_tokens_in_data_read_the_same(engine: Engine) -> None:
    """Rows written before revision 0004 repeated the per-token verdicts in `data`."""
    older = {**pc.signal(10**6, "host", HOST, "robots", "reserved"), "tokens_reserved": ",gptbot,",
             "tokens_unknown": ",", "tokens_allowed": ",ccbot,",
             "data": json.dumps({"tokens": {"ccbot": "allowed", "gptbot": "reserved"}})}
    with engine.begin() as conn:
        conn.execute(SignalObservation.__table__.insert(), [older])
        record_observations(conn, [robots_obs(SignalStatus.RESERVED, T0, "x", "https://b.org")])
    with engine.connect() as conn:
        found = [latest_observations(conn, Scope.HOST, [h])[(h, SignalKind.ROBOTS)].signal.tokens
                 for h in (HOST, "https://b.org")]
    assert found[0] == found[1] == {"ccbot": SignalStatus.ALLOWED, "gptbot": SignalStatus.RESERVED}


def test_tokenless_signal_leaves_token_columns_null(engine: Engine) -> None:
    sig = Signal(SignalKind.C2PA, SignalStatus.UNKNOWN, detail="no manifest")
    with engine.begin() as conn:
        record_observations(conn, [Observation(Scope.IMAGE, "ab" * 32, sig, T0)])
        row = conn.execute(select(SignalObservation.__table__)).one()
    assert (row.tokens_reserved, row.tokens_unknown, row.tokens_allowed) == (None, None, None)
    assert row.evidence_sha256 is None


def test_evidence_blob_kept_once_and_raw_bytes_exact(engine: Engine) -> None:
    body = b"\xef\xbb\xbfUser-agent: *\r\nDisallow: /\xff\r\n"
    obs = [
        robots_obs(SignalStatus.RESERVED, T0 + timedelta(minutes=i), "ignored") for i in range(3)
    ]
    with engine.begin() as conn:
        record_observations(conn, obs, raw=[Evidence(body, "text/plain")] * 3)
    with engine.begin() as conn:
        record_observations(conn, obs[:1], raw=[Evidence(body, "text/plain")])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EvidenceBlob.__table__)).scalar() == 1
        assert (
            conn.execute(select(func.count()).select_from(SignalObservation.__table__)).scalar()
            == 4
        )
        latest = latest_observations(conn, Scope.HOST, [HOST])[(HOST, SignalKind.ROBOTS)]
        assert evidence_bytes(conn, latest.evidence_sha256 or "") == body
        assert latest.evidence_excerpt is not None and "Disallow" in latest.evidence_excerpt


def test_latest_picks_highest_id_on_equal_time_and_filters_kind_and_source(engine: Engine) -> None:
    first = robots_obs(SignalStatus.ALLOWED, T0, "a")
    second = robots_obs(SignalStatus.RESERVED, T0, "b")
    rsl = Signal(SignalKind.RSL, SignalStatus.RESERVED, source=f"{HOST}/license.xml")
    with engine.begin() as conn:
        record_observations(conn, [first, second, Observation(Scope.HOST, HOST, rsl, T0)])
    with engine.connect() as conn:
        got = latest_observations(conn, Scope.HOST, [HOST, "https://other.test"])
        assert set(got) == {(HOST, SignalKind.ROBOTS), (HOST, SignalKind.RSL)}
        assert got[(HOST, SignalKind.ROBOTS)].signal.status == SignalStatus.RESERVED
        only = latest_by_source(
            conn, Scope.HOST, [HOST], [f"{HOST}/license.xml"], kinds=[SignalKind.RSL]
        )
        assert list(only) == [(f"{HOST}/license.xml", SignalKind.RSL)]
        assert latest_by_source(conn, Scope.HOST, [HOST], ["https://nowhere/x"]) == {}


def test_many_subjects_in_one_batch(engine: Engine) -> None:
    # More subjects than one IN list holds, as ingest records image-scope signals in bulk.
    shas = [f"{i:064x}" for i in range(1200)]
    obs = [
        Observation(Scope.IMAGE, s, Signal(SignalKind.IPTC, SignalStatus.ALLOWED, "no field"), T0)
        for s in shas
    ]
    with engine.begin() as conn:
        record_observations(conn, obs)
    with engine.connect() as conn:
        got = latest_observations(conn, Scope.IMAGE, shas, kinds=[SignalKind.IPTC])
    assert len(got) == 1200


def test_history_by_prefix_and_any_scope(engine: Engine) -> None:
    with engine.begin() as conn:
        record_observations(
            conn,
            [
                robots_obs(SignalStatus.ALLOWED, T0, "a", subject="https://a.test"),
                robots_obs(SignalStatus.ALLOWED, T0, "a", subject="https://a.test_b"),
                Observation(
                    Scope.URL,
                    "https://a.test/x.jpg",
                    Signal(SignalKind.ROBOTS, SignalStatus.RESERVED),
                    T0 + timedelta(seconds=1),
                ),
            ],
        )
    with engine.connect() as conn:
        rows = history(conn, None, "https://a.test/", subject_prefix=True)
        assert [r.observation.subject for r in rows] == ["https://a.test/x.jpg"]
        assert len(history(conn, Scope.HOST, "https://a.test")) == 1
