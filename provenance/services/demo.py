"""Sample data and a local web site for `provenance demo`: everything offline, on 127.0.0.1.

The site plays a publisher with the opt-outs found in the wild: a robots.txt that disallows AI
crawlers on one path and carries a Content-Signal, an image served with `X-Robots-Tag: noai`,
and ordinary permitted images. The folders play a team's own photos and an img2dataset shard.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from provenance.errors import BadInput
from provenance.samples import image_bytes, make_image

MARKER = ".provenance-demo"
ROBOTS_TXT = """# the demo publisher's robots.txt
User-agent: GPTBot
User-agent: CCBot
Disallow: /private/

User-agent: *
Content-Signal: search=yes, ai-train=yes
Allow: /
"""
IPTC_PROHIBITED_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
    b'plus:DataMining="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"/>'
    b"</rdf:RDF></x:xmpmeta>"
)
DEMO_POLICY = """# The demo's policy: the shipped strict policy, plus the team's own photos as a
# trusted source (URL-level signals do not apply to them; embedded reservations still do).
name = "demo-strict"
description = "strict, with team-photos trusted"

[licenses]
allow = ["cc0", "pdm", "cc-by", "mit", "apache", "bsd-2-clause", "bsd-3-clause"]
attribution = true
share_alike = false

[signals]
tokens = ["provenance-bot", "gptbot", "ccbot", "google-extended", "anthropic-ai", "claudebot"]
count = ["robots", "x-robots-tag", "tdmrep", "ai-txt", "content-signal", "content-usage", "rsl",
         "c2pa", "iptc"]

[signals.max_age_days]
robots = 30

[quality]
require_decode_ok = true
min_width = 64
min_height = 64

[[trusted_sources]]
source_name = "team-photos"
contract = "taken by staff photographers; employment contracts, HR-2024-17"
"""
DEMO_ABOUT = """# What only a person knows, for the EU AI Act training-content summary (see
# examples/about.toml for every key with comments).
[provider]
name = "Demo Imaging Ltd"
contact = "ai-transparency@demo.example"

[model]
name = "DemoVision"
version = "0.1"
dependencies = []
placed_on_market = 2026-12-01
sme = true
training_continues = false

[sources]
"team-photos" = "private-third-party"
"laion-sample" = "public-dataset"
"site-crawl" = "own-crawl"

[[public_datasets]]
name = "A LAION-style sample (generated for the demo)"
source_name = "laion-sample"
url = "https://example.org/laion-sample"
version = "demo"

[crawler]
name = "provenance-bot"
purposes = ["Collecting openly licensed images to train DemoVision"]
contact = "optout@demo.example"
"""
SCRAPED_LICENSES = [
    "https://creativecommons.org/licenses/by/4.0/",
    "CC BY-SA 4.0",
    "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC BY-NC 4.0",
    "All rights reserved",
    "https://creativecommons.org/licenses/by/2.0/",
]


@dataclass(frozen=True)
class DemoData:
    root: Path
    photos: Path
    scraped: Path
    manifest: Path
    takedown_copy: Path
    site_url: str
    policy: Path


def prepare_dir(root: Path) -> None:
    """Create the demo folder, or clear one an earlier demo made; refuse anything else."""
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).exists():
            raise BadInput(f"{root} exists and is not a provenance demo folder; pass --dir NEW")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("made by `provenance demo`; safe to delete\n")


def _site_files(site: Path) -> None:
    (site / "robots.txt").write_text(ROBOTS_TXT)
    for folder in ("images", "private"):
        (site / folder).mkdir(parents=True, exist_ok=True)
    for i in range(6):
        (site / "images" / f"photo-{i}.jpg").write_bytes(image_bytes(200 + i, (400, 300)))
    (site / "gallery").mkdir(exist_ok=True)
    for i in range(2):
        (site / "private" / f"photo-{i}.jpg").write_bytes(image_bytes(220 + i, (400, 300)))


def write_data(root: Path, site_url: str) -> DemoData:
    """Own photos, an img2dataset-style shard with sidecars, and a URL manifest."""
    photos, scraped, site = root / "team-photos", root / "scraped-shard", root / "site"
    for folder in (photos, scraped, site):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(8):
        (photos / f"IMG_{1000 + i}.jpg").write_bytes(image_bytes(i, (640, 480)))
    for i in range(12):
        stem = scraped / f"{i:09d}"
        stem.with_suffix(".jpg").write_bytes(image_bytes(100 + i, (480, 360)))
        sidecar = {
            "url": f"{site_url}/gallery/{i}.jpg",
            "key": f"{i:09d}",
            "status": "success",
            "license": SCRAPED_LICENSES[i % len(SCRAPED_LICENSES)],
            "creator": f"Photographer {i % 4}",
        }
        stem.with_suffix(".json").write_text(json.dumps(sidecar))
        stem.with_suffix(".txt").write_text(f"a generated picture, number {i}")
    buf = io.BytesIO()
    make_image(150, (480, 360)).save(buf, "JPEG", quality=90, xmp=IPTC_PROHIBITED_XMP)
    (scraped / "000000100.jpg").write_bytes(buf.getvalue())
    (scraped / "000000100.json").write_text(
        json.dumps(
            {
                "url": f"{site_url}/gallery/100.jpg",
                "license": "CC BY 4.0",
                "creator": "Photographer 9",
            }
        )
    )
    (scraped / "000000100.txt").write_text("a picture whose XMP says: no AI/ML training")
    _site_files(site)
    rows = ["url,caption,license"]
    for i in range(6):
        rows.append(f"{site_url}/images/photo-{i}.jpg,site photo {i},CC BY 4.0")
    for i in range(2):
        rows.append(f"{site_url}/private/photo-{i}.jpg,private photo {i},CC BY 4.0")
    rows.append(f"{site_url}/images/noai.jpg,photo the publisher marked noai,CC BY 4.0")
    manifest = root / "urls.csv"
    manifest.write_text("\n".join(rows) + "\n")
    # A rights holder's copy of one scraped picture: resized and re-encoded, not the same bytes.
    copy = make_image(100, (480, 360)).resize((300, 225))
    takedown = root / "takedown-request.jpg"
    copy.save(takedown, "JPEG", quality=70)
    policy = root / "demo-policy.toml"
    policy.write_text(DEMO_POLICY)
    (root / "about.toml").write_text(DEMO_ABOUT)
    return DemoData(root, photos, scraped, manifest, takedown, site_url, policy)


class _SiteHandler(BaseHTTPRequestHandler):
    site: Path

    def log_message(self, format: str, *args: object) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        headers: list[tuple[str, str]] = []
        if path == "/images/noai.jpg":
            body = image_bytes(230, (400, 300))
            headers.append(("X-Robots-Tag", "noai, noimageai"))
        else:
            target = (self.site / path.lstrip("/")).resolve()
            if not target.is_relative_to(self.site.resolve()) or not target.is_file():
                self.send_error(404)
                return
            body = target.read_bytes()
        ctype = "text/plain" if path.endswith(".txt") else "image/jpeg"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200 if self.path != "/missing" else 404)
        self.end_headers()


@contextmanager
def local_site(site: Path) -> Iterator[str]:
    """Serve the demo publisher on 127.0.0.1 (an ephemeral port) for the duration."""
    handler = type("DemoSite", (_SiteHandler,), {"site": site})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
