"""Analysis behind the next capture: a bounded pool of worker threads for per-frame analysis (issue 13 item 5).

A procedure that captures several frames and analyses each submits frame k's analysis and goes on moving,
settling and exposing for frame k+1; numpy, OpenCV and the station's C kernels release the GIL, and the main
thread waits on a wire meanwhile. ``Pipeline.submit(step, fn, *args)`` returns a ``Pending``; its
``result()`` gives fn's value or raises fn's own exception (same type, its traceback from the worker, a note
naming the step), so a failure is reported by the step and test that take the result, as if it had run
inline. A procedure takes its results in capture order, so measurements and verdicts stay tied to their
step and come out in the order they would serially.

The pool is bounded: at most ``in_flight`` analyses are queued or running (a submit past that blocks until
one finishes), so at most that many frames wait in memory. An analysis never submits to the pool itself (with
one worker it would wait for itself). ``workers=0`` is the serial mode: ``submit`` runs
the analysis inline at once (the station's behaviour before the pool), for tests and for a machine without
cores to spare.

How many workers: ``[station] analysis_workers`` in the station file (``station.config``), overridden for a
whole run by ``station run --analysis-workers N`` (``override_workers``); ``analysis_pool(station)`` gives
the process's pool of that size. The pool's threads are daemons that live as long as the process.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: Worker threads of a station's analysis pool unless its config says otherwise.
DEFAULT_WORKERS = 1
#: The most a station file or the command line may ask for.
MAX_WORKERS = 16

_override: int | None = None
_pools: dict[int, Pipeline] = {}
_pools_lock = threading.Lock()


class Pending(Generic[T]):
    """The result of one submitted analysis: ``result()`` returns it or raises the analysis's own error."""

    def __init__(self, step: str, future: Future[T]) -> None:
        self.step = step
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> T:
        """fn's value; or fn's exception, re-raised here with a note naming the step (its worker traceback kept)."""
        try:
            return self._future.result()
        except BaseException as exc:
            note = f"(analysis step: {self.step})"
            if note not in getattr(exc, "__notes__", ()):
                exc.add_note(note)
            raise


class Pipeline:
    """``workers`` analysis threads (0: inline) with at most ``in_flight`` analyses queued or running."""

    def __init__(self, workers: int = DEFAULT_WORKERS, in_flight: int | None = None) -> None:
        if not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS:
            raise ValueError(f"analysis workers {workers!r}: expected an integer 0..{MAX_WORKERS}")
        in_flight = workers + 1 if in_flight is None else in_flight
        if workers and in_flight < workers:
            raise ValueError(f"in_flight {in_flight}: expected at least the {workers} workers")
        self.workers = workers
        self.in_flight = in_flight if workers else 0
        self._slots = threading.BoundedSemaphore(in_flight) if workers else None
        self._executor = (ThreadPoolExecutor(workers, thread_name_prefix="analysis") if workers else None)
        self._lock = threading.Lock()
        self._busy = 0
        self.peak_in_flight = 0

    @property
    def serial(self) -> bool:
        return self._executor is None

    def submit(self, step: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Pending[T]:
        """Run ``fn(*args, **kwargs)`` on the pool (inline when serial); ``step`` names it in an error."""
        if self._executor is None or self._slots is None:
            future: Future[T] = Future()
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - re-raised where the result is taken
                future.set_exception(exc)
            return Pending(step, future)
        self._slots.acquire()  # backpressure: no more than in_flight frames wait for analysis
        with self._lock:
            self._busy += 1
            self.peak_in_flight = max(self.peak_in_flight, self._busy)
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: self._release())
        return Pending(step, future)

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1
        assert self._slots is not None
        self._slots.release()

    def stream(self, step: str, fn: Callable[[Iterator[Any]], T]) -> Stream[T]:
        """An analysis over items the caller puts one by one: ``fn(items)`` consumes them as they come
        (on the pool, while the next one is captured), or all at once when they are in (serial)."""
        return Stream(self, step, fn)

    def close(self) -> None:
        """Wait for the analyses under way and stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_END = object()
_ABORT = object()


class StreamAbortedError(RuntimeError):
    """The caller left a stream's block on an error: its analysis stops at the next item."""


def _consume(items: list[Any]) -> Iterator[Any]:
    """The items in order, each let go of as it is handed on."""
    items.reverse()
    while items:
        yield items.pop()


class Stream(Generic[T]):
    """Items to one analysis, put as they are captured: ``put(item)`` each, then ``finish()`` for its result.

    On a pool, ``fn`` runs on a worker from the start and takes each item as it is put (it occupies one
    slot and one worker throughout); serial, the items are kept and ``fn`` runs inline at ``finish()``.
    Either way ``fn`` sees the same items in the same order. Leaving the ``with`` block on an error (in the
    capture loop) makes the item stream raise ``StreamAbortedError`` in ``fn``, so the worker stops at once; left
    normally, the stream ends and ``finish()`` gives the result.
    """

    def __init__(self, pipeline: Pipeline, step: str, fn: Callable[[Iterator[Any]], T]) -> None:
        self._pipeline, self.step, self._fn = pipeline, step, fn
        self._items: list[Any] = []
        self._queue: queue.Queue[Any] | None = None
        self._pending: Pending[T] | None = None
        self._closed = False
        if not pipeline.serial:
            self._queue = queue.Queue()
            self._pending = pipeline.submit(step, fn, self._drain())

    def _drain(self) -> Iterator[Any]:
        assert self._queue is not None
        while (item := self._queue.get()) is not _END:
            if item is _ABORT:
                raise StreamAbortedError(f"{self.step}: the capture loop stopped on an error")
            handed = [item]
            del item
            yield handed.pop()  # not held here while fn works on it (a 50 MP frame is 100 MB)

    def put(self, item: Any) -> None:
        if self._closed:
            raise RuntimeError(f"{self.step}: the stream is finished")
        if self._queue is not None:
            self._queue.put(item)
        else:
            self._items.append(item)

    def _close(self, aborted: bool = False) -> None:
        if not self._closed:
            self._closed = True
            if self._queue is not None:
                self._queue.put(_ABORT if aborted else _END)
            elif aborted:
                self._items.clear()

    def finish(self) -> T:
        """The analysis's result (its error re-raised here, naming the step)."""
        self._close()
        if self._pending is None:
            items, self._items = self._items, []
            self._pending = self._pipeline.submit(self.step, self._fn, _consume(items))
        return self._pending.result()

    def __enter__(self) -> Stream[T]:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._close(aborted=exc_type is not None)


def override_workers(workers: int | None) -> None:
    """Every station in this process uses ``workers`` analysis threads (None: each its config's)."""
    global _override
    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        raise ValueError(f"analysis workers {workers!r}: expected an integer 0..{MAX_WORKERS}")
    _override = workers


@contextlib.contextmanager
def workers_overridden(workers: int | None) -> Iterator[None]:
    """``override_workers(workers)`` inside the block, the previous setting after it."""
    before = _override
    override_workers(workers)
    try:
        yield
    finally:
        override_workers(before)


def workers_for(station: Any) -> int:
    """How many analysis threads ``station`` uses: the override, else its config's, else the default."""
    if _override is not None:
        return _override
    config = getattr(station, "config", None)
    return int(getattr(config, "analysis_workers", DEFAULT_WORKERS))


def analysis_pool(station: Any) -> Pipeline:
    """The process's analysis pool for ``station`` (one pool per size, created on first use)."""
    workers = workers_for(station)
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = Pipeline(workers)
        return pool
