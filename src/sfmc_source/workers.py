"""Reading SOAP pages in worker processes beside the one that fetches and loads them.

At 0 ms of latency a sync is bound by one core, and reading SOAP takes about half of it
(README.md#performance). A ``PageParser`` hands a page of ``ELSEWHERE_ABOVE`` bytes or more to
an idle worker, a ``python -m sfmc_source.workers`` child that reads pickled pages on its stdin
and answers ``soap.parse_retrieve``'s page (or its error) on its stdout, while this process
goes on loading. Until a worker has started, and while every worker is busy, pages are read
here, so both cores read. Smaller pages are read here too (a worker would cost more than it
saves), and so are pages streamed (over ``soap.STREAM_ABOVE``): those of wide rows, whose cost
is memory, which a worker would double.

Not ``multiprocessing``: its spawned workers import the caller's main module again (an Airflow
or Dagster command, a user's script), its forked ones inherit the locks of running threads,
and a daemonic process (a Celery worker) may have no children at all. A worker that cannot
start, or dies, leaves its pages to this process, which reads them the same way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from sfmc_source import soap
from sfmc_source.errors import ResponseError

# This process's reader in the queue of free ones: after every worker.
_HERE: tuple[int, int, None] = (1, 0, None)
# Pages this long or longer are read by a worker (bytes): a page of 2,500 tracking events is
# about 1 MB, and pickling the columns back costs a tenth of reading them.
ELSEWHERE_ABOVE = 256 * 1024
_Answer = tuple[soap.RetrievePage | None, str | None]
_SOAP_MODULE = str(Path(soap.__file__).resolve())


def default_workers() -> int:
    """One worker where this process may use more than one core, else none."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    return 1 if cores > 1 else 0


class PageParser:
    """``soap.parse_retrieve`` for the threads of one client. Each large page goes to the first
    free reader: a worker process (up to ``workers``, preferred) or this process, which reads
    one page at a time, on one thread. The first large page starts the workers; each joins
    once it has said which ``soap`` it reads with."""

    def __init__(self, workers: int) -> None:
        self.workers = workers if _can_start_python() else 0
        self._free: queue.PriorityQueue[tuple[int, int, _Worker | None]] = queue.PriorityQueue()
        self._free.put(_HERE)
        self._started: list[_Worker] = []  # free, busy, or not yet heard from
        self._lock = threading.Lock()
        self._closed = False
        # This process's reader: one thread, for a page's tree takes ten times its bytes,
        # which the allocator keeps for the thread that built it, and reading holds the GIL.
        self._here = ThreadPoolExecutor(1, thread_name_prefix="sfmc-source-read")

    def parse_retrieve(
        self, content: bytes, properties: Sequence[str], *, object_type: str | None = None
    ) -> soap.RetrievePage:
        """The page, read by the first free reader when it is large (here when small, or
        streamed); its error (a ``ResponseError``) raised here."""
        read = functools.partial(soap.parse_retrieve, content, properties, object_type=object_type)
        if self._closed or not ELSEWHERE_ABOVE <= len(content) <= soap.STREAM_ABOVE:
            return read()
        self._start_workers()
        *_, worker = reader = self._free.get()
        if worker is None:
            try:
                return self._here.submit(read).result()
            finally:
                self._free.put(reader)
        answer = worker.ask((content, list(properties), object_type))
        self._settle(worker, ready=answer is not None)
        if answer is None:
            return read()
        page, error = answer
        if error is not None:
            raise ResponseError(error)
        assert page is not None
        return page

    def close(self) -> None:
        """Stop the workers (a busy one once it has answered); pages are read on the calling
        thread after."""
        with self._lock:
            self._closed = True
        for worker in self._free_workers():
            worker.stop()
        self._here.shutdown()

    def _start_workers(self) -> None:
        """Start the workers not yet started; each is free once it has greeted."""
        while True:
            with self._lock:
                if len(self._started) >= self.workers or self._closed:
                    return
                worker = _Worker()
                self._started.append(worker)
            greet = threading.Thread(
                target=self._greeted, args=(worker,), name="sfmc-source-worker", daemon=True
            )
            greet.start()

    def _greeted(self, worker: _Worker) -> None:
        self._settle(worker, ready=worker.greet())

    def _settle(self, worker: _Worker, ready: bool) -> None:
        """A worker that greeted or answered is free for the next page; one that did not
        (dead, or with another ``soap``), or of a closed parser, is stopped, not replaced."""
        with self._lock:
            keep = ready and not self._closed
            if not keep and worker in self._started:
                self._started.remove(worker)
                self.workers = min(self.workers, len(self._started))
        if keep:
            self._free.put((0, id(worker), worker))
        else:
            worker.stop()

    def _free_workers(self) -> list[_Worker]:
        """The free workers, taken out of the queue (this process's reader left in it)."""
        taken: list[_Worker] = []
        while True:
            try:
                *_, worker = reader = self._free.get_nowait()
            except queue.Empty:
                break
            if worker is None:
                self._free.put(reader)
                break  # the workers come first: none is left behind it
            taken.append(worker)
        with self._lock:
            self._started = [w for w in self._started if w not in taken]
        return taken


class _Worker:
    """One worker process, asked one page at a time once it has greeted: its first words name
    the ``soap`` module it reads pages with, and one with another (an older install) is not
    asked."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.answered = 0
        with contextlib.suppress(OSError):  # it never greets: pages are read here
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sfmc_source.workers"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )

    def greet(self) -> bool:
        """Whether the worker started and reads pages with this process's ``soap``."""
        process = self.process
        if process is None or process.stdout is None:
            return False
        try:
            return bool(pickle.load(process.stdout) == _SOAP_MODULE)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            return False

    def ask(self, request: tuple[bytes, list[str], str | None]) -> _Answer | None:
        """The worker's answer, or ``None`` if it cannot give one (it died, or answered
        nonsense)."""
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        try:
            pickle.dump(request, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            process.stdin.flush()
            answer: Any = pickle.load(process.stdout)  # our own child's
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            return None
        if not (isinstance(answer, tuple) and len(answer) == 2):
            return None
        self.answered += 1
        return answer

    def stop(self) -> None:
        """End the worker: its stdin closed, it returns; one that does not is killed."""
        if self.process is None:
            return
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _can_start_python() -> bool:
    """Whether ``sys.executable`` is a Python to start workers with (not a frozen app or an
    embedding host)."""
    name = Path(sys.executable or "").name.lower()
    return not getattr(sys, "frozen", False) and name.startswith(("python", "pypy"))


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """A worker's life: say which ``soap`` it reads with, then read each page asked for on
    ``requests`` and answer on ``answers``, until ``requests`` ends."""
    pickle.dump(_SOAP_MODULE, answers)
    answers.flush()
    while True:
        try:
            content, properties, object_type = pickle.load(requests)  # our parent's
        except EOFError:
            return
        answer: _Answer
        try:
            answer = (soap.parse_retrieve(content, properties, object_type=object_type), None)
        except ResponseError as exc:
            answer = (None, str(exc))
        pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


if __name__ == "__main__":
    # Stops are the parent's to handle: it closes our stdin when it is done with us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed may end up among the answers
    serve(sys.stdin.buffer, answers)
