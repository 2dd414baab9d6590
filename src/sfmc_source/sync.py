"""One sync run: each group of collections is its own dlt load, so one failing collection
leaves the others loading and its own cursor where its last committed data is."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack, closing, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.destinations.job_client_impl import SqlJobClientBase
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.pipeline.state_sync import load_pipeline_state_from_destination

from sfmc_source.client import DEFAULT_CONCURRENCY, SfmcClient, credentials_from
from sfmc_source.destination import Warehouse, loader_file_format, schema_name
from sfmc_source.errors import (
    AuthenticationError,
    BusinessUnitRefused,
    ConfigError,
    PermissionDenied,
    SfmcError,
    causes,
    root_cause,
)
from sfmc_source.history import STATE_TABLE, CollectionResult, record_runs
from sfmc_source.report import Quiet, Reporter, reporter_for
from sfmc_source.schedule import warehouse_lock
from sfmc_source.source import RETENTION, apply_dlt_settings, sfmc_source
from sfmc_source.specs import BUSINESS_UNIT_ID, COLLECTIONS, load_groups, selected
from sfmc_source.timefmt import SYSTEM_TIME

UNIT = BUSINESS_UNIT_ID.name
# Collections loaded together: a child is read from what its parent read.
GROUPS = load_groups()


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
) -> SyncResult:
    """Sync the collections (all by default) of each business unit (one client each) group by
    group. Wrong credentials stop the run before anything is written; a unit whose token or
    MID cannot be had fails its own collections; any other failure fails only its group. When
    ``stop`` says so, the groups not yet started are left for the next run. ``reporter``
    hears of progress. A first sync reads tracking events and sends ``backfill`` back;
    ``email_bodies`` adds the emails' bodies."""
    clients = [client] if isinstance(client, SfmcClient) else list(client)
    wanted = selected(collections)
    result = SyncResult(run_id=reporter.run_id) if reporter else SyncResult()
    report = reporter or Quiet(result.run_id)
    units, refused = _units(clients)
    # wrong credentials, or no unit could be synced, or the warehouse cannot be prepared
    result.fatal = refused[0][1] if not units else _prepare(pipeline, [mid for _, mid in units])
    if result.fatal is not None:
        return result
    several = len(clients) > 1
    for unit_client, error in refused:
        names = [n for group in GROUPS for n in group if n in wanted]
        mid = unit_client.credentials.account_id
        result.collections += _not_loaded(names, mid, several, report, str(error))
    options = LoadOptions(full_refresh, naive_zone, backfill, several, email_bodies)
    for unit_client, mid in units:
        result.collections += _sync_unit(unit_client, mid, pipeline, wanted, options, stop, report)
    result.token_requests = sum(c.auth.token_requests for c in clients)
    for collection in result.collections:
        collection.error = report.redact(collection.error) if collection.error else None
    result.history_error = record_runs(pipeline, result.run_id, result.collections)
    return result


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


def _sync_unit(
    client: SfmcClient,
    mid: int,
    pipeline: dlt.Pipeline,
    wanted: set[str],
    options: LoadOptions,
    stop: Callable[[], bool],
    report: Reporter,
) -> list[CollectionResult]:
    """One business unit's groups, one load each; once ``stop`` says so, the rest skipped."""
    results: list[CollectionResult] = []
    for group in GROUPS:
        names = [n for n in group if n in wanted]
        if names and stop():
            results += _not_loaded(names, mid, options.several_units, report)
        elif names:
            results += _load_group(client, mid, pipeline, names, options, report)
    return results


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


@dataclass(frozen=True)
class LoadOptions:
    full_refresh: bool
    naive_zone: timezone
    backfill: timedelta
    several_units: bool  # results are labelled collection@MID
    email_bodies: bool = False


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


def _load_group(
    client: SfmcClient,
    mid: int,
    pipeline: dlt.Pipeline,
    names: list[str],
    options: LoadOptions,
    report: Reporter,
) -> list[CollectionResult]:
    before = dict(client.requests_by)
    labels = {n: f"{n}@{mid}" if options.several_units else n for n in names}
    results = [CollectionResult(labels[n], collection=n, business_unit_id=mid) for n in names]
    counts: Counter[str] = Counter()

    def progress(name: str) -> None:
        requests = client.requests_by[name] - before.get(name, 0)
        report.progress(labels[name], counts[name], requests)

    report.started(list(labels.values()))
    source = sfmc_source(
        client,
        names,
        options.full_refresh,
        options.naive_zone,
        counts,
        progress,
        options.backfill,
        email_bodies=options.email_bodies,
    )
    error = _load(pipeline, source, names)
    for result in results:
        result.error, result.rows = error, 0 if error else counts[result.collection]
    finished = datetime.now(UTC)
    for result in results:
        result.finished = finished
        result.requests = client.requests_by[result.collection] - before.get(result.collection, 0)
        report.finished(result)
    return results


def _load(pipeline: dlt.Pipeline, source: Any, names: list[str]) -> str | None:
    """Extract, normalize and load one group; why it failed, if it did (an extract that
    failed leaves no package behind)."""
    try:
        # A package an earlier group failed to load would be loaded instead of this group's
        # data, which would then never be read: load it first, or fail here.
        _finish_pending(pipeline)
        pipeline.run(source, loader_file_format=_file_format(pipeline))
    except PipelineStepFailed as exc:
        if exc.step == "extract" and pipeline.has_pending_data:
            pipeline.abort_packages()
        return _describe_failure(_cause(exc), names)
    return None


def _file_format(pipeline: dlt.Pipeline) -> Any:
    return loader_file_format(pipeline.destination)


def _cause(exc: BaseException) -> BaseException:
    """The first of our own errors behind a dlt failure, else the failure itself."""
    return next((e for e in causes(exc) if isinstance(e, SfmcError)), exc)


def _describe_failure(cause: BaseException, names: list[str]) -> str:
    if isinstance(cause, PermissionDenied):
        permission = COLLECTIONS[names[0]].permission
        return f"{cause}; enable {permission} for the package in Installed Packages"
    if isinstance(cause, SfmcError):
        return str(cause)
    return root_cause(cause)


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
    selected(collections)
    warehouse, schema = Warehouse.parse(destination), schema_name(schema)
    warehouse.require_directory()
    pipeline = pipeline_for(warehouse, schema)
    with warehouse_lock(warehouse, schema), ExitStack() as stack:
        clients = [stack.enter_context(SfmcClient(c, concurrency=concurrency)) for c in credentials]

        def secrets() -> list[str]:
            return [s for client in clients for s in client.secrets()] + warehouse.secrets()

        reporter = reporter_for(log_format, uuid.uuid4().hex, secrets, verbose)
        backfill = timedelta(days=backfill_days)
        how = (collections, full_refresh, naive_zone, stop, reporter, backfill, email_bodies)
        with closing(reporter):
            result = run_sync(clients, pipeline, *how)
    summarize(result, reporter)
    return result.exit_code


def summarize(result: SyncResult, reporter: Reporter) -> None:
    fatal = str(result.fatal) if result.fatal is not None else None
    reporter.summary(result.collections, result.token_requests, fatal, result.history_error)
