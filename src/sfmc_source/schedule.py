"""Running unattended: intervals, graceful stops, and one sync per destination at a time."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import re
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from sfmc_source.destination import CONNECT_TIMEOUT, Warehouse
from sfmc_source.errors import ConfigError, SfmcError, SyncBusy

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, option: str) -> float:
    """``3h``, ``90m``, ``1h30m``, ``45s``, ``1d`` as seconds."""
    compact = text.replace(" ", "").lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ConfigError(f"{option} {text!r}: use a duration such as 3h, 90m, 1h30m or 45s")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


BUSY = "another sync of this destination and schema is running"


@contextmanager
def warehouse_lock(warehouse: Warehouse, schema: str) -> Iterator[None]:
    """One sync of a warehouse and schema at a time: on this machine a lock file named after
    the warehouse's identity; on Postgres also a lock in the database, held for the run, so a
    sync from another machine is refused too."""
    with destination_lock(warehouse.pipeline_name(schema)):
        if warehouse.kind == "postgres":
            with _advisory_lock(warehouse, schema):
                yield
        else:
            yield


@contextmanager
def _advisory_lock(warehouse: Warehouse, schema: str) -> Iterator[None]:
    import psycopg2  # type: ignore[import-untyped]

    key = int.from_bytes(hashlib.sha256(f"sfmc_source:{schema}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0  # Postgres takes a signed 64-bit key
    try:
        connection = psycopg2.connect(warehouse.url, connect_timeout=CONNECT_TIMEOUT)
    except psycopg2.Error as exc:
        first = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
        raise SfmcError(f"cannot connect to {warehouse.display}: {first}") from None
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = cursor.fetchone()
        if not row or not row[0]:
            raise SyncBusy(f"{BUSY} (from another machine or process); not starting a second one")
        yield
    finally:
        connection.close()  # ends the session, and with it the lock


@contextmanager
def destination_lock(name: str) -> Iterator[None]:
    """An exclusive lock per destination and schema on this machine. The kernel drops it when
    the holder dies, so a crashed or killed sync never leaves it behind."""
    path = Path(tempfile.gettempdir()) / f"sfmc-source-{name}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise SyncBusy(f"{BUSY} (pid {holder}); not starting a second one") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Stopper:
    """SIGINT and SIGTERM ask for a stop at the next safe point; a second signal ends the
    process at once (what the interrupted load wrote, the next run converges from)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signum: int | None = None

    def install(self) -> Stopper:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested.is_set():
            click.echo(f"{name} again: stopping now", err=True)
            os._exit(128 + signum)
        self.signum = signum
        self.requested.set()
        click.echo(f"{name}: stopping: no more requests; what was read loads", err=True)

    def __call__(self) -> bool:
        return self.requested.is_set()

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process its signal ended: 130 (SIGINT), 143 (SIGTERM)."""
        return 128 + (self.signum or 0)


def run_every(every: float, jitter: float, once: Callable[[Stopper], int], stopper: Stopper) -> int:
    """A sync now, then one every ``every`` seconds (plus up to ``jitter``), until a signal.
    A failed run is reported and the next one retries; only a usage error ends the loop.
    The exit code is 0 when the signal came between syncs, 130 or 143 when it cut one short."""
    while not stopper():
        try:
            once(stopper)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            return exc.exit_code
        except SfmcError as exc:
            click.echo(f"error: {exc}", err=True)
        except Exception as exc:  # a scheduler outlives one bad run; the next one retries
            click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        if stopper():
            click.echo("stopped", err=True)
            return stopper.exit_code
        delay = every + random.uniform(0, jitter)
        click.echo(f"next sync in {_human(delay)}", err=True)
        if stopper.requested.wait(delay):
            break
    click.echo("stopped", err=True)
    return 0


def _human(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{rest:02d}s" if hours else f"{minutes}m{rest:02d}s"
