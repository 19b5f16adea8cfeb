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

from license_expression import (
    ExpressionError,
    Licensing,
    get_license_index,
    get_spdx_licensing,
)

from provenance.domain import LicenseInfo

# (commercial_use, derivatives, attribution, share_alike)
Facts = tuple[bool, bool, bool, bool]
_NOTICE: Facts = (True, True, True, False)  # permissive, keep the notice / credit
_FREE: Facts = (True, True, False, False)  # public domain or equivalent
_COPYLEFT: Facts = (True, True, True, True)

_MAX_LEN = 300  # longer text is prose or a whole license body, never a name we can trust


class _Terms(NamedTuple):
    spdx_id: str | None
    family: str | None
    version: str | None
    facts: Facts | None


# SPDX id -> (family, version, facts) for the non-CC licenses whose terms we state. CC ids are
# derived from the SPDX list itself (see _known_terms).
_NON_CC: dict[str, tuple[str, str | None, Facts]] = {
    "CC0-1.0": ("cc0", "1.0", _FREE),
    "CC-PDM-1.0": ("pdm", "1.0", _FREE),
    "CC-PDDC": ("cc-pddc", None, _FREE),
    "PDDL-1.0": ("pddl", "1.0", _FREE),
    "Unlicense": ("unlicense", None, _FREE),
    "0BSD": ("0bsd", None, _FREE),
    "MIT-0": ("mit-0", None, _FREE),
    "WTFPL": ("wtfpl", None, _FREE),
    "MIT": ("mit", None, _NOTICE),
    "BSD-2-Clause": ("bsd-2-clause", None, _NOTICE),
    "BSD-3-Clause": ("bsd-3-clause", None, _NOTICE),
    "ISC": ("isc", None, _NOTICE),
    "Zlib": ("zlib", None, _NOTICE),
    "Apache-2.0": ("apache", "2.0", _NOTICE),
    "ODC-By-1.0": ("odc-by", "1.0", _NOTICE),
    # Both CDLA-Permissive versions ask to pass the agreement text on with the data; treating
    # that as an attribution duty is the cautious reading.
    "CDLA-Permissive-1.0": ("cdla-permissive", "1.0", _NOTICE),
    "CDLA-Permissive-2.0": ("cdla-permissive", "2.0", _NOTICE),
    "CDLA-Sharing-1.0": ("cdla-sharing", "1.0", _COPYLEFT),
    "ODbL-1.0": ("odbl", "1.0", _COPYLEFT),
    "MPL-2.0": ("mpl", "2.0", _COPYLEFT),
} | {
    f"{prefix}-{ver}-{scope}": (prefix.lower(), ver, _COPYLEFT)
    for prefix, versions in (
        ("GPL", ("1.0", "2.0", "3.0")),
        ("LGPL", ("2.0", "2.1", "3.0")),
        ("AGPL", ("1.0", "3.0")),
        ("GFDL", ("1.1", "1.2", "1.3")),
    )
    for ver in versions
    for scope in ("only", "or-later")
}

# Common names not derivable from the SPDX ids; keys are canonicalised like any input.
_ALIASES: dict[str, str] = {
    "the mit": "MIT",
    "expat": "MIT",
    "apache software 2.0": "Apache-2.0",
    "asl 2.0": "Apache-2.0",
    "bsd 2 clause simplified": "BSD-2-Clause",
    "simplified bsd": "BSD-2-Clause",
    "bsd 3 clause new or revised": "BSD-3-Clause",
    "new bsd": "BSD-3-Clause",
    "revised bsd": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause",
    "unlicense": "Unlicense",
    "mozilla 2.0": "MPL-2.0",
    "gnu gpl 2.0": "GPL-2.0-only",
    "gnu gpl 3.0": "GPL-3.0-only",
    "gnu gpl 2.0 or later": "GPL-2.0-or-later",
    "gnu gpl 3.0 or later": "GPL-3.0-or-later",
    "gnu general 2.0": "GPL-2.0-only",
    "gnu general 3.0": "GPL-3.0-only",
    "gnu general 2.0 or later": "GPL-2.0-or-later",
    "gnu general 3.0 or later": "GPL-3.0-or-later",
    "gnu lesser general 2.1": "LGPL-2.1-only",
    "gnu lesser general 3.0": "LGPL-3.0-only",
    "gnu affero general 3.0": "AGPL-3.0-only",
    "gnu free documentation 1.2": "GFDL-1.2-only",
    "gnu free documentation 1.3": "GFDL-1.3-only",
    "gfdl 1.2 or later": "GFDL-1.2-or-later",
    "open data commons attribution": "ODC-By-1.0",
    "open data commons attribution 1.0": "ODC-By-1.0",
    "odc by": "ODC-By-1.0",
    "open database": "ODbL-1.0",
    "open database 1.0": "ODbL-1.0",
    "odbl": "ODbL-1.0",
    "open data commons open database": "ODbL-1.0",
    "open data commons open database 1.0": "ODbL-1.0",
    "open data commons public domain dedication and": "PDDL-1.0",
    "pddl": "PDDL-1.0",
    "community data agreement permissive 2.0": "CDLA-Permissive-2.0",
    "community data agreement sharing 1.0": "CDLA-Sharing-1.0",
    "cc0": "CC0-1.0",
    "cc0 1.0": "CC0-1.0",
    "cc0 1.0 universal": "CC0-1.0",
    "cc zero": "CC0-1.0",
    "cc 0.0": "CC0-1.0",
    "creative commons zero": "CC0-1.0",
    "creative commons zero 1.0 universal": "CC0-1.0",
    "creative commons cc0": "CC0-1.0",
    "creative commons cc0 1.0 universal": "CC0-1.0",
    "cc0 1.0 universal public domain dedication": "CC0-1.0",
    "public domain mark": "CC-PDM-1.0",
    "public domain mark 1.0": "CC-PDM-1.0",
    "creative commons public domain mark": "CC-PDM-1.0",
    "creative commons public domain mark 1.0": "CC-PDM-1.0",
    "pdm": "CC-PDM-1.0",
    "pdm 1.0": "CC-PDM-1.0",
    "cc pdm": "CC-PDM-1.0",
}

# --- Creative Commons -------------------------------------------------------------------------

_CC_ORDER = ("by", "nc", "nd", "sa")
_CC_VERSIONS = frozenset({"1.0", "2.0", "2.1", "2.5", "3.0", "4.0"})
# Jurisdiction ports CC published (2.0 to 3.0, a few at 1.0), plus the 3.0 IGO licenses.
_CC_PORTS = frozenset(
    {
        "am", "ar", "at", "au", "az", "be", "bg", "br", "ca", "ch", "cl", "cn", "co", "cr", "cz",
        "de", "dk", "ec", "ee", "eg", "es", "fi", "fr", "ge", "gr", "gt", "hk", "hr", "hu", "ie",
        "igo", "il", "in", "it", "jp", "kr", "lu", "mk", "mt", "mx", "my", "nl", "no", "nz", "pe",
        "ph", "pl", "pr", "pt", "ro", "rs", "scotland", "se", "sg", "si", "th", "tw", "ug", "uk",
        "us", "ve", "vn", "za",
    }
)  # fmt: skip
_PORT_NAMES = {
    "germany": "de", "austria": "at", "netherlands": "nl", "united states": "us",
    "australia": "au", "england and wales": "uk", "united kingdom": "uk", "france": "fr",
    "japan": "jp", "canada": "ca", "scotland": "scotland", "igo": "igo",
}  # fmt: skip
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
        spdx = _spdx_lookup().get((candidate + (f"-{port}" if port else "")).lower())
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
    if rest and rest not in _NO_PORT and rest not in _CC_PORTS and rest not in _PORT_NAMES:
        return None
    port = None if not rest or rest in _NO_PORT else _PORT_NAMES.get(rest, rest)
    return _cc_terms(frozenset(elems), version, port)


def _cc_from_path(segs: list[str]) -> _Terms | None:
    """A creativecommons.org path (or a badge path under /l/ or /p/) split into segments."""
    head, rest = segs[:3], segs[3:]
    if rest and rest[0] in _CC_PORTS and head[:1] in (["licenses"], ["l"]):
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
def _spdx_index() -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
    """(license ids, exception ids, deprecated GNU id -> current id) from the bundled list.

    scancode's `LicenseRef-` keys are not SPDX ids and are left out.
    """
    licenses: set[str] = set()
    exceptions: set[str] = set()
    deprecated: dict[str, str] = {}
    for entry in get_license_index():
        key = entry.get("spdx_license_key") or ""
        if not key or key.startswith("LicenseRef-"):
            continue
        (exceptions if entry.get("is_exception") else licenses).add(key)
        for old in entry.get("other_spdx_license_keys") or ():
            if re.fullmatch(r"(?:A|L)?GPL-\d\.\d\+?|GFDL-\d\.\d\+?", old):
                deprecated[old] = key
    return frozenset(licenses), frozenset(exceptions), deprecated


@functools.cache
def _spdx_lookup() -> dict[str, str]:
    """Lower-case SPDX license id (current or deprecated GNU spelling) -> current id."""
    licenses, _, deprecated = _spdx_index()
    table = {key.lower(): key for key in licenses}
    table.update((old.lower(), new) for old, new in deprecated.items())
    return table


@functools.cache
def _known_terms() -> dict[str, _Terms]:
    """SPDX id -> terms, for every id whose permission facts this module states."""
    known: dict[str, _Terms] = {}
    for key in _spdx_index()[0]:
        match = _CC_ID.fullmatch(key)
        if match:
            port = match.group(3).lower() if match.group(3) else None
            terms = _cc_terms(frozenset(match.group(1).lower().split("-")), match.group(2), port)
            if terms is not None and terms.spdx_id == key:
                known[key] = terms
        elif key in _NON_CC:
            family, version, facts = _NON_CC[key]
            known[key] = _Terms(key, family, version, facts)
    return known


@functools.cache
def _word_lookup() -> dict[str, str]:
    """Canonical words -> SPDX id: every SPDX id spelled loosely, then the common names."""
    table: dict[str, str] = {}
    clashes: set[str] = set()
    for lowered, key in _spdx_lookup().items():
        words = _canonical(lowered)
        if table.setdefault(words, key) != key:
            clashes.add(words)
    for words in clashes:  # two ids read the same once loosened: let neither win
        del table[words]
    lookup = _spdx_lookup()
    table.update((_canonical(name), key) for name, key in _ALIASES.items() if key.lower() in lookup)
    return table


def _terms_for_id(spdx_id: str) -> _Terms | None:
    key = _spdx_lookup().get(spdx_id.lower())
    if key is None:
        return None
    return _known_terms().get(key) or _Terms(key, None, None, None)


# --- text ---------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-_/,;:'\"“”‘’]+")
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


@functools.cache
def _licensing() -> Licensing:
    """The expression parser; building it reads the SPDX list (~15 ms), so once."""
    return get_spdx_licensing()


@functools.cache
def _exception_lookup() -> frozenset[str]:
    return frozenset(e.lower() for e in _spdx_index()[1])


_EXPR_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_OPERATORS = frozenset({"and", "or", "with"})


def _from_expression(text: str) -> _Terms | None:
    """An SPDX expression whose every operand is an SPDX id (or an exception after WITH).

    Facts and family are reported only when all licenses in it agree on them.
    """
    tokens = _EXPR_TOKEN.findall(text)
    if not any(t.lower() in _OPERATORS for t in tokens):
        return None
    exceptions = _exception_lookup()
    for before, token in zip(["", *tokens], tokens, strict=False):
        lowered = token.lower()
        if lowered in _OPERATORS or token in "()":
            continue
        if lowered not in (exceptions if before.lower() == "with" else _spdx_lookup()):
            return None
    licensing = _licensing()
    try:
        parsed = licensing.parse(text, strict=True)  # operands checked above
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

_URL_START = re.compile(r"(?:https?://|www\.|[a-z0-9-]+(?:\.[a-z0-9-]+)+/)", re.IGNORECASE)
_URL_SUFFIX = re.compile(r"(?:-standalone)?(?:\.[a-z]{2})?\.(?:html?|txt|php|json)$")
_GNU_TEXT = re.compile(r"(a|l)?(gpl|fdl)-(\d\.\d)")
_URLS: dict[str, str] = {
    "apache.org/licenses/license-2.0": "Apache-2.0",
    "opensource.org/licenses/mit-license": "MIT",
    "opensource.org/licenses/apache2.0": "Apache-2.0",
    "mozilla.org/mpl/2.0": "MPL-2.0",
    "mozilla.org/en-us/mpl/2.0": "MPL-2.0",
    "unlicense.org": "Unlicense",
    "opendatacommons.org/licenses/by/1.0": "ODC-By-1.0",
    "opendatacommons.org/licenses/by/1-0": "ODC-By-1.0",
    "opendatacommons.org/licenses/odbl/1.0": "ODbL-1.0",
    "opendatacommons.org/licenses/odbl/1-0": "ODbL-1.0",
    "opendatacommons.org/licenses/pddl/1.0": "PDDL-1.0",
    "opendatacommons.org/licenses/pddl/1-0": "PDDL-1.0",
    "cdla.dev/permissive-1-0": "CDLA-Permissive-1.0",
    "cdla.dev/permissive-2-0": "CDLA-Permissive-2.0",
    "cdla.dev/sharing-1-0": "CDLA-Sharing-1.0",
    "cdla.io/permissive-1-0": "CDLA-Permissive-1.0",
    "cdla.io/sharing-1-0": "CDLA-Sharing-1.0",
}
# Sites whose path ends in an SPDX id (any case).
_ID_SITES = ("spdx.org/licenses", "opensource.org/licenses", "opensource.org/license",
             "choosealicense.com/licenses")  # fmt: skip


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
        return _terms_for_id(_URLS[host]) if host in _URLS else None
    segs[-1] = _URL_SUFFIX.sub("", segs[-1])
    where, last = "/".join([host, *segs[:-1]]), segs[-1]
    if where in _ID_SITES:
        return _terms_for_id(last)
    gnu = _GNU_TEXT.fullmatch(last)
    if host == "gnu.org" and gnu and where in ("gnu.org/licenses", "gnu.org/licenses/old-licenses"):
        prefix = (gnu.group(1) or "").upper() + ("GPL" if gnu.group(2) == "gpl" else "GFDL")
        return _terms_for_id(f"{prefix}-{gnu.group(3)}-only")
    key = f"{where}/{last}"
    return _terms_for_id(_URLS[key]) if key in _URLS else None


# --- public API ---------------------------------------------------------------------------------

_PARENTHETICAL = re.compile(r"([^()]*?)\s*\(([^()]*)\)\s*\.?")


def _classify(text: str) -> _Terms | None:
    stripped = text.strip().strip("<>\"'").strip()
    if not stripped or len(stripped) > _MAX_LEN:
        return None
    if _URL_START.match(stripped):
        return _from_url(stripped)
    paren = _PARENTHETICAL.fullmatch(stripped)
    if paren and paren.group(1):
        # "Creative Commons Attribution 4.0 International (CC BY 4.0)": both halves must name
        # the same license; anything else in parentheses may restrict it, so we do not guess.
        outer, inner = _classify(paren.group(1)), _classify(paren.group(2))
        if outer is not None and outer == inner:
            return outer
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
    try:
        terms = _classify(text)
    except RecursionError:  # deeply nested parentheses in an expression: not a license name
        terms = None
    return _info(text, terms)


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
    named = set(_NON_CC) | set(_ALIASES.values()) | set(_URLS.values())
    return frozenset(named | set(_known_terms()))
