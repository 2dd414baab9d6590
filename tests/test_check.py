"""``sfmc-source check`` and ``sfmc-source collections`` against the emulator."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import psycopg2
import pytest
from click.testing import CliRunner

from sfmc_source.check import Finding, check_destination, exit_code, run_check
from sfmc_source.cli import main
from sfmc_source.client import Credentials, RetryPolicy, SfmcClient
from sfmc_source.destination import Warehouse
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.emulator.auth import READ_SCOPES
from sfmc_source.specs import COLLECTIONS
from tests.conftest import free_port

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
def test_the_command_prints_one_row_per_permission_then_the_destination(
    emulator_factory: Callable[..., Emulator], scopes: tuple[str, ...], code: int, tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY, scopes=scopes)
    env = {**emulator.environment(), "SFMC_DESTINATION": f"duckdb:///{tmp_path}/w.duckdb"}
    result = CliRunner().invoke(main, ["check"], env=env)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 7
    assert lines[0].startswith("ok     Credentials and subdomain")
    assert lines[-1] == (
        f"ok     Destination                              duckdb:///{tmp_path}/w.duckdb, "
        "schema sfmc: the first sync creates the file"
    )
    assert emulator.config.client_secret not in result.output
    assert not (tmp_path / "w.duckdb").exists()


def test_collections_limit_the_permissions_checked(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=TINY, scopes=("campaign_read", "list_and_subscribers_read"))
    env = {**emulator.environment(), "SFMC_DESTINATION": f"duckdb:///{tmp_path}/w.duckdb"}
    args = ["check", "--collections", "campaign_assets,lists"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    checked = [line[7:].split("  ")[0] for line in result.output.splitlines()]
    assert checked == [
        "Credentials and subdomain",
        "Hub > Campaigns > Read",
        "Contacts > Lists and Subscribers > Read",
        "Destination",
    ]
    assert emulator.app.log.summary()["total"] == 3  # the token, one campaign, one List row
    bad = CliRunner().invoke(main, ["check", "--collections", "mails"], env=env)
    assert bad.exit_code == 2 and "unknown collection mails; choose from" in bad.output


HOLD_DUCKDB = (
    "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('open', flush=True); "
    "sys.stdin.read()"
)


def test_an_existing_duckdb_file_is_proven_writable_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    found = check_destination(Warehouse.parse(f"duckdb:///{path}"), "sfmc")
    assert found == Finding(
        "Destination", True, f"duckdb:///{path}, schema sfmc: reachable and writable"
    )
    with duckdb.connect(str(path), read_only=True) as con:
        schemas = con.sql("select schema_name from information_schema.schemata").fetchall()
    assert ("sfmc",) not in schemas
    holder = subprocess.Popen(  # another process has the file open for writing
        [sys.executable, "-c", HOLD_DUCKDB, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "open\n"
    found = check_destination(Warehouse.parse(f"duckdb:///{path}"), "sfmc")
    holder.communicate("")
    assert not found.ok, found
    assert found.detail.startswith(f"duckdb:///{path}, schema sfmc: IOException: ")


def test_a_missing_directory_or_an_unreachable_postgres_fails_the_destination_row(
    tmp_path: Path,
) -> None:
    missing = check_destination(Warehouse.parse(f"duckdb:///{tmp_path}/no/w.duckdb"), "sfmc")
    assert missing.detail.endswith(f"directory {tmp_path}/no does not exist") and not missing.ok
    port = free_port()
    url = f"postgresql://postgres:Hunter2Secret@127.0.0.1:{port}/test"
    refused = check_destination(Warehouse.parse(url), "sfmc")
    assert not refused.ok
    assert refused.detail.startswith(f"postgresql://postgres:***@127.0.0.1:{port}/test, schema")
    assert "OperationalError" in refused.detail and "Hunter2Secret" not in refused.detail


def test_a_postgres_schema_is_proven_writable_without_a_trace() -> None:
    schema = f"sfmc_check_{uuid.uuid4().hex[:8]}"
    url = "postgresql://postgres@127.0.0.1:5432/test"
    found = check_destination(Warehouse.parse(url), schema)
    assert found == Finding("Destination", True, f"{url}, schema {schema}: reachable and writable")
    with psycopg2.connect(url) as con, con.cursor() as cur:
        cur.execute("select 1 from information_schema.schemata where schema_name = %s", (schema,))
        assert cur.fetchall() == []


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
    assert {"name": "item_id", "type": "text", "source": "itemID", "option": None} in described[
        "campaign_assets"
    ]["columns"]
    assert {"name": "object_id", "type": "text", "source": "objectID", "option": None} in described[
        "campaign_assets"
    ]["columns"]
    text = CliRunner().invoke(main, ["collections"]).output
    assert "schema_args_dequeue_reason_type" in text
    assert "permission:  Automation > Journeys > Read" in text


def test_folders_are_checked_with_the_lists_permission(
    emulator_factory: Callable[..., Emulator],
) -> None:
    """No permission is documented for DataFolder: folders are read with lists' (specs.py)."""
    scopes = tuple(s for s in READ_SCOPES if s != "list_and_subscribers_read")
    emulator = emulator_factory(sizes=TINY, scopes=scopes)
    with client_for(emulator) as client:
        findings = run_check(client, ["folders", "journey_activities"])
    assert [(f.what, f.ok) for f in findings] == [
        ("Credentials and subdomain", True),
        ("Contacts > Lists and Subscribers > Read", False),
        ("Automation > Journeys > Read", True),
    ]
