"""Dagster: the SFMC tables as one asset, materialized every 3 hours by the sfmc-source library.

Point `dagster dev -f recipes/dagster_assets.py` (or your code location) at this file. The
process needs SFMC_CLIENT_ID, SFMC_CLIENT_SECRET, SFMC_SUBDOMAIN and SFMC_DESTINATION.
"""

import os

from dagster import (
    AssetExecutionContext,
    Definitions,
    MaterializeResult,
    ScheduleDefinition,
    asset,
    define_asset_job,
)


@asset(group_name="sfmc", description="Campaigns, assets, lists, journeys and goals from SFMC.")
def sfmc_tables(context: AssetExecutionContext) -> MaterializeResult:
    from sfmc_source.client import SfmcClient, credentials_from
    from sfmc_source.sync import pipeline_for, run_sync

    credentials = credentials_from(
        os.environ.get("SFMC_CLIENT_ID"),
        os.environ.get("SFMC_CLIENT_SECRET"),
        os.environ.get("SFMC_SUBDOMAIN"),
        auth_url=os.environ.get("SFMC_AUTH_URL"),
    )
    pipeline = pipeline_for(os.environ["SFMC_DESTINATION"], os.environ.get("SFMC_SCHEMA", "sfmc"))
    with SfmcClient(credentials) as client:
        result = run_sync(client, pipeline)
    for collection in result.collections:
        context.log.info(f"{collection.name}: {collection.rows} rows, {collection.error or 'ok'}")
    failed = [f"{c.name}: {c.error}" for c in result.collections if c.error]
    if result.fatal or failed:
        raise RuntimeError(str(result.fatal) if result.fatal else "; ".join(failed))
    return MaterializeResult(metadata={c.name: c.rows for c in result.collections})


sfmc_job = define_asset_job("sfmc_sync", selection=[sfmc_tables])
defs = Definitions(
    assets=[sfmc_tables],
    jobs=[sfmc_job],
    schedules=[ScheduleDefinition(job=sfmc_job, cron_schedule="0 */3 * * *")],
)
