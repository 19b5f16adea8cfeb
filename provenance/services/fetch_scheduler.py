"""Which fetch may start now: hosts in round-robin, at most `per_host` requests in flight per
host, a minimum gap between request starts on a host (--delay, robots Crawl-delay), a host
held back after a 429/503 or a transient failure, and each host's signal documents loaded
before any of its URLs.

Single-threaded by design: only the coordinating thread calls it, so it needs no locks.
Hosts waiting for time sit in a heap and eligible hosts in a queue, so picking the next task
costs O(log hosts), not a scan of every host.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field, replace

from provenance.services.fetch_work import Job
from provenance.services.host_signals import HostDocs


@dataclass
class _Host:
    origin: str
    queue: deque[Job] = field(default_factory=deque)
    active: int = 0
    next_start: float = 0.0  # monotonic time before which no request may start
    gap: float = 0.0
    docs: HostDocs | None = None
    loading: bool = False
    placed: bool = False  # in the ready queue or the sleeping heap


@dataclass(frozen=True)
class DocsTask:
    """Load the host's robots.txt, ai.txt, tdmrep.json (and RSL) before its first URL."""

    origin: str


@dataclass(frozen=True)
class UrlTask:
    job: Job
    docs: HostDocs


class HostScheduler:
    """Politeness bookkeeping for one run (see the module docstring)."""

    def __init__(self, per_host: int, delay: float) -> None:
        self.per_host = per_host
        self.delay = delay
        self._hosts: dict[str, _Host] = {}
        self._ready: deque[_Host] = deque()
        self._sleeping: list[tuple[float, int, _Host]] = []
        self._seq = itertools.count()
        self.queued = 0

    def add(self, job: Job, now: float) -> None:
        """Queue a job for its host."""
        host = self._hosts.get(job.origin)
        if host is None:
            host = self._hosts[job.origin] = _Host(job.origin, gap=self.delay)
        host.queue.append(job)
        self.queued += 1
        self._place(host, now)

    def take(self, now: float) -> DocsTask | UrlTask | None:
        """The next task that may start at `now`, or None."""
        while self._sleeping and self._sleeping[0][0] <= now:
            host = heapq.heappop(self._sleeping)[2]
            self._ready.append(host)
        while self._ready:
            host = self._ready.popleft()
            host.placed = False
            if not self._eligible(host):
                continue
            if host.next_start > now:
                self._place(host, now)
                continue
            host.active += 1
            if host.docs is None:
                host.loading = True
                return DocsTask(host.origin)
            job = host.queue.popleft()
            self.queued -= 1
            host.next_start = now + host.gap
            self._place(host, now)
            return UrlTask(job, host.docs)
        return None

    def docs_loaded(
        self, origin: str, docs: HostDocs, crawl_delay: float | None, now: float
    ) -> None:
        """The host's documents arrived; a robots Crawl-delay widens the gap (never narrows)."""
        host = self._hosts[origin]
        host.docs, host.loading = docs, False
        host.active -= 1
        if crawl_delay is not None:
            host.gap = max(host.gap, crawl_delay)
        self._place(host, now)

    def finished(self, origin: str, now: float) -> None:
        """A URL task of this host ended."""
        host = self._hosts[origin]
        host.active -= 1
        self._place(host, now)

    def retry(self, job: Job, wait: float, now: float) -> None:
        """Try `job` again after `wait` seconds; the whole host waits (it asked us to)."""
        host = self._hosts[job.origin]
        host.queue.appendleft(replace(job, attempt=job.attempt + 1))
        self.queued += 1
        host.next_start = max(host.next_start, now + wait)
        self.finished(job.origin, now)

    def wait_hint(self, now: float) -> float | None:
        """Seconds until some task may start (0: now), None when nothing is waiting."""
        if self._ready:
            return 0.0
        if self._sleeping:
            return max(0.0, self._sleeping[0][0] - now)
        return None

    def _eligible(self, host: _Host) -> bool:
        return bool(host.queue) and host.active < self.per_host and not host.loading

    def _place(self, host: _Host, now: float) -> None:
        if host.placed or not self._eligible(host):
            return
        host.placed = True
        if host.next_start <= now:
            self._ready.append(host)
        else:
            heapq.heappush(self._sleeping, (host.next_start, next(self._seq), host))
