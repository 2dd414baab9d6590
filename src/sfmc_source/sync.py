"""One sync run: every group of collections of every business unit read at once (``fetch``),
then one dlt load of what was read, so a run costs one load whatever the number of
collections. A collection that fails to read loads nothing and keeps its cursor; the others
load."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, closing, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.destinations.job_client_impl import SqlJobClientBase
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.pipeline.state_sync import load_pipeline_state_from_destination

from sfmc_source.auth import Credentials
from sfmc_source.client import DEFAULT_CONCURRENCY, SfmcClient, Throttle, credentials_from
from sfmc_source.destination import Warehouse, loader_file_format, schema_name
from sfmc_source.errors import (
    AuthenticationError,
    BusinessUnitRefused,
    ConfigError,
    SfmcError,
    root_cause,
)
from sfmc_source.fetch import GROUPS, Fetched, RunFetch, UnitFetch
from sfmc_source.history import STATE_TABLE, CollectionResult, record_runs, runs_resource
from sfmc_source.report import Quiet, Reporter, reporter_for
from sfmc_source.schedule import units_lock, warehouse_turn
from sfmc_source.source import RETENTION, RunOptions, apply_dlt_settings, spooled_source
from sfmc_source.specs import BUSINESS_UNIT_ID, COLLECTIONS, selected
from sfmc_source.timefmt import SYSTEM_TIME

UNIT = BUSINESS_UNIT_ID.name


@dataclass
class SyncResult:
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    collections: list[CollectionResult] = field(default_factory=list)
    token_requests: int = 0
    fatal: SfmcError | None = None
    history_error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.fatal is not None:
            return self.fatal.exit_code
        return 0 if all(c.ok for c in self.collections) else 1

    @property
    def interrupted(self) -> bool:
        """A stop left collections unsynced."""
        return any(c.skipped for c in self.collections)


def pipeline_for(
    destination: Warehouse | str, schema: str, pipelines_dir: str | None = None
) -> dlt.Pipeline:
    """The dlt pipeline for a warehouse and schema, named after the warehouse's identity;
    ``pipelines_dir`` defaults to dlt's (``~/.dlt/pipelines``). Its local state is a cache:
    the destination holds the truth."""
    apply_dlt_settings()  # before dlt starts its telemetry with the pipeline
    warehouse = Warehouse.parse(destination) if isinstance(destination, str) else destination
    schema = schema_name(schema)
    warehouse.check_names(schema)
    name, target = warehouse.pipeline_name(schema), warehouse.dlt_destination()
    if pipelines_dir:
        return dlt.pipeline(name, pipelines_dir, destination=target, dataset_name=schema)
    return dlt.pipeline(name, destination=target, dataset_name=schema)


def run_sync(
    client: SfmcClient | Sequence[SfmcClient],
    pipeline: dlt.Pipeline,
    collections: Sequence[str] | None = None,
    full_refresh: bool = False,
    naive_zone: timezone = SYSTEM_TIME,
    stop: Callable[[], bool] = lambda: False,
    reporter: Reporter | None = None,
    backfill: timedelta = RETENTION,
    email_bodies: bool = False,
    turn: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> SyncResult:
    """Sync the collections (all by default) of each business unit (one client each): every
    group read at once, then one load. Wrong credentials stop the run before anything is
    written; a unit whose token or MID cannot be had fails its own collections; any other
    failure to read fails only its group. When ``stop`` says so, the groups not yet read
    are left for the next run. ``reporter`` hears of progress. A first sync reads tracking
    events and sends ``backfill`` back; ``email_bodies`` adds the emails' bodies. ``turn``
    holds the warehouse while the run prepares it and while it loads (others may load
    between: the load starts from the state the warehouse holds then)."""
    clients = [client] if isinstance(client, SfmcClient) else list(client)
    wanted = selected(collections)
    result = SyncResult(run_id=reporter.run_id) if reporter else SyncResult()
    report = reporter or Quiet(result.run_id)
    units, refused = _units(clients)
    # wrong credentials, or no unit could be synced, or the warehouse cannot be prepared
    if not units:
        result.fatal = refused[0][1]
        return result
    with turn():
        result.fatal = _prepare(pipeline, [mid for _, mid in units])
    if result.fatal is not None:
        return result
    several = len(clients) > 1
    for unit_client, error in refused:
        names = [n for group in GROUPS for n in group if n in wanted]
        mid = unit_client.credentials.account_id
        result.collections += _not_loaded(names, mid, several, report, str(error))
    options = RunOptions(full_refresh, naive_zone, backfill, email_bodies)
    with tempfile.TemporaryDirectory(prefix="sfmc-source-") as spool:
        fetch = _run_fetch(units, several, pipeline, wanted, options, Path(spool), stop, report)
        fetched = fetch.fetch()
        for one in fetched:
            one.result.error = report.redact(one.result.error) if one.result.error else None
        with turn():
            result.history_error = _load(pipeline, fetched, result.run_id)
    loaded = _in_order([f.result for f in fetched], [mid for _, mid in units])
    for collection in loaded:
        report.finished(collection)
    result.collections += loaded
    result.token_requests = sum(c.auth.token_requests for c in clients)
    return result


def _run_fetch(
    units: list[tuple[SfmcClient, int]],
    several: bool,
    pipeline: dlt.Pipeline,
    wanted: set[str],
    options: RunOptions,
    directory: Path,
    stop: Callable[[], bool],
    report: Reporter,
) -> RunFetch:
    """What the run reads, from the states the pipeline stored."""
    stored = pipeline.state.get("sources", {}).get("sfmc", {}).get("resources", {})
    now = datetime.now(UTC)
    run = RunFetch([], wanted, directory, stop, report)
    run.units = [UnitFetch.of(c, stored, options, now, several, run.progress) for c, _ in units]
    return run


def _in_order(results: list[CollectionResult], mids: list[int]) -> list[CollectionResult]:
    """Results unit by unit, in the order of the groups."""
    order = {name: i for i, name in enumerate(n for group in GROUPS for n in group)}
    units: dict[int | None, int] = {mid: i for i, mid in enumerate(mids)}
    return sorted(results, key=lambda r: (units.get(r.business_unit_id), order[r.collection]))


def _prepare(pipeline: dlt.Pipeline, mids: list[int]) -> SfmcError | None:
    """Before any group: what a killed run left is loaded, and the state and tables an
    earlier version wrote are adopted. What stops the run, if anything."""
    try:
        _finish_pending(pipeline)
        _adopt_state(pipeline)
        _adopt_tables(pipeline, mids)
    except PipelineStepFailed as exc:
        return SfmcError(f"loading what an interrupted run left failed: {root_cause(exc)}")
    except ConfigError as exc:
        return exc
    return None


def _not_loaded(
    names: list[str], mid: int | None, several: bool, report: Reporter, error: str | None = None
) -> list[CollectionResult]:
    """Results for collections not synced this run: failed with ``error`` (their business unit
    could not be reached), else skipped because the run was asked to stop."""
    results = []
    for name in names:
        label = f"{name}@{mid}" if several else name
        result = CollectionResult(
            label, collection=name, business_unit_id=mid, error=error, skipped=error is None
        )
        result.finished = result.started
        report.finished(result)
        results.append(result)
    return results


def _units(
    clients: list[SfmcClient],
) -> tuple[list[tuple[SfmcClient, int]], list[tuple[SfmcClient, SfmcError]]]:
    """Each client with its MID, and those that got no token or MID with why. A failure to
    authenticate other than a refused business unit means wrong credentials, which every
    client shares: it alone is returned, and nothing is synced."""
    units: list[tuple[SfmcClient, int]] = []
    refused: list[tuple[SfmcClient, SfmcError]] = []
    for client in clients:
        try:
            client.auth.token()
            units.append((client, client.business_unit_id()))
        except BusinessUnitRefused as exc:
            refused.append((client, exc))
        except AuthenticationError as exc:
            return [], [(client, exc)]
        except SfmcError as exc:
            refused.append((client, exc))
    return units, refused


def _adopt_tables(pipeline: dlt.Pipeline, mids: list[int]) -> None:
    """Tables an earlier version loaded have no ``business_unit_id``: their rows get the MID of
    the one business unit this run syncs (they came from it), and the column is added before
    dlt adds it as a key, in the dataset and in its staging dataset. Destinations without SQL
    are left as they are."""
    with pipeline.destination_client() as client:
        if not isinstance(client, SqlJobClientBase):
            return
        for staging in (False, True):
            with client.sql_client.with_staging_dataset() if staging else nullcontext():
                found = client.get_storage_tables(list(COLLECTIONS))
                legacy = [n for n, columns in found if columns and UNIT not in columns]
                if legacy and len(mids) != 1:
                    raise ConfigError(
                        f"tables {', '.join(legacy)} were loaded before business units were "
                        "tracked; sync the business unit they came from alone once "
                        "(--account-ids MID), then add others"
                    )
                sql = client.sql_client
                column = sql.escape_column_name(UNIT)
                for name in legacy:
                    table = sql.make_qualified_table_name(name)
                    sql.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column} BIGINT")
                    sql.execute_sql(f"UPDATE {table} SET {column} = {int(mids[0])}")


def _adopt_state(pipeline: dlt.Pipeline) -> None:
    """Cursors an earlier spelling of this destination stored in the dataset (pipelines were
    once named after the URL as typed) become this pipeline's when it has none, so the first
    run after an upgrade, or from another directory, stays incremental."""
    pipeline.sync_destination()
    if pipeline.state.get("sources"):
        return
    with pipeline.destination_client() as client:
        if not isinstance(client, SqlJobClientBase):
            return
        sql = client.sql_client
        try:
            found = sql.execute_sql(
                f"SELECT pipeline_name FROM {sql.make_qualified_table_name(STATE_TABLE)} "
                "WHERE pipeline_name LIKE %s ORDER BY created_at DESC",
                f"sfmc_source_{pipeline.dataset_name}_%",
            )
        except DestinationUndefinedEntity:
            return
        earlier = next((row[0] for row in found or [] if row[0] != pipeline.pipeline_name), None)
        state = load_pipeline_state_from_destination(earlier, client) if earlier else None
    if state and state.get("sources"):  # stored with the next load
        with pipeline.managed_state() as current:
            current["sources"] = state["sources"]


def _finish_pending(pipeline: dlt.Pipeline) -> None:
    """Load what a killed run extracted but did not load. ``pipeline.run`` would load only
    that and return, leaving the collections it was asked for unsynced."""
    if pipeline.has_pending_data:
        pipeline.normalize()
        pipeline.load()


def _load(pipeline: dlt.Pipeline, fetched: list[Fetched], run_id: str) -> str | None:
    """Load what the run read, with its history rows, in one load; if the load fails, every
    collection read fails with it (and the history is written alone). Why the history was
    not written, if it was not."""
    pipeline.sync_destination()  # what another unit's sync stored since this one began
    results = [f.result for f in fetched]
    history = runs_resource(run_id, results)
    loading = [f for f in fetched if f.result.ok]
    try:
        pipeline.run(spooled_source(loading, [history]), loader_file_format=_file_format(pipeline))
    except PipelineStepFailed as exc:
        if exc.step == "extract" and pipeline.has_pending_data:
            pipeline.abort_packages()
        for one in loading:
            one.result.error, one.result.rows = root_cause(exc), 0
        return record_runs(pipeline, run_id, results)
    return None


def _file_format(pipeline: dlt.Pipeline) -> Any:
    return loader_file_format(pipeline.destination)


def run_sync_command(
    *,
    destination: str,
    schema: str,
    collections: Sequence[str] | None,
    full_refresh: bool,
    client_id: str | None,
    client_secret: str | None,
    subdomain: str | None,
    auth_url: str | None,
    account_ids: Sequence[int | None] = (None,),
    backfill_days: int = RETENTION.days,
    email_bodies: bool = False,
    naive_zone: timezone = SYSTEM_TIME,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: Callable[[], bool] = lambda: False,
    log_format: str = "text",
    verbose: bool = False,
) -> int:
    """What ``sfmc-source sync`` does: the exit code. ``account_ids``: one client each."""
    credentials = [
        credentials_from(client_id, client_secret, subdomain, mid, auth_url) for mid in account_ids
    ]
    options = RunOptions(full_refresh, naive_zone, timedelta(days=backfill_days), email_bodies)
    result = sync_business_units(
        credentials,
        destination,
        schema,
        collections,
        options,
        concurrency,
        stop,
        log_format,
        verbose,
    )
    return result.exit_code


def sync_business_units(
    credentials: Sequence[Credentials],
    destination: str,
    schema: str = "sfmc",
    collections: Sequence[str] | None = None,
    options: RunOptions | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: Callable[[], bool] = lambda: False,
    log_format: str = "text",
    verbose: bool = False,
) -> SyncResult:
    """What ``sfmc-source sync`` does, for an orchestrator's task: the business units (one
    ``credentials`` each, ``concurrency`` requests in flight among them) synced into the
    destination and schema as ``options`` say, with the command's log lines (stderr) and
    summary (stdout). Refused (SyncBusy) while another sync of one of these units into the
    same destination and schema runs; the warehouse is taken in turn, waiting, while the run
    prepares it and while it loads, so syncs of other units (one task each) run alongside."""
    selected(collections)
    options = options or RunOptions()
    warehouse, schema = Warehouse.parse(destination), schema_name(schema)
    warehouse.require_directory()
    pipeline = pipeline_for(warehouse, schema)
    with units_lock(warehouse, schema, [c.account_id for c in credentials]), ExitStack() as stack:
        throttle = Throttle(concurrency)  # one for every unit's requests
        clients = [stack.enter_context(SfmcClient(c, throttle=throttle)) for c in credentials]
        reporter = _reporter(clients, warehouse, log_format, verbose)
        how = (options.full_refresh, options.naive_zone, stop, reporter, options.backfill)
        with closing(reporter):
            result = run_sync(
                clients, pipeline, collections, *how, options.email_bodies, _turn(warehouse, schema)
            )
    summarize(result, reporter)
    return result


def _reporter(
    clients: list[SfmcClient], warehouse: Warehouse, log_format: str, verbose: bool
) -> Reporter:
    """The command's reporter, blanking out the clients' and the warehouse's secrets."""

    def secrets() -> list[str]:
        return [s for client in clients for s in client.secrets()] + warehouse.secrets()

    return reporter_for(log_format, uuid.uuid4().hex, secrets, verbose)


def _turn(warehouse: Warehouse, schema: str) -> Callable[[], AbstractContextManager[None]]:
    """What ``run_sync`` takes the warehouse with while it prepares and while it loads."""
    return lambda: warehouse_turn(warehouse, schema)


def summarize(result: SyncResult, reporter: Reporter) -> None:
    fatal = str(result.fatal) if result.fatal is not None else None
    reporter.summary(result.collections, result.token_requests, fatal, result.history_error)
