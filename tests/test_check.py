"""``sfmc-source check`` and ``sfmc-source collections`` against the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from sfmc_source.check import exit_code, run_check
from sfmc_source.cli import main
from sfmc_source.client import Credentials, RetryPolicy, SfmcClient
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.emulator.auth import READ_SCOPES
from sfmc_source.specs import COLLECTIONS

TINY = Sizes(campaigns=3, lists=3, journeys=2)
PERMISSION_OF_SCOPE = {
    "journeys_read": "Automation > Journeys > Read",
    "list_and_subscribers_read": "Contacts > Lists and Subscribers > Read",
    "campaign_read": "Hub > Campaigns > Read",
    "email_read": "Email > Read",
    "tracking_events_read": "Data > Tracking Events > Read",
}


def client_for(emulator: Emulator, secret: str | None = None) -> SfmcClient:
    creds = Credentials(
        emulator.config.client_id, secret or emulator.config.client_secret, emulator.auth_url
    )
    return SfmcClient(creds, retry=RetryPolicy(tries=2, base_delay=0.001), timeout=5)


def test_everything_ok_costs_one_token_and_one_request_per_permission(
    emulator_factory: Callable[..., Emulator],
) -> None:
    emulator = emulator_factory(sizes=TINY)
    with client_for(emulator) as client:
        findings = run_check(client)
    assert [f.ok for f in findings] == [True] * 6
    assert exit_code(findings) == 0
    assert emulator.app.log.summary()["total"] == 6


@pytest.mark.parametrize("removed", list(PERMISSION_OF_SCOPE))
def test_each_missing_permission_is_named_with_what_to_enable(
    emulator_factory: Callable[..., Emulator], removed: str
) -> None:
    scopes = tuple(s for s in READ_SCOPES if s != removed)
    emulator = emulator_factory(sizes=TINY, scopes=scopes)
    with client_for(emulator) as client:
        findings = run_check(client)
    failed = [f for f in findings if not f.ok]
    permission = PERMISSION_OF_SCOPE[removed]
    assert [(f.what, f.detail) for f in failed] == [
        (permission, f"missing: enable {permission} in Installed Packages")
    ]
    assert exit_code(findings) == 1


def test_wrong_credentials_stop_at_the_first_row(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(sizes=TINY)
    with client_for(emulator, secret="wrong") as client:
        findings = run_check(client)
    assert len(findings) == 1 and not findings[0].ok
    assert "SFMC_CLIENT_SECRET" in findings[0].detail
    assert exit_code(findings) == 3


@pytest.mark.parametrize(("scopes", "code"), [(READ_SCOPES, 0), (("campaign_read",), 1)])
def test_the_command_prints_one_row_per_permission(
    emulator_factory: Callable[..., Emulator], scopes: tuple[str, ...], code: int
) -> None:
    emulator = emulator_factory(sizes=TINY, scopes=scopes)
    result = CliRunner().invoke(main, ["check"], env=emulator.environment())
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("ok     Credentials and subdomain")
    assert emulator.config.client_secret not in result.output


def test_collections_lists_every_table_column_and_key() -> None:
    result = CliRunner().invoke(main, ["collections", "--json"])
    assert result.exit_code == 0
    described = {c["name"]: c for c in json.loads(result.output)}
    assert list(described) == list(COLLECTIONS)
    assert described["goals"]["primary_key"] == [
        "business_unit_id",
        "interaction_id",
        "interaction_version",
        "key",
    ]
    assert described["click_events"]["primary_key"] == ["business_unit_id", "event_key"]
    assert {"name": "business_unit_id", "type": "bigint"}.items() <= described["sends"]["columns"][
        -1
    ].items()
    assert {"name": "item_id", "type": "text", "source": "itemID"} in described["campaign_assets"][
        "columns"
    ]
    assert {"name": "object_id", "type": "text", "source": "objectID"} in described[
        "campaign_assets"
    ]["columns"]
    text = CliRunner().invoke(main, ["collections"]).output
    assert "schema_args_dequeue_reason_type" in text
    assert "permission:  Automation > Journeys > Read" in text
