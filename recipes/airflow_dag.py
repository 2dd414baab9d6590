"""Airflow: sync SFMC every 3 hours, one task per business unit (Airflow 3, TaskFlow API).

Copy into your DAGs folder. The workers need `pip install sfmc-source` (this repository) and in
their environment SFMC_CLIENT_ID, SFMC_CLIENT_SECRET, SFMC_SUBDOMAIN and SFMC_DESTINATION;
optionally SFMC_SCHEMA (default sfmc), SFMC_ACCOUNT_IDS (the MIDs to sync, comma-separated;
default: the package's own business unit) and SFMC_CONCURRENCY (each task's API requests in
flight, default 5). Or read them from Airflow connections instead.

`business_units` lists the units; `sync_unit` is mapped over them (dynamic task mapping), so the
executor runs them side by side, each unit alone, with its own retries and its own failure. Two
syncs of one unit into one destination and schema never run at once: the second task fails with
`another sync of this destination and schema is running` and retries later. Syncs of other
units read SFMC at the same time and take the warehouse in turn to load.

SFMC publishes no concurrency limit and throttles under load: up to UNITS_AT_ONCE ×
SFMC_CONCURRENCY requests are in flight against the account (4 × 5 = 20 here); each task
halves its own on a 429. With other DAGs calling the same account, give `sync_unit` a pool
instead (`pool="sfmc_api"`, its slots the tasks at once across them all).

DuckDB is one file on one machine: run every task where the file is (LocalExecutor). Celery or
Kubernetes workers on several machines need Postgres, whose locks hold across machines
(README.md#many-business-units).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

UNITS_AT_ONCE = 4


@task
def business_units() -> list[int | None]:
    """The MIDs in SFMC_ACCOUNT_IDS; without it, the package's own unit (None)."""
    import os

    from sfmc_source.options import parse_account_ids

    listed = os.environ.get("SFMC_ACCOUNT_IDS", "").strip()
    return list(parse_account_ids(listed)) if listed else [None]


@task(
    retries=2,
    retry_delay=timedelta(minutes=10),
    max_active_tis_per_dag=UNITS_AT_ONCE,
    map_index_template="{{ task.op_kwargs['mid'] or 'own' }}",  # the MID, in the UI
)
def sync_unit(mid: int | None) -> dict[str, int]:
    """One business unit's sync: fails with the unit's errors, or SyncBusy's."""
    import os

    from sfmc_source.client import credentials_from
    from sfmc_source.sync import sync_business_units

    unit = str(mid or "own")
    credentials = credentials_from(
        os.environ.get("SFMC_CLIENT_ID"),
        os.environ.get("SFMC_CLIENT_SECRET"),
        os.environ.get("SFMC_SUBDOMAIN"),
        mid,
        os.environ.get("SFMC_AUTH_URL"),
    )
    result = sync_business_units(
        [credentials],
        os.environ["SFMC_DESTINATION"],
        os.environ.get("SFMC_SCHEMA", "sfmc"),
        concurrency=int(os.environ.get("SFMC_CONCURRENCY", "5")),
    )
    failed = [f"{c.name}: {c.error}" for c in result.collections if c.error]
    if result.fatal or failed:
        errors = str(result.fatal) if result.fatal else "; ".join(failed)
        raise RuntimeError(f"business unit {unit}: {errors}")
    return {c.name: c.rows for c in result.collections}


@dag(
    dag_id="sfmc_source",
    schedule=timedelta(hours=3),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sfmc"],
)
def sfmc_source_dag() -> None:
    sync_unit.expand(mid=business_units())


sfmc_dag = sfmc_source_dag()
