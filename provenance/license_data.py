"""The tables behind provenance.licenses: the SPDX list bundled with license-expression (read
once), the permission facts we state per SPDX id, common names and license URLs. Data only."""

from __future__ import annotations

import functools
import re

from license_expression import Licensing, get_license_index, get_spdx_licensing

# (commercial_use, derivatives, attribution, share_alike)
Facts = tuple[bool, bool, bool, bool]
NOTICE: Facts = (True, True, True, False)  # permissive, keep the notice / credit
FREE: Facts = (True, True, False, False)  # public domain or equivalent
COPYLEFT: Facts = (True, True, True, True)


# SPDX id -> (family, version, facts) for the non-CC licenses whose terms we state. CC ids are
# derived from the SPDX list itself (provenance.licenses._known_terms).
NON_CC: dict[str, tuple[str, str | None, Facts]] = {
    "CC0-1.0": ("cc0", "1.0", FREE),
    "CC-PDM-1.0": ("pdm", "1.0", FREE),
    "CC-PDDC": ("cc-pddc", None, FREE),
    "PDDL-1.0": ("pddl", "1.0", FREE),
    "Unlicense": ("unlicense", None, FREE),
    "0BSD": ("0bsd", None, FREE),
    "MIT-0": ("mit-0", None, FREE),
    "WTFPL": ("wtfpl", None, FREE),
    "MIT": ("mit", None, NOTICE),
    "BSD-2-Clause": ("bsd-2-clause", None, NOTICE),
    "BSD-3-Clause": ("bsd-3-clause", None, NOTICE),
    "ISC": ("isc", None, NOTICE),
    "Zlib": ("zlib", None, NOTICE),
    "Apache-2.0": ("apache", "2.0", NOTICE),
    "ODC-By-1.0": ("odc-by", "1.0", NOTICE),
    # Both CDLA-Permissive versions ask to pass the agreement text on with the data; treating
    # that as an attribution duty is the cautious reading.
    "CDLA-Permissive-1.0": ("cdla-permissive", "1.0", NOTICE),
    "CDLA-Permissive-2.0": ("cdla-permissive", "2.0", NOTICE),
    "CDLA-Sharing-1.0": ("cdla-sharing", "1.0", COPYLEFT),
    "ODbL-1.0": ("odbl", "1.0", COPYLEFT),
    "MPL-2.0": ("mpl", "2.0", COPYLEFT),
} | {
    f"{prefix}-{ver}-{scope}": (prefix.lower(), ver, COPYLEFT)
    for prefix, versions in (
        ("GPL", ("1.0", "2.0", "3.0")),
        ("LGPL", ("2.0", "2.1", "3.0")),
        ("AGPL", ("1.0", "3.0")),
        ("GFDL", ("1.1", "1.2", "1.3")),
    )
    for ver in versions
    for scope in ("only", "or-later")
}


# Common names not derivable from the SPDX ids, by id; canonicalised like any input.
NAMES: dict[str, tuple[str, ...]] = {
    "MIT": ("the mit", "expat"),
    "Apache-2.0": ("apache software 2.0", "asl 2.0"),
    "BSD-2-Clause": ("bsd 2 clause simplified", "simplified bsd"),
    "BSD-3-Clause": ("bsd 3 clause new or revised", "new bsd", "revised bsd", "modified bsd"),
    "Unlicense": ("unlicense",),
    "MPL-2.0": ("mozilla 2.0",),
    "GPL-2.0-only": ("gnu gpl 2.0", "gnu general 2.0"),
    "GPL-3.0-only": ("gnu gpl 3.0", "gnu general 3.0"),
    "GPL-2.0-or-later": ("gnu gpl 2.0 or later", "gnu general 2.0 or later"),
    "GPL-3.0-or-later": ("gnu gpl 3.0 or later", "gnu general 3.0 or later"),
    "LGPL-2.1-only": ("gnu lesser general 2.1",),
    "LGPL-3.0-only": ("gnu lesser general 3.0",),
    "AGPL-3.0-only": ("gnu affero general 3.0",),
    "GFDL-1.2-only": ("gnu free documentation 1.2",),
    "GFDL-1.3-only": ("gnu free documentation 1.3",),
    "GFDL-1.2-or-later": ("gfdl 1.2 or later",),
    "ODC-By-1.0": ("odc by", "open data commons attribution", "open data commons attribution 1.0"),
    "ODbL-1.0": ("odbl", "open database", "open database 1.0", "open data commons open database",
                 "open data commons open database 1.0"),
    "PDDL-1.0": ("pddl", "open data commons public domain dedication and"),
    "CDLA-Permissive-2.0": ("community data agreement permissive 2.0",),
    "CDLA-Sharing-1.0": ("community data agreement sharing 1.0",),
    "CC0-1.0": ("cc0", "cc0 1.0", "cc0 1.0 universal", "cc zero", "cc 0", "creative commons zero",
                "creative commons zero 1.0 universal", "creative commons cc0",
                "creative commons cc0 1.0 universal", "cc0 1.0 universal public domain dedication",
                "public domain dedication cc0"),
    "CC-PDM-1.0": ("public domain mark", "public domain mark 1.0", "pdm", "pdm 1.0", "cc pdm",
                   "creative commons public domain mark",
                   "creative commons public domain mark 1.0"),
}  # fmt: skip


# Jurisdiction ports CC published (2.0 to 3.0, a few at 1.0), plus the 3.0 IGO licenses.
CC_PORTS = frozenset(
    {
        "am", "ar", "at", "au", "az", "be", "bg", "br", "ca", "ch", "cl", "cn", "co", "cr", "cz",
        "de", "dk", "ec", "ee", "eg", "es", "fi", "fr", "ge", "gr", "gt", "hk", "hr", "hu", "ie",
        "igo", "il", "in", "it", "jp", "kr", "lu", "mk", "mt", "mx", "my", "nl", "no", "nz", "pe",
        "ph", "pl", "pr", "pt", "ro", "rs", "scotland", "se", "sg", "si", "th", "tw", "ug", "uk",
        "us", "ve", "vn", "za",
    }
)  # fmt: skip
PORT_NAMES = {
    "germany": "de", "austria": "at", "netherlands": "nl", "united states": "us",
    "australia": "au", "england and wales": "uk", "united kingdom": "uk", "france": "fr",
    "japan": "jp", "canada": "ca", "scotland": "scotland", "igo": "igo",
}  # fmt: skip

URLS: dict[str, str] = {
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
ID_SITES = ("spdx.org/licenses", "opensource.org/licenses", "opensource.org/license",
            "choosealicense.com/licenses")  # fmt: skip


@functools.cache
def spdx_index() -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
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
def spdx_lookup() -> dict[str, str]:
    """Lower-case SPDX license id (current or deprecated GNU spelling) -> current id."""
    licenses, _, deprecated = spdx_index()
    table = {key.lower(): key for key in licenses}
    table.update((old.lower(), new) for old, new in deprecated.items())
    return table


@functools.cache
def spdx_licensing() -> Licensing:
    """The expression parser; building it reads the SPDX list (~15 ms), so once."""
    return get_spdx_licensing()


@functools.cache
def exception_lookup() -> frozenset[str]:
    """Lower-case SPDX exception ids (the operand after WITH)."""
    return frozenset(e.lower() for e in spdx_index()[1])
