"""Policy files, per-rule decisions and the policy CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from provenance.errors import BadInput
from provenance.policy import (
    ObservationFacts,
    OptOutHit,
    PolicyFacts,
    SightingFacts,
    decide,
    default_policy_path,
    load_policy,
    parse_policy,
)
from tests import policy_catalog as pc
from tests.conftest import Cli

SHIPPED = Path(__file__).resolve().parents[1] / "provenance" / "policies"
BASE = """name = "t"
[licenses]
allow = ["cc0", "cc-by"]
[signals]
tokens = ["gptbot"]
count = ["robots", "c2pa"]
[signals.max_age_days]
robots = 30
"""
SHA = "ab" * 32
NOW = pc.T0


@pytest.mark.parametrize("name", ["strict", "research-noncommercial", "commercial"])
def test_shipped_policies_load(name: str) -> None:
    policy = load_policy(SHIPPED / f"{name}.toml")
    assert policy.name == name
    assert "CC0-1.0" in policy.licenses.allowed_spdx
    assert len(policy.sha256) == 64


def test_default_is_strict_and_excludes_nc_and_share_alike() -> None:
    policy = load_policy(default_policy_path())
    assert policy.name == "strict"
    assert "CC-BY-NC-4.0" not in policy.licenses.allowed_spdx
    assert "CC-BY-SA-4.0" not in policy.licenses.allowed_spdx


@pytest.mark.parametrize(("text", "needle"), [
    (BASE + "[quality]\nmin_widht = 3\n", "line 10: `quality.min_widht`: unknown key"),
    (BASE.replace('tokens = ["gptbot"]', "tokens = 3"), "line 5: `signals.tokens`: must be a list"),
    (BASE.replace('"cc-by"]', '"CC-BY-9.9"]'), "line 3: `licenses.allow`"),
    (BASE + "[quality]\nmin_width = -1\n", "line 10: `quality.min_width`: must be at least 0"),
    (BASE + "[optouts]\nhonor = false\n", "always honored"),
    (BASE.replace("robots = 30", "robots = 0"), "`signals.max_age_days.robots`"),
    (BASE + '[signals.unknown]\nrobots = "maybe"\n', "`signals.unknown.robots`"),
    ("name = 1\n", "line 1: `name`: must be a string"),
    ("name = [\n", "not valid TOML"),
])
def test_bad_policies_name_key_and_line(text: str, needle: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_policy(text, "p.toml")
    assert needle in str(info.value)


def _facts(**kw: object) -> PolicyFacts:
    url = "https://a.com/x.jpg"
    base: dict[str, object] = {
        "sha256": SHA, "decode_ok": True, "width": 500, "height": 400, "format": "JPEG",
        "sightings": (SightingFacts(1, "ok", url, "a.com", "a.com", "crawl", "CC-BY-4.0"),),
        "observations": (
            ObservationFacts(10, "url", url, "robots", "allowed", NOW - timedelta(days=1),
                             ",", ",", ",gptbot,"),
            ObservationFacts(11, "image", SHA, "c2pa", "allowed", NOW),
        ),
    }
    base.update(kw)
    return PolicyFacts(**base)  # type: ignore[arg-type]


def test_clean_image_is_included_and_cites_its_sighting() -> None:
    decision = decide(_facts(), parse_policy(BASE), NOW)
    assert decision.include and decision.reasons == ()
    assert decision.cited_sighting_id == 1


def test_each_rule_gives_its_reason() -> None:
    policy = parse_policy(BASE)
    url = "https://a.com/x.jpg"
    cases = {
        "license-not-allowed": _facts(sightings=(SightingFacts(1, "ok", url, "a.com", None,
                                                               None, "CC-BY-NC-4.0"),)),
        "license-unknown": _facts(sightings=(SightingFacts(1, "ok", url, "a.com"),)),
        "signal-reserved:robots": _facts(observations=(
            ObservationFacts(10, "url", url, "robots", "allowed", NOW, ",gptbot,", ",", ","),
            ObservationFacts(11, "image", SHA, "c2pa", "allowed", NOW))),
        "signal-unknown:c2pa": _facts(observations=(
            ObservationFacts(10, "url", url, "robots", "allowed", NOW, ",", ",", ",gptbot,"),)),
        "evidence-stale:robots": _facts(observations=(
            ObservationFacts(10, "url", url, "robots", "allowed", NOW - timedelta(days=31),
                             ",", ",", ",gptbot,"),
            ObservationFacts(11, "image", SHA, "c2pa", "allowed", NOW))),
        "opted-out": _facts(optouts=(OptOutHit(7, "sha256", "ref-7"),)),
    }
    for code, facts in cases.items():
        decision = decide(facts, policy, NOW)
        assert not decision.include
        assert code in decision.codes, (code, decision.codes)
    assert decide(cases["opted-out"], policy, NOW).optout_request_ids == (7,)


def test_token_in_no_list_is_unknown_and_newest_observation_wins() -> None:
    policy = parse_policy(BASE)
    url = "https://a.com/x.jpg"
    facts = _facts(observations=(
        ObservationFacts(10, "url", url, "robots", "reserved", NOW - timedelta(days=2)),
        ObservationFacts(12, "url", url, "robots", "allowed", NOW, ",", ",", ",ccbot,"),
        ObservationFacts(11, "image", SHA, "c2pa", "allowed", NOW)))
    assert decide(facts, policy, NOW).codes == ("signal-unknown:robots",)


def test_invalid_c2pa_allowed_is_unknown_unless_the_policy_says_so() -> None:
    data = json.dumps({"extra": {"validation_state": "Invalid"}}, sort_keys=True)
    url = "https://a.com/x.jpg"
    facts = _facts(observations=(
        ObservationFacts(10, "url", url, "robots", "allowed", NOW, ",", ",", ",gptbot,"),
        ObservationFacts(11, "image", SHA, "c2pa", "allowed", NOW, data=data)))
    assert decide(facts, parse_policy(BASE), NOW).codes == ("signal-unknown:c2pa",)
    lenient = parse_policy(
        BASE.replace("[signals]\n", "[signals]\nc2pa_invalid_allowed_counts = true\n"))
    assert decide(facts, lenient, NOW).include


def test_trusted_source_skips_url_signals_but_not_embedded() -> None:
    text = BASE + '[[trusted_sources]]\nsource_name = "own"\ncontract = "C-1"\n'
    facts = _facts(sightings=(SightingFacts(1, "ok", None, None, None, "own"),),
                   observations=(ObservationFacts(11, "image", SHA, "c2pa", "reserved", NOW),))
    assert decide(facts, parse_policy(text), NOW).codes == ("signal-reserved:c2pa",)


def test_quality_filters() -> None:
    text = BASE + ('[quality]\nmin_width = 600\nmax_aspect_ratio = 1.2\nformats = ["png"]\n'
                   "require_caption = true\n")
    codes = decide(_facts(decode_ok=False), parse_policy(text), NOW).codes
    assert set(codes) == {"too-small", "aspect-ratio", "format", "decode-failed", "no-caption"}


def _catalog(url: str) -> None:
    from provenance.db.engine import make_engine

    engine = make_engine(url)
    good, nc = "a" * 64, "b" * 64
    u1, u2 = "https://a.com/1.jpg", "https://a.com/2.jpg"
    pc.insert(engine, images=[pc.image(good), pc.image(nc)],
              sightings=[pc.sighting(1, good, url=u1, host="a.com", license_spdx="CC0-1.0"),
                         pc.sighting(2, nc, url=u2, host="a.com", license_spdx="CC-BY-NC-4.0")],
              signals=[pc.signal(i + 1, "url", u, "robots", "allowed", tokens_reserved=",",
                                 tokens_unknown=",", tokens_allowed=",gptbot,")
                       for i, u in enumerate([u1, u2])]
              + [pc.signal(3, "image", good, "c2pa", "allowed"),
                 pc.signal(4, "image", nc, "c2pa", "allowed")])
    engine.dispose()


def test_cli_check_eval_explain(cli: Cli, catalog_url: str, tmp_path: Path) -> None:
    _catalog(catalog_url)
    policy = tmp_path / "p.toml"
    policy.write_text(BASE.replace("robots = 30", "robots = 3650"))
    assert json.loads(cli("policy", "check", str(policy), "--json").stdout)["valid"] is True
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE + "[quality]\nbogus = 1\n")
    result = cli("policy", "check", str(bad), expect=2)
    assert "line 10" in result.stderr and "quality.bogus" in result.stderr
    doc = json.loads(cli("policy", "eval", "--policy", str(policy), "--as-of",
                         "2026-11-02T00:00:00Z", "--json").stdout)
    assert (doc["total"], doc["included"], doc["excluded"]) == (
        2, 1, {"license-not-allowed": 1})
    explained = json.loads(cli("policy", "explain", "bbbb", "--policy", str(policy),
                               "--as-of", "2026-11-02T00:00:00Z", "--json").stdout)
    assert explained["include"] is False
    assert [r["code"] for r in explained["reasons"]] == ["license-not-allowed"]
    assert any(rule["rule"] == "signal:robots" and rule["evidence"] for rule in explained["rules"])
    cli("policy", "explain", "cccc", "--policy", str(policy), expect=2)
