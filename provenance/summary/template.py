"""The Commission's template for the public summary of training content, as data, and the two
pieces of arithmetic it prescribes (the image size band and the top-domain count). Pure.

Source of the structure, section numbers, titles and bands: European Commission, "Explanatory
Notice and Template for the Public Summary of Training Content for general-purpose AI models
required by Article 53(1)(d) of Regulation (EU) 2024/1689 (AI Act)", 24 July 2025, formally
C(2025) 8311 final of 5 December 2025 (text read at
https://project-babel.com/documents/eu_training_content_public_summary_template_2025).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import resources
from typing import Any

from provenance.errors import BadInput

TEMPLATE_NAME = (
    "Template for the Public Summary of Training Content for general-purpose AI models "
    "(Article 53(1)(d) AI Act)"
)
TEMPLATE_SOURCE = (
    "European Commission, Explanatory Notice and Template for the Public Summary of Training "
    "Content, 24 July 2025 (C(2025) 8311 final)"
)
TODO = "TO-DO"

# Section number -> title, in the template's order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("1.1", "Provider identification"),
    ("1.2", "Model identification"),
    ("1.3", "Modalities, overall training data size and other characteristics"),
    ("2.1", "Publicly available datasets"),
    ("2.2", "Private non-publicly available datasets obtained from third parties"),
    ("2.3", "Data crawled and scraped from online sources"),
    ("2.4", "User data"),
    ("2.5", "Synthetic data"),
    ("2.6", "Other sources of data"),
    ("3.1", "Respect of reservation of rights from the text and data mining exception or "
            "limitation"),
    ("3.2", "Removal of illegal content"),
    ("3.3", "Other information"),
)
PARTS = {"1": "General information", "2": "List of data sources", "3": "Data processing aspects"}

# Template 1.3, image modality: the three size bands. The template's bands meet at 1 million
# and 1 billion; we read "less than 1 million" and "more than 1 billion" as strict, so the
# boundary counts themselves fall in the middle band.
BAND_SMALL = "Less than 1 million images"
BAND_MEDIUM = "1 million to 1 billion images"
BAND_LARGE = "More than 1 billion images"
MILLION = 1_000_000
BILLION = 1_000_000_000


def image_size_band(count: int) -> str:
    """The template's size band for a number of images."""
    if count < MILLION:
        return BAND_SMALL
    if count <= BILLION:
        return BAND_MEDIUM
    return BAND_LARGE


@dataclass(frozen=True)
class TopDomainRule:
    """How many crawled domains section 2.3 lists. Values from data/top_domain_rule.toml."""

    share_percent: Fraction
    sme_share_percent: Fraction
    sme_cap: int
    rounding: str
    measure: str
    source: str
    overridden: tuple[str, ...] = ()

    def count(self, domains: int, sme: bool) -> int:
        """N: the number of top domains to list out of `domains` crawled domains."""
        share = self.sme_share_percent if sme else self.share_percent
        exact = Fraction(domains) * share / 100
        n = -(-exact.numerator // exact.denominator) if self.rounding == "up" else int(exact)
        n = min(n, domains)
        return min(n, self.sme_cap) if sme else n

    def describe(self, sme: bool) -> str:
        """The rule in words, with its parameters."""
        if sme:
            text = (f"top {_pct(self.sme_share_percent)} % of all crawled domain names or "
                    f"{self.sme_cap:,} domain names, whichever is lower (SME)")
        else:
            text = f"top {_pct(self.share_percent)} % of all crawled domain names"
        return (f"{text}, ranked by {self.measure} of the content used, share rounded "
                f"{self.rounding}")

    def to_json(self) -> dict[str, Any]:
        return {
            "share_percent": _pct(self.share_percent),
            "sme_share_percent": _pct(self.sme_share_percent),
            "sme_cap": self.sme_cap,
            "rounding": self.rounding,
            "measure": self.measure,
            "source": self.source,
            "overridden": list(self.overridden),
        }


def _pct(value: Fraction) -> int | float:
    return int(value) if value.denominator == 1 else float(value)


RULE_KEYS = ("share_percent", "sme_share_percent", "sme_cap", "rounding")


def default_rule() -> TopDomainRule:
    """The shipped rule (data/top_domain_rule.toml)."""
    text = resources.files("provenance").joinpath("data", "top_domain_rule.toml").read_text()
    data = tomllib.loads(text)
    return TopDomainRule(
        share_percent=Fraction(str(data["share_percent"])),
        sme_share_percent=Fraction(str(data["sme_share_percent"])),
        sme_cap=int(data["sme_cap"]),
        rounding=str(data["rounding"]),
        measure=str(data["measure"]),
        source=str(data["source"]),
    )


def override_rule(rule: TopDomainRule, values: dict[str, Any], where: str) -> TopDomainRule:
    """The rule with the about file's [top_domains] values applied (validated)."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in RULE_KEYS:
            raise BadInput(f"{where}: unknown key top_domains.{key} "
                           f"(known: {', '.join(RULE_KEYS)})")
        if key == "rounding":
            if value not in ("up", "down"):
                raise BadInput(f"{where}: top_domains.rounding must be \"up\" or \"down\"")
            changes[key] = value
        elif key == "sme_cap":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise BadInput(f"{where}: top_domains.sme_cap must be a whole number >= 0")
            changes[key] = value
        else:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not 0 < value <= 100:
                raise BadInput(f"{where}: top_domains.{key} must be a number in (0, 100]")
            changes[key] = Fraction(str(value))
    if not changes:
        return rule
    return replace(rule, overridden=tuple(sorted(changes)), **changes)
