"""One sync run's reading: every group of collections of every business unit in flight at
once under the one throttle, each collection's items spooled to disk until the run's one
load, with the state it would store. A group that fails, or that a stop cuts short, loads
nothing and its collections keep the state they had; the others are not held up by it."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from dlt.extract.items import DataItemWithMeta

from sfmc_source.client import SfmcClient
from sfmc_source.errors import PermissionDenied, SfmcError, Stopped, causes, root_cause
from sfmc_source.history import CollectionResult
from sfmc_source.report import Reporter
from sfmc_source.source import ROWS_BATCH, Item, RunOptions, UnitRun, group_items
from sfmc_source.specs import COLLECTIONS, Collection, load_groups
from sfmc_source.state import RunStates
from sfmc_source.tally import Tally

GROUPS = load_groups()


class Spool:
    """The items one collection of one unit hands over, on disk until the load: Arrow
    tables in stream files (a new file when the columns change), dlt's hint markers kept
    as they are. ``items`` hands them back in order, a batch of rows at a time."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory, self.name = directory, name
        self.parts: list[Path | DataItemWithMeta] = []
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None

    def add(self, item: Item) -> None:
        if isinstance(item, DataItemWithMeta):
            self.close()
            self.parts.append(item)
            return
        if self._writer is None or item.schema != self._schema:
            self.close()
            path = self.directory / f"{self.name}.{len(self.parts)}.arrow"
            self._writer = pa.ipc.new_stream(str(path), item.schema)
            self._schema = item.schema
            self.parts.append(path)
        self._writer.write_table(item)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = self._schema = None

    def items(self) -> Iterator[Item]:
        self.close()
        for part in self.parts:
            if isinstance(part, Path):
                yield from _tables(part)
            else:
                yield part


def _tables(path: Path) -> Iterator[pa.Table]:
    """A stream file's rows as tables of about ``ROWS_BATCH`` rows (one empty table for a
    file of none: the collection's columns still reach dlt), read, not mapped, so memory
    holds one batch at a time."""
    with pa.OSFile(str(path), "r") as file, pa.ipc.open_stream(file) as stream:
        batches: list[pa.RecordBatch] = []
        rows = 0
        for batch in stream:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= ROWS_BATCH:
                yield pa.Table.from_batches(batches, stream.schema)
                batches, rows = [], 0
        if batches or rows == 0:
            yield pa.Table.from_batches(batches, stream.schema)


@dataclass
class Fetched:
    """One collection of one business unit this run: what happened, and for a collection
    read in full, its spooled items and the state to store with them."""

    spec: Collection
    result: CollectionResult
    spool: Spool
    state: dict[str, Any] = field(default_factory=dict)
    repeated: bool = False  # a key came twice

    @property
    def unit(self) -> int:
        assert self.result.business_unit_id is not None
        return self.result.business_unit_id

    def items(self) -> Iterator[Item]:
        return self.spool.items()


@dataclass
class UnitFetch:
    """One business unit's part of the run: its client, its readers and states."""

    client: SfmcClient
    unit: int
    run: UnitRun
    states: RunStates
    counts: Counter[str]
    several: bool  # results are labelled collection@MID

    before: dict[str, int] = field(default_factory=dict)  # requests before the run

    def label(self, name: str) -> str:
        return f"{name}@{self.unit}" if self.several else name

    def spec(self, name: str) -> Collection:
        return COLLECTIONS[name].with_options(self.run.options)

    def spent(self, name: str) -> int:
        """The requests collection ``name`` made this run."""
        return self.client.requests_by[name] - self.before.get(name, 0)

    def kept(self, result: CollectionResult) -> tuple[dict[str, Any], bool]:
        """The state a collection stores (what it learned if it was read, else nothing), and
        whether a key came twice."""
        if not result.ok:
            return {}, False
        spec = COLLECTIONS[result.collection]
        return self.states.of(spec.name), self.run.tally.repeated(spec)

    @classmethod
    def of(
        cls,
        client: SfmcClient,
        stored: dict[str, Any],
        how: RunOptions,
        now: datetime,
        several: bool,
        on_rows: Callable[[UnitFetch, str], None],
    ) -> UnitFetch:
        """The part of business unit ``client`` acts in, from the collections' ``stored``
        states; ``on_rows`` hears of each item a collection hands over."""
        unit, counts = client.business_unit_id(), Counter[str]()
        states = RunStates(stored, unit)
        part: UnitFetch

        def rows(name: str) -> None:
            on_rows(part, name)

        run = UnitRun.of(client, states, Tally(counts, rows), how, now)
        part = cls(client, unit, run, states, counts, several, dict(client.requests_by))
        return part


@dataclass(eq=False)
class Job:
    """One group of one unit: its ``root`` collection, and ``names``, those of its
    collections the run loads."""

    unit: UnitFetch
    root: Collection
    names: list[str]

    def needs(self, others: Sequence[Job]) -> bool:
        """Whether the group reads what one of the ``others`` of its unit learns."""
        needed = {d for n in self.names for d in COLLECTIONS[n].depends_on}
        return any(
            needed & set(job.names) for job in others if job.unit is self.unit and job is not self
        )


@dataclass
class RunFetch:
    """Everything one run reads, ``wanted`` of each unit's collections, into ``directory``.
    Once ``stop`` says so, no group starts and no request is sent: a group that needed one
    more is skipped, loading nothing."""

    units: list[UnitFetch]
    wanted: set[str]
    directory: Path
    stop: Callable[[], bool]
    report: Reporter
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def jobs(self) -> list[Job]:
        return [
            Job(unit, COLLECTIONS[group[0]], names)
            for unit in self.units
            for group in GROUPS
            if (names := [n for n in group if n in self.wanted])
        ]

    def fetch(self) -> list[Fetched]:
        """Each group in a thread as soon as the groups of its unit it depends on ended."""
        for unit in self.units:
            unit.client.stop = self.stop  # a stopped run sends no more requests
        waiting, fetched = self.jobs(), []
        running: dict[Future[list[Fetched]], Job] = {}
        workers = max(len(GROUPS), 2 * max(u.client.throttle.limit for u in self.units))
        with ThreadPoolExecutor(workers, thread_name_prefix="sfmc-group") as pool:
            while waiting or running:
                for job in [j for j in waiting if not j.needs([*waiting, *running.values()])]:
                    waiting.remove(job)
                    if self.stop():
                        fetched += self.skipped(job)
                    else:
                        running[pool.submit(self.group, job)] = job
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    fetched += future.result()
        return fetched

    def group(self, job: Job) -> list[Fetched]:
        """One group read into its spools; its results say how it went."""
        unit, names = job.unit, job.names
        results = [self._result(unit, n) for n in names]
        spools = {n: Spool(self.directory, f"{n}@{unit.unit}") for n in names}
        with self._lock:
            self.report.started([r.name for r in results])
        error, skipped = self._read(job, spools), False
        if isinstance(error, Stopped):  # it would have sent another request
            error, skipped = None, True
        finished = datetime.now(UTC)
        for result in results:
            result.finished, result.skipped = finished, skipped
            result.error = None if error is None else describe_failure(error, names)
            result.requests = unit.spent(result.collection)
            result.rows = unit.counts[result.collection] if result.ok else 0
        if error is None and not skipped:
            unit.states.done.update(names)
            with self._lock:
                for result in results:
                    self.report.read(result)
        return [
            Fetched(unit.spec(r.collection), r, spools[r.collection], *unit.kept(r))
            for r in results
        ]

    def _read(self, job: Job, spools: dict[str, Spool]) -> BaseException | None:
        """Read a group into its spools; why it stopped short, if it did."""
        try:
            for name, item in group_items(job.unit.run, job.root, set(job.names)):
                if name in spools:
                    spools[name].add(item)
        except Exception as exc:  # any failure fails this group alone
            return _cause(exc)
        finally:
            for spool in spools.values():
                spool.close()
        return None

    def skipped(self, job: Job) -> list[Fetched]:
        """A group not started: the run was asked to stop first."""
        fetched = []
        for name in job.names:
            result = self._result(job.unit, name)
            result.skipped, result.finished = True, result.started
            fetched.append(Fetched(job.unit.spec(name), result, Spool(self.directory, name)))
        return fetched

    def _result(self, unit: UnitFetch, name: str) -> CollectionResult:
        return CollectionResult(unit.label(name), collection=name, business_unit_id=unit.unit)

    def progress(self, unit: UnitFetch, name: str) -> None:
        """``name`` of ``unit`` handed over more rows."""
        with self._lock:
            self.report.progress(unit.label(name), unit.counts[name], unit.spent(name))


def _cause(exc: BaseException) -> BaseException:
    """The first of our own errors behind a failure, else the failure itself."""
    return next((e for e in causes(exc) if isinstance(e, SfmcError)), exc)


def describe_failure(cause: BaseException, names: list[str]) -> str:
    if isinstance(cause, PermissionDenied):
        permission = COLLECTIONS[names[0]].permission
        return f"{cause}; enable {permission} for the package in Installed Packages"
    if isinstance(cause, SfmcError):
        return str(cause)
    return root_cause(cause)
