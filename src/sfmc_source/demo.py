"""``sfmc-source demo``: a full sync, a change, an incremental sync; offline, no credentials.

It starts the emulator in-process, syncs every collection into ``./demo.duckdb``, changes some
emulator data the way a marketer would, syncs again, and prints what each run loaded and what
it cost in requests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from sfmc_source.auth import Credentials
from sfmc_source.client import SfmcClient
from sfmc_source.emulator import Emulator, EmulatorConfig
from sfmc_source.report import Reporter
from sfmc_source.sync import SyncResult, pipeline_for, run_sync, summarize

WEB = "https://example.com/sale?utm=email"


def run_demo(path: Path = Path("demo.duckdb")) -> int:
    for leftover in (path, path.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    with Emulator(EmulatorConfig(seed=1)) as emulator, tempfile.TemporaryDirectory() as home:
        credentials = Credentials(
            emulator.config.client_id, emulator.config.client_secret, emulator.auth_url
        )
        click.echo(f"SFMC emulator on {emulator.auth_url}; syncing into {path}\n")
        click.echo("1. full sync")
        first, first_requests = _sync(credentials, path, home)
        _change(emulator)
        click.echo("\n3. incremental sync")
        second, second_requests = _sync(credentials, path, home)
        click.echo(
            f"\nrequests: {first_requests} for the full sync, {second_requests} for "
            "the incremental one"
        )
        click.echo(
            f"query it: .venv/bin/python -c \"import duckdb; print(duckdb.connect('{path}')"
            ".sql('select * from sfmc.campaigns limit 5'))\""
        )
        return max(first.exit_code, second.exit_code)


def _sync(credentials: Credentials, path: Path, home: str) -> tuple[SyncResult, int]:
    """The run's result and every request it made (tokens and the business unit's MID too)."""
    pipeline = pipeline_for(f"duckdb:///{path}", "sfmc", pipelines_dir=home)
    with SfmcClient(credentials) as client:
        result = run_sync(client, pipeline)
    summarize(result, Reporter(result.run_id))
    return result, client.requests


def _change(emulator: Emulator) -> None:
    mutate = emulator.app.mutate
    mutate.update("campaigns", "1005", name="Spring Sale (extended) 🌷")
    campaign = mutate.add("campaigns", name="Winter launch", favorite=True)
    mutate.add("campaign_assets", campaignId=int(campaign), type="EMAIL", itemID=4242)
    mutate.update("lists", 2010, ListName="Newsletter — weekly")
    journey_id = next(iter(emulator.app.unit().journeys))
    mutate.add("interactions", id=journey_id, name="Welcome Journey v-next")
    unit = emulator.app.unit()
    member = unit.list_subscribers[0].fields
    mutate.update("list_subscribers", (member["ListID"], member["SubscriberKey"]), Status="Held")
    send_id, key = next(iter(unit.sends)), member["SubscriberKey"]
    mutate.add("OpenEvent", EventType="Open", SendID=send_id, SubscriberKey=key)
    mutate.add("ClickEvent", EventType="Click", SendID=send_id, SubscriberKey=key, URL=WEB)
    click.echo(
        "\n2. changed in SFMC: 1 campaign renamed, 1 campaign added with an asset, "
        "1 list renamed, 1 journey version added, 1 list membership held, 1 open and 1 click"
    )
