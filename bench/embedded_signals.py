"""Cost of reading embedded signals (C2PA + IPTC/XMP + rights facts) per image, against the
analysis ingest does anyway, measured in the same run.

    python bench/embedded_signals.py [--count 300]

Prints CPU ms per image (median of 7 interleaved rounds) for:
- the bare C2PA reader (`Reader.try_create`) on photo-like JPEGs without a manifest (baseline
  of the FIELD-NOTES figure, ~0.1 ms);
- `c2pa_signal` (with the header pre-check) and `read_embedded` on the same bytes;
- `analyze_bytes(embedded=False)` vs `analyze_bytes(embedded=True)` and their ratio
  (issue target: embedded reading keeps ingest within 15%);
- `read_embedded` on each real fixture with a manifest (c2pa-rs files), for scale.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from c2pa import Reader
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _images import photo_like_jpeg

from provenance.ingest.analyze import analyze_bytes
from provenance.signals.c2pa import c2pa_signal
from provenance.signals.embedded import read_embedded

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def cpu_ms_per_item(func: Callable[[bytes], object], items: list[bytes]) -> float:
    start = time.process_time()
    for data in items:
        func(data)
    return (time.process_time() - start) / len(items) * 1000


def median_rounds(
    funcs: dict[str, Callable[[bytes], object]], items: list[bytes], rounds: int = 7
) -> dict[str, float]:
    """Interleave the candidates round by round so background load hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, func in funcs.items():
            samples[name].append(cpu_ms_per_item(func, items))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    images = [photo_like_jpeg(seed) for seed in range(args.count)]
    print(
        f"{len(images)} photo-like 800x600 JPEGs, mean {sum(map(len, images)) // len(images)} bytes"
    )

    def bare_reader(data: bytes) -> object:
        return Reader.try_create("image/jpeg", io.BytesIO(data))

    res = median_rounds(
        {
            "bare Reader.try_create": bare_reader,
            "c2pa_signal": lambda d: c2pa_signal(d, "image/jpeg"),
            "read_embedded": lambda d: read_embedded(d, Image.open(io.BytesIO(d)), "image/jpeg"),
            "analyze_bytes(embedded=False)": lambda d: analyze_bytes(d, embedded=False),
            "analyze_bytes(embedded=True)": lambda d: analyze_bytes(d, embedded=True),
        },
        images,
    )
    for name, ms in res.items():
        print(f"  {name:<32} {ms:8.4f} ms/image (CPU)")
    print(f"c2pa_signal / bare reader: {res['c2pa_signal'] / res['bare Reader.try_create']:.3f}x")
    ratio = res["analyze_bytes(embedded=True)"] / res["analyze_bytes(embedded=False)"]
    print(f"analyze with embedded / without: {ratio:.3f}x (target <= 1.15)")

    print("files with a manifest (read_embedded, CPU ms, one run of 5):")
    for path in sorted((FIXTURES / "c2pa").glob("*.jpg")):
        data = path.read_bytes()
        ms = cpu_ms_per_item(
            lambda d: read_embedded(d, Image.open(io.BytesIO(d)), "image/jpeg"), [data] * 5
        )
        print(f"  {path.name:<34} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
