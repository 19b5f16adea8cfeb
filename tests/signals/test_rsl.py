"""RSL 1.0 license documents and their discovery.

Sources: RSL 1.0 (rslstandard.org/rsl) - the `<rsl xmlns="https://rslstandard.org/rsl">`
root, `<content url>` with `*`/`$` URL patterns and optional `server`, `<license>`,
`<permits type="usage">`, `<prohibits type="usage">` (values such as `ai-train`, `ai-all`,
`all`, `search`, `ai-input`), `<payment type="...">` (`purchase`, `subscription`,
`attribution`, `free`, ...); discovery by a robots.txt `License:` line and by a `Link:
<...>; rel="license"; type="application/rsl+xml"` header (rslstandard.org/guide/file-format).
Hostile XML vectors: the classic "billion laughs" entity expansion and an external entity
(defusedxml's documented attack classes).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.domain import SignalKind, SignalStatus
from provenance.signals.robots import parse_robots, robots_from_response
from provenance.signals.rsl import parse_rsl, rsl_locations

LIC = "https://example.com/license.xml"
A, R, U = SignalStatus.ALLOWED, SignalStatus.RESERVED, SignalStatus.UNKNOWN


def rsl(body: str) -> bytes:
    return f'<?xml version="1.0"?>\n<rsl xmlns="https://rslstandard.org/rsl">{body}</rsl>'.encode()


def verdict(body: str, url: str = "https://example.com/images/a.jpg") -> tuple[SignalStatus, str]:
    sig = parse_rsl(rsl(body), LIC, url)
    assert sig.kind is SignalKind.RSL
    assert sig.source == LIC
    return sig.status, sig.detail


def test_prohibits_training() -> None:
    # The common deployed shape: search and AI input permitted, training prohibited.
    body = (
        '<content url="/"><license><permits type="usage">search ai-input ai-index</permits>'
        '<prohibits type="usage">ai-train</prohibits></license></content>'
    )
    assert verdict(body) == (R, "prohibits ai-train")


def test_prohibits_ai_all_and_all() -> None:
    for value in ("ai-all", "all", "search, ai-all"):
        rule = f'<prohibits type="usage">{value}</prohibits>'
        body = f'<content url="/"><license>{rule}</license></content>'
        assert verdict(body)[0] is R, value


def test_prohibits_other_usage_only() -> None:
    body = (
        '<content url="/"><license><prohibits type="usage">search</prohibits></license></content>'
    )
    assert verdict(body) == (A, "permits ai-train")


def test_free_permission() -> None:
    body = (
        '<content url="/"><license><permits type="usage">ai-train,search</permits>'
        '<payment type="free"/></license></content>'
    )
    sig = parse_rsl(rsl(body), LIC, "https://example.com/x")
    assert (sig.status, sig.detail) == (A, "permits ai-train")
    assert sig.extra["terms"][0]["permits"] == ["ai-train", "search"]
    assert "conditional" not in sig.extra


def test_permits_without_training_reserves() -> None:
    body = '<content url="/"><license><permits type="usage">search</permits></license></content>'
    assert verdict(body) == (R, "ai-train not among permitted uses")


def test_payment_is_conditional_permission() -> None:
    body = (
        '<content url="/images/*"><license><permits type="usage">ai-all</permits>'
        '<payment type="purchase"><standard>https://example.com/terms</standard>'
        '<amount currency="USD">0.01</amount></payment></license></content>'
    )
    sig = parse_rsl(rsl(body), LIC, "https://example.com/images/a.jpg")
    assert sig.status is R
    assert sig.detail == "permits ai-train only under terms: purchase"
    assert sig.extra["conditional"] is True
    assert sig.extra["terms"][0]["payment"] == [
        {
            "type": "purchase",
            "standard": "https://example.com/terms",
            "amount": "0.01",
            "currency": "USD",
        }
    ]


def test_attribution_and_license_server_are_conditions() -> None:
    attribution = (
        '<content url="/"><license><permits type="usage">ai-train</permits>'
        '<payment type="attribution"/></license></content>'
    )
    assert verdict(attribution) == (R, "permits ai-train only under terms: attribution")
    server = (
        '<content url="/" server="https://rsl.example.com/api"><license>'
        '<permits type="usage">ai-train</permits></license></content>'
    )
    sig = parse_rsl(rsl(server), LIC, "https://example.com/a")
    assert (sig.status, sig.extra["license_server"]) == (R, "https://rsl.example.com/api")
    assert sig.extra["conditional"] is True


def test_several_content_blocks_most_specific_wins() -> None:
    body = (
        '<content url="/*"><license><prohibits type="usage">ai-train</prohibits>'
        "</license></content>"
        '<content url="/images/free/*"><license><permits type="usage">ai-train</permits>'
        '<payment type="free"/></license></content>'
        '<content url="https://example.com/docs/*.pdf$"><license>'
        '<permits type="usage">ai-train</permits><payment type="subscription"/></license></content>'
    )
    assert verdict(body, "https://example.com/images/free/a.jpg")[0] is A
    assert verdict(body, "https://example.com/images/other.jpg")[0] is R
    assert verdict(body, "https://example.com/docs/x.pdf")[1].endswith("subscription")
    assert verdict(body, "https://example.com/docs/x.pdf?y")[1] == "prohibits ai-train"
    assert verdict(body, "https://other.example/docs/x.pdf")[1] == "prohibits ai-train"


def test_no_matching_block_states_nothing() -> None:
    body = (
        '<content url="https://other.example/*"><license>'
        '<prohibits type="usage">all</prohibits></license></content>'
    )
    assert verdict(body) == (A, "no statement (no content block matches the URL)")


def test_rss_feed_module() -> None:
    feed = (
        b'<rss xmlns:rsl="https://rslstandard.org/rsl" version="2.0"><channel><item>'
        b'<rsl:content url="https://example.com/post/1"><rsl:license>'
        b'<rsl:prohibits type="usage">ai-train</rsl:prohibits></rsl:license></rsl:content>'
        b"</item></channel></rss>"
    )
    assert parse_rsl(feed, LIC, "https://example.com/post/1").status is R


def test_malformed_and_not_rsl() -> None:
    bad = parse_rsl(b"<rsl><content url='/'><license>", LIC, "https://example.com/")
    assert bad.status is U and "unreadable RSL document" in bad.detail
    assert bad.evidence == "<rsl><content url='/'><license>"
    assert parse_rsl(b"<html><body/></html>", LIC, "https://example.com/").status is U
    assert parse_rsl(b"", LIC, "https://example.com/").status is U
    assert parse_rsl(b"\x00\xff\xfe", LIC, "https://example.com/").status is U


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rsl xmlns="https://rslstandard.org/rsl"><content url="/">&lol4;</content></rsl>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rsl [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rsl xmlns="https://rslstandard.org/rsl"><content url="/">&xxe;</content></rsl>"""


def test_entity_expansion_is_refused() -> None:
    sig = parse_rsl(BILLION_LAUGHS, LIC, "https://example.com/")
    assert sig.status is U
    assert "EntitiesForbidden" in sig.detail


def test_external_entity_is_refused() -> None:
    sig = parse_rsl(EXTERNAL_ENTITY, LIC, "https://example.com/")
    assert sig.status is U
    assert "root:" not in (sig.detail + str(sig.extra))


def test_locations_from_robots_and_link_headers() -> None:
    doc = parse_robots(
        "License: /license.xml\nUser-agent: *\nAllow: /\n", "https://example.com/robots.txt"
    )
    headers = [
        (
            "Link",
            '<https://cdn.example/l.xml>; rel="license"; type="application/rsl+xml", '
            '<https://example.com/next>; rel="next"',
        ),
        ("link", "<rel/other.xml>; rel=license; type=application/rsl+xml"),
        ("Link", '<https://example.com/cc.html>; rel="license"'),  # not RSL
        ("Link", '<https://example.com/license.xml>; rel="license"; type="application/rsl+xml"'),
    ]
    assert rsl_locations(doc, headers, "https://example.com/a/b.jpg") == [
        "https://example.com/license.xml",
        "https://cdn.example/l.xml",
        "https://example.com/a/rel/other.xml",
    ]
    assert rsl_locations(None, []) == []
    assert rsl_locations(robots_from_response("s", 404, None, None), []) == []


@settings(max_examples=150, deadline=None)
@given(xml=st.binary(max_size=400), url=st.text(max_size=30) | st.just("http://["))
def test_parse_never_raises(xml: bytes, url: str) -> None:
    assert parse_rsl(xml, LIC, url).status in set(SignalStatus)


@settings(max_examples=150, deadline=None)
@given(
    pattern=st.text(max_size=20),
    value=st.text(max_size=20),
    payment=st.text(alphabet="abcdefr-", max_size=8),
    url=st.text(max_size=30) | st.just("http://[x/"),
)
def test_structured_never_raises(pattern: str, value: str, payment: str, url: str) -> None:
    body = (
        f"<content url={quoteattr(pattern)}><license><permits>{escape(value)}</permits>"
        f"<payment type={quoteattr(payment)}/></license></content>"
    )
    assert parse_rsl(rsl(body), LIC, url).status in set(SignalStatus)


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(["Link", "link"]),
    value=st.text(max_size=80) | st.just('<http://[x>; rel="license"; type="application/rsl+xml"'),
    base=st.sampled_from(["https://example.com/", "http://[", ""]),
    license_line=st.text(max_size=20) | st.just("//[a"),
)
def test_locations_never_raise(name: str, value: str, base: str, license_line: str) -> None:
    doc = parse_robots(f"License: {license_line}\n", base)
    assert isinstance(rsl_locations(doc, [(name, value)], base), list)
