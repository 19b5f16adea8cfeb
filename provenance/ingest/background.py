"""Preparing the rows of a large URL-only manifest in a second process.

For URL rows, reading the manifest and preparing rows (URL parts, keys, license ids, JSON) costs
about as much CPU as the catalog insert, and both need the GIL, so threads cannot overlap them.
A child process reads and prepares window k+1 while the parent inserts window k; windows cross
the pipe pickled (about 1 us a row each way, measured, against ~6 us a row of preparation).

The child sends, in order: whether the manifest takes the columnar path at all, then one
window per message, then an end marker; an exception in the child (e.g. an unparseable CSV
line) is sent instead and raised in the parent, so the manifest's transaction rolls back exactly
as when preparing inline.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import sys
from collections.abc import Generator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from provenance.domain import utcnow
from provenance.errors import ProvenanceError
from provenance.ingest.columnar import manifest_url_batches
from provenance.ingest.rows import PreparedWindow, prepare_url_batch
from provenance.ingest.textranges import ByteRange

# Below this size a manifest is prepared inline: starting a process would cost more than it saves.
CHILD_MIN_BYTES = 4 << 20
_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class UrlManifestJob:
    """What the child needs to prepare the windows of one manifest (or one of its parts)."""

    path: Path
    row_group: int | None
    part: ByteRange | None
    source_name: str
    run_id: int
    default_license: str | None
    batch_rows: int


def prepare_inline(job: UrlManifestJob) -> Generator[PreparedWindow, None, None] | None:
    """The windows of a URL-only manifest prepared in this process; None for other manifests."""
    batches = manifest_url_batches(job.path, job.batch_rows, job.row_group, job.part)
    if batches is None:
        return None
    return (
        prepare_url_batch(job.source_name, batch, job.run_id, utcnow(), job.default_license)
        for batch in batches
    )


def prepare_in_child(job: UrlManifestJob) -> Generator[PreparedWindow, None, None] | None:
    """prepare_inline, run in a child process; the same windows in the same order. None for
    manifests that do not take the columnar path (decided by the child, which reads them)."""
    ctx: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, job, receiver), daemon=True,
                          name="provenance-ingest-prepare")
    process.start()
    sender.close()
    try:
        columnar = _receive(receiver, process)
    except BaseException:
        _stop(process, receiver)
        raise
    if not columnar:
        _stop(process, receiver)
        return None
    return _windows(receiver, process)


def _windows(receiver: Connection, process: Any) -> Generator[PreparedWindow, None, None]:
    try:
        while True:
            window = _receive(receiver, process)
            if window is None:
                return
            yield window
    finally:
        _stop(process, receiver)


def _receive(receiver: Connection, process: Any) -> Any:
    """The next message's payload; raises what the child raised."""
    while not receiver.poll(_POLL_SECONDS):
        if not process.is_alive() and not receiver.poll(0):
            raise ProvenanceError(
                f"the process preparing manifest rows stopped (exit code {process.exitcode})"
            )
    try:
        kind, payload = pickle.loads(receiver.recv_bytes())
    except EOFError as exc:
        raise ProvenanceError("the process preparing manifest rows stopped early") from exc
    if kind == "error":
        raise payload
    return payload


def _stop(process: Any, receiver: Connection) -> None:
    receiver.close()
    if process.is_alive():
        process.terminate()
    process.join()


def _child(sender: Connection, job: UrlManifestJob, receiver: Connection) -> None:
    # The child's copy of the reading end must go: while it is open, a parent that dies (a
    # kill, the OOM killer) leaves the child blocked on a full pipe forever instead of
    # failing its next send.
    receiver.close()
    try:
        windows = prepare_inline(job)
        sender.send_bytes(pickle.dumps(("columnar", windows is not None), protocol=5))
        for window in windows or ():
            sender.send_bytes(pickle.dumps(("window", window), protocol=5))
        sender.send_bytes(pickle.dumps(("window", None), protocol=5))
    except BaseException as exc:  # handed to the parent, which raises it
        try:
            message = pickle.dumps(("error", exc), protocol=5)
        except Exception:  # an exception that does not pickle: keep its text
            message = pickle.dumps(("error", ProvenanceError(repr(exc))), protocol=5)
        with contextlib.suppress(OSError):  # the parent has gone (it stopped us)
            sender.send_bytes(message)
    finally:
        sender.close()
