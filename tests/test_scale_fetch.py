"""`fetch --engine ray --partitions 3` against real local HTTP servers on PostgreSQL: every
pending URL is requested exactly once across the partitions (host buckets, advisory locks),
and the merged summary is what one process reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select

from provenance.db.engine import make_engine
from provenance.db.models import FetchAttempt, Sighting
from provenance.samples import image_bytes
from tests.conftest import PG_URL
from tests.test_scale import _cli, fresh_pg, local_ray  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not PG_URL, reason="PROVENANCE_TEST_PG_URL not set")
URLS = 12


def test_ray_fetch_requests_each_url_once(
    local_ray: None, fresh_pg: Callable[[], str], tmp_path: Path, httpserver: HTTPServer,  # noqa: F811
) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data("User-agent: *\nAllow: /\n")
    for absent in ("/ai.txt", "/.well-known/tdmrep.json"):
        httpserver.expect_request(absent).respond_with_data("", status=404)
    for k in range(URLS):
        httpserver.expect_request(f"/img/{k}.jpg").respond_with_data(
            image_bytes(k, (32, 24), "JPEG"), content_type="image/jpeg")
    port = httpserver.port
    # Two host names for the same server: two host buckets, possibly two partitions.
    hosts = ["127.0.0.1", "localhost"]
    manifest = tmp_path / "urls.csv"
    manifest.write_text("url,license\n" + "".join(
        f"http://{hosts[k % 2]}:{port}/img/{k}.jpg,CC0-1.0\n" for k in range(URLS)))
    url = fresh_pg()
    cli = _cli(url, tmp_path)
    cli("ingest", str(manifest))
    done = json.loads(cli("fetch", "--allow-private", "--engine", "ray", "--partitions", "3",
                          "--json").stdout)
    assert (done["fetched"], done["failed"], done["pending"]) == (URLS, 0, 0), done
    images = [r for r, _ in httpserver.log if r.path.startswith("/img/")]
    assert sorted(r.path for r in images) == sorted(f"/img/{k}.jpg" for k in range(URLS))
    engine = make_engine(url)
    with engine.connect() as conn:
        attempts = conn.execute(select(func.count()).select_from(FetchAttempt)).scalar_one()
        pending = conn.execute(select(func.count()).select_from(Sighting)
                               .where(Sighting.status == "pending")).scalar_one()
    engine.dispose()
    assert attempts == URLS and pending == 0
    again = json.loads(cli("fetch", "--allow-private", "--engine", "ray", "--partitions", "2",
                           "--json").stdout)
    assert again["fetched"] == 0 and again["pending"] == 0
