"""How fast and how lean a sync is, next to a bare fetch of the same pages.

For each scale and latency the emulator runs in its own process (this script with ``--serve``),
so only the sync's memory and CPU are measured. Against it:

- a full sync (wall time and peak RSS of the process; rows, requests and seconds per collection
  from its ``--log-format json`` events; its request floor, below, and wall ÷ floor, at most
  1.5 with latency), then a no-change sync on the same destination, whose request counts are
  compared with their targets;
- one sync per collection group on a fresh destination, for each group's wall time and peak RSS;
- a raw baseline: the same pages fetched by a bare httpx loop at the same concurrency, with no
  parsing or loading, and the ratio of sync ÷ raw per group and for the whole run.
- with latency, the campaigns group again one request at a time (``--concurrency 1``): the
  concurrent run must take at most a fifth of that.

With ``--memory`` (on unless ``--quick``), a lists-only sync against 100,000 and then 1,000,000
lists: peak RSS must grow by at most 50 MB.

With ``--events`` (on by default), the six tracking-event collections of a unit with a million
events (``--scale events``, 0 ms): a sync of the last tenth of their history, then of all of it
(at least 50,000 rows/s end to end; peak RSS at most 50 MB above the tenth's), then a no-change
sync on the same destination, whose requests the emulator counts. ``--quick`` syncs only the
tenth, then the no-change sync on it.

With ``--realistic`` (on by default), what a user would notice: the ``tiny`` tenant (a few rows
of each collection) at 0 ms, a full sync within 4 s and a no-change sync within 3 s, process
start included; then at real SFMC's latency (``REALISTIC``: REST 150 ms, a SOAP request 800 ms
plus 0.1 ms a row it returns) the tiny tenant, a medium one (``--realistic-scale``) and all of
the million events, each a full sync on a fresh destination and a no-change sync after it,
with the wall time, the requests and the floor of each. ``--quick`` runs only the tiny
tenant's.

The request floor of a run is the least wall time its requests allow, whatever the client does
between them: max(C, L ÷ concurrency), where L is the latency the emulator added to all the
requests it answered during the run (token requests included) and C the latency along the
longest chain of requests that had to follow one another: the pages of one SOAP Retrieve (the
Retrieve and its ContinueRequests), or of one REST listing when the client asked for each page
after the one before was answered. Separate Retrieves (the EventDate windows of an event
collection, say) are not a chain, even when the client runs them one after another.

Prints tables and writes bench/results/sync.json; with ``--only``, just that section runs and
replaces its part of the file.

    .venv/bin/python bench/sync.py [--scales medium,large] [--latencies 0,30]
        [--memory/--no-memory] [--events/--no-events] [--realistic/--no-realistic]
        [--only tenants|memory|events|realistic] [--quick] [--concurrency N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

# bench/ is sys.path[0] when this runs as `python bench/sync.py`.
from emulator import LIST_PROPERTIES, token

from sfmc_source.emulator import Emulator, EmulatorConfig, Faults, sizes_for
from sfmc_source.emulator.generate import HISTORY_END
from sfmc_source.specs import EVENTS

GROUPS: dict[str, tuple[str, ...]] = {
    "campaigns,campaign_assets": ("campaigns", "campaign_assets"),
    "lists": ("lists",),
    "interactions,goals": ("interactions", "goals"),
}
ASSETS_GROUP = "campaigns,campaign_assets"
ASSETS_TARGET = 0.2  # concurrent ÷ one at a time, with latency
PAGE_SIZE = 50
SOAP_BATCH = 2_500
MEMORY_TARGET_MB = 50.0
RESULTS = Path(__file__).parent / "results" / "sync.json"
MORE_DATA = b"<OverallStatus>MoreDataAvailable</OverallStatus>"
EVENT_COLLECTIONS = tuple(c.name for c in EVENTS)
EVENTS_TARGET = 50_000.0  # rows/s end to end, at 0 ms
EVENTS_ALL_DAYS = 3_650  # --backfill-days that reach the whole history, whatever today is
EVENTS_HISTORY = timedelta(days=730)  # how far back from HISTORY_END the emulator's events go
# The share of the history the smaller sync reads: enough (≈ 300,000 events) that loading
# has reached its working set (DuckDB's 64 MB buffer) before growth is measured, as the lists
# memory runs compare 100,000 with 1,000,000 rows.
EVENTS_PART = 0.3
# What real SFMC takes per request (the realistic section): REST about 150 ms; a SOAP Retrieve
# about 800 ms, and more the more rows it returns, here 0.1 ms a row (a 2,500-row page: 1.05 s).
REALISTIC = Faults(latency_ms=150.0, soap_latency_ms=800.0, soap_row_ms=0.1)
FLOOR_TARGET = 1.5  # full sync wall time ÷ request floor, with latency
# Seconds of the tiny tenant's syncs at 0 ms, process start included.
START_TARGETS = {"full": 4.0, "no change": 3.0}


@dataclass
class Collected:
    """One ``collection_finished`` event."""

    rows: int
    requests: int
    seconds: float
    ok: bool

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class SyncRun:
    """One `sfmc-source sync` process."""

    wall_s: float
    peak_rss_mb: float
    exit_code: int
    collections: dict[str, Collected]
    token_requests: int | None
    errors: list[str] = field(default_factory=list)  # from the events
    stderr_tail: str = ""
    cpu_s: float = 0.0  # user + system, of the process and the children it waited for

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Floor:
    """The least wall time one run's requests allow, from the emulator's log of that run:
    max(the longest chain of requests that had to follow one another, the latency of all
    requests ÷ the concurrency)."""

    requests: int  # as the emulator counted them, token requests included
    latency_s: float  # added to all of them
    longest_chain_s: float
    concurrency: int

    @property
    def seconds(self) -> float:
        return max(self.longest_chain_s, self.latency_s / self.concurrency)

    def ratio(self, wall_s: float) -> float | None:
        return wall_s / self.seconds if self.seconds > 0 else None


@dataclass
class TenantResult:
    """Everything measured against one scale at one latency."""

    scale: str
    latency_ms: float
    full: SyncRun
    incremental: SyncRun
    groups: dict[str, SyncRun]
    raw_s: dict[str, float] = field(default_factory=dict)
    # With latency: the campaigns group one request at a time, to compare with concurrency.
    sequential: SyncRun | None = None
    floor: Floor | None = None  # of the full sync

    @property
    def floor_ratio(self) -> float | None:
        return self.floor.ratio(self.full.wall_s) if self.floor and self.full.ok else None

    @property
    def floor_met(self) -> bool | None:
        """Whether the full sync kept within FLOOR_TARGET × its floor (with latency only)."""
        ratio = self.floor_ratio
        return None if not self.latency_ms or ratio is None else ratio <= FLOOR_TARGET

    def incremental_targets(self) -> dict[str, int]:
        versions = self.full.collections.get("interactions")
        return {
            "token": 1,
            "campaigns": 1,
            "campaign_assets": 0,
            "lists": 1,
            "interactions": math.ceil(versions.rows / PAGE_SIZE) if versions else 0,
        }


@dataclass
class LatencyRun:
    """A sync of the realistic section and the floor of its requests; for the tiny tenant at
    0 ms, the wall time it should keep within."""

    label: str
    sync: SyncRun
    floor: Floor
    target_s: float | None = None

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.sync.collections.values())

    @property
    def met(self) -> bool | None:
        if self.target_s is None:
            return None
        return self.sync.ok and self.sync.wall_s <= self.target_s


@dataclass
class EventsRun:
    """One sync of the tracking events, and the requests the emulator answered during it."""

    backfill_days: int
    sync: SyncRun
    served: dict[str, int]  # by endpoint, and "total"

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.sync.collections.values())

    @property
    def rate(self) -> float:
        return self.rows / self.sync.wall_s if self.sync.wall_s > 0 else 0.0


@dataclass
class EventsResult:
    """The tracking events of ``--scale events`` at 0 ms: the last tenth of their history,
    all of it (unless ``--quick``), and a no-change sync after the last of those."""

    part: EventsRun
    full: EventsRun | None
    incremental: EventsRun

    def incremental_targets(self) -> dict[str, int]:
        """Requests of a no-change sync: a token, the unit's userinfo and, per collection, one
        Retrieve per widest EventDate window since the last event (less the overlap)."""
        # here, not at the top: the --serve process need not load dlt
        from sfmc_source.reader import WIDEST_WINDOW
        from sfmc_source.source import EVENTS_OVERLAP

        since = HISTORY_END - EVENTS_OVERLAP
        windows = max(math.ceil((datetime.now(UTC) - since) / WIDEST_WINDOW), 1)
        return {
            "POST /v2/token": 1,
            "GET /v2/userinfo": 1,
            "SOAP Retrieve": windows * len(EVENT_COLLECTIONS),
            "total": 2 + windows * len(EVENT_COLLECTIONS),
        }

    def incremental_actual(self) -> dict[str, int]:
        served = self.incremental.served
        retrieves = sum(n for e, n in served.items() if e.startswith("SOAP Retrieve"))
        return {name: served.get(name, 0) for name in ("POST /v2/token", "GET /v2/userinfo")} | {
            "SOAP Retrieve": retrieves,
            "total": served.get("total", 0),
        }

    @property
    def rss_growth_mb(self) -> float | None:
        return self.full.sync.peak_rss_mb - self.part.sync.peak_rss_mb if self.full else None


# --- the emulator, in its own process ---------------------------------------------------------


def serve(scale: str, faults: Faults, lists: int | None) -> None:
    """What `--serve` runs: the emulator on 127.0.0.1 until SIGTERM, as `sfmc-source emulator`
    does, its environment on stdout as `export NAME=value` lines."""
    sizes = sizes_for(scale)
    if lists is not None:
        sizes = replace(sizes, lists=lists)
    server = Emulator(EmulatorConfig(sizes=sizes, faults=faults))
    for name, value in server.environment().items():
        print(f"export {name}={value}")
    sys.stdout.flush()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


@contextmanager
def emulator(scale: str, faults: Faults, lists: int | None = None) -> Iterator[dict[str, str]]:
    """A `--serve` process with these latencies for the duration of the block; yields its
    environment."""
    command = [sys.executable, __file__, "--serve", "--scale", scale]
    command += ["--latency-ms", str(faults.latency_ms), "--soap-row-ms", str(faults.soap_row_ms)]
    if faults.soap_latency_ms is not None:
        command += ["--soap-latency-ms", str(faults.soap_latency_ms)]
    if lists is not None:
        command += ["--lists", str(lists)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(4)]
        if not all(lines):
            raise RuntimeError(f"the emulator did not start (exit code {process.poll()})")
        yield dict(_export(line) for line in lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _export(line: str) -> tuple[str, str]:
    name, _, value = line.removeprefix("export ").partition("=")
    return name, value


# --- syncs ------------------------------------------------------------------------------------


def sfmc_command() -> list[str]:
    script = Path(sys.executable).parent / "sfmc-source"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sfmc_source"]


def sync_command(
    workdir: Path,
    concurrency: int,
    collections: Sequence[str],
    backfill_days: int | None = None,
    destination: tuple[str, str] | None = None,  # URL and schema; default a DuckDB file
) -> list[str]:
    url, schema = destination or (f"duckdb:///{workdir / 'w.duckdb'}", "sfmc")
    command = [*sfmc_command(), "sync", "--destination", url, "--schema", schema]
    command += ["--log-format", "json", "--concurrency", str(concurrency)]
    if collections:
        command += ["--collections", ",".join(collections)]
    if backfill_days is not None:
        command += ["--backfill-days", str(backfill_days)]
    return command


def run_sync(
    env: dict[str, str],
    workdir: Path,
    concurrency: int,
    collections: Sequence[str] = (),
    backfill_days: int | None = None,
    destination: tuple[str, str] | None = None,
) -> SyncRun:
    """One sync process into ``workdir``: its wall time, peak RSS (wait4) and events."""
    environ = {
        **os.environ,
        **env,
        "DLT_DATA_DIR": str(workdir / "dlt"),  # as root, dlt would use /var/dlt
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    command = sync_command(workdir, concurrency, collections, backfill_days, destination)
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=environ) as p:
            assert p.stdout is not None
            stdout = p.stdout.read()
            _, status, usage = os.wait4(p.pid, 0)
            wall = time.perf_counter() - started
            p.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        tail = stderr.read()[-2_000:].decode(errors="replace")
    collected, tokens, errors = parse_events(stdout)
    cpu = usage.ru_utime + usage.ru_stime
    run = SyncRun(wall, usage.ru_maxrss / 1024, p.returncode, collected, tokens, errors, cpu_s=cpu)
    if not run.ok:
        run.stderr_tail = tail
        reasons = "\n".join([*errors, tail]).rstrip()
        note(f"  sync {','.join(collections) or 'all'} exited {p.returncode}:\n{reasons}")
    return run


def run_fresh_sync(env: dict[str, str], concurrency: int, collections: Sequence[str]) -> SyncRun:
    with tempfile.TemporaryDirectory(prefix="sfmc-bench-") as tmp:
        return run_sync(env, Path(tmp), concurrency, collections)


def parse_events(stdout: bytes) -> tuple[dict[str, Collected], int | None, list[str]]:
    """``collection_finished`` events by collection, ``token_requests`` of ``run_finished``,
    and the errors either reports."""
    collected: dict[str, Collected] = {}
    tokens: int | None = None
    errors: list[str] = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("event") == "collection_finished":
            collected[event["collection"]] = Collected(
                rows=int(event["rows"]),
                requests=int(event["requests"]),
                seconds=float(event["seconds"]),
                ok=event.get("outcome") == "ok",
            )
        elif event.get("event") == "run_finished":
            tokens = event.get("token_requests")
        if event.get("error"):
            errors.append(f"{event.get('collection', 'run')}: {event['error']}")
    return collected, tokens, errors


# --- the raw baseline -------------------------------------------------------------------------


class RawApi:
    """Bare requests to the emulator: one token, no parsing beyond what paging needs."""

    def __init__(self, env: dict[str, str], concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency + 1)
        self.http = httpx.Client(timeout=120, limits=limits)
        auth = token(self.http, env)
        self.rest = auth["rest_instance_url"]
        self.soap_url = auth["soap_instance_url"] + "Service.asmx"
        self.access_token = auth["access_token"]
        self.headers = {"Authorization": f"Bearer {self.access_token}"}

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        response = self.http.get(self.rest + path, params=params, headers=self.headers)
        return response.raise_for_status()

    def retrieve(self, inner: str) -> bytes:
        envelope = (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Header>'
            f'<fueloauth xmlns="http://exacttarget.com">{self.access_token}</fueloauth>'
            '</s:Header><s:Body><RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI">'
            f"<RetrieveRequest>{inner}<Options><BatchSize>{SOAP_BATCH}</BatchSize></Options>"
            "</RetrieveRequest></RetrieveRequestMsg></s:Body></s:Envelope>"
        )
        headers = {"SOAPAction": "Retrieve"}
        response = self.http.post(self.soap_url, content=envelope.encode(), headers=headers)
        return response.raise_for_status().content

    def close(self) -> None:
        self.http.close()


def raw_campaigns(api: RawApi, concurrency: int) -> None:
    """Campaign pages in order; each page's assets go to ``concurrency`` workers as it arrives."""
    futures: list[Future[httpx.Response]] = []
    assets = {"$page": 1, "$pageSize": PAGE_SIZE}
    with ThreadPoolExecutor(concurrency) as pool:
        page, seen, count = 1, 0, 1
        while seen < count:
            params = {"$page": page, "$pageSize": PAGE_SIZE, "$orderBy": "ModifiedDate DESC"}
            body = api.get("hub/v1/campaigns", params).json()
            items, count = body["items"], body["count"]
            if not items:
                break
            for item in items:
                path = f"hub/v1/campaigns/{item['id']}/assets"
                futures.append(pool.submit(api.get, path, assets))
            seen, page = seen + len(items), page + 1
    for future in futures:
        future.result()


def raw_lists(api: RawApi) -> None:
    """The List Retrieve with every property, then ContinueRequest until no more data."""
    properties = "".join(f"<Properties>{name}</Properties>" for name in LIST_PROPERTIES)
    body = api.retrieve(f"<ObjectType>List</ObjectType>{properties}")
    while MORE_DATA in body:
        request_id = body.split(b"<RequestID>", 1)[1].split(b"</RequestID>", 1)[0].decode()
        body = api.retrieve(f"<ContinueRequest>{request_id}</ContinueRequest>")


def raw_interactions(api: RawApi) -> None:
    """All journey versions: the first page says how many pages there are."""
    path = "interaction/v1/interactions"
    params: dict[str, Any] = {"mostRecentVersionOnly": "false", "$orderBy": "ModifiedDate DESC"}
    count = api.get(path, {**params, "$page": 1, "$pageSize": PAGE_SIZE}).json()["count"]
    for page in range(2, math.ceil(count / PAGE_SIZE) + 1):
        api.get(path, {**params, "$page": page, "$pageSize": PAGE_SIZE})


def raw_baseline(env: dict[str, str], concurrency: int) -> dict[str, float]:
    """Seconds to fetch each group's pages bare; a group that fails is left out."""
    fetches: dict[str, Callable[[RawApi], None]] = {
        "campaigns,campaign_assets": lambda api: raw_campaigns(api, concurrency),
        "lists": raw_lists,
        "interactions,goals": raw_interactions,
    }
    api = RawApi(env, concurrency)
    seconds: dict[str, float] = {}
    try:
        for group, fetch in fetches.items():
            started = time.perf_counter()
            try:
                fetch(api)
            except (httpx.HTTPError, KeyError, IndexError) as exc:
                note(f"  raw {group} failed: {exc!r}")
                continue
            seconds[group] = time.perf_counter() - started
    finally:
        api.close()
    return seconds


# --- the runs ---------------------------------------------------------------------------------


def bench_tenant(scale: str, latency_ms: float, concurrency: int) -> TenantResult:
    note(f"{scale} at {latency_ms:g} ms: starting the emulator")
    with emulator(scale, Faults(latency_ms)) as env:
        with tempfile.TemporaryDirectory(prefix="sfmc-bench-") as tmp:
            full, floor = measured_sync(env, Path(tmp), concurrency)
            rss, floor_s = full.peak_rss_mb, floor.seconds
            note(f"  full sync {full.wall_s:.1f}s (floor {floor_s:.1f}s), {rss:.0f} MB")
            incremental = run_sync(env, Path(tmp), concurrency)
            note(f"  no-change sync {incremental.wall_s:.1f}s")
        groups: dict[str, SyncRun] = {}
        for group, names in GROUPS.items():
            groups[group] = run_fresh_sync(env, concurrency, names)
            note(f"  {group} sync {groups[group].wall_s:.1f}s")
        raw = raw_baseline(env, concurrency)
        note(f"  raw fetch {sum(raw.values()):.1f}s")
        sequential = None
        if latency_ms and concurrency > 1:
            sequential = run_fresh_sync(env, 1, GROUPS[ASSETS_GROUP])
            note(f"  {ASSETS_GROUP} sync one request at a time {sequential.wall_s:.1f}s")
    return TenantResult(scale, latency_ms, full, incremental, groups, raw, sequential, floor)


def bench_memory(list_counts: Sequence[int], concurrency: int) -> dict[str, Any]:
    """Peak RSS of a lists-only sync at each list count, and its growth first → last."""
    runs: dict[int, SyncRun] = {}
    for lists in list_counts:
        note(f"memory: {lists:,} lists: starting the emulator")
        with emulator("small", Faults(), lists) as env:
            runs[lists] = run_fresh_sync(env, concurrency, ("lists",))
        note(f"  lists sync {runs[lists].wall_s:.1f}s, {runs[lists].peak_rss_mb:.0f} MB")
    peaks = [run.peak_rss_mb for run in runs.values()]
    growth = peaks[-1] - peaks[0]
    return {
        "runs": {str(lists): _memory_row(run) for lists, run in runs.items()},
        "growth_mb": growth,
        "target_mb": MEMORY_TARGET_MB,
        "within_target": growth <= MEMORY_TARGET_MB,
    }


def _memory_row(run: SyncRun) -> dict[str, Any]:
    lists = run.collections.get("lists")
    return {
        "ok": run.ok,
        "rows": lists.rows if lists else None,
        "seconds": lists.seconds if lists else None,
        "rows_per_s": lists.rate if lists else None,
        "wall_s": run.wall_s,
        "peak_rss_mb": run.peak_rss_mb,
    }


def bench_events(concurrency: int, whole: bool) -> EventsResult:
    """The event collections of ``--scale events`` at 0 ms: a sync of the last tenth of the
    history, then (if ``whole``) of all of it, each on a fresh destination; then a no-change
    sync on the last one's destination and pipelines."""
    part_days = recent_days(EVENTS_PART)
    note("events at 0 ms: starting the emulator")
    with emulator("events", Faults()) as env:
        with tempfile.TemporaryDirectory(prefix="sfmc-bench-") as part_dir:
            part = events_sync(env, Path(part_dir), concurrency, part_days)
            note(f"  last {part_days} days: {events_text(part)}")
            if not whole:
                incremental = events_sync(env, Path(part_dir), concurrency, part_days)
                note(f"  no-change sync {incremental.sync.wall_s:.1f}s")
                return EventsResult(part, None, incremental)
        with tempfile.TemporaryDirectory(prefix="sfmc-bench-") as full_dir:
            full = events_sync(env, Path(full_dir), concurrency, EVENTS_ALL_DAYS)
            note(f"  all {EVENTS_ALL_DAYS} days: {events_text(full)}")
            incremental = events_sync(env, Path(full_dir), concurrency, EVENTS_ALL_DAYS)
            note(f"  no-change sync {incremental.sync.wall_s:.1f}s")
    return EventsResult(part, full, incremental)


def bench_realistic(concurrency: int, whole: bool, scale: str) -> list[LatencyRun]:
    """The tiny tenant at 0 ms (against START_TARGETS), then at REALISTIC latency the tiny
    tenant and, if ``whole``, one of ``scale`` and all of the million events: each a full sync
    on a fresh destination, then a no-change sync on it."""
    start = tuple(START_TARGETS.values())
    runs = full_and_no_change("tiny at 0 ms", "tiny", Faults(), concurrency, targets=start)
    runs += full_and_no_change("tiny", "tiny", REALISTIC, concurrency)
    if whole:
        runs += full_and_no_change(scale, scale, REALISTIC, concurrency)
        days = EVENTS_ALL_DAYS
        runs += full_and_no_change(
            "events, all", "events", REALISTIC, concurrency, EVENT_COLLECTIONS, days
        )
    return runs


def full_and_no_change(
    name: str,
    scale: str,
    faults: Faults,
    concurrency: int,
    collections: Sequence[str] = (),
    backfill_days: int | None = None,
    targets: Sequence[float | None] = (None, None),
) -> list[LatencyRun]:
    """A full sync on a fresh destination, then a no-change sync on it, each with its floor."""
    note(f"{name}: starting the emulator")
    runs: list[LatencyRun] = []
    with emulator(scale, faults) as env, tempfile.TemporaryDirectory(prefix="sfmc-bench-") as tmp:
        for kind, target in zip(("full", "no change"), targets, strict=True):
            sync, floor = measured_sync(env, Path(tmp), concurrency, collections, backfill_days)
            runs.append(LatencyRun(f"{name}, {kind}", sync, floor, target))
            note(f"  {kind} sync {sync.wall_s:.1f}s, floor {floor.seconds:.1f}s")
    return runs


def recent_days(share: float) -> int:
    """--backfill-days that reach back over the last ``share`` of the events' history (they
    are spread evenly over it), counted from today."""
    days = (datetime.now(UTC) - HISTORY_END + EVENTS_HISTORY * share) / timedelta(days=1)
    return max(math.ceil(days), 1)


def events_sync(env: dict[str, str], workdir: Path, concurrency: int, days: int) -> EventsRun:
    """One sync of the event collections, with the emulator's request log cleared before."""
    served(env, clear=True)
    run = run_sync(env, workdir, concurrency, EVENT_COLLECTIONS, days)
    return EventsRun(days, run, served(env))


def served(env: dict[str, str], clear: bool = False) -> dict[str, int]:
    """The emulator's request log (cleared first if ``clear``): requests by endpoint, and
    ``total``."""
    summary = logged(env, clear)
    return {**summary["by_endpoint"], "total": int(summary["total"])}


def logged(env: dict[str, str], clear: bool = False) -> dict[str, Any]:
    """The summary of the emulator's request log, after clearing it if ``clear``."""
    url = f"{env['SFMC_AUTH_URL']}/_emulator/requests"
    response = httpx.request("DELETE" if clear else "GET", url, timeout=60)
    summary: dict[str, Any] = response.raise_for_status().json()
    return summary


def measured_sync(
    env: dict[str, str],
    workdir: Path,
    concurrency: int,
    collections: Sequence[str] = (),
    backfill_days: int | None = None,
) -> tuple[SyncRun, Floor]:
    """``run_sync``, and the floor of the requests the emulator logged during it."""
    logged(env, clear=True)
    run = run_sync(env, workdir, concurrency, collections, backfill_days)
    summary = logged(env)
    latency = summary["latency_ms"]
    floor = Floor(
        int(summary["total"]), latency["total"] / 1000, latency["longest_chain"] / 1000, concurrency
    )
    return run, floor


def events_text(run: EventsRun) -> str:
    return (
        f"{run.rows:,} rows in {run.sync.wall_s:.1f}s ({run.rate:,.0f} rows/s), "
        f"{run.sync.peak_rss_mb:.0f} MB"
    )


# --- output -----------------------------------------------------------------------------------

COLUMNS = (
    ("scale", 6),
    ("latency_ms", 10),
    ("collection", 16),
    ("rows", 9),
    ("seconds", 8),
    ("rows/s", 9),
    ("requests", 8),
    ("group_s", 8),
    ("raw_s", 7),
    ("ratio", 7),
    ("peak_rss_mb", 11),
)


def table_line(cells: Sequence[str]) -> str:
    parts = [cells[0].ljust(COLUMNS[0][1]), cells[1].rjust(COLUMNS[1][1])]
    parts.append(cells[2].ljust(COLUMNS[2][1]))
    parts += [cell.rjust(width) for cell, (_, width) in zip(cells[3:], COLUMNS[3:], strict=True)]
    return "  ".join(parts)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(sync_s: float | None, raw_s: float | None) -> float | None:
    return sync_s / raw_s if sync_s is not None and raw_s else None


def _collected_cells(c: Collected | None) -> list[str]:
    """Rows, seconds, rows/s and requests of one collection ("-" where it did not finish)."""
    return [
        str(c.rows) if c else "-",
        _num(c.seconds if c else None, 2),
        _num(c.rate if c else None, 0),
        str(c.requests) if c else "-",
    ]


def collection_rows(result: TenantResult) -> Iterator[list[str]]:
    head = [result.scale, f"{result.latency_ms:g}"]
    for group, names in GROUPS.items():
        run, raw = result.groups.get(group), result.raw_s.get(group)
        group_s = run.wall_s if run and run.ok else None
        for name in names:
            yield [
                *head,
                name,
                *_collected_cells(result.full.collections.get(name)),
                _num(group_s, 2),
                _num(raw, 2),
                _num(_ratio(group_s, raw), 1),
                _num(run.peak_rss_mb if run else None, 0),
            ]
    yield full_row(result)


def full_row(result: TenantResult) -> list[str]:
    full = result.full
    rows = sum(c.rows for c in full.collections.values())
    requests = sum(c.requests for c in full.collections.values())
    raw = sum(result.raw_s.values()) if len(result.raw_s) == len(GROUPS) else None
    wall = full.wall_s if full.ok else None
    return [
        result.scale,
        f"{result.latency_ms:g}",
        "(full sync)",
        str(rows),
        _num(wall, 2),
        _num(rows / full.wall_s, 0),
        str(requests),
        "",
        _num(raw, 2),
        _num(_ratio(wall, raw), 1),
        _num(full.peak_rss_mb, 0),
    ]


def event_rows(events: EventsResult) -> Iterator[list[str]]:
    """Each event collection of the largest sync, then a line per sync."""
    head = ["events", "0"]
    largest = events.full or events.part
    for name in EVENT_COLLECTIONS:
        yield [*head, name, *_collected_cells(largest.sync.collections.get(name)), *[""] * 4]
    labelled = [(f"(last {events.part.backfill_days} days)", events.part)]
    if events.full is not None:
        labelled.append(("(full sync)", events.full))
    labelled.append(("(no change)", events.incremental))
    for label, run in labelled:
        yield [
            *head,
            label,
            str(run.rows),
            _num(run.sync.wall_s if run.sync.ok else None, 2),
            _num(run.rate, 0),
            str(sum(c.requests for c in run.sync.collections.values())),
            "",
            "",
            "",
            _num(run.sync.peak_rss_mb, 0),
        ]


def print_tables(
    results: Sequence[TenantResult],
    memory: dict[str, Any] | None,
    events: EventsResult | None,
    realistic: Sequence[LatencyRun] | None,
) -> None:
    if results or events is not None:
        print(table_line([name for name, _ in COLUMNS]))
    for result in results:
        for cells in collection_rows(result):
            print(table_line(cells))
    if events is not None:
        for cells in event_rows(events):
            print(table_line(cells))
    if results:
        print(
            f"\n{ASSETS_GROUP} with latency: concurrent ÷ one at a time (target ≤ {ASSETS_TARGET})"
        )
        for result in results:
            if result.sequential is not None:
                print(f"  {result.scale} at {result.latency_ms:g} ms: {concurrency_text(result)}")
        print(f"\nfull sync ÷ request floor (target ≤ {FLOOR_TARGET} with latency)")
        for result in results:
            print(f"  {result.scale} at {result.latency_ms:g} ms: {floor_text(result)}")
        print("\nno-change sync: requests (target)")
        for result in results:
            print(f"  {result.scale} at {result.latency_ms:g} ms: {incremental_text(result)}")
    if memory is not None:
        print_memory(memory)
    if events is not None:
        print_events(events)
    if realistic is not None:
        print_realistic(realistic)


def concurrency_text(result: TenantResult) -> str:
    concurrent, sequential = result.groups[ASSETS_GROUP], result.sequential
    assert sequential is not None
    ratio = _ratio(concurrent.wall_s, sequential.wall_s)
    return f"{concurrent.wall_s:.1f}s ÷ {sequential.wall_s:.1f}s = {_num(ratio, 2)}"


def floor_text(result: TenantResult) -> str:
    floor = result.floor
    if floor is None:
        return "not measured"
    verdict = "" if result.floor_met is None else f": {_verdict(result.floor_met)}"
    return (
        f"{result.full.wall_s:.1f}s wall, floor {floor.seconds:.1f}s "
        f"({floor.requests:,} requests), ratio {_num(result.floor_ratio, 2)}{verdict}"
    )


def print_realistic(runs: Sequence[LatencyRun]) -> None:
    r = REALISTIC
    print(
        f"\nrealistic latency: REST {r.latency_ms:g} ms, SOAP {r.soap_latency_ms:g} ms + "
        f"{r.soap_row_ms:g} ms a row; wall time of the process; requests as the emulator "
        "counted them; floor = max(longest chain, all latency ÷ concurrency)"
    )
    print(f"  {'run':<24} {'rows':>9} {'wall':>8} {'requests':>8} {'floor':>8} {'wall÷floor':>10}")
    for run in runs:
        ratio = run.floor.ratio(run.sync.wall_s)
        print(
            f"  {run.label:<24} {run.rows:>9,} {run.sync.wall_s:7.1f}s {run.floor.requests:>8,} "
            f"{run.floor.seconds:7.1f}s {_num(ratio, 2):>10}{latency_run_note(run)}"
        )


def latency_run_note(run: LatencyRun) -> str:
    failed = "" if run.sync.ok else f"  [sync failed, exit {run.sync.exit_code}]"
    if run.target_s is None:
        return failed
    return f"  (target ≤ {run.target_s:g} s: {_verdict(run.met)}){failed}"


def incremental_text(result: TenantResult) -> str:
    run, targets = result.incremental, result.incremental_targets()
    actual = {name: c.requests for name, c in run.collections.items()}
    actual["token"] = run.token_requests if run.token_requests is not None else -1
    parts = [f"{name} {actual.get(name, '-')} ({target})" for name, target in targets.items()]
    return ", ".join(parts) + ("" if run.ok else f"  [sync failed, exit {run.exit_code}]")


def print_memory(memory: dict[str, Any]) -> None:
    print("\nmemory: lists-only sync")
    for lists, row in memory["runs"].items():
        print(
            f"  {int(lists):>10,} lists: {row['rows'] or 0:>10,} rows, "
            f"{_num(row['rows_per_s'], 0):>8} rows/s, {row['wall_s']:7.1f}s wall, "
            f"peak RSS {row['peak_rss_mb']:7.0f} MB"
        )
    verdict = "ok" if memory["within_target"] else "OVER TARGET"
    growth, target = memory["growth_mb"], memory["target_mb"]
    print(f"  growth {growth:.0f} MB (target ≤ {target:.0f} MB): {verdict}")


def _verdict(met: bool | None) -> str:
    return "not measured (--quick)" if met is None else "met" if met else "NOT MET"


def print_events(events: EventsResult) -> None:
    print("\nevents at 0 ms (--scale events): end to end; requests as the emulator counted them")
    labelled = [(f"last {events.part.backfill_days} days", events.part)]
    if events.full is not None:
        labelled.append((f"all {events.full.backfill_days} days", events.full))
    labelled.append(("no change", events.incremental))
    for label, run in labelled:
        failed = "" if run.sync.ok else f"  [sync failed, exit {run.sync.exit_code}]"
        print(
            f"  {label:>14}: {run.rows:>9,} rows, {run.sync.wall_s:6.1f}s wall, "
            f"{run.sync.cpu_s:6.1f}s CPU, {run.rate:>7,.0f} rows/s, "
            f"{run.served.get('total', 0):>5} requests, peak RSS {run.sync.peak_rss_mb:5.0f} MB"
            f"{failed}"
        )
    if events.full is not None:
        print(f"  share read by the first: {events.part.rows / max(events.full.rows, 1):.1%}")
    rate = events.full.rate if events.full else None
    print(
        f"  rows/s, all days: {_num(rate, 0)} (target ≥ {EVENTS_TARGET:,.0f}): "
        f"{_verdict(events_rate_met(events))}"
    )
    print(
        f"  peak RSS growth, last {events.part.backfill_days} → all days: "
        f"{_num(events.rss_growth_mb, 0)} MB (target ≤ {MEMORY_TARGET_MB:.0f} MB): "
        f"{_verdict(events_memory_met(events))}"
    )
    actual, targets = events.incremental_actual(), events.incremental_targets()
    parts = [f"{name} {actual[name]} ({target})" for name, target in targets.items()]
    print(
        f"  no-change requests (target): {', '.join(parts)}: "
        f"{_verdict(events_incremental_met(events))}"
    )


def events_rate_met(events: EventsResult) -> bool | None:
    if events.full is None:
        return None
    return events.full.sync.ok and events.full.rate >= EVENTS_TARGET


def events_memory_met(events: EventsResult) -> bool | None:
    growth = events.rss_growth_mb
    if events.full is None or growth is None:
        return None
    return events.part.sync.ok and events.full.sync.ok and growth <= MEMORY_TARGET_MB


def events_incremental_met(events: EventsResult) -> bool:
    """Whether the no-change sync made just the requests it should. Its rows are not 0: it reads
    again the last EVENTS_OVERLAP before the newest event, and many are dated at the end of the
    emulator's history."""
    actual, targets = events.incremental_actual(), events.incremental_targets()
    return events.incremental.sync.ok and actual == targets


def run_json(run: SyncRun) -> dict[str, Any]:
    data = asdict(run)
    for name, c in run.collections.items():
        data["collections"][name]["rows_per_s"] = c.rate
    return data


def events_json(events: EventsResult, concurrency: int) -> dict[str, Any]:
    def one(run: EventsRun | None) -> dict[str, Any] | None:
        if run is None:
            return None
        return {
            "backfill_days": run.backfill_days,
            "rows": run.rows,
            "rows_per_s": run.rate,
            "requests_served": run.served,
            **run_json(run.sync),
        }

    return {
        "scale": "events",
        "latency_ms": 0.0,
        "concurrency": concurrency,
        "part": one(events.part),
        "full": one(events.full),
        "incremental": one(events.incremental),
        "rows_per_s_target": EVENTS_TARGET,
        "rows_per_s_met": events_rate_met(events),
        "rss_growth_mb": events.rss_growth_mb,
        "rss_growth_target_mb": MEMORY_TARGET_MB,
        "rss_growth_met": events_memory_met(events),
        "incremental_requests": events.incremental_actual(),
        "incremental_targets": events.incremental_targets(),
        "incremental_met": events_incremental_met(events),
    }


def floor_json(floor: Floor | None) -> dict[str, Any] | None:
    return None if floor is None else {**asdict(floor), "seconds": floor.seconds}


def realistic_json(runs: Sequence[LatencyRun], concurrency: int) -> dict[str, Any]:
    def one(run: LatencyRun) -> dict[str, Any]:
        return {
            "label": run.label,
            "rows": run.rows,
            "floor": floor_json(run.floor),
            "floor_ratio": run.floor.ratio(run.sync.wall_s),
            "target_s": run.target_s,
            "met": run.met,
            **run_json(run.sync),
        }

    return {
        "rest_latency_ms": REALISTIC.latency_ms,
        "soap_latency_ms": REALISTIC.soap_latency_ms,
        "soap_row_ms": REALISTIC.soap_row_ms,
        "concurrency": concurrency,
        "runs": [one(run) for run in runs],
    }


def tenant_json(result: TenantResult) -> dict[str, Any]:
    raw_total = sum(result.raw_s.values()) if len(result.raw_s) == len(GROUPS) else None
    groups = {g: run_json(run) for g, run in result.groups.items()}
    for group, data in groups.items():
        data["raw_s"] = result.raw_s.get(group)
        data["ratio"] = _ratio(result.groups[group].wall_s, result.raw_s.get(group))
    return {
        "scale": result.scale,
        "latency_ms": result.latency_ms,
        "full": {**run_json(result.full), "raw_s": raw_total},
        "full_ratio": _ratio(result.full.wall_s, raw_total),
        "floor": floor_json(result.floor),
        "floor_ratio": result.floor_ratio,
        "floor_target": FLOOR_TARGET if result.latency_ms else None,
        "floor_met": result.floor_met,
        "groups": groups,
        "incremental": run_json(result.incremental),
        "incremental_targets": result.incremental_targets(),
        "one_at_a_time": run_json(result.sequential) if result.sequential else None,
    }


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scales", default="medium,large")
    parser.add_argument("--latencies", default="0,30", help="Emulator latencies in ms.")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--memory-lists", default="100000,1000000", help="List counts.")
    parser.add_argument(
        "--events",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="The million-event tenant (with --quick, only the last tenth of its history).",
    )
    parser.add_argument(
        "--realistic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Syncs at real SFMC's latency, and the tiny tenant's at 0 ms (with --quick, only "
        "the tiny tenant's).",
    )
    parser.add_argument(
        "--realistic-scale",
        default="medium",
        help="The store the realistic section syncs (large: about 10 minutes more).",
    )
    parser.add_argument(
        "--only",
        choices=("tenants", "memory", "events", "realistic"),
        help="Run just this section; bench/results/sync.json keeps the others.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="Only medium at 0 ms, no memory, a tenth of events."
    )
    parser.add_argument("--concurrency", type=int, default=5)
    _add_serve_options(parser)
    return parser.parse_args(argv)


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    serve_group = parser.add_argument_group("emulator launcher (internal)")
    serve_group.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    serve_group.add_argument("--scale", default="small", help=argparse.SUPPRESS)
    serve_group.add_argument("--latency-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    serve_group.add_argument("--soap-latency-ms", type=float, help=argparse.SUPPRESS)
    serve_group.add_argument("--soap-row-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    serve_group.add_argument("--lists", type=int, default=None, help=argparse.SUPPRESS)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def wanted_sections(args: argparse.Namespace) -> set[str]:
    """``--only``'s section, or every section switched on."""
    if args.only:
        return {args.only}
    memory_on = not args.quick if args.memory is None else args.memory
    wanted = {
        "tenants": True,
        "memory": memory_on,
        "events": args.events,
        "realistic": args.realistic,
    }
    return {name for name, on in wanted.items() if on}


def main() -> None:
    args = parse_args()
    if args.serve:
        latency = {"soap_latency_ms": args.soap_latency_ms, "soap_row_ms": args.soap_row_ms}
        serve(args.scale, Faults(latency_ms=args.latency_ms, **latency), args.lists)
        return
    scales, latencies = _split(args.scales), [float(x) for x in _split(args.latencies)]
    if args.quick:
        scales, latencies = ["medium"], [0.0]
    sections, concurrency = wanted_sections(args), args.concurrency
    results: list[TenantResult] = []
    if "tenants" in sections:
        results = [bench_tenant(s, latency, concurrency) for s in scales for latency in latencies]
    list_counts = [int(n) for n in _split(args.memory_lists)]
    memory = bench_memory(list_counts, concurrency) if "memory" in sections else None
    events = bench_events(concurrency, not args.quick) if "events" in sections else None
    realistic = None
    if "realistic" in sections:
        realistic = bench_realistic(concurrency, not args.quick, args.realistic_scale)
    print_tables(results, memory, events, realistic)
    RESULTS.parent.mkdir(exist_ok=True)
    report: dict[str, Any] = {
        "concurrency": concurrency,
        "tenants": [tenant_json(result) for result in results],
        "memory": memory,
        "events": events_json(events, concurrency) if events else None,
        "realistic": realistic_json(realistic, concurrency) if realistic is not None else None,
    }
    if args.only and RESULTS.exists():  # the other sections as the last run left them
        report = {**json.loads(RESULTS.read_text()), args.only: report[args.only]}
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
