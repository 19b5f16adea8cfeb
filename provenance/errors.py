"""One exception tree. The CLI maps each class to an exit code (see CLI.md)."""

from __future__ import annotations


class ProvenanceError(Exception):
    """Base of every expected failure. The message is shown to the user as `error: ...`."""

    exit_code = 1


class BadInput(ProvenanceError):
    """Unreadable file, malformed manifest/policy/request, bad option value (exit 2)."""

    exit_code = 2


class CatalogError(ProvenanceError):
    """Catalog unreachable, not initialised, or schema not at head (exit 3)."""

    exit_code = 3


class EnvironmentProblem(ProvenanceError):
    """Something outside the input is wrong: network down when needed, store unwritable (exit 3)."""

    exit_code = 3


class FetchError(ProvenanceError):
    """A single network request failed; callers record it and go on."""

    exit_code = 3


class UnsafeAddress(FetchError):
    """The URL resolves to a loopback, private, link-local or metadata address."""


class NonCompliance(ProvenanceError):
    """A check ran and found violations (exit 1)."""

    exit_code = 1


class DeterminismError(ProvenanceError):
    """A re-run would produce different bytes for something already committed."""

    exit_code = 3
