"""Reading SOAP pages in worker processes beside the one that fetches and loads them.

At 0 ms of latency a sync is bound by one core, and reading SOAP takes about half of it
(README.md#performance). A ``PageParser`` hands a page of ``ELSEWHERE_ABOVE`` bytes or more to
an idle worker, a ``python -m sfmc_source.workers`` child that reads pickled pages on its stdin
and answers ``soap.parse_retrieve``'s page (or its error) on its stdout, while this process
goes on loading; while every worker is busy, pages are read here, so both cores read. Smaller
pages are read here too, a worker would cost more than it saves, and so are pages streamed
(over ``soap.STREAM_ABOVE``): those of wide rows, whose cost is memory, which a worker doubles.

Not ``multiprocessing``: its spawned workers import the caller's main module again (an Airflow
or Dagster command, a user's script), its forked ones inherit the locks of running threads,
and a daemonic process (a Celery worker) may have no children at all. A worker that cannot
start, or dies, leaves its pages to this process, which reads them the same way.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from sfmc_source import soap
from sfmc_source.errors import ResponseError

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
    """``soap.parse_retrieve`` for the threads of one client: up to ``workers`` large pages at
    a time in worker processes (started when the first comes), the others in this process."""

    def __init__(self, workers: int) -> None:
        self.workers = workers if _can_start_python() else 0
        self._idle: list[_Worker] = []
        self._running: list[_Worker] = []
        self._lock = threading.Lock()

    def parse_retrieve(
        self, content: bytes, properties: Sequence[str], *, object_type: str | None = None
    ) -> soap.RetrievePage:
        """The page, read by a worker when it is large and one runs or can start; its error
        (a ``ResponseError``) raised here."""
        worker = self._take() if ELSEWHERE_ABOVE <= len(content) <= soap.STREAM_ABOVE else None
        if worker is not None:
            answer = worker.ask((content, list(properties), object_type))
            self._give_back(worker, alive=answer is not None)
            if answer is not None:
                page, error = answer
                if error is not None:
                    raise ResponseError(error)
                assert page is not None
                return page
        return soap.parse_retrieve(content, properties, object_type=object_type)

    def close(self) -> None:
        """Stop the workers; pages read after this are read here."""
        with self._lock:
            self.workers = 0
            stopping, self._idle = self._idle, []
            self._running = [w for w in self._running if w not in stopping]
        for worker in stopping:
            worker.stop()

    def _take(self) -> _Worker | None:
        """An idle worker, else a new one while fewer than ``workers`` run; ``None`` while all
        are busy: the page is read here meanwhile, so both this process and the workers read."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if len(self._running) < self.workers:
                worker = _Worker()
                self._running.append(worker)
                return worker
            return None

    def _give_back(self, worker: _Worker, alive: bool) -> None:
        """A worker done with its page; one that died is not replaced."""
        with self._lock:
            keep = alive and self.workers > 0
            if keep:
                self._idle.append(worker)
            else:
                self._running.remove(worker)
                self.workers = min(self.workers, len(self._running))
        if not keep:
            worker.stop()


class _Worker:
    """One worker process, asked one page at a time. Its first words name the ``soap`` module
    it reads pages with; one that reads them with another (an older install) is not asked."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.greeted = False
        with contextlib.suppress(OSError):  # asked, it answers None: its pages are read here
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sfmc_source.workers"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )

    def ask(self, request: tuple[bytes, list[str], str | None]) -> _Answer | None:
        """The worker's answer, or ``None`` if it cannot give one (it did not start, reads
        pages with another ``soap``, died, or answered nonsense)."""
        process = self.process
        if process is None or process.stdin is None or process.stdout is None:
            return None
        try:
            if not self.greeted:
                self.greeted = pickle.load(process.stdout) == _SOAP_MODULE
                if not self.greeted:
                    return None
            pickle.dump(request, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            process.stdin.flush()
            answer: Any = pickle.load(process.stdout)  # our own child's
        except (OSError, EOFError, pickle.UnpicklingError, ValueError):
            return None
        ok = isinstance(answer, tuple) and len(answer) == 2
        return answer if ok else None

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
