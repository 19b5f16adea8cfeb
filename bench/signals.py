"""URL verdicts from cached robots.txt documents: robots + Content-Signal + Content-Usage.

    python bench/signals.py [--hosts 100] [--urls 20000] [--rounds 5]

100 hosts with realistic, deterministic robots.txt files (a `*` group, groups for some of the
AI crawler tokens, Content-Signal and Content-Usage lines, comments, sitemaps) are parsed once
(the cache), then every URL is evaluated for the full default token list with the three
signals. One "URL verdict" = robots_signal + content_signal + content_usage_from_robots for
one URL and all default tokens. Printed against baselines measured in the same run:
protego `can_fetch` for one token per URL, and a naive protego loop over all tokens.

Other benchmarks can add sections through `EXTENSIONS` (each returns printable lines), e.g.
"ingest with vs without embedded-signal reading" from bench/embedded_signals.py.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from protego import Protego

from provenance.signals.content_signal import content_signal
from provenance.signals.content_usage import content_usage_from_robots
from provenance.signals.robots import RobotsDoc, parse_robots, robots_signal
from provenance.signals.tokens import default_tokens

# Hook: callables returning lines to print after the robots sections.
EXTENSIONS: list[Callable[[], list[str]]] = []

SECTIONS = ["images", "photos", "media", "blog", "news", "api", "static", "uploads", "search"]


def robots_text(rng: random.Random, tokens: tuple[str, ...]) -> str:
    """One plausible robots.txt: ~40-120 lines, mixed AI groups and preference lines."""
    lines = ["# robots.txt generated for the benchmark", "User-agent: *"]
    lines += [f"Disallow: /{rng.choice(SECTIONS)}/private{i}/" for i in range(rng.randint(5, 30))]
    lines += ["Allow: /static/", "Disallow: /*?sessionid=", "Disallow: /*.pdf$"]
    if rng.random() < 0.6:
        lines.append("Content-Signal: search=yes, ai-input=yes, ai-train=no")
    if rng.random() < 0.3:
        lines.append("Content-Usage: train-ai=n")
        lines.append(f"Content-Usage: /{rng.choice(SECTIONS)}/ train-ai=y")
    blocked = rng.sample(tokens, rng.randint(0, min(15, len(tokens))))
    for start in range(0, len(blocked), 3):
        lines.append("")
        lines += [f"User-agent: {t}" for t in blocked[start : start + 3]]
        if rng.random() < 0.7:
            lines.append("Disallow: /")
        else:
            lines += [f"Disallow: /{s}/" for s in rng.sample(SECTIONS, 3)]
        if rng.random() < 0.3:
            lines.append("Content-Signal: ai-train=no")
    lines += ["", "User-agent: Googlebot", "Allow: /", "", "Sitemap: https://h.example/sm.xml"]
    return "\n".join(lines) + "\n"


def make_urls(rng: random.Random, hosts: int, count: int) -> list[tuple[int, str]]:
    urls = []
    for _ in range(count):
        host = rng.randrange(hosts)
        section = rng.choice(SECTIONS)
        path = f"/{section}/{rng.randrange(10_000)}/img_{rng.randrange(1_000_000)}.jpg"
        if rng.random() < 0.05:
            path += "?sessionid=1"
        urls.append((host, f"https://host{host}.example{path}"))
    return urls


def per_second(func: Callable[[], int], rounds: int) -> float:
    """Median items/s over `rounds` runs (CPU time)."""
    rates = []
    for _ in range(rounds):
        start = time.process_time()
        items = func()
        rates.append(items / max(time.process_time() - start, 1e-9))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--urls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(9309)
    tokens = default_tokens()
    texts = [robots_text(rng, tokens) for _ in range(args.hosts)]
    urls = make_urls(rng, args.hosts, args.urls)

    start = time.process_time()
    docs: list[RobotsDoc] = [
        parse_robots(text, f"https://host{i}.example/robots.txt") for i, text in enumerate(texts)
    ]
    parse_ms = (time.process_time() - start) * 1000 / args.hosts
    start = time.process_time()
    bare = [Protego.parse(text) for text in texts]
    protego_ms = (time.process_time() - start) * 1000 / args.hosts

    def full() -> int:
        for host, url in urls:
            doc = docs[host]
            robots_signal(doc, url, tokens)
            content_signal(doc, url, tokens)
            content_usage_from_robots(doc, url, tokens)
        return len(urls)

    def protego_one_token() -> int:
        for host, url in urls:
            bare[host].can_fetch(url, "gptbot")
        return len(urls)

    def protego_all_tokens() -> int:
        for host, url in urls:
            for token in tokens:
                bare[host].can_fetch(url, token)
        return len(urls)

    full()  # warm the per-document memo (group selection, compiled rules): the cached state
    ours = per_second(full, args.rounds)
    one = per_second(protego_one_token, args.rounds)
    naive = per_second(protego_all_tokens, args.rounds)

    lines = sum(t.count("\n") for t in texts) / len(texts)
    print(f"hosts={args.hosts} urls={args.urls} tokens={len(tokens)} lines/robots.txt={lines:.0f}")
    print(
        f"parse per host: {parse_ms:.3f} ms (protego alone {protego_ms:.3f} ms, "
        f"ratio {parse_ms / protego_ms:.2f}x)"
    )
    print(f"URL verdicts/s (robots+content-signal+content-usage, all tokens): {ours:,.0f}")
    print(f"  token verdicts/s: {ours * len(tokens) * 3:,.0f}")
    print(
        f"baseline protego can_fetch, one token: {one:,.0f} URLs/s "
        f"(ours/baseline {ours / one:.2f}x)"
    )
    print(
        f"baseline protego can_fetch loop over all tokens: {naive:,.0f} URLs/s "
        f"(ours/baseline {ours / naive:.2f}x)"
    )
    print(f"target >= 20,000 URL verdicts/s: {'met' if ours >= 20_000 else 'NOT met'}")
    for extension in EXTENSIONS:
        for line in extension():
            print(line)


if __name__ == "__main__":
    main()
