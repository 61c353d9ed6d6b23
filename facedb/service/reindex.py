"""The Reindex RPC: the engine's reindex run on a thread, its progress streamed.

The engine calls the progress hook on its own thread after every embedded batch; this
module turns those calls into `ReindexProgress` messages (EMBEDDING, then BUILDING, then
one SWITCHED with the gallery; an index rebuild without a new model sends SWITCHED only).
A client that cancels (or whose deadline passes) makes the next progress call raise,
which abandons the reindex before its switch: nothing changes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from facedb import engine as eng
from facedb.engine.reindex import DEFAULT_BATCH_SIZE
from facedb.service.errors import abort_for
from facedb.v1 import facedb_pb2 as pb

EMBEDDING, BUILDING, SWITCHED = (
    pb.ReindexProgress.EMBEDDING,
    pb.ReindexProgress.BUILDING,
    pb.ReindexProgress.SWITCHED,
)
log = logging.getLogger(__name__)
POLL_S = 0.5  # how often a waiting stream looks whether its client is still there


class ReindexCancelled(Exception):
    """The client went away: the reindex stops before it switches anything."""


def reindex_stream(
    engine: eng.Engine,
    request: pb.ReindexRequest,
    context: grpc.ServicerContext,
    gallery_message: Callable[[eng.Gallery], pb.Gallery],
) -> Iterator[pb.ReindexProgress]:
    updates: queue.Queue[pb.ReindexProgress | BaseException | eng.Gallery] = queue.Queue()
    gone = threading.Event()
    context.add_callback(gone.set)  # called when the RPC ends, cancelled or not

    def progress(done: int, total: int) -> None:
        if gone.is_set() or not context.is_active():
            raise ReindexCancelled("the client cancelled the reindex")
        updates.put(pb.ReindexProgress(phase=EMBEDDING, faces_done=done, faces_total=total))
        if done >= total:
            updates.put(pb.ReindexProgress(phase=BUILDING, faces_done=done, faces_total=total))

    def run() -> None:
        try:
            updates.put(
                engine.reindex(
                    request.gallery,
                    request.recognizer or None,
                    kind=request.index_kind or None,
                    batch_size=request.batch_size or DEFAULT_BATCH_SIZE,
                    progress=progress,
                )
            )
        except BaseException as error:  # reported to the client (or dropped if it left)
            updates.put(error)

    threading.Thread(target=run, name=f"reindex-{request.gallery[:40]}", daemon=True).start()
    try:
        while True:
            item = _next(updates, context)
            if item is None or isinstance(item, ReindexCancelled):
                log.info("Reindex of %r cancelled by the client: nothing switched", request.gallery)
                return
            if isinstance(item, pb.ReindexProgress):
                yield item
            elif isinstance(item, BaseException):
                abort_for(_exception(item), context, "Reindex")
            else:
                faces = item.face_count
                yield pb.ReindexProgress(
                    phase=SWITCHED,
                    faces_done=faces,
                    faces_total=faces,
                    gallery=gallery_message(item),
                )
                return
    finally:
        gone.set()  # a client that stopped reading: the next progress call cancels


def _next(updates: queue.Queue[Any], context: grpc.ServicerContext) -> Any:
    """The next update, or None once the client has gone."""
    while True:
        try:
            return updates.get(timeout=POLL_S)
        except queue.Empty:
            if not context.is_active():
                return None


def _exception(error: BaseException) -> Exception:
    return error if isinstance(error, Exception) else RuntimeError(repr(error))
