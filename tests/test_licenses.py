"""License normalization: text and URLs -> SPDX ids and permission facts.

Test vectors: Creative Commons URL shapes as creativecommons.org publishes them (deeds
`/licenses/<code>/<version>/[<port>/]deed.<lang>`, `legalcode[.<lang>]`, `/publicdomain/zero/1.0/`,
`/publicdomain/mark/1.0/`, badges on licensebuttons.net); license titles as the CC deeds print
them ("Attribution-NonCommercial-ShareAlike 4.0 International"); short names as Wikimedia Commons
writes them ("CC BY-SA 3.0 de"); SPDX ids and expressions from the SPDX license list bundled with
license-expression, which is also the independent oracle for "is this a valid SPDX id".
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from license_expression import get_license_index, get_spdx_licensing
from typer.testing import CliRunner

from provenance.cli import app
from provenance.licenses import (
    license_facts,
    normalize_license,
    requires_attribution,
    table_ids,
)

SPDX_LICENSE_IDS = frozenset(
    entry["spdx_license_key"]
    for entry in get_license_index()
    if entry.get("spdx_license_key")
    and not entry["spdx_license_key"].startswith("LicenseRef-")
    and not entry.get("is_exception")
)
LICENSING = get_spdx_licensing()

CCL = "creativecommons.org/licenses/"
PD = "creativecommons.org/publicdomain/"

# facts: (commercial_use, derivatives, attribution, share_alike)
BY = (True, True, True, False)
BY_SA = (True, True, True, True)
BY_NC = (False, True, True, False)
BY_ND = (True, False, True, False)
BY_NC_SA = (False, True, True, True)
BY_NC_ND = (False, False, True, False)
FREE = (True, True, False, False)
COPYLEFT = (True, True, True, True)

# input, spdx_id, family, version, facts
CASES: list[tuple[str, str | None, str | None, str | None, tuple[bool, ...] | None]] = [
    # CC deed and legalcode URLs, every version, http/https, www, languages, trailing slash
    (f"https://{CCL}by/4.0/", "CC-BY-4.0", "cc-by", "4.0", BY),
    (f"http://{CCL}by/4.0", "CC-BY-4.0", "cc-by", "4.0", BY),
    (f"https://www.{CCL}by/4.0/deed.de", "CC-BY-4.0", "cc-by", "4.0", BY),
    (f"{CCL}by-sa/4.0/deed.zh-hans", "CC-BY-SA-4.0", "cc-by-sa", "4.0", BY_SA),
    (f"https://{CCL}by-nc-sa/4.0/legalcode.fr", "CC-BY-NC-SA-4.0", "cc-by-nc-sa", "4.0", BY_NC_SA),
    (f"https://{CCL}by-nc-nd/4.0/legalcode", "CC-BY-NC-ND-4.0", "cc-by-nc-nd", "4.0", BY_NC_ND),
    (f"https://{CCL}by-nd/4.0/deed.pt_BR?ref=x#y", "CC-BY-ND-4.0", "cc-by-nd", "4.0", BY_ND),
    ("HTTPS://CreativeCommons.org/Licenses/BY-NC/4.0/", "CC-BY-NC-4.0", "cc-by-nc", "4.0", BY_NC),
    (f"http://{CCL}by-sa/3.0/", "CC-BY-SA-3.0", "cc-by-sa", "3.0", BY_SA),
    (f"http://{CCL}by/2.5/deed.en", "CC-BY-2.5", "cc-by", "2.5", BY),
    (f"http://{CCL}by-nc/2.0/", "CC-BY-NC-2.0", "cc-by-nc", "2.0", BY_NC),
    (f"http://{CCL}by/1.0/legalcode", "CC-BY-1.0", "cc-by", "1.0", BY),
    # CC 1.0 wrote NoDerivs before NonCommercial; SPDX's id puts NC first
    (f"http://{CCL}by-nd-nc/1.0/", "CC-BY-NC-ND-1.0", "cc-by-nc-nd", "1.0", BY_NC_ND),
    (f"http://{CCL}sa/1.0/", "CC-SA-1.0", "cc-sa", "1.0", (True, True, False, True)),
    # ports with an SPDX id
    (f"https://{CCL}by/3.0/de/", "CC-BY-3.0-DE", "cc-by", "3.0", BY),
    (f"http://{CCL}by-sa/2.0/uk/", "CC-BY-SA-2.0-UK", "cc-by-sa", "2.0", BY_SA),
    (
        f"http://{CCL}by-nc-sa/2.0/uk/deed.en_GB",
        "CC-BY-NC-SA-2.0-UK",
        "cc-by-nc-sa",
        "2.0",
        BY_NC_SA,
    ),
    (f"https://{CCL}by/3.0/at/legalcode", "CC-BY-3.0-AT", "cc-by", "3.0", BY),
    (f"https://{CCL}by/2.5/au/", "CC-BY-2.5-AU", "cc-by", "2.5", BY),
    (f"https://{CCL}by/3.0/igo/", "CC-BY-3.0-IGO", "cc-by", "3.0", BY),
    (
        f"https://{CCL}by-nc-nd/3.0/igo/deed.fr",
        "CC-BY-NC-ND-3.0-IGO",
        "cc-by-nc-nd",
        "3.0",
        BY_NC_ND,
    ),
    (f"https://{CCL}by-nc-sa/2.0/fr/", "CC-BY-NC-SA-2.0-FR", "cc-by-nc-sa", "2.0", BY_NC_SA),
    (f"https://{CCL}by-nd/3.0/de/", "CC-BY-ND-3.0-DE", "cc-by-nd", "3.0", BY_ND),
    (f"https://{CCL}by/3.0/us/", "CC-BY-3.0-US", "cc-by", "3.0", BY),
    (f"https://{CCL}by-sa/2.1/jp/", "CC-BY-SA-2.1-JP", "cc-by-sa", "2.1", BY_SA),
    # ports SPDX has no id for: known terms, no id, not the unported license
    (f"https://{CCL}by/3.0/fr/", None, "cc-by", "3.0", BY),
    (f"http://{CCL}by-nc-sa/2.0/ca/", None, "cc-by-nc-sa", "2.0", BY_NC_SA),
    (f"http://{CCL}by-sa/2.5/scotland/", None, "cc-by-sa", "2.5", BY_SA),
    (f"http://{CCL}by-nd/2.0/kr/deed.ko", None, "cc-by-nd", "2.0", BY_ND),
    # CC0, PDM, the old public domain certification, badges
    (f"https://{PD}zero/1.0/", "CC0-1.0", "cc0", "1.0", FREE),
    (f"http://{PD}zero/1.0/legalcode.de", "CC0-1.0", "cc0", "1.0", FREE),
    (f"https://{PD}mark/1.0/", "CC-PDM-1.0", "pdm", "1.0", FREE),
    (f"http://{PD}mark/1.0/deed.en", "CC-PDM-1.0", "pdm", "1.0", FREE),
    (f"http://{CCL}publicdomain/", "CC-PDDC", "cc-pddc", None, FREE),
    ("https://licensebuttons.net/l/by-sa/3.0/88x31.png", "CC-BY-SA-3.0", "cc-by-sa", "3.0", BY_SA),
    ("https://i.creativecommons.org/p/zero/1.0/88x31.png", "CC0-1.0", "cc0", "1.0", FREE),
    # names and abbreviations
    ("CC BY 4.0", "CC-BY-4.0", "cc-by", "4.0", BY),
    ("CC-BY-4.0", "CC-BY-4.0", "cc-by", "4.0", BY),
    ("cc by-nc-sa 3.0", "CC-BY-NC-SA-3.0", "cc-by-nc-sa", "3.0", BY_NC_SA),
    ("CC BY-SA 4.0", "CC-BY-SA-4.0", "cc-by-sa", "4.0", BY_SA),
    ("CC BY-SA 3.0 de", "CC-BY-SA-3.0-DE", "cc-by-sa", "3.0", BY_SA),
    ("CC BY-NC-ND 3.0 IGO", "CC-BY-NC-ND-3.0-IGO", "cc-by-nc-nd", "3.0", BY_NC_ND),
    ("Creative Commons Attribution 4.0 International", "CC-BY-4.0", "cc-by", "4.0", BY),
    ("Creative Commons Attribution 4.0 International (CC BY 4.0)", "CC-BY-4.0", "cc-by", "4.0", BY),
    (
        "Attribution-NonCommercial-ShareAlike 4.0 International",
        "CC-BY-NC-SA-4.0",
        "cc-by-nc-sa",
        "4.0",
        BY_NC_SA,
    ),
    (
        "Creative Commons Attribution-ShareAlike 3.0 Unported",
        "CC-BY-SA-3.0",
        "cc-by-sa",
        "3.0",
        BY_SA,
    ),
    (
        "Creative Commons Attribution-Share Alike 3.0 Unported",
        "CC-BY-SA-3.0",
        "cc-by-sa",
        "3.0",
        BY_SA,
    ),
    (
        "Attribution-NonCommercial-NoDerivatives 4.0 International",
        "CC-BY-NC-ND-4.0",
        "cc-by-nc-nd",
        "4.0",
        BY_NC_ND,
    ),
    ("Attribution-NoDerivs 3.0 Unported", "CC-BY-ND-3.0", "cc-by-nd", "3.0", BY_ND),
    (
        "Creative Commons Attribution-NonCommercial 2.0 Generic",
        "CC-BY-NC-2.0",
        "cc-by-nc",
        "2.0",
        BY_NC,
    ),
    ("Attribution 3.0 Austria (CC BY 3.0 AT)", "CC-BY-3.0-AT", "cc-by", "3.0", BY),
    (
        "Creative Commons Attribution-NonCommercial-NoDerivs 3.0 Germany",
        "CC-BY-NC-ND-3.0-DE",
        "cc-by-nc-nd",
        "3.0",
        BY_NC_ND,
    ),
    ("Licensed under CC BY-SA 4.0", "CC-BY-SA-4.0", "cc-by-sa", "4.0", BY_SA),
    ("CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)", "CC-BY-4.0", "cc-by", "4.0", BY),
    ("CC BY 4.0 - https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0", "cc-by", "4.0", BY),
    (f"https://{CCL}by/4.0/ (CC BY 4.0)", "CC-BY-4.0", "cc-by", "4.0", BY),
    ("CC BY\u2011SA 4.0", "CC-BY-SA-4.0", "cc-by-sa", "4.0", BY_SA),  # non-breaking hyphen
    ("Public Domain Dedication (CC0)", "CC0-1.0", "cc0", "1.0", FREE),  # Flickr's name
    ("CC BY", None, "cc-by", None, BY),
    ("cc-by-nc-sa", None, "cc-by-nc-sa", None, BY_NC_SA),
    ("CC-BY-NC-SA-2.0-CA", None, "cc-by-nc-sa", "2.0", BY_NC_SA),
    ("CC0", "CC0-1.0", "cc0", "1.0", FREE),
    ("CC0 1.0", "CC0-1.0", "cc0", "1.0", FREE),
    ("cc-zero", "CC0-1.0", "cc0", "1.0", FREE),
    ("CC0 1.0 Universal", "CC0-1.0", "cc0", "1.0", FREE),
    ("Public Domain Mark 1.0", "CC-PDM-1.0", "pdm", "1.0", FREE),
    # software and data licenses
    ("mit", "MIT", "mit", None, BY),
    ("MIT License", "MIT", "mit", None, BY),
    ("apache-2.0", "Apache-2.0", "apache", "2.0", BY),
    ("Apache License, Version 2.0", "Apache-2.0", "apache", "2.0", BY),
    ("https://www.apache.org/licenses/LICENSE-2.0", "Apache-2.0", "apache", "2.0", BY),
    ("http://www.apache.org/licenses/LICENSE-2.0.txt", "Apache-2.0", "apache", "2.0", BY),
    ("BSD-3-Clause", "BSD-3-Clause", "bsd-3-clause", None, BY),
    ("bsd 2-clause", "BSD-2-Clause", "bsd-2-clause", None, BY),
    ("https://opensource.org/licenses/MIT", "MIT", "mit", None, BY),
    ("https://spdx.org/licenses/CC-BY-SA-4.0.html", "CC-BY-SA-4.0", "cc-by-sa", "4.0", BY_SA),
    ("GPLv3", "GPL-3.0-only", "gpl", "3.0", COPYLEFT),
    ("GPL-2.0+", "GPL-2.0-or-later", "gpl", "2.0", COPYLEFT),
    ("GNU General Public License v3.0 or later", "GPL-3.0-or-later", "gpl", "3.0", COPYLEFT),
    ("LGPL-2.1", "LGPL-2.1-only", "lgpl", "2.1", COPYLEFT),
    ("agpl-3.0-or-later", "AGPL-3.0-or-later", "agpl", "3.0", COPYLEFT),
    ("https://www.gnu.org/licenses/gpl-3.0.en.html", "GPL-3.0-only", "gpl", "3.0", COPYLEFT),
    (
        "https://www.gnu.org/licenses/old-licenses/lgpl-2.1.html",
        "LGPL-2.1-only",
        "lgpl",
        "2.1",
        COPYLEFT,
    ),
    ("MPL-2.0", "MPL-2.0", "mpl", "2.0", COPYLEFT),
    ("https://www.mozilla.org/en-US/MPL/2.0/", "MPL-2.0", "mpl", "2.0", COPYLEFT),
    ("ODC-By-1.0", "ODC-By-1.0", "odc-by", "1.0", BY),
    ("ODbL", "ODbL-1.0", "odbl", "1.0", COPYLEFT),
    ("https://opendatacommons.org/licenses/odbl/1-0/", "ODbL-1.0", "odbl", "1.0", COPYLEFT),
    ("Open Data Commons Public Domain Dedication and License", "PDDL-1.0", "pddl", "1.0", FREE),
    ("http://opendatacommons.org/licenses/pddl/1.0/", "PDDL-1.0", "pddl", "1.0", FREE),
    ("CDLA-Permissive-2.0", "CDLA-Permissive-2.0", "cdla-permissive", "2.0", BY),
    ("https://cdla.dev/sharing-1-0/", "CDLA-Sharing-1.0", "cdla-sharing", "1.0", COPYLEFT),
    ("The Unlicense", "Unlicense", "unlicense", None, FREE),
    # SPDX ids we state no facts for are still recognized
    ("Artistic-2.0", "Artistic-2.0", None, None, None),
    # expressions
    ("MIT OR Apache-2.0", "MIT OR Apache-2.0", None, None, BY),
    ("cc-by-4.0 or cc-by-sa-4.0", "CC-BY-4.0 OR CC-BY-SA-4.0", None, None, None),
    ("CC-BY-SA-4.0 AND CC-BY-SA-3.0", "CC-BY-SA-4.0 AND CC-BY-SA-3.0", "cc-by-sa", None, BY_SA),
    (
        "GPL-2.0-only WITH Classpath-exception-2.0",
        "GPL-2.0-only WITH Classpath-exception-2.0",
        None,
        None,
        None,
    ),
]

UNRECOGNIZED = [
    "",
    "   ",
    "Unsplash License",
    "Pexels License",
    "all rights reserved",
    "Public domain",
    "unknown",
    "?",
    "Creative Commons",
    "Attribution",
    "CC BY 4.0 (NonCommercial)",
    "CC BY 4.0 but no commercial use",
    "CC BY-SA 4.0 DE",  # 4.0 has no ports
    f"https://{CCL}by/4.0/de/",
    f"https://{CCL}by-nd-sa/3.0/",  # no such combination
    f"https://{CCL}by/3.5/",
    f"https://{CCL}by/3.0/xx/",
    f"https://{CCL}by/4.0/deed.de/extra",
    "https://example.com/licenses/by/4.0/",
    "ftp://creativecommons.org/licenses/by/4.0/",
    f"CC BY 4.0 https://{CCL}by-nc/4.0/",  # name and URL disagree
    "Attribution License",  # no CC prefix and no version: not necessarily CC
    "GPL",
    "MIT OR Unsplash",
    "MIT OR",
    "() OR",  # license-expression itself crashes on this one
    "MIT WITH MIT",
    "(MIT OR Apache-2.0",
    "OpenRAIL-M",
    "x" * 400,
]


@pytest.mark.parametrize(("text", "spdx_id", "family", "version", "facts"), CASES)
def test_known_inputs(
    text: str,
    spdx_id: str | None,
    family: str | None,
    version: str | None,
    facts: tuple[bool, ...] | None,
) -> None:
    info = normalize_license(text)
    assert info.input == text
    assert (info.spdx_id, info.recognized) == (spdx_id, spdx_id is not None)
    assert (info.family, info.version) == (family, version)
    got = (info.commercial_use, info.derivatives, info.attribution, info.share_alike)
    assert got == (facts or (None, None, None, None))


@pytest.mark.parametrize("text", UNRECOGNIZED)
def test_unrecognized_inputs_keep_the_raw_text_and_state_no_facts(text: str) -> None:
    info = normalize_license(text)
    assert info.to_json() == {
        "input": text,
        "spdx_id": None,
        "recognized": False,
        "family": None,
        "version": None,
        "commercial_use": None,
        "derivatives": None,
        "attribution": None,
        "share_alike": None,
    }


def _is_spdx(expression: str) -> bool:
    keys = LICENSING.license_keys(LICENSING.parse(expression))
    exceptions = {e["spdx_license_key"] for e in get_license_index() if e.get("is_exception")}
    return bool(keys) and all(k in SPDX_LICENSE_IDS or k in exceptions for k in keys)


def test_every_id_in_the_tables_is_a_current_spdx_id() -> None:
    ids = table_ids()
    assert {"CC-BY-4.0", "CC0-1.0", "CC-PDM-1.0", "MIT", "ODbL-1.0"} <= ids
    assert sorted(ids - SPDX_LICENSE_IDS) == []
    for spdx_id in ids:  # and each one normalizes to itself with the terms the table states
        assert normalize_license(spdx_id).spdx_id == spdx_id
        assert license_facts(spdx_id).spdx_id == spdx_id


def test_every_cc_id_in_the_spdx_list_is_known_with_facts() -> None:
    cc_ids = {i for i in SPDX_LICENSE_IDS if i.startswith("CC-") and i[3:5] in ("BY", "SA")}
    assert len(cc_ids) > 40
    for spdx_id in cc_ids:
        info = license_facts(spdx_id)
        assert info.family is not None and info.family.startswith("cc-")
        assert info.commercial_use is ("-NC-" not in spdx_id)
        assert info.derivatives is ("-ND-" not in spdx_id)
        assert info.share_alike is ("-SA-" in spdx_id)


def test_license_facts_takes_only_spdx_ids_and_expressions() -> None:
    assert license_facts("cc-by-nc-4.0").spdx_id == "CC-BY-NC-4.0"
    assert license_facts("cc-by-nc-4.0").commercial_use is False
    assert license_facts("MIT OR Apache-2.0").spdx_id == "MIT OR Apache-2.0"
    assert license_facts("CC BY 4.0").recognized is False  # a name, not an id
    assert license_facts(f"https://{CCL}by/4.0/").recognized is False


@pytest.mark.parametrize(
    ("spdx_id", "needed"),
    [("CC-BY-4.0", True), ("MIT", True), ("CC0-1.0", False), ("CC-PDM-1.0", False),
     ("PDDL-1.0", False), ("Artistic-2.0", True), ("no-such-license", True), (None, True)],
)  # fmt: skip
def test_requires_attribution_fails_closed(spdx_id: str | None, needed: bool) -> None:
    assert requires_attribution(spdx_id) is needed


# --- properties -------------------------------------------------------------------------------

CAPTION_WORDS = [
    *("photo", "of", "a", "cat", "sunset", "over", "the", "sea", "image", "my", "free", "use"),
    *("with", "credit", "please", "2024", "3", "-", "/", "(", ")", "by", "nc"),
]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_never_raises_and_keeps_the_input(text: str) -> None:
    info = normalize_license(text)
    assert info.input == text
    assert info.recognized is (info.spdx_id is not None)
    if info.spdx_id is not None:
        assert _is_spdx(info.spdx_id)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(CAPTION_WORDS), max_size=8).map(" ".join))
def test_text_without_license_words_stays_unrecognized(text: str) -> None:
    info = normalize_license(text)
    assert info.spdx_id is None and info.family is None and info.commercial_use is None


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([t for t in UNRECOGNIZED if t.strip()] + [c[0] for c in CASES]),
    st.sampled_from([str.upper, str.lower, str.title, lambda s: f"  {s}\t"]),
)
def test_case_and_surrounding_space_do_not_change_the_answer(text: str, change: object) -> None:
    assert callable(change)
    before, after = normalize_license(text), normalize_license(change(text))
    assert before.to_json() | {"input": None} == after.to_json() | {"input": None}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([c[0] for c in CASES]))
def test_normalizing_an_emitted_id_gives_the_same_id(text: str) -> None:
    first = normalize_license(text)
    if first.spdx_id is not None:
        again = normalize_license(first.spdx_id)
        assert again.spdx_id == first.spdx_id
        assert (again.family, again.commercial_use) == (first.family, first.commercial_use)


CC_CODES = ["by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd"]
CC_PORTS_SAMPLE = ["de", "at", "uk", "fr", "nl", "us", "au", "igo", "jp", "ca", "es", "br"]
CC_TAILS = ["", "deed.en", "deed.de", "deed.pt_BR", "deed.zh-hans", "legalcode", "legalcode.fr"]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["http://", "https://", ""]),
    st.sampled_from(["", "www."]),
    st.sampled_from(CC_CODES),
    st.sampled_from(["1.0", "2.0", "2.5", "3.0", "4.0"]),
    st.one_of(st.none(), st.sampled_from(CC_PORTS_SAMPLE)),
    st.sampled_from(CC_TAILS),
    st.sampled_from(["", "/", "?lang=de", "#x"]),
)
def test_cc_urls_map_to_the_exact_spdx_id_or_none(
    scheme: str, www: str, code: str, version: str, port: str | None, tail: str, end: str
) -> None:
    path = "/".join(p for p in (code, version, port, tail) if p)
    info = normalize_license(f"{scheme}{www}creativecommons.org/licenses/{path}{end}")
    if port is not None and version == "4.0":
        assert info.family is None and info.spdx_id is None  # 4.0 has no ports
        return
    candidate = f"CC-{code.upper()}-{version}" + (f"-{port.upper()}" if port else "")
    assert info.spdx_id == (candidate if candidate in SPDX_LICENSE_IDS else None)
    assert info.family == f"cc-{code}" and info.version == version
    assert info.commercial_use is ("nc" not in code) and info.derivatives is ("nd" not in code)
    assert info.attribution is True and info.share_alike is ("sa" in code)
    if info.spdx_id is not None:
        assert normalize_license(info.spdx_id).to_json() | {"input": None} == info.to_json() | {
            "input": None
        }


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_json_is_the_cli_md_shape() -> None:
    result = CliRunner().invoke(app, ["license", "normalize", "CC BY 4.0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "input": "CC BY 4.0",
        "spdx_id": "CC-BY-4.0",
        "recognized": True,
        "family": "cc-by",
        "version": "4.0",
        "commercial_use": True,
        "derivatives": True,
        "attribution": True,
        "share_alike": False,
    }


def test_cli_reports_unrecognized_text_with_exit_0() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["license", "normalize", "Unsplash License", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["recognized"] is False
    human = runner.invoke(app, ["license", "normalize", "[/x] Unsplash License"])
    assert human.exit_code == 0
    assert human.stdout.strip() == "not recognized: '[/x] Unsplash License'"


def test_cli_human_line_names_the_id_and_the_facts() -> None:
    runner = CliRunner()
    line = runner.invoke(app, ["license", "normalize", "CC BY-NC-SA 4.0"]).stdout.strip()
    assert line.startswith("CC-BY-NC-SA-4.0 (cc-by-nc-sa 4.0;")
    assert "commercial use: no" in line and "share-alike: yes" in line
    port = runner.invoke(app, ["license", "normalize", f"http://{CCL}by/3.0/fr/"])
    assert "without an SPDX id" in port.stdout and "cc-by 3.0" in port.stdout


ELEMENT_NAMES = {
    "by": ["BY", "Attribution"],
    "nc": ["NC", "NonCommercial", "Non-Commercial"],
    "nd": ["ND", "NoDerivs", "NoDerivatives"],
    "sa": ["SA", "ShareAlike", "Share Alike"],
}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["CC", "Creative Commons", "cc"]),
    st.sampled_from(CC_CODES),
    st.sampled_from(["2.0", "2.5", "3.0", "4.0"]),
    st.sampled_from(["", "International", "Unported", "DE", "AT", "FR", "IGO"]),
    st.data(),
)
def test_cc_names_from_parts(
    prefix: str, code: str, version: str, qualifier: str, data: st.DataObject
) -> None:
    words = [data.draw(st.sampled_from(ELEMENT_NAMES[e])) for e in code.split("-")]
    sep = data.draw(st.sampled_from([" ", "-"]))
    text = " ".join(p for p in (prefix, sep.join(words), version, qualifier) if p)
    info = normalize_license(text)
    port = qualifier.lower() if qualifier not in ("", "International", "Unported") else None
    if port is not None and version == "4.0":
        assert info.family is None and info.spdx_id is None
        return
    candidate = f"CC-{code.upper()}-{version}" + (f"-{port.upper()}" if port else "")
    assert info.spdx_id == (candidate if candidate in SPDX_LICENSE_IDS else None), text
    assert (info.family, info.version) == (f"cc-{code}", version)
    assert info.commercial_use is ("nc" not in code) and info.share_alike is ("sa" in code)
