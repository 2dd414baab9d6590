"""One sync run: each group of collections is its own dlt load, so one failing collection
leaves the others loading and its own cursor where its last committed data is."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dlt
from dlt.common.destination import Destination
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.destinations.job_client_impl import SqlJobClientBase
from dlt.pipeline.exceptions import PipelineStepFailed

from sfmc_source.client import DEFAULT_CONCURRENCY, SfmcClient, credentials_from
from sfmc_source.errors import (
    AuthenticationError,
    BusinessUnitRefused,
    ConfigError,
    PermissionDenied,
    SfmcError,
)
from sfmc_source.history import CollectionResult, record_runs
from sfmc_source.report import Quiet, Reporter, reporter_for
from sfmc_source.schedule import destination_lock
from sfmc_source.source import RETENTION, sfmc_source
from sfmc_source.specs import BUSINESS_UNIT_ID, COLLECTIONS, EVENTS
from sfmc_source.timefmt import SYSTEM_TIME

# DuckDB runs inside this process; without a cap a merge of a million rows takes gigabytes.
# Beyond the cap it spills to a temporary file beside the database.
DUCKDB_MEMORY_LIMIT = "64MB"
UNIT = BUSINESS_UNIT_ID.name
# Collections loaded together: a child is read from what its parent read.
GROUPS = (
    ("campaigns", "campaign_assets"),
    ("lists",),
    ("interactions", "goals"),
    ("list_subscribers", "subscribers"),
    ("sends",),
    *((c.name,) for c in EVENTS),
)


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


def destination_for(url: str) -> Destination[Any, Any]:
    """``duckdb:///path``, ``postgresql://user:pass@host:port/db`` or a dlt destination name."""
    scheme = urlsplit(url).scheme
    if scheme == "duckdb":
        config = {"memory_limit": DUCKDB_MEMORY_LIMIT}
        return dlt.destinations.duckdb(DuckDbCredentials(_duckdb_path(url), global_config=config))
    if scheme in ("postgresql", "postgres"):
        return dlt.destinations.postgres(credentials=_with_password(url))
    if scheme:
        raise ConfigError(
            f"--destination {url!r}: use duckdb:///path, postgresql://... or a "
            "dlt destination name (bigquery, snowflake, redshift, ...)"
        )
    try:
        destination = Destination.from_reference(url)
    except Exception:
        destination = None
    if destination is None:
        raise ConfigError(f"--destination {url!r} is not a destination dlt knows")
    return destination


def _duckdb_path(url: str) -> str:
    path = url.split("duckdb:///", 1)[-1] if "duckdb:///" in url else ""
    if not path:
        raise ConfigError(f"--destination {url!r}: use duckdb:///path/to/file.duckdb")
    return path


def _check_duckdb_names(url: str, schema: str) -> None:
    if urlsplit(url).scheme == "duckdb" and PurePath(_duckdb_path(url)).stem == schema:
        raise ConfigError(
            f"DuckDB cannot hold schema {schema!r} in a file named {schema}.duckdb (the file "
            "becomes a catalog of the same name); use another --schema or file name"
        )


def _pipeline_name(url: str, schema: str) -> str:
    """One local pipeline per destination and schema, so cursors never cross destinations."""
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@", 1))
    digest = hashlib.sha256(urlunsplit(parts).encode()).hexdigest()[:10]
    return f"sfmc_source_{schema}_{digest}"


def _with_password(url: str) -> str:
    """dlt wants a password in a Postgres URL even where the server trusts the user."""
    parts = urlsplit(url)
    if parts.username and parts.password is None:
        netloc = parts.netloc.replace(f"{parts.username}@", f"{parts.username}:@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def pipeline_for(destination: str, schema: str, pipelines_dir: str | None = None) -> dlt.Pipeline:
    """The dlt pipeline for a destination and schema; ``pipelines_dir`` defaults to dlt's
    (``~/.dlt/pipelines``). Its local state is a cache: the destination holds the truth."""
    _check_duckdb_names(destination, schema)
    name, target = _pipeline_name(destination, schema), destination_for(destination)
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
) -> SyncResult:
    """Sync the collections (all by default) of each business unit (one client each) group by
    group. Wrong credentials stop the run before anything is written; a unit whose token or
    MID cannot be had fails its own collections; any other failure fails only its group. When
    ``stop`` says so, the groups not yet started are left for the next run. ``reporter``
    hears of progress. A first sync reads tracking events and sends ``backfill`` back."""
    clients = [client] if isinstance(client, SfmcClient) else list(client)
    wanted = _selected(collections)
    result = SyncResult(run_id=reporter.run_id) if reporter else SyncResult()
    report = reporter or Quiet(result.run_id)
    units, refused = _units(clients)
    if not units:  # wrong credentials, or no unit could be synced
        result.fatal = refused[0][1]
        return result
    try:
        _finish_pending(pipeline)
        _adopt_tables(pipeline, [mid for _, mid in units])
    except PipelineStepFailed as exc:
        result.fatal = SfmcError(f"loading what an interrupted run left failed: {_innermost(exc)}")
        return result
    except ConfigError as exc:
        result.fatal = exc
        return result
    several = len(clients) > 1
    for unit_client, error in refused:
        mid = unit_client.credentials.account_id
        for name in (n for group in GROUPS for n in group if n in wanted):
            label = f"{name}@{mid}" if several else name
            failed = CollectionResult(
                label, collection=name, business_unit_id=mid, error=str(error)
            )
            failed.finished = failed.started
            report.finished(failed)
            result.collections.append(failed)
    options = LoadOptions(full_refresh, naive_zone, backfill, several)
    for unit_client, mid in units:
        for group in GROUPS:
            names = [n for n in group if n in wanted]
            if names and not stop():
                result.collections += _load_group(
                    unit_client, mid, pipeline, names, options, report
                )
    result.token_requests = sum(c.auth.token_requests for c in clients)
    result.history_error = record_runs(pipeline, result.run_id, result.collections)
    return result


@dataclass(frozen=True)
class LoadOptions:
    full_refresh: bool
    naive_zone: timezone
    backfill: timedelta
    several_units: bool  # results are labelled collection@MID


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


def _finish_pending(pipeline: dlt.Pipeline) -> None:
    """Load what a killed run extracted but did not load. ``pipeline.run`` would load only
    that and return, leaving the collections it was asked for unsynced."""
    if pipeline.has_pending_data:
        pipeline.normalize()
        pipeline.load()


def _selected(collections: Sequence[str] | None) -> set[str]:
    wanted = set(collections or COLLECTIONS)
    unknown = sorted(wanted - set(COLLECTIONS))
    if unknown:
        raise ConfigError(
            f"unknown collection {', '.join(unknown)}; choose from {', '.join(COLLECTIONS)}"
        )
    for name in list(wanted):
        parent = COLLECTIONS[name].parent
        if parent:
            wanted.add(parent)  # a child is read from its parent, whose cursor must move with it
    return wanted


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
        client, names, options.full_refresh, options.naive_zone, counts, progress, options.backfill
    )
    try:
        # A package an earlier group failed to load would be loaded instead of this group's
        # data, which would then never be read: load it first, or fail here.
        _finish_pending(pipeline)
        pipeline.run(source, loader_file_format=_file_format(pipeline))
    except PipelineStepFailed as exc:
        error = _describe_failure(_cause(exc), names)
        if exc.step == "extract" and pipeline.has_pending_data:
            pipeline.abort_packages()
        for result in results:
            result.error = error
    else:
        for result in results:
            result.rows = counts[result.collection]
    finished = datetime.now(UTC)
    for result in results:
        result.finished = finished
        result.requests = client.requests_by[result.collection] - before.get(result.collection, 0)
        report.finished(result)
    return results


def _file_format(pipeline: dlt.Pipeline) -> Any:
    """dlt's choice (parquet for Arrow pages where the destination takes it), except on
    Postgres: there dlt would copy Arrow pages in as CSV, which turns empty strings into nulls."""
    if pipeline.destination.destination_name == "postgres":
        return "insert_values"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, outermost first."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _cause(exc: BaseException) -> BaseException:
    """The first of our own errors behind a dlt failure, else the failure itself."""
    return next((e for e in _chain(exc) if isinstance(e, SfmcError)), exc)


def _describe_failure(cause: BaseException, names: list[str]) -> str:
    if isinstance(cause, PermissionDenied):
        permission = COLLECTIONS[names[0]].permission
        return f"{cause}; enable {permission} for the package in Installed Packages"
    if isinstance(cause, SfmcError):
        return str(cause)
    return _innermost(cause)


def _innermost(exc: BaseException) -> str:
    """The root cause of a dlt failure, in one line: its type and first line."""
    exc = _chain(exc)[-1]
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}"


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
    naive_zone: timezone = SYSTEM_TIME,
    concurrency: int = DEFAULT_CONCURRENCY,
    stop: Callable[[], bool] = lambda: False,
    log_format: str = "text",
    verbose: bool = False,
) -> int:
    """What ``sfmc-source sync`` does: check settings, sync, print the summary; the exit code.
    ``account_ids``: one client each, None for the package's own business unit."""
    credentials = [
        credentials_from(client_id, client_secret, subdomain, mid, auth_url) for mid in account_ids
    ]
    _selected(collections)
    pipeline = pipeline_for(destination, schema)
    with destination_lock(pipeline.pipeline_name), ExitStack() as stack:
        clients = [stack.enter_context(SfmcClient(c, concurrency=concurrency)) for c in credentials]

        def secrets() -> list[str]:
            return [secret for client in clients for secret in client.secrets()]

        reporter = reporter_for(log_format, uuid.uuid4().hex, secrets, verbose)
        backfill = timedelta(days=backfill_days)
        try:
            result = run_sync(
                clients, pipeline, collections, full_refresh, naive_zone, stop, reporter, backfill
            )
        finally:
            reporter.close()
    summarize(result, reporter)
    return result.exit_code


def summarize(result: SyncResult, reporter: Reporter) -> None:
    fatal = str(result.fatal) if result.fatal is not None else None
    reporter.summary(result.collections, result.token_requests, fatal, result.history_error)
