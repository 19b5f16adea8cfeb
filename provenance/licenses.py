"""License text or URL -> SPDX id and permission facts. Pure: no I/O beyond reading, once, the
SPDX license list that `license-expression` bundles.

Rules (fail closed, never guess):
- `recognized` is true exactly when `spdx_id` is set: the text names one license (or an SPDX
  expression of them) that has an SPDX id. The raw text is always kept verbatim in `input`.
- A known Creative Commons license that SPDX has no id for (a port such as `by/3.0/fr/`, or
  "CC BY" without a version) is `recognized=False` with `spdx_id=None`, but its family, version
  and permission facts are filled in: the terms are known, only the identifier is missing. A
  port is never mapped to its unported license.
- The Public Domain Mark has the SPDX id `CC-PDM-1.0` (in the bundled list); family `pdm`.
- A GNU license named with a version but without "only"/"or later" ("GPLv3", the deprecated SPDX
  id `GPL-3.0`, a gnu.org URL) is the `-only` id, as SPDX defines its deprecated ids.
- Anything with words the grammar does not know ("CC BY 4.0 except commercial use") is
  unrecognized; so are empty text and text longer than a license name can be.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from license_expression import ExpressionError

from provenance.domain import LicenseInfo
from provenance.license_data import (
    CC_PORTS,
    ID_SITES,
    NAMES,
    NON_CC,
    PORT_NAMES,
    URLS,
    Facts,
    exception_lookup,
    spdx_index,
    spdx_licensing,
    spdx_lookup,
)

_MAX_LEN = 300  # longer text is prose or a whole license body, never a name we can trust


class _Terms(NamedTuple):
    spdx_id: str | None
    family: str | None
    version: str | None
    facts: Facts | None


# --- Creative Commons -------------------------------------------------------------------------

_CC_ORDER = ("by", "nc", "nd", "sa")
_CC_VERSIONS = frozenset({"1.0", "2.0", "2.1", "2.5", "3.0", "4.0"})
_NO_PORT = frozenset({"international", "unported", "generic"})
# Element words, longest phrases first so "no derivative works" wins over "no derivatives".
_CC_WORDS: tuple[tuple[tuple[str, ...], str, bool], ...] = (
    (("no", "derivative", "works"), "nd", True),
    (("non", "commercial"), "nc", True),
    (("no", "derivatives"), "nd", True),
    (("no", "derivs"), "nd", True),
    (("share", "alike"), "sa", True),
    (("attribution",), "by", True),
    (("noncommercial",), "nc", True),
    (("noderivs",), "nd", True),
    (("noderivatives",), "nd", True),
    (("sharealike",), "sa", True),
    (("by",), "by", False),
    (("nc",), "nc", False),
    (("nd",), "nd", False),
    (("sa",), "sa", False),
)
_CC_WORDS_BY_FIRST: dict[str, list[tuple[tuple[str, ...], str, bool]]] = {}
for _entry in _CC_WORDS:
    _CC_WORDS_BY_FIRST.setdefault(_entry[0][0], []).append(_entry)
_CC_TAIL = re.compile(
    r"(?:deed|legalcode)(?:\.[a-z]{2,3}(?:[-_@][a-z0-9]{2,8})*)?(?:\.(?:html?|txt))?"
    r"|index\.html?|rdf|\d+x\d+\.png"
)
_CC_ID = re.compile(r"CC-((?:BY|NC|ND|SA)(?:-(?:BY|NC|ND|SA))*)-(\d\.\d)(?:-([A-Z]+))?")


def _cc_terms(elems: frozenset[str], version: str | None, port: str | None) -> _Terms | None:
    """Terms of a CC license given its elements; None for combinations CC never published."""
    if not elems or {"nd", "sa"} <= elems:
        return None
    if "by" not in elems and version != "1.0":  # only the 1.0 suite had licenses without BY
        return None
    if port and version in (None, "4.0"):  # 4.0 has no ports
        return None
    if version == "2.1" and not port:  # 2.1 exists only as ports
        return None
    names = [e for e in _CC_ORDER if e in elems]
    spdx = None
    if version:
        candidate = "CC-" + "-".join(n.upper() for n in names) + f"-{version}"
        spdx = spdx_lookup().get((candidate + (f"-{port}" if port else "")).lower())
    facts: Facts = ("nc" not in elems, "nd" not in elems, "by" in elems, "sa" in elems)
    return _Terms(spdx, "cc-" + "-".join(names), version, facts)


def _cc_from_words(tokens: list[str]) -> _Terms | None:
    """Grammar: [creative commons|cc] ELEMENTS [VERSION] [international|unported|PORT]."""
    i, prefix = 0, False
    if tokens[:2] == ["creative", "commons"]:
        i, prefix = 2, True
    elif tokens[:1] == ["cc"]:
        i, prefix = 1, True
    elems: list[str] = []
    spelled = False
    while i < len(tokens):
        for phrase, elem, is_word in _CC_WORDS_BY_FIRST.get(tokens[i], ()):
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                elems.append(elem)
                spelled = spelled or is_word
                i += len(phrase)
                break
        else:
            break
    version = tokens[i] if i < len(tokens) and tokens[i] in _CC_VERSIONS else None
    rest = " ".join(tokens[i + (version is not None) :])
    # Abbreviations ("BY-SA") need the CC prefix; spelled-out titles need a version.
    if len(set(elems)) != len(elems) or not (prefix or (spelled and version)):
        return None
    if rest and rest not in _NO_PORT and rest not in CC_PORTS and rest not in PORT_NAMES:
        return None
    port = None if not rest or rest in _NO_PORT else PORT_NAMES.get(rest, rest)
    return _cc_terms(frozenset(elems), version, port)


def _cc_from_path(segs: list[str]) -> _Terms | None:
    """A creativecommons.org path (or a badge path under /l/ or /p/) split into segments."""
    head, rest = segs[:3], segs[3:]
    if rest and rest[0] in CC_PORTS and head[:1] in (["licenses"], ["l"]):
        port, rest = rest[0], rest[1:]
    else:
        port = None
    if len(rest) > 1 or (rest and not _CC_TAIL.fullmatch(rest[0])):
        return None
    if head in (["publicdomain", "zero", "1.0"], ["p", "zero", "1.0"]):
        return _terms_for_id("CC0-1.0")
    if head in (["publicdomain", "mark", "1.0"], ["p", "mark", "1.0"]):
        return _terms_for_id("CC-PDM-1.0")
    if segs[:2] == ["licenses", "publicdomain"] and len(segs) <= 3:
        tail = segs[2:]
        return _terms_for_id("CC-PDDC") if all(_CC_TAIL.fullmatch(t) for t in tail) else None
    if len(head) < 3 or head[0] not in ("licenses", "l") or head[2] not in _CC_VERSIONS:
        return None
    elems = head[1].split("-")
    if not set(elems) <= set(_CC_ORDER) or len(set(elems)) != len(elems):
        return None
    return _cc_terms(frozenset(elems), head[2], port)


# --- SPDX list and lookups --------------------------------------------------------------------


@functools.cache
def _known_terms() -> dict[str, _Terms]:
    """SPDX id -> terms, for every id whose permission facts this module states."""
    known: dict[str, _Terms] = {}
    for key in spdx_index()[0]:
        match = _CC_ID.fullmatch(key)
        if match:
            port = match.group(3).lower() if match.group(3) else None
            terms = _cc_terms(frozenset(match.group(1).lower().split("-")), match.group(2), port)
            if terms is not None and terms.spdx_id == key:
                known[key] = terms
        elif key in NON_CC:
            family, version, facts = NON_CC[key]
            known[key] = _Terms(key, family, version, facts)
    return known


@functools.cache
def _word_lookup() -> dict[str, str]:
    """Canonical words -> SPDX id: every SPDX id spelled loosely, then the common names."""
    table: dict[str, str] = {}
    clashes: set[str] = set()
    for lowered, key in spdx_lookup().items():
        words = _canonical(lowered)
        if table.setdefault(words, key) != key:
            clashes.add(words)
    for words in clashes:  # two ids read the same once loosened: let neither win
        del table[words]
    lookup = set(spdx_lookup().values())
    table.update(
        (_canonical(name), key) for key, names in NAMES.items() for name in names if key in lookup
    )
    return table


def _terms_for_id(spdx_id: str) -> _Terms | None:
    key = spdx_lookup().get(spdx_id.lower())
    if key is None:
        return None
    return _known_terms().get(key) or _Terms(key, None, None, None)


# --- text ---------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212_/,;:'\"“”‘’]+")
_FILLER = re.compile(r"\b(?:the|version|under|any|(?:public )?licen[cs]e[ds]?)\b")
_GLUED = re.compile(r"(gpl|lgpl|agpl|gfdl|fdl|apache|mpl|asl)v?(\d+(?:\.\d+)?)(\+?)")
_VERSION = re.compile(r"v?(\d+)(?:\.(\d+))?(\+?)")
_DIGIT = re.compile(r"\d")


def _canonical(text: str) -> str:
    """Loosen a name: lower case, separators and filler words dropped, versions as N.M."""
    tokens: list[str] = []
    for raw in _SEPARATORS.split(_FILLER.sub(" ", text.lower())):
        token = raw.strip(".()[]")
        if not _DIGIT.search(token):
            if token:
                tokens.append(token)
            continue
        glued = _GLUED.fullmatch(token)
        if glued:
            tokens.append(glued.group(1))
            token = glued.group(2) + glued.group(3)
        version = _VERSION.fullmatch(token)
        if version:
            tokens.append(f"{version.group(1)}.{version.group(2) or 0}")
            if version.group(3):
                tokens += ["or", "later"]
        elif token:
            tokens.append(token)
    return " ".join(tokens)


def _from_words(text: str) -> _Terms | None:
    exact = _terms_for_id(text)  # an SPDX id as written, before loosening can blur it
    if exact is not None:
        return exact
    words = _canonical(text)
    if not words:
        return None
    key = _word_lookup().get(words)
    if key is not None:
        return _terms_for_id(key)
    return _cc_from_words(words.split(" "))


_EXPR_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_OPERATORS = frozenset({"and", "or", "with"})


def _well_formed(tokens: list[str]) -> bool:
    """SPDX expression grammar over tokens, checked here because license-expression can crash
    (IndexError) on some malformed input such as "() OR" instead of raising its own error."""
    depth, want_operand, after_with = 0, True, False
    for token in tokens:
        lowered = token.lower()
        if want_operand and token == "(" and not after_with:
            depth += 1
        elif want_operand and lowered not in _OPERATORS and token != ")":
            known = exception_lookup() if after_with else spdx_lookup()
            if lowered not in known:
                return False
            want_operand, after_with = False, False
        elif not want_operand and token == ")" and depth > 0:
            depth -= 1
        elif not want_operand and lowered in _OPERATORS:
            want_operand, after_with = True, lowered == "with"
        else:
            return False
    return depth == 0 and not want_operand


def _from_expression(text: str) -> _Terms | None:
    """An SPDX expression whose every operand is an SPDX id (or an exception after WITH).

    Facts and family are reported only when all licenses in it agree on them.
    """
    tokens = _EXPR_TOKEN.findall(text)
    if not any(t.lower() in _OPERATORS for t in tokens) or not _well_formed(tokens):
        return None
    licensing = spdx_licensing()
    try:
        parsed = licensing.parse(text, strict=True)
    except ExpressionError:
        return None
    if parsed is None:
        return None
    rendered = str(parsed.render("{symbol.key}"))
    parts = [_terms_for_id(key) for key in licensing.license_keys(parsed)]
    if any(p is None or p.facts is None for p in parts) or " WITH " in rendered:
        return _Terms(rendered, None, None, None)
    families = {p.family for p in parts if p is not None}
    versions = {p.version for p in parts if p is not None}
    facts = {p.facts for p in parts if p is not None}
    return _Terms(
        rendered,
        families.pop() if len(families) == 1 else None,
        versions.pop() if len(versions) == 1 and len(families) == 1 else None,
        facts.pop() if len(facts) == 1 else None,
    )


# --- URLs ---------------------------------------------------------------------------------------

_URL_START = re.compile(r"(?:https?://|www\.|[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/)", re.I)
_URL_SUFFIX = re.compile(r"(?:-standalone)?(?:\.[a-z]{2})?\.(?:html?|txt|php|json)$")
_GNU_TEXT = re.compile(r"(a|l)?(gpl|fdl)-(\d\.\d)")


def _from_url(text: str) -> _Terms | None:
    try:
        parts = urlsplit(text if "://" in text else "//" + text)
        host = (parts.hostname or "").removeprefix("www.")
    except ValueError:
        return None
    if parts.scheme not in ("", "http", "https"):
        return None
    segs = [s for s in parts.path.lower().split("/") if s]
    if host in ("creativecommons.org", "i.creativecommons.org", "licensebuttons.net"):
        return _cc_from_path(segs)
    if not segs:
        return _terms_for_id(URLS[host]) if host in URLS else None
    segs[-1] = _URL_SUFFIX.sub("", segs[-1])
    where, last = "/".join([host, *segs[:-1]]), segs[-1]
    if where in ID_SITES:
        return _terms_for_id(last)
    gnu = _GNU_TEXT.fullmatch(last)
    if host == "gnu.org" and gnu and where in ("gnu.org/licenses", "gnu.org/licenses/old-licenses"):
        prefix = (gnu.group(1) or "").upper() + ("GPL" if gnu.group(2) == "gpl" else "GFDL")
        return _terms_for_id(f"{prefix}-{gnu.group(3)}-only")
    key = f"{where}/{last}"
    return _terms_for_id(URLS[key]) if key in URLS else None


# --- public API ---------------------------------------------------------------------------------

_PARENTHETICAL = re.compile(r"([^()]*?)\s*\(([^()]*)\)\s*\.?")
_NAME_THEN_URL = re.compile(
    r"(.*?[^\s,;:\u2013\u2014-])[\s,;:\u2013\u2014-]+((?:https?://|www\.)\S+)", re.I
)


def _classify(text: str) -> _Terms | None:
    stripped = text.strip().strip("<>\"'").strip()
    if not stripped or len(stripped) > _MAX_LEN:
        return None
    halves = _PARENTHETICAL.fullmatch(stripped) or _NAME_THEN_URL.fullmatch(stripped)
    if halves and halves.group(1):
        # "Creative Commons Attribution 4.0 International (CC BY 4.0)", "CC BY 4.0 https://...":
        # both halves must name the same license; anything else beside a name may restrict it.
        first, second = _classify(halves.group(1)), _classify(halves.group(2))
        if first is not None and first == second:
            return first
    if _URL_START.match(stripped):
        return _from_url(stripped)
    return _from_words(stripped) or _from_expression(stripped)


def _info(text: str, terms: _Terms | None) -> LicenseInfo:
    if terms is None:
        return LicenseInfo(input=text, spdx_id=None, recognized=False)
    facts = terms.facts or (None, None, None, None)
    return LicenseInfo(
        input=text,
        spdx_id=terms.spdx_id,
        recognized=terms.spdx_id is not None,
        family=terms.family,
        version=terms.version,
        commercial_use=facts[0],
        derivatives=facts[1],
        attribution=facts[2],
        share_alike=facts[3],
    )


@functools.lru_cache(maxsize=1 << 16)
def normalize_license(text: str) -> LicenseInfo:
    """Map a license name, SPDX id or expression, or license URL to SPDX and permission facts.

    Never raises for any str; unknown text gives `recognized=False` with every fact None. See
    the module docstring for the rules (CC ports without an SPDX id, PDM, GNU versions). Cached:
    ingest calls this for every row and sees few distinct strings.
    """
    return _info(text, _classify(text))


@functools.lru_cache(maxsize=4096)
def license_facts(spdx_id: str) -> LicenseInfo:
    """Facts for an SPDX id or SPDX expression (any case); anything else is unrecognized."""
    stripped = spdx_id.strip()
    return _info(spdx_id, _terms_for_id(stripped) or _from_expression(stripped))


def requires_attribution(spdx_id: str | None) -> bool:
    """Whether works under this SPDX id need credit. True unless the license is known not to
    (CC0, PDM, PDDL, ...): an unknown or missing license fails closed."""
    if not spdx_id:
        return True
    return license_facts(spdx_id).attribution is not False


def table_ids() -> frozenset[str]:
    """Every SPDX id this module's own tables can emit (for validation against the SPDX list)."""
    named = set(NON_CC) | set(NAMES) | set(URLS.values())
    return frozenset(named | set(_known_terms()))
