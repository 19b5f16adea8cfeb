"""Compliance reports as plain data (`Report` of `Section`s) and separate formatters:
`formats` (table rows, JSON, CSV) and `html` (the composition page)."""

from provenance.reports.model import Report, Section

__all__ = ["Report", "Section"]
