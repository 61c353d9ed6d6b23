"""Cross-request micro-batching: faces from concurrent callers embedded in one model run.

A server answers many small requests at once, each with one or a few faces. Running the
recognizer once per request leaves the batch dimension of the graph unused; here callers
hand their aligned crops to one worker thread, which gathers the crops that arrive within
a short window (`wait_ms`, bounded by `max_batch` rows), runs ONE `embed` call on all of
them and gives each caller back its own rows.

Only graphs whose outputs do not depend on their batch neighbours may be batched this
way (`Embedder.batch_limit > 1`; a dynamic-int8 graph has 1): for any other embedder the
batcher calls it directly, on the caller's thread.

The batcher knows nothing of requests or clocks beyond what it is given: `deadline` says,
on the caller's thread, by which `time.monotonic()` the caller stops waiting (None: never),
and `expired` builds the error such a caller gets instead of an embedding.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from facedb.vision.embed import Embedder
from facedb.vision.embed.base import CROP_SIZE

# Measured with benchmarks/service.py (docs/DESIGN.md "Micro-batching"): 2 ms merges several
# times more calls than 0 ms, and is short against a request's 30-60 ms.
DEFAULT_WAIT_MS = 2.0


def no_deadline() -> float | None:
    return None


def deadline_passed(stage: str) -> Exception:
    return TimeoutError(f"deadline exceeded before the {stage} stage")


@dataclass
class _Submission:
    crops: np.ndarray
    deadline: float | None
    result: Future[np.ndarray] = field(default_factory=Future)


@dataclass
class BatcherCounts:
    """What the batcher did: `runs` < `submissions` means calls were merged."""

    submissions: int = 0  # embed calls from callers that went through the worker
    runs: int = 0  # embed calls the worker made on the model
    expired: int = 0  # submissions dropped because their caller's deadline had passed
    largest_batch: int = 0  # most crops in one run


def _is_crop_batch(batch: np.ndarray) -> bool:
    return batch.dtype == np.uint8 and batch.shape[1:] == (CROP_SIZE, CROP_SIZE, 3)


class EmbeddingBatcher:
    """Embeds the crops of concurrent callers in shared model runs (thread-safe).

    `embed(crops)` has the embedder's contract: (N, 112, 112, 3) BGR uint8 in, (N, dim)
    unit float32 out, row i for crop i. An exception raised by the model reaches every
    caller whose crops were in that run, and only them. `close()` finishes what is queued
    and stops the worker; `embed` is refused afterwards.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        wait_ms: float = DEFAULT_WAIT_MS,
        max_batch: int | None = None,
        deadline: Callable[[], float | None] = no_deadline,
        expired: Callable[[str], Exception] = deadline_passed,
    ) -> None:
        if wait_ms < 0:
            raise ValueError(f"wait_ms must be >= 0, got {wait_ms}")
        self.embedder = embedder
        self.max_batch = min(max_batch or embedder.batch_limit, embedder.batch_limit)
        self.batched = self.max_batch > 1
        self.counts = BatcherCounts()
        self._wait = wait_ms / 1000
        self._deadline = deadline
        self._expired = expired
        self._queue: deque[_Submission] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None
        if self.batched:
            self._worker = threading.Thread(
                target=self._serve, name="facedb-embedding-batcher", daemon=True
            )
            self._worker.start()

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """The crops' embeddings, computed together with other callers' crops when possible."""
        if self._closed:
            raise RuntimeError("the embedding batcher is closed")
        if not self.batched:
            return self.embedder.embed(crops)
        batch = np.asarray(crops)
        if batch.ndim == 3:
            batch = batch[None]
        if len(batch) == 0 or not _is_crop_batch(batch):
            # Nothing to share, or crops that could not join others (the embedder itself
            # resizes or refuses them): the caller's own thread does it, alone.
            return self.embedder.embed(batch)
        submission = _Submission(batch, self._deadline())
        with self._ready:
            if self._closed:
                raise RuntimeError("the embedding batcher is closed")
            self._queue.append(submission)
            self.counts.submissions += 1
            self._ready.notify()
        return submission.result.result()

    def close(self) -> None:
        """Embed what is queued, then stop the worker thread."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._worker is not None:
            self._worker.join()

    # ---- the worker -------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            batch = self._gather()
            if batch is None:
                return
            self._run([s for s in batch if not self._drop_expired(s)])

    def _gather(self) -> list[_Submission] | None:
        """The next run's submissions: those waiting, and those that come within the window
        opened by the first, up to `max_batch` crops. None once closed and drained."""
        with self._ready:
            while not self._queue and not self._closed:
                self._ready.wait()
            if not self._queue:
                return None
            window_ends = time.monotonic() + self._wait
            while not self._closed and self._queued_rows() < self.max_batch:
                remaining = window_ends - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            return self._take()

    def _queued_rows(self) -> int:
        return sum(len(s.crops) for s in self._queue)

    def _take(self) -> list[_Submission]:
        """Submissions in arrival order up to `max_batch` crops; always at least one (a
        larger submission runs alone: the embedder splits it in chunks it allows)."""
        taken = [self._queue.popleft()]
        rows = len(taken[0].crops)
        while self._queue and rows + len(self._queue[0].crops) <= self.max_batch:
            rows += len(self._queue[0].crops)
            taken.append(self._queue.popleft())
        return taken

    def _drop_expired(self, submission: _Submission) -> bool:
        """A caller whose deadline passed while it waited gets the expiry error, unembedded."""
        if submission.deadline is None or time.monotonic() < submission.deadline:
            return False
        self.counts.expired += 1
        submission.result.set_exception(self._expired("embed"))
        return True

    def _run(self, batch: list[_Submission]) -> None:
        if not batch:
            return
        try:
            crops = np.concatenate([s.crops for s in batch])
            self.counts.runs += 1
            self.counts.largest_batch = max(self.counts.largest_batch, len(crops))
            vectors = self.embedder.embed(crops)
        except Exception as error:  # the callers in this run get it; the worker goes on
            for submission in batch:
                submission.result.set_exception(error)
            return
        start = 0
        for submission in batch:
            end = start + len(submission.crops)
            submission.result.set_result(vectors[start:end])
            start = end
