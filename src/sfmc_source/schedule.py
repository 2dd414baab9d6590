"""Running unattended: intervals, graceful stops, one sync per business unit and destination
at a time, and the destination to one sync at a time while it prepares or loads."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import re
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
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
def units_lock(warehouse: Warehouse, schema: str, units: Sequence[int | None]) -> Iterator[None]:
    """One sync of a business unit (``None``: the package's own) into a warehouse and schema at
    a time, refused (SyncBusy) while another runs: on this machine a lock file per unit named
    after the warehouse's identity; on Postgres also a lock in the database, held for the run,
    so a sync from another machine is refused too. Syncs of other units run alongside."""
    name = warehouse.pipeline_name(schema)
    with ExitStack() as held:
        for unit in sorted({str(u or "default") for u in units}):
            held.enter_context(destination_lock(f"{name}-{unit}"))
            if warehouse.kind == "postgres":
                held.enter_context(_advisory_lock(warehouse, f"{schema}:{unit}"))
        yield


@contextmanager
def warehouse_turn(warehouse: Warehouse, schema: str) -> Iterator[None]:
    """The warehouse and schema to this sync alone while it prepares or loads them: waits
    for a sync of other units to finish its turn (on this machine, and on Postgres from any)."""
    with destination_lock(warehouse.pipeline_name(schema), wait=True):
        if warehouse.kind == "postgres":
            with _advisory_lock(warehouse, schema, wait=True):
                yield
        else:
            yield


@contextmanager
def _advisory_lock(warehouse: Warehouse, name: str, wait: bool = False) -> Iterator[None]:
    import psycopg2  # type: ignore[import-untyped]

    key = int.from_bytes(hashlib.sha256(f"sfmc_source:{name}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0  # Postgres takes a signed 64-bit key
    try:
        connection = psycopg2.connect(warehouse.url, connect_timeout=CONNECT_TIMEOUT)
    except psycopg2.Error as exc:
        first = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
        raise SfmcError(f"cannot connect to {warehouse.display}: {first}") from None
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            if wait:
                cursor.execute("SELECT pg_advisory_lock(%s), true", (key,))  # waits
            else:
                cursor.execute("SELECT pg_try_advisory_lock(%s), true", (key,))
            row = cursor.fetchone()
        if not row or row[0] is False:
            raise SyncBusy(f"{BUSY} (from another machine or process); not starting a second one")
        yield
    finally:
        connection.close()  # ends the session, and with it the lock


@contextmanager
def destination_lock(name: str, wait: bool = False) -> Iterator[None]:
    """An exclusive lock per ``name`` on this machine, refused while another holds it (or
    waited for). The kernel drops it when the holder dies, so a crashed or killed sync never
    leaves it behind."""
    path = Path(tempfile.gettempdir()) / f"sfmc-source-{name}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
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
