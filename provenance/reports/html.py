"""The composition report as one self-contained HTML page: inline CSS and inline SVG bar
charts, no scripts, no external assets, so it can be mailed, archived or opened offline."""

from __future__ import annotations

from html import escape

from provenance.reports.model import Report, Section

BAR_WIDTH = 300
ROW_HEIGHT = 24
LABEL_WIDTH = 170
MAX_ROWS = 15
PALETTE = ("#2f6fdf", "#16a085", "#c0392b", "#8e44ad", "#d68910", "#2c3e50", "#27ae60")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f4f6fa;color:#1d2430}
header{background:#1d2430;color:#fff;padding:24px 40px}
header h1{margin:0 0 4px;font-size:26px}
header p{margin:0;color:#b8c2d6;font-size:14px}
main{padding:24px 40px;max-width:1200px}
.tiles{display:flex;flex-wrap:wrap;gap:16px;margin-bottom:24px}
.tile{background:#fff;border-radius:10px;padding:16px 20px;min-width:160px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
.tile .v{font-size:28px;font-weight:600}
.tile .k{font-size:13px;color:#5b6678;text-transform:uppercase;letter-spacing:.04em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:20px}
.card{background:#fff;border-radius:10px;padding:16px 20px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card h2{font-size:16px;margin:0 0 10px}
.card p.more{font-size:12px;color:#5b6678;margin:6px 0 0}
.empty{color:#8a94a6;font-style:italic;font-size:14px}
svg text{font-size:12px;fill:#1d2430}
footer{padding:8px 40px 32px;color:#5b6678;font-size:12px}
"""


def human_bytes(count: int) -> str:
    """1234567 -> '1.2 MB' (decimal units)."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


def _clip(label: str, width: int = 26) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def bar_chart(section: Section, total: int, color: str) -> str:
    """A horizontal bar chart of (value, images) rows as inline SVG."""
    rows = section.rows[:MAX_ROWS]
    if not rows:
        return '<p class="empty">nothing recorded</p>'
    peak = max(int(r[1] or 0) for r in rows) or 1
    height = ROW_HEIGHT * len(rows)
    width = LABEL_WIDTH + BAR_WIDTH + 110
    parts = [f'<svg role="img" aria-label="{escape(section.title)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for i, (label, count) in enumerate((str(r[0]), int(r[1] or 0)) for r in rows):
        y = i * ROW_HEIGHT
        bar = max(1, round(BAR_WIDTH * count / peak)) if count else 0
        share = f"{100 * count / total:.1f}%" if total else ""
        parts.append(
            f'<g><title>{escape(label)}: {count}</title>'
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">'
            f'{escape(_clip(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{bar}" height="{ROW_HEIGHT - 8}" '
            f'rx="3" fill="{color}"/>'
            f'<text x="{LABEL_WIDTH + bar + 6}" y="{y + 16}">{count} '
            f'<tspan fill="#5b6678">{share}</tspan></text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _tiles(report: Report) -> str:
    summary = dict((str(k), int(v or 0)) for k, v in report.section("summary").rows)
    images = summary.get("images", 0)
    captioned = summary.get("with_caption", 0)
    share = f"{100 * captioned / images:.0f}%" if images else "–"
    tiles = [("images", f"{images:,}"), ("total size", human_bytes(summary.get("bytes", 0))),
             ("with caption", share),
             ("sources", str(len(report.section("sources").rows))),
             ("licenses", str(len(report.section("licenses").rows)))]
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div>'
        f"</div>" for k, v in tiles) + "</div>"


def composition_html(report: Report) -> str:
    """The whole page for a composition report."""
    meta = report.meta
    scope = (f"export {meta['export_id']}" if meta.get("export_id") is not None
             else "the whole catalog")
    when = f" as of {meta['as_of']}" if meta.get("as_of") else ""
    images = dict((str(k), int(v or 0)) for k, v in report.section("summary").rows)["images"]
    cards = []
    for i, section in enumerate(s for s in report.sections if s.name != "summary"):
        more = len(section.rows) - MAX_ROWS
        note = f'<p class="more">and {more} more (see --format csv)</p>' if more > 0 else ""
        cards.append(f'<section class="card" id="{escape(section.name)}">'
                     f"<h2>{escape(section.title)}</h2>"
                     f"{bar_chart(section, images, PALETTE[i % len(PALETTE)])}{note}</section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>Composition of {escape(scope)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>Composition of {escape(scope)}</h1>"
        f"<p>{escape(str(images))} images{escape(when)} · generated "
        f"{escape(str(meta.get('generated_at') or ''))} by provenance</p></header>"
        f"<main>{_tiles(report)}<div class=\"grid\">{''.join(cards)}</div></main>"
        "<footer>Counts are distinct images; an image seen under several sources, domains or "
        "licenses counts once in each. Percentages are of all images in scope.</footer>"
        "</body></html>\n"
    )
