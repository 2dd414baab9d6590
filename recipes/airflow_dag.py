"""Airflow: sync SFMC every 3 hours with the sfmc-source library (Airflow 3, TaskFlow API).

Copy into your DAGs folder. The worker needs `pip install sfmc-source` (this repository) and
SFMC_CLIENT_ID, SFMC_CLIENT_SECRET, SFMC_SUBDOMAIN and SFMC_DESTINATION in its environment
(or read them from Airflow connections instead).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="sfmc_source",
    schedule=timedelta(hours=3),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sfmc"],
)
def sfmc_source_dag() -> None:
    @task(retries=2, retry_delay=timedelta(minutes=10))
    def sync() -> dict[str, int]:
        import os

        from sfmc_source.client import SfmcClient, credentials_from
        from sfmc_source.sync import pipeline_for, run_sync

        credentials = credentials_from(
            os.environ.get("SFMC_CLIENT_ID"),
            os.environ.get("SFMC_CLIENT_SECRET"),
            os.environ.get("SFMC_SUBDOMAIN"),
            auth_url=os.environ.get("SFMC_AUTH_URL"),
        )
        pipeline = pipeline_for(
            os.environ["SFMC_DESTINATION"], os.environ.get("SFMC_SCHEMA", "sfmc")
        )
        with SfmcClient(credentials) as client:
            result = run_sync(client, pipeline)
        failed = [f"{c.name}: {c.error}" for c in result.collections if c.error]
        if result.fatal or failed:
            raise RuntimeError(str(result.fatal) if result.fatal else "; ".join(failed))
        return {c.name: c.rows for c in result.collections}

    sync()


sfmc_dag = sfmc_source_dag()
