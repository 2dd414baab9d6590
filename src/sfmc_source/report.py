"""What a sync tells the person or the log collector watching it.

Three shapes of one event stream: on a terminal, one live line per collection (rows, requests,
rate) and a summary table; elsewhere, plain log lines; with ``--log-format json``, one JSON
object per event, each with the run id. Every line passes through ``redact`` first, so the
client secret and access tokens never reach the output, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from sfmc_source.redaction import redact

if TYPE_CHECKING:  # the command line imports this module before it needs dlt
    from sfmc_source.history import CollectionResult


class Reporter:
    """Plain log lines on stderr, the summary on stdout."""

    def __init__(
        self,
        run_id: str,
        secrets: Callable[[], Iterable[str]] = tuple,
        verbose: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.run_id = run_id
        self.secrets = secrets
        self.pages: Counter[str] = Counter()
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())

    def _line(self, stream: TextIO, text: str) -> None:
        stream.write(self.redact(text) + "\n")
        stream.flush()

    def started(self, names: Iterable[str]) -> None:
        if self.verbose:
            self._line(self.err, f"{_now()} loading {', '.join(names)}")

    def progress(self, name: str, rows: int, requests: int) -> None:
        """A page of ``name`` was handed to dlt; ``rows`` and ``requests`` are totals so far."""
        self.pages[name] += 1
        self._progress(name, rows, requests, self.pages[name])

    def _progress(self, name: str, rows: int, requests: int, pages: int) -> None:
        if self.verbose:
            counts = ", ".join(
                [counted(pages, "page"), counted(rows, "row"), counted(requests, "request")]
            )
            self._line(self.err, f"{_now()} {name}: {counts} so far")

    def read(self, result: CollectionResult) -> None:
        """A collection was read in full; it loads with the run's other collections."""
        if self.verbose:
            counts = f"{counted(result.rows, 'row')}, {counted(result.requests, 'request')}"
            self._line(self.err, f"{_now()} {result.name}: read, {counts}; loading with the rest")

    def finished(self, result: CollectionResult) -> None:
        outcome = f"FAILED: {result.error}" if result.error else result.described
        self._line(
            self.err,
            f"{_now()} {result.name}: {counted(result.rows, 'row')}, "
            f"{counted(result.requests, 'request')}, {result.seconds:.1f}s, {outcome}",
        )

    def summary(
        self,
        collections: list[CollectionResult],
        token_requests: int,
        failure: str | None,
        warning: str | None,
    ) -> None:
        if failure is not None:
            self._line(self.err, f"error: {failure}")
            return
        width = max([16, *(len(c.name) for c in collections)])
        self._line(
            self.out,
            f"{'collection':<{width}} {'rows':>8} {'requests':>9} {'seconds':>8}  outcome",
        )
        for c in collections:
            outcome = c.described
            self._line(
                self.out,
                f"{c.name:<{width}} {c.rows:>8} {c.requests:>9} {c.seconds:>8.2f}  {outcome}",
            )
        self._line(self.out, f"token requests: {token_requests}   run id: {self.run_id}")
        if warning:
            self._line(self.err, f"warning: {warning}")
        for c in collections:
            if c.error:
                self._line(self.err, f"error: {c.name}: {c.error}")
        skipped = [c.name for c in collections if c.skipped]
        if skipped:
            self._line(self.err, f"interrupted: not synced this run: {', '.join(skipped)}")

    def close(self) -> None:
        """Ends whatever the reporter keeps on screen."""


class Quiet(Reporter):
    """Says nothing: for library use, where the caller reads the ``SyncResult``."""

    def started(self, names: Iterable[str]) -> None:
        pass

    def _progress(self, name: str, rows: int, requests: int, pages: int) -> None:
        pass

    def read(self, result: CollectionResult) -> None:
        pass

    def finished(self, result: CollectionResult) -> None:
        pass


class LiveReporter(Reporter):
    """On a terminal: one live line per collection while it loads."""

    def __init__(
        self, run_id: str, secrets: Callable[[], Iterable[str]] = tuple, verbose: bool = False
    ) -> None:
        super().__init__(run_id, secrets, verbose)
        self._state: dict[str, tuple[int, int, float, str]] = {}
        self._live = Live(
            self._table(), console=Console(file=sys.stderr), transient=True, auto_refresh=False
        )
        self._live.start()

    def _table(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        for name, (rows, requests, since, outcome) in self._state.items():
            rate = rows / max(time.monotonic() - since, 1e-3)
            table.add_row(
                name,
                counted(self.pages[name], "page", grouped=True),
                counted(rows, "row", grouped=True),
                counted(requests, "request", grouped=True),
                f"{rate:,.0f} rows/s",
                outcome,
            )
        return table

    def _show(self) -> None:
        self._live.update(self._table(), refresh=True)

    def started(self, names: Iterable[str]) -> None:
        for name in names:
            self._state[name] = (0, 0, time.monotonic(), "loading")
        self._show()

    def _progress(self, name: str, rows: int, requests: int, pages: int) -> None:
        _, _, since, outcome = self._state.get(name, (0, 0, time.monotonic(), "loading"))
        self._state[name] = (rows, requests, since, outcome)
        self._show()

    def read(self, result: CollectionResult) -> None:
        _, _, since, _ = self._state.get(result.name, (0, 0, time.monotonic(), ""))
        self._state[result.name] = (result.rows, result.requests, since, "read")
        self._show()

    def finished(self, result: CollectionResult) -> None:
        _, _, since, _ = self._state.get(result.name, (0, 0, time.monotonic(), ""))
        self._state[result.name] = (
            result.rows,
            result.requests,
            since,
            result.outcome,
        )
        self._show()

    def close(self) -> None:
        self._live.stop()


class JsonReporter(Reporter):
    """One JSON object per event on stdout, each with the run id."""

    def _event(self, event: str, **fields: Any) -> None:
        record = {"ts": _now(), "run_id": self.run_id, "event": event, **fields}
        self._line(self.out, json.dumps(record, default=str))

    def started(self, names: Iterable[str]) -> None:
        for name in names:
            self._event("collection_started", collection=name)

    def _progress(self, name: str, rows: int, requests: int, pages: int) -> None:
        self._event("progress", collection=name, pages=pages, rows=rows, requests=requests)

    def read(self, result: CollectionResult) -> None:
        self._event(
            "collection_read", collection=result.name, rows=result.rows, requests=result.requests
        )

    def finished(self, result: CollectionResult) -> None:
        self._event(
            "collection_finished",
            collection=result.name,
            outcome=result.outcome,
            rows=result.rows,
            requests=result.requests,
            seconds=round(result.seconds, 3),
            error=result.error,
        )

    def summary(
        self,
        collections: list[CollectionResult],
        token_requests: int,
        failure: str | None,
        warning: str | None,
    ) -> None:
        failed = [c.name for c in collections if c.outcome == "failed"]
        skipped = [c.name for c in collections if c.skipped]
        self._event(
            "run_finished",
            outcome="failed" if failure or failed else "interrupted" if skipped else "ok",
            error=failure,
            failed=failed,
            skipped=skipped,
            token_requests=token_requests,
            warning=warning,
        )


def counted(number: int, noun: str, grouped: bool = False) -> str:
    """``1 row``, ``2 rows``; grouped: ``1,250 requests``."""
    digits = f"{number:,}" if grouped else str(number)
    return f"{digits} {plural(number, noun)}"


def plural(number: int, noun: str) -> str:
    """``row`` for one, ``rows`` for any other number."""
    return noun if number == 1 else f"{noun}s"


class LibraryLog(logging.Handler):
    """Where dlt's log records go: nowhere, or with ``--debug`` to stderr with the secrets
    blanked out. What a user must know of a sync, the reporter says."""

    def __init__(self, debug: bool, secrets: Iterable[str | None] = ()) -> None:
        super().__init__(logging.NOTSET if debug else logging.CRITICAL + 1)
        self.secrets = list(secrets)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(redact(self.format(record), self.secrets) + "\n")
        except Exception:
            self.handleError(record)


def reporter_for(
    log_format: str, run_id: str, secrets: Callable[[], Iterable[str]], verbose: bool
) -> Reporter:
    if log_format == "json":
        return JsonReporter(run_id, secrets, verbose)
    if sys.stderr.isatty():
        return LiveReporter(run_id, secrets, verbose)
    return Reporter(run_id, secrets, verbose)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
