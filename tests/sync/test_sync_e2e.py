"""End to end: real syncs (real dlt pipelines, DuckDB files, Postgres schemas) against the
emulator over real sockets, checked against the emulator's own data, column by column.

Expected rows are computed here from the emulator's records (README.md#tables), never through the
product's specs or row shaping, so a wrong mapping, type or time zone shows up as a diff.

Postgres is the server at ``SFMC_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets its own schema, dropped after.
When the server is unreachable the Postgres cases skip, except under ``CI=true``, where they
fail: CI must run them.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dlt
import duckdb
import httpx
import psycopg2
import pytest

from sfmc_source.client import DEFAULT_CONCURRENCY, Credentials, RetryPolicy, SfmcClient
from sfmc_source.emulator import Emulator, Faults, RestOptions, Sizes
from sfmc_source.emulator.generate import NASTY
from sfmc_source.emulator.messages import Request, Response
from sfmc_source.source import sfmc_source
from sfmc_source.sync import SyncResult, pipeline_for, run_sync

SMALL = Sizes(campaigns=30, assets_per_campaign=2, lists=120, journeys=6)
TABLES = ("campaigns", "campaign_assets", "lists", "interactions", "goals")
NEVER = "0001-01-01T00:00:00"
CLI = str(Path(sys.executable).with_name("sfmc-source"))
ASSETS = "GET /hub/v1/campaigns/{id}/assets"
CAMPAIGN_PAGES = "GET /hub/v1/campaigns"
JOURNEY_PAGES = "GET /interaction/v1/interactions"
LIST_RETRIEVES = "SOAP Retrieve List"
TOKEN = "POST /v2/token"
# Without an account id, each run asks once which business unit the package is in.
USERINFO = "GET /v2/userinfo"

# ---- destinations and clients ----------------------------------------------------------

POSTGRES_URL = os.environ.get("SFMC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
FAST_RETRIES = RetryPolicy(tries=4, base_delay=0.01, max_delay=0.05)
SAFETY = 600  # seconds; only so that a hung process fails its test instead of the suite


@dataclass
class Destination:
    """Where a sync lands and how the test reads it back."""

    kind: str  # duckdb | postgres
    url: str  # what pipeline_for / --destination take
    schema: str
    path: Path | None = None  # the DuckDB file

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` with ``{schema}`` replaced by the dataset's schema."""
        sql = sql.replace("{schema}", self.schema)
        if self.kind == "duckdb":
            assert self.path is not None
            with duckdb.connect(str(self.path), read_only=True) as con:
                con.execute("SET TimeZone = 'UTC'")
                return con.execute(sql.replace("%s", "?"), list(params)).fetchall()
        con = psycopg2.connect(POSTGRES_URL, options="-c timezone=UTC")
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            con.close()

    def tables(self) -> set[str]:
        """The tables in the dataset's schema (none when the file or schema does not exist)."""
        if self.kind == "duckdb" and (self.path is None or not self.path.exists()):
            return set()
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema,),
        )
        return {r[0] for r in rows}


def postgres_available() -> bool:
    try:
        psycopg2.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg2.OperationalError:
        return False
    return True


def _drop_postgres_schemas(schema: str) -> None:
    con = psycopg2.connect(POSTGRES_URL)
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                (f"{schema}%",),
            )
            for (name,) in cur.fetchall():
                cur.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        con.close()


def make_destination(kind: str, tmp_path: Path, cleanups: list[Callable[[], None]]) -> Destination:
    if kind == "duckdb":
        path = tmp_path / "warehouse.duckdb"
        return Destination("duckdb", f"duckdb:///{path}", "sfmc", path)
    if not postgres_available():
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"Postgres at {POSTGRES_URL} is unreachable and CI is set")
        pytest.skip(f"Postgres at {POSTGRES_URL} is unreachable")
    schema = f"sfmc_e2e_{uuid.uuid4().hex[:12]}"
    cleanups.append(lambda: _drop_postgres_schemas(schema))
    return Destination("postgres", POSTGRES_URL, schema)


@pytest.fixture
def destination_factory(tmp_path: Path) -> Iterator[Callable[[str], Destination]]:
    cleanups: list[Callable[[], None]] = []
    yield lambda kind: make_destination(kind, tmp_path, cleanups)
    for cleanup in cleanups:
        cleanup()


@pytest.fixture(params=["duckdb", "postgres"])
def destination(
    request: pytest.FixtureRequest, destination_factory: Callable[[str], Destination]
) -> Destination:
    """The test runs once per destination."""
    return destination_factory(request.param)


@pytest.fixture
def duckdb_destination(destination_factory: Callable[[str], Destination]) -> Destination:
    return destination_factory("duckdb")


@pytest.fixture
def client_factory() -> Iterator[Callable[..., SfmcClient]]:
    """New clients for an emulator (a new client is a new process: its own token); closed after."""
    clients: list[SfmcClient] = []

    def make(
        emu: Emulator,
        retry: RetryPolicy = FAST_RETRIES,
        secret: str | None = None,
        timeout: float = 5,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Any:
        credentials = Credentials(
            emu.config.client_id,
            emu.config.client_secret if secret is None else secret,
            emu.auth_url,
        )
        client = SfmcClient(credentials, retry=retry, timeout=timeout, concurrency=concurrency)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# ---- what the warehouse must hold (README.md#tables), computed from the emulator's records ----

PRIMARY_KEYS = {
    "campaigns": ("id",),
    "campaign_assets": ("id",),
    "lists": ("id",),
    "folders": ("id",),
    "interactions": ("id", "version"),
    "journey_activities": ("interaction_id", "interaction_version", "key"),
    "goals": ("interaction_id", "interaction_version", "key"),
}

CAMPAIGN_FIELDS = {
    "id": "id",
    "name": "name",
    "description": "description",
    "campaign_code": "campaignCode",
    "color": "color",
    "favorite": "favorite",
    "created_date": "createdDate",
    "modified_date": "modifiedDate",
}
ASSET_FIELDS = {
    "id": "id",
    "campaign_id": "campaignId",
    "item_id": "itemID",
    "type": "type",
    "created_date": "createdDate",
    # extra (README): TRIGGERED and AUTOMATION_DEFINITION assets name their object by GUID
    "object_id": "objectID",
}
LIST_FIELDS = {
    "id": "ID",
    "object_id": "ObjectID",
    "partner_key": "PartnerKey",
    "customer_key": "CustomerKey",
    "list_name": "ListName",
    "description": "Description",
    "category": "Category",
    "type": "Type",
    "list_classification": "ListClassification",
    "created_date": "CreatedDate",
    "modified_date": "ModifiedDate",
    "client_id": "Client.ID",
    "client_partner_client_key": "Client.PartnerClientKey",
    "client_created_by": "Client.CreatedBy",
    "client_modified_by": "Client.ModifiedBy",
    "client_customer_key": "Client.CustomerKey",
    "client_partner_user_key": "Client.PartnerUserKey",
    "client_user_id": "Client.UserID",
}
FOLDER_FIELDS = {
    "id": "ID",
    "name": "Name",
    "description": "Description",
    "content_type": "ContentType",
    "parent_folder_id": "ParentFolder.ID",
    "is_active": "IsActive",
    "is_editable": "IsEditable",
    "allow_children": "AllowChildren",
    "customer_key": "CustomerKey",
    "created_date": "CreatedDate",
    "modified_date": "ModifiedDate",
    "client_id": "Client.ID",
}
ACTIVITY_FIELDS = {
    "key": "key",
    "id": "id",
    "name": "name",
    "description": "description",
    "type": "type",
    "outcomes": "outcomes",
    "arguments": "arguments",
    "configuration_arguments": "configurationArguments",
    "metadata": "metaData",
    "triggered_send_id": "configurationArguments.triggeredSendId",
    "email_id": "configurationArguments.triggeredSend.emailId",
}
INTERACTION_FIELDS = {
    "id": "id",
    "key": "key",
    "name": "name",
    "description": "description",
    "version": "version",
    "workflow_api_version": "workflowApiVersion",
    "created_date": "createdDate",
    "modified_date": "modifiedDate",
    "last_published_date": "lastPublishedDate",
    "status": "status",
    "execution_mode": "executionMode",
    "definition_id": "definitionId",
    "stats_cumulative_population": "stats.cumulativePopulation",
    "stats_current_population": "stats.currentPopulation",
    "stats_goal_performance": "stats.goalPerformance",
    "stats_met_goal": "stats.metGoal",
    "default_email": "defaults.email",
    "default_analytics_type": "defaults.properties.analyticsTracking.analyticsType",
    "default_enabled": "defaults.properties.analyticsTracking.enabled",
}
GOAL_FIELDS = {
    "name": "name",
    "description": "description",
    "type": "type",
    "arguments_dequeue_reason": "arguments.dequeueReason",
    "arguments_filter_result": "arguments.filterResult",
    "arguments_last_executed_activity_key": "arguments.lastExecutedActivityKey",
    "start_activity_key": "arguments.startActivityKey",
    "config_arguments_filter_def_id": "configurationArguments.filterDefinitionId",
    "config_arguments_criteria": "configurationArguments.criteria",
    "config_arguments_schema_version_id": "configurationArguments.schemaVersionId",
    "metadata_is_exit_criteria": "metaData.isExitCriteria",
    "metadata_conversion_unit": "metaData.conversionUnit",
    "metadata_conversion_value": "metaData.conversionValue",
    "metadata_event_definition_id": "metaData.eventDefinitionId",
    "metadata_event_definition_key": "metaData.eventDefinitionKey",
    "metadata_configuration_description": "metaData.configurationDescription",
    "metadata_configuration_chain_type": "metaData.chainType",
    "metadata_configuration_required": "metaData.configurationRequired",
    "metadata_configuration_icon_url": "metaData.iconUrl",
    "metadata_configuration_title": "metaData.title",
}
for _arg, _source in {
    "condition_outcome": "conditionOutcome",
    "dequeue_reason": "dequeueReason",
    "filter_result": "filterResult",
    "last_executed_activity_key": "lastExecutedActivityKey",
    "start_activity_key": "startActivityKey",
}.items():
    for _suffix, _field in {
        "access": "access",
        "data_type": "dataType",
        "direction": "direction",
        "is_nullable": "isNullable",
        "read_only": "readOnly",
    }.items():
        # The seed spells dequeue reason's data type column "_type".
        _name = "type" if (_arg, _suffix) == ("dequeue_reason", "data_type") else _suffix
        GOAL_FIELDS[f"schema_args_{_arg}_{_name}"] = f"schema.arguments.{_source}.{_field}"

COLUMNS = {
    "campaigns": tuple(CAMPAIGN_FIELDS),
    "campaign_assets": tuple(ASSET_FIELDS),
    "lists": tuple(LIST_FIELDS),
    "folders": tuple(FOLDER_FIELDS),
    "interactions": tuple(INTERACTION_FIELDS),
    "journey_activities": ("interaction_id", "interaction_version", *ACTIVITY_FIELDS),
    "goals": ("interaction_id", "interaction_version", "key", *GOAL_FIELDS),
}

# Warehouse types (README.md#tables); every column not named here is text.
KINDS: dict[str, dict[str, str]] = {
    "campaigns": {"favorite": "bool", "created_date": "timestamp", "modified_date": "timestamp"},
    "campaign_assets": {"created_date": "timestamp"},
    "lists": {
        "id": "bigint",
        "category": "bigint",
        "client_id": "bigint",
        "client_created_by": "bigint",
        "client_modified_by": "bigint",
        "client_user_id": "bigint",
        "created_date": "timestamp",
        "modified_date": "timestamp",
    },
    "folders": {
        "id": "bigint",
        "parent_folder_id": "bigint",
        "is_active": "bool",
        "is_editable": "bool",
        "allow_children": "bool",
        "created_date": "timestamp",
        "modified_date": "timestamp",
        "client_id": "bigint",
    },
    "journey_activities": {
        "interaction_version": "bigint",
        "outcomes": "json",
        "arguments": "json",
        "configuration_arguments": "json",
        "metadata": "json",
        "email_id": "bigint",
    },
    "interactions": {
        "version": "bigint",
        "workflow_api_version": "number",
        "created_date": "timestamp",
        "modified_date": "timestamp",
        "last_published_date": "timestamp",
        "stats_cumulative_population": "bigint",
        "stats_current_population": "bigint",
        "stats_goal_performance": "double",
        "stats_met_goal": "bigint",
        "default_email": "json",
        "default_enabled": "bool",
    },
    "goals": {
        "interaction_version": "bigint",
        "config_arguments_schema_version_id": "bigint",
        "metadata_is_exit_criteria": "bool",
        "metadata_conversion_value": "number",
        "metadata_configuration_required": "bool",
        **{
            c: "bool"
            for c in GOAL_FIELDS
            if c.startswith("schema_args_") and c.endswith(("_is_nullable", "_read_only"))
        },
    },
}
TYPE_NAMES = {
    "duckdb": {
        "text": {"VARCHAR"},
        "bigint": {"BIGINT"},
        "double": {"DOUBLE"},
        "number": {"BIGINT", "DOUBLE", "DECIMAL"},
        "bool": {"BOOLEAN"},
        "timestamp": {"TIMESTAMP WITH TIME ZONE"},
        "json": {"JSON"},
    },
    "postgres": {
        "text": {"character varying", "text"},
        "bigint": {"bigint"},
        "double": {"double precision"},
        "number": {"bigint", "double precision", "numeric"},
        "bool": {"boolean"},
        "timestamp": {"timestamp with time zone"},
        "json": {"jsonb", "json"},
    },
}


def dig(record: dict[str, Any], path: str) -> Any:
    """A dotted path into a REST record; ``Client.ID``-style SOAP names are flat keys."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def utc(value: datetime | str | None) -> datetime | None:
    """The instant the emulator stores, as the warehouse must hold it; "never" is null."""
    if value is None or value == NEVER:
        return None
    assert isinstance(value, datetime) and value.tzinfo is not None, value
    return value.astimezone(UTC)


def as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _convert(kind: str, value: Any) -> Any:
    return {
        "timestamp": utc,
        "bigint": as_int,
        "double": as_float,
        "number": as_float,
        "text": lambda v: v,
        "bool": lambda v: v,
        "json": lambda v: v,
    }[kind](value)


def _row(table: str, record: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    kinds = KINDS[table]
    return {col: _convert(kinds.get(col, "text"), dig(record, src)) for col, src in fields.items()}


def expected_campaigns(emu: Emulator) -> list[dict[str, Any]]:
    return [_row("campaigns", r.fields, CAMPAIGN_FIELDS) for r in emu.app.unit().campaigns.values()]


def expected_campaign_assets(emu: Emulator) -> list[dict[str, Any]]:
    rows = []
    for assets in emu.app.unit().assets.values():
        for asset in assets:
            row = _row("campaign_assets", asset.fields, ASSET_FIELDS)
            # campaignId comes as a number; it lands as text, equal to campaigns.id
            row["campaign_id"] = as_text(asset.fields["campaignId"])
            row["item_id"] = as_text(asset.fields.get("itemID"))
            row["object_id"] = asset.fields.get("objectID")
            rows.append(row)
    return rows


def expected_lists(emu: Emulator) -> list[dict[str, Any]]:
    return [_row("lists", r.fields, LIST_FIELDS) for r in emu.app.unit().lists.values()]


def expected_folders(emu: Emulator) -> list[dict[str, Any]]:
    return [_row("folders", r.fields, FOLDER_FIELDS) for r in emu.app.unit().folders.values()]


def _live_versions(emu: Emulator) -> list[dict[str, Any]]:
    return [r.fields for r in emu.app.unit().journey_versions() if r.fields["status"] != "Deleted"]


def expected_interactions(emu: Emulator) -> list[dict[str, Any]]:
    return [_row("interactions", version, INTERACTION_FIELDS) for version in _live_versions(emu)]


def expected_journey_activities(emu: Emulator) -> list[dict[str, Any]]:
    """One row per activity of each version the listing shows."""
    return [
        {
            "interaction_id": version["id"],
            "interaction_version": version["version"],
            **_row("journey_activities", activity, ACTIVITY_FIELDS),
        }
        for version in _live_versions(emu)
        for activity in version.get("activities") or []
    ]


def expected_goals(emu: Emulator) -> list[dict[str, Any]]:
    rows = []
    for version in _live_versions(emu):
        for goal in [*(version.get("goals") or []), *(version.get("exits") or [])]:
            rows.append(
                {
                    "interaction_id": version["id"],
                    "interaction_version": version["version"],
                    "key": goal["key"],
                    **_row("goals", goal, GOAL_FIELDS),
                }
            )
    return rows


EXPECTED: dict[str, Callable[[Emulator], list[dict[str, Any]]]] = {
    "campaigns": expected_campaigns,
    "campaign_assets": expected_campaign_assets,
    "lists": expected_lists,
    "folders": expected_folders,
    "interactions": expected_interactions,
    "journey_activities": expected_journey_activities,
    "goals": expected_goals,
}


def snapshot(emu: Emulator, tables: Iterable[str] = TABLES) -> dict[str, list[dict[str, Any]]]:
    """What the warehouse must hold now (copies: later mutations do not change it)."""
    return {table: detached(EXPECTED[table](emu)) for table in tables}


def detached(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows that do not share lists with the emulator's records."""
    return [{k: list(v) if isinstance(v, list) else v for k, v in r.items()} for r in rows]


# ---- what the warehouse holds -----------------------------------------------------------


def warehouse_rows(dest: Destination, table: str) -> list[dict[str, Any]]:
    columns = COLUMNS[table]
    selected = ", ".join(f'"{c}"' for c in columns)
    rows = [
        dict(zip(columns, r, strict=True))
        for r in dest.query(f"SELECT {selected} FROM {{schema}}.{table}")
    ]
    kinds = KINDS[table]
    for row in rows:
        for column, value in row.items():
            kind = kinds.get(column, "text")
            if kind == "json" and isinstance(value, str):
                row[column] = json.loads(value)
            if kind == "timestamp" and value is not None:
                assert value.utcoffset() == timedelta(0), (table, column, value)
    return rows


def key_of(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in PRIMARY_KEYS[table])


def duplicate_keys(dest: Destination, table: str) -> list[tuple[Any, ...]]:
    keys = ", ".join(f'"{c}"' for c in PRIMARY_KEYS[table])
    return dest.query(
        f"SELECT {keys}, count(*) FROM {{schema}}.{table} GROUP BY {keys} HAVING count(*) > 1"
    )


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, float) and isinstance(actual, float):
        return expected == actual or (math.isnan(expected) and math.isnan(actual))
    return bool(expected == actual) and (expected is None) == (actual is None)


def table_diff(dest: Destination, table: str, expected: list[dict[str, Any]]) -> list[str]:
    """Every difference between the table and ``expected``, as readable lines."""
    problems = [f"{table}: duplicate primary key {d}" for d in duplicate_keys(dest, table)]
    actual = {key_of(table, r): r for r in warehouse_rows(dest, table)}
    wanted = {key_of(table, r): r for r in expected}
    assert len(wanted) == len(expected), f"{table}: the emulator holds duplicate keys"
    problems += [f"{table}: missing row {k}" for k in sorted(wanted.keys() - actual.keys())]
    problems += [f"{table}: extra row {k}" for k in sorted(actual.keys() - wanted.keys())]
    for k in sorted(wanted.keys() & actual.keys()):
        for column in COLUMNS[table]:
            want, got = wanted[k][column], actual[k][column]
            if not _same(want, got):
                problems.append(f"{table} {k} {column}: expected {want!r}, got {got!r}")
    return problems


def assert_warehouse_equals(
    dest: Destination,
    expected: dict[str, list[dict[str, Any]]],
) -> None:
    problems = [p for table, rows in expected.items() for p in table_diff(dest, table, rows)]
    shown = "\n".join(problems[:25])
    assert not problems, f"{len(problems)} differences:\n{shown}"


def assert_equals_emulator(
    dest: Destination, emu: Emulator, tables: Iterable[str] = TABLES
) -> None:
    assert_warehouse_equals(dest, snapshot(emu, tables))


# ---- running syncs ----------------------------------------------------------------------


@dataclass
class Syncs:
    """Library-level syncs; each ``machine`` is its own pipelines dir (its own local state)."""

    tmp_path: Path
    new_client: Callable[..., SfmcClient]

    def pipeline(self, dest: Destination, machine: str = "a") -> dlt.Pipeline:
        return pipeline_for(dest.url, dest.schema, pipelines_dir=str(self.tmp_path / machine))

    def run(
        self,
        emu: Emulator,
        dest: Destination,
        machine: str = "a",
        client: SfmcClient | None = None,
        **options: Any,
    ) -> SyncResult:
        options.setdefault("collections", TABLES)  # engagement data: test_engagement_e2e.py
        return run_sync(client or self.new_client(emu), self.pipeline(dest, machine), **options)


@pytest.fixture
def syncs(tmp_path: Path, client_factory: Callable[..., SfmcClient]) -> Syncs:
    return Syncs(tmp_path, client_factory)


def outcome(result: SyncResult) -> dict[str, str | None]:
    return {c.name: c.error for c in result.collections}


def assert_ok(result: SyncResult) -> None:
    assert result.fatal is None, result.fatal
    assert outcome(result) == dict.fromkeys(TABLES), outcome(result)
    assert result.exit_code == 0


def counts(emu: Emulator) -> dict[str, int]:
    return emu.app.log.by_endpoint()


def asset_campaigns(emu: Emulator) -> list[str]:
    """The campaign ids whose assets were requested, in order."""
    return [e.path.split("/")[-2] for e in emu.app.log.entries if e.endpoint == ASSETS]


@dataclass
class Cli:
    """``sfmc-source`` as a user runs it: its own HOME and working directory."""

    tmp_path: Path

    def env(self, emu: Emulator, dest: Destination, home: str, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SFMC_", "DESTINATION__", "RUNTIME__", "DLT_"))
        }
        home_dir = self.tmp_path / f"home-{home}"
        home_dir.mkdir(exist_ok=True)
        # As root dlt keeps its working dir in /var/dlt whatever HOME says: give each home its own.
        env.update(
            emu.environment(),
            HOME=str(home_dir),
            DLT_DATA_DIR=str(home_dir / ".dlt"),
            SFMC_DESTINATION=dest.url,
        )
        env.pop("SFMC_SUBDOMAIN", None)
        env.update(extra)
        return env

    def cwd(self, home: str) -> Path:
        cwd = self.tmp_path / f"cwd-{home}"
        cwd.mkdir(exist_ok=True)
        return cwd

    def popen(
        self, emu: Emulator, dest: Destination, *args: str, home: str = "a", **env: str
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [CLI, "sync", "--schema", dest.schema, *args],
            env=self.env(emu, dest, home, **env),
            cwd=self.cwd(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, emu: Emulator, dest: Destination, *args: str, home: str = "a", **env: str
    ) -> subprocess.CompletedProcess[str]:
        process = self.popen(emu, dest, *args, home=home, **env)
        stdout, stderr = process.communicate(timeout=SAFETY)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


# ---- mutations --------------------------------------------------------------------------


def make_nasty(emu: Emulator) -> None:
    """Put every nasty string, an empty string and a null where each collection keeps text."""
    unit, mutate = emu.app.unit(), emu.app.mutate
    strings = [*NASTY, "cr\ronly", "  ", "\n"]
    campaign_ids = sorted(unit.campaigns, key=int)
    list_ids = sorted(unit.lists)
    for i, text in enumerate(strings):
        mutate.update("campaigns", campaign_ids[i % len(campaign_ids)], touch=False, name=text)
        mutate.update("lists", list_ids[1 + i % (len(list_ids) - 1)], touch=False, ListName=text)
    mutate.update("campaigns", campaign_ids[0], touch=False, description="", campaignCode=None)
    mutate.update("campaigns", campaign_ids[1], touch=False, description=None, campaignCode="")
    mutate.update("lists", list_ids[1], touch=False, Description="", CustomerKey=None)
    versions = list(unit.journey_versions())
    for i, version in enumerate(versions):
        key = (version.fields["id"], version.fields["version"])
        goals = [
            dict(g, name=strings[(i + j) % len(strings)])
            for j, g in enumerate(version.fields["goals"])
        ]
        mutate.update("interactions", key, touch=False, name=strings[i % len(strings)], goals=goals)
    mutate.update("interactions", (versions[0].fields["id"], 1), touch=False, description="")


def assert_covers_nasty(expected: dict[str, list[dict[str, Any]]]) -> None:
    """The data really holds what breaks connectors, so the comparison means something."""
    texts = [
        v for rows in expected.values() for r in rows for v in r.values() if isinstance(v, str)
    ]
    for needle in ("\r\n", "\r", "🌸", "'); DROP TABLE", '"double"', "\t", "日本語"):
        assert any(needle in t for t in texts), needle
    assert "" in texts
    assert "  leading and trailing spaces  " in texts
    assert any(r["description"] is None for r in expected["campaigns"])
    assert any(r["stats_current_population"] is None for r in expected["interactions"])
    assert any(r["last_published_date"] is None for r in expected["interactions"])
    assert any(r["start_activity_key"] is not None for r in expected["goals"])
    assert any(r["metadata_is_exit_criteria"] for r in expected["goals"])


# ---- 1. a full sync lands the emulator's data exactly -----------------------------------


def test_full_sync_equals_the_emulator_column_by_column(
    emulator_factory: Callable[..., Emulator], destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    make_nasty(emu)
    expected = snapshot(emu)
    assert_covers_nasty(expected)

    result = syncs.run(emu, destination)

    assert_ok(result)
    assert set(TABLES) <= destination.tables()
    assert_warehouse_equals(destination, expected)


def test_columns_have_the_seed_names_and_types(
    emulator_factory: Callable[..., Emulator], destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert_ok(syncs.run(emu, destination))
    names = TYPE_NAMES[destination.kind]
    found = {
        (table, column): data_type
        for table, column, data_type in destination.query(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s",
            (destination.schema,),
        )
    }
    wrong = []
    for table in TABLES:
        for column in COLUMNS[table]:
            kind = KINDS[table].get(column, "text")
            got = found.get((table, column))
            if got is None or got.split("(")[0] not in names[kind]:
                wrong.append(f"{table}.{column}: {got} is not {kind}")
    assert not wrong, "\n".join(wrong)
    assert found["campaign_assets", "campaign_id"] == found["campaigns", "id"]


DLT_COLUMNS = {"_dlt_load_id", "_dlt_id", "_dlt_parent_id", "_dlt_list_idx", "_dlt_root_id"}
# The extras the README notes: the in-flight hard-delete marker, null in every stored row, and
# the objectID of TRIGGERED and AUTOMATION_DEFINITION assets, which have no itemID.
# Every row names the business unit it was read in (the first part of every primary key).
NOTED_EXTRAS = {("campaign_assets", "_sfmc_deleted"), ("campaign_assets", "object_id")} | {
    (t, "business_unit_id") for t in TABLES
}
SEED_COLUMNS = {
    t: set(columns) - {c for x, c in NOTED_EXTRAS if x == t} for t, columns in COLUMNS.items()
}


def test_tables_have_no_columns_beyond_the_seeds(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert_ok(syncs.run(emu, duckdb_destination))
    extra = {
        (table, column)
        for table, column in duckdb_destination.query(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = %s",
            (duckdb_destination.schema,),
        )
        if table in TABLES and column not in SEED_COLUMNS[table] and column not in DLT_COLUMNS
    }
    assert extra == NOTED_EXTRAS
    for table in TABLES:
        units = duckdb_destination.query(
            f"SELECT DISTINCT business_unit_id FROM {{schema}}.{table}"
        )
        assert units == [(emu.config.mids[0],)], table
    marked = duckdb_destination.query(
        "SELECT count(*) FROM {schema}.campaign_assets WHERE _sfmc_deleted IS NOT NULL"
    )
    assert marked == [(0,)]
    [(by_object,)] = duckdb_destination.query(
        "SELECT count(*) FROM {schema}.campaign_assets WHERE object_id IS NOT NULL"
    )
    assert by_object == sum(1 for r in expected_campaign_assets(emu) if r["object_id"]) > 0


def test_the_reported_rows_are_the_rows_that_landed(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert any(not assets for assets in emu.app.unit().assets.values())
    expected = snapshot(emu)

    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    assert {c.name: c.rows for c in result.collections} == {t: len(expected[t]) for t in TABLES}


def listed_first(emu: Emulator, path: str, page: int, **params: str) -> dict[str, Any]:
    """The first item of a page of a REST listing, 50 to a page, newest first."""
    token = httpx.post(
        f"{emu.auth_url}/v2/token",
        json={
            "grant_type": "client_credentials",
            "client_id": emu.config.client_id,
            "client_secret": emu.config.client_secret,
        },
    ).json()
    params.update({"$page": str(page), "$pageSize": "50", "$orderBy": "ModifiedDate DESC"})
    listing = httpx.get(
        token["rest_instance_url"] + path,
        params=params,
        headers={"Authorization": f"Bearer {token['access_token']}"},
    ).json()
    first: dict[str, Any] = listing["items"][0]
    return first


def test_a_page_that_repeats_an_item_reports_the_rows_that_landed(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, syncs: Syncs
) -> None:
    # SFMC-SDK's recorded page 2 of journeys repeats item 1 of page 1 in place of its own: a
    # count of 6, five distinct items. Here page 2 of campaigns and of journey versions does.
    emu = emulator_factory(sizes=Sizes(campaigns=70, assets_per_campaign=2, lists=120, journeys=40))
    campaign = listed_first(emu, "hub/v1/campaigns", 2)["id"]
    version = listed_first(emu, "interaction/v1/interactions", 2, mostRecentVersionOnly="false")
    expected = snapshot(emu)
    expected["campaigns"] = [r for r in expected["campaigns"] if r["id"] != campaign]
    expected["campaign_assets"] = [
        r for r in expected["campaign_assets"] if r["campaign_id"] != campaign
    ]
    unseen = (version["id"], version["version"])
    expected["interactions"] = [
        r for r in expected["interactions"] if key_of("interactions", r) != unseen
    ]
    expected["goals"] = [r for r in expected["goals"] if key_of("goals", r)[:2] != unseen]
    emu.app.faults.repeat = {"campaigns": 2, "interactions": 2}

    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    assert_warehouse_equals(duckdb_destination, expected)
    landed = {t: len(expected[t]) for t in TABLES}
    assert {c.name: c.rows for c in result.collections} == landed
    runs = duckdb_destination.query("SELECT collection, rows FROM {schema}._sfmc_runs")
    assert dict(runs) == landed


# ---- 2. a known instant ------------------------------------------------------------------


def test_a_known_instant_lands_as_that_utc_instant(
    emulator_factory: Callable[..., Emulator], destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    instant = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    emu.app.mutate.update("campaigns", "1003", touch=False, modifiedDate=instant)
    emu.app.mutate.update("lists", 2004, touch=False, ModifiedDate=instant)
    journey = next(iter(emu.app.unit().journeys))
    emu.app.mutate.update("interactions", (journey, 1), touch=False, lastPublishedDate=instant)
    # What SFMC writes: naive text in its system time, UTC−6.
    token = httpx.post(
        f"{emu.auth_url}/v2/token",
        json={
            "grant_type": "client_credentials",
            "client_id": emu.config.client_id,
            "client_secret": emu.config.client_secret,
        },
    ).json()
    wire = httpx.get(
        token["rest_instance_url"] + "hub/v1/campaigns/1003",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    ).json()
    assert wire["modifiedDate"] == "2024-06-01T06:00:00"

    assert_ok(syncs.run(emu, destination))

    for sql in (
        "SELECT modified_date FROM {schema}.campaigns WHERE id = '1003'",
        "SELECT modified_date FROM {schema}.lists WHERE id = 2004",
        f"SELECT last_published_date FROM {{schema}}.interactions "
        f"WHERE id = '{journey}' AND version = 1",
    ):
        [(value,)] = destination.query(sql)
        assert value == instant, sql
        assert value.utcoffset() == timedelta(0)
        assert (value.hour, value.minute) == (12, 0)


# ---- 3. incremental ----------------------------------------------------------------------


def mutate_everything(emu: Emulator) -> set[str]:
    """One of each change a user makes between syncs; the campaigns whose assets changed."""
    unit, mutate = emu.app.unit(), emu.app.mutate
    oldest = sorted(unit.campaigns.values(), key=lambda r: r.fields["modifiedDate"])
    renamed, asset_added = oldest[0].fields["id"], oldest[1].fields["id"]
    mutate.update("campaigns", renamed, name="Renamed ✨ 'again'")
    new_campaign = mutate.add("campaigns", name="Brand new", description="", favorite=True)
    for n in range(2):
        mutate.add("campaign_assets", campaignId=int(new_campaign), type="EMAIL", itemID=900 + n)
    mutate.add("campaign_assets", campaignId=int(asset_added), type="CMS_ASSET", itemID="x-1")
    oldest_list = min(unit.lists.values(), key=lambda r: r.fields["ModifiedDate"])
    mutate.update("lists", oldest_list.fields["ID"], ListName="Renamed list\r\nline 2")
    mutate.add("lists", ListName="New list", Description="", Type="Public", Category=123)
    journeys = list(unit.journeys)
    mutate.add("interactions", id=journeys[0], name="Next version")
    mutate.add("interactions", name="A new journey")
    first = unit.journeys[journeys[1]][0].fields
    mutate.update(
        "interactions",
        (first["id"], first["version"]),
        touch=False,
        stats={
            "currentPopulation": 7,
            "cumulativePopulation": 70,
            "metGoal": 3,
            "goalPerformance": 42.5,
        },
    )
    with_goals = next(v.fields for v in unit.journey_versions() if v.fields["goals"])
    mutate.update(
        "interactions",
        (with_goals["id"], with_goals["version"]),
        touch=False,
        goals=with_goals["goals"][1:],
    )
    return {renamed, asset_added, new_campaign}


def test_incremental_sync_reads_only_changes_and_converges(
    emulator_factory: Callable[..., Emulator], destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    log = emu.app.log
    campaigns = len(emu.app.unit().campaigns)
    first = syncs.run(emu, destination)
    assert_ok(first)
    assert counts(emu)[ASSETS] == campaigns
    assert log.token_requests == 1 and first.token_requests == 1
    first_total = len(log.entries)
    cursor = max(r.fields["modifiedDate"] for r in emu.app.unit().campaigns.values())
    near_cursor = sum(
        1
        for r in emu.app.unit().campaigns.values()
        if r.fields["modifiedDate"] >= cursor - timedelta(hours=1)
    )

    changed = mutate_everything(emu)
    log.clear()
    second = syncs.run(emu, destination)

    assert_ok(second)
    assert_equals_emulator(destination, emu)
    seen = counts(emu)
    assert log.token_requests == 1 and second.token_requests == 1
    assert seen[CAMPAIGN_PAGES] == 1
    assert changed <= set(asset_campaigns(emu))
    # only changed campaigns (and the few sharing the cursor's last hour) are re-read
    assert len(changed) <= seen[ASSETS] <= len(changed) + near_cursor
    assert seen[LIST_RETRIEVES] == 1
    assert seen[JOURNEY_PAGES] == 1
    assert len(log.entries) < first_total / 3
    rows = {c.name: c.rows for c in second.collections}
    assert rows["lists"] < len(emu.app.unit().lists) / 2


def test_removing_assets_is_reflected_when_their_campaign_is_reread(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert_ok(syncs.run(emu, duckdb_destination))
    unit = emu.app.unit()
    some = next(cid for cid, assets in unit.assets.items() if len(assets) >= 2)
    emu.app.mutate.delete("campaign_assets", unit.assets[some][0].fields["id"])
    assert_ok(syncs.run(emu, duckdb_destination))
    assert_equals_emulator(duckdb_destination, emu, ["campaigns", "campaign_assets"])


def test_a_campaign_whose_last_assets_were_removed_has_none_left(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert_ok(syncs.run(emu, duckdb_destination))
    unit = emu.app.unit()
    emptied = next(cid for cid, assets in unit.assets.items() if assets)
    for asset in list(unit.assets[emptied]):
        emu.app.mutate.delete("campaign_assets", asset.fields["id"])
    assert unit.assets[emptied] == []
    assert_ok(syncs.run(emu, duckdb_destination))
    assert emptied in asset_campaigns(emu)
    assert_equals_emulator(duckdb_destination, emu, ["campaigns", "campaign_assets"])


# ---- 4. full refresh ---------------------------------------------------------------------


def test_full_refresh_rereads_everything_and_still_equals_the_emulator(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert_ok(syncs.run(emu, duckdb_destination))
    mutate_everything(emu)
    emu.app.log.clear()

    result = syncs.run(emu, duckdb_destination, full_refresh=True)

    assert_ok(result)
    unit = emu.app.unit()
    seen = counts(emu)
    assert seen[ASSETS] == len(unit.campaigns)
    assert sorted(asset_campaigns(emu)) == sorted(unit.campaigns)
    assert seen[CAMPAIGN_PAGES] == math.ceil(len(unit.campaigns) / 50)
    assert {c.name: c.rows for c in result.collections}["lists"] == len(unit.lists)
    assert_equals_emulator(duckdb_destination, emu)


# ---- 5. bad credentials ------------------------------------------------------------------


def test_bad_credentials_fail_with_exit_3_and_write_nothing(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    client_factory: Callable[..., SfmcClient],
    tmp_path: Path,
) -> None:
    emu = emulator_factory(sizes=SMALL)
    client = client_factory(emu, secret="wrong-secret-0123456789")
    pipeline = pipeline_for(duckdb_destination.url, "sfmc", pipelines_dir=str(tmp_path / "p"))

    result = run_sync(client, pipeline)

    assert result.exit_code == 3
    message = str(result.fatal)
    for setting in ("SFMC_CLIENT_ID", "SFMC_CLIENT_SECRET", "SFMC_SUBDOMAIN"):
        assert setting in message
    assert "wrong-secret-0123456789" not in message
    assert duckdb_destination.tables() == set()
    assert counts(emu) == {TOKEN: 1}


def test_bad_credentials_on_the_command_line(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, cli: Cli
) -> None:
    emu = emulator_factory(sizes=SMALL)
    secret = "wrong-Secret-9876543210"

    run = cli.run(emu, duckdb_destination, SFMC_CLIENT_SECRET=secret)

    assert run.returncode == 3, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "authentication failed" in lines[0]
    assert "SFMC_CLIENT_SECRET" in lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    for leaked in (secret, emu.config.client_secret):
        assert leaked not in run.stdout + run.stderr
    assert duckdb_destination.tables() == set()


# ---- 6. a missing permission -------------------------------------------------------------

READ_SCOPES = ("campaign_read", "list_and_subscribers_read", "journeys_read")


@pytest.mark.parametrize(
    ("missing", "failing", "permission"),
    [
        pytest.param(
            "journeys_read",
            ("interactions", "goals"),
            "Automation > Journeys > Read",
            id="no-journeys",
        ),
        pytest.param(
            "list_and_subscribers_read",
            ("lists",),
            "Contacts > Lists and Subscribers > Read",
            id="no-lists",
        ),
        pytest.param(
            "campaign_read",
            ("campaigns", "campaign_assets"),
            "Hub > Campaigns > Read",
            id="no-campaigns",
        ),
    ],
)
def test_a_missing_permission_fails_only_its_collections(
    emulator_factory: Callable[..., Emulator],
    destination: Destination,
    syncs: Syncs,
    missing: str,
    failing: tuple[str, ...],
    permission: str,
) -> None:
    emu = emulator_factory(sizes=SMALL, scopes=tuple(s for s in READ_SCOPES if s != missing))

    result = syncs.run(emu, destination)

    assert result.exit_code == 1
    errors = outcome(result)
    for name in TABLES:
        if name in failing:
            assert errors[name] is not None and permission in errors[name], errors
            assert "\n" not in errors[name]
        else:
            assert errors[name] is None, errors
    healthy = [t for t in TABLES if t not in failing]
    assert_equals_emulator(destination, emu, healthy)
    assert not set(failing) & destination.tables()


def test_a_missing_permission_on_the_command_line(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, cli: Cli
) -> None:
    emu = emulator_factory(sizes=SMALL, scopes=("campaign_read", "list_and_subscribers_read"))

    run = cli.run(emu, duckdb_destination, "--collections", ",".join(TABLES))

    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "Automation > Journeys > Read" in last
    assert "interactions" in run.stderr and "goals" in run.stderr
    assert_equals_emulator(duckdb_destination, emu, ["campaigns", "campaign_assets", "lists"])


# ---- 7. throttling, server errors, resets ------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "statuses"),
    [
        # which SOAP request, if any, meets every third is chance: groups run at once
        pytest.param(Faults(rate_limit_every=3, retry_after=0), {429}, id="429-every-3rd"),
        pytest.param(Faults(server_error_every=4), {500}, id="5xx-every-4th"),
        pytest.param(Faults(reset_every=5), {0}, id="reset-every-5th"),
        pytest.param(
            Faults(rate_limit_every=3, retry_after=0, server_error_every=4, reset_every=5),
            {0, 429, 500},
            id="all-at-once",
        ),
        pytest.param(Faults(stall_every=15, stall_seconds=0.6), set(), id="stall-every-15th"),
    ],
)
def test_transient_faults_are_retried_and_the_data_is_exact(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    syncs: Syncs,
    client_factory: Callable[..., SfmcClient],
    faults: Faults,
    statuses: set[int],
) -> None:
    emu = emulator_factory(sizes=SMALL, faults=faults)
    # Asset requests run five at a time, so which request meets the Nth-request fault is
    # left to chance; all at once, six requests in ten fail. With 20 tries a request that
    # never gets through is rare.
    retry = RetryPolicy(tries=20, base_delay=0.01, max_delay=0.05)
    client = client_factory(emu, retry=retry, timeout=0.3)

    result = syncs.run(emu, duckdb_destination, client=client)

    assert_ok(result)
    assert statuses <= set(emu.app.log.by_status())
    assert client.retries > 0
    assert_equals_emulator(duckdb_destination, emu)
    # an incremental run under the same faults converges too
    mutate_everything(emu)
    client = client_factory(emu, retry=retry, timeout=0.3)
    assert_ok(syncs.run(emu, duckdb_destination, client=client))
    assert_equals_emulator(duckdb_destination, emu)


# ---- 8. token expiry ---------------------------------------------------------------------


def test_tokens_expiring_mid_sync_are_refreshed(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    syncs: Syncs,
    client_factory: Callable[..., SfmcClient],
) -> None:
    emu = emulator_factory(sizes=SMALL, token_ttl=1, faults=Faults(latency_ms=40))
    client = client_factory(emu, concurrency=1)  # one request at a time: seconds long
    started = time.monotonic()

    result = syncs.run(emu, duckdb_destination, client=client)

    elapsed = time.monotonic() - started
    assert_ok(result)
    api_requests = len(emu.app.log.entries) - emu.app.log.token_requests
    assert emu.app.log.token_requests == result.token_requests
    # the run outlived its first token; about one token per (three quarters of a) lifetime
    assert 1 < result.token_requests <= elapsed / 0.75 + 2
    assert result.token_requests * 5 < api_requests
    assert_equals_emulator(duckdb_destination, emu)

    # the same client after its token died between syncs
    time.sleep(1.1)
    emu.app.faults.latency_ms = 0
    mutate_everything(emu)
    assert_ok(syncs.run(emu, duckdb_destination, client=client))
    assert_equals_emulator(duckdb_destination, emu)


# ---- 9. malformed pages ------------------------------------------------------------------


def _spread_dates(start: datetime, n: int) -> list[datetime]:
    """``n`` instants two hours apart, newest last: more than the re-read overlap apart."""
    return [start + timedelta(hours=2 * i) for i in range(n)]


@pytest.mark.parametrize(
    ("malformed", "failing"),
    [
        pytest.param({"campaigns": 2}, ("campaigns", "campaign_assets"), id="campaigns-page-2"),
        pytest.param({"List": 1}, ("lists",), id="List-page-1"),
        pytest.param({"interactions": 1}, ("interactions", "goals"), id="interactions-page-1"),
    ],
)
def test_a_malformed_page_fails_its_collection_and_keeps_data_and_cursor(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    syncs: Syncs,
    malformed: dict[str, int],
    failing: tuple[str, ...],
) -> None:
    emu = emulator_factory(sizes=Sizes(campaigns=60, assets_per_campaign=1, lists=120, journeys=4))
    unit, mutate = emu.app.unit(), emu.app.mutate
    assert_ok(syncs.run(emu, duckdb_destination))
    before = snapshot(emu)

    # 55 changes, each hours apart and all after the cursor: page 1 of the newest-first
    # listing holds 50 of them, page 2 the 5 oldest. A cursor that moved past page 1 would
    # skip those 5 for good.
    after_cursor = datetime(2026, 8, 1, tzinfo=UTC)
    for cid, when in zip(
        sorted(unit.campaigns, key=int), _spread_dates(after_cursor, 55), strict=False
    ):
        mutate.update("campaigns", cid, touch=False, modifiedDate=when, name=f"changed {when}")
    for lid, when in zip(sorted(unit.lists)[:10], _spread_dates(after_cursor, 10), strict=False):
        mutate.update("lists", lid, touch=False, ModifiedDate=when, ListName=f"changed {when}")
    for version in list(unit.journey_versions())[:3]:
        key = (version.fields["id"], version.fields["version"])
        mutate.update("interactions", key, touch=False, stats={"currentPopulation": 1})
    now = snapshot(emu, failing)
    assert any(now[t] != before[t] for t in failing), "the changes must be visible"
    emu.app.faults.malformed = dict(malformed)

    result = syncs.run(emu, duckdb_destination)

    assert result.exit_code == 1
    errors = outcome(result)
    for name in TABLES:
        if name in failing:
            assert errors[name] is not None and "malformed" in errors[name].lower(), errors
        else:
            assert errors[name] is None, errors
    assert_warehouse_equals(duckdb_destination, {t: before[t] for t in failing})
    healthy = [t for t in TABLES if t not in failing]
    assert_equals_emulator(duckdb_destination, emu, healthy)

    emu.app.faults.malformed = {}
    mutate.update("campaigns", "1059", name="one more change")
    mutate.update("lists", sorted(unit.lists)[-1], ListName="one more change")
    assert_ok(syncs.run(emu, duckdb_destination))
    assert_equals_emulator(duckdb_destination, emu)


# ---- 10. killed mid-run ------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = SAFETY) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _held(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch, path: str, once: Callable[[], bool]
) -> threading.Event:
    """Requests for ``path`` wait, unanswered, once ``once()`` holds, until the returned event
    is set: a sync is still running, at a known point, whenever the test gets round to it."""
    release, handle, pattern = threading.Event(), emu.app.handle, re.compile(path)

    def answer(request: Request) -> Response:
        if pattern.fullmatch(request.path) and once():
            release.wait(SAFETY)
        return handle(request)

    monkeypatch.setattr(emu.app, "handle", answer)
    return release


@pytest.mark.parametrize(
    ("endpoint", "after", "held"),
    [
        # killed while extracting: nothing pending, the next run starts over
        pytest.param(
            ASSETS, 25, r"/rest/hub/v1/campaigns/[^/]+/assets", id="while-reading-campaign-assets"
        ),
        # killed around the lists load (extract, normalize or load, as timing falls), before
        # the journeys are read
        pytest.param(
            LIST_RETRIEVES, 1, r"/rest/interaction/v1/interactions", id="after-lists-were-retrieved"
        ),
    ],
)
def test_a_sync_killed_mid_run_converges_on_the_next_run(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    after: int,
    held: str,
) -> None:
    emu = emulator_factory(
        sizes=Sizes(campaigns=80, assets_per_campaign=2, lists=3000, journeys=10),
        faults=Faults(latency_ms=30),
    )
    release = _held(emu, monkeypatch, held, lambda: emu.app.log.count(endpoint) >= after)
    process = cli.popen(emu, duckdb_destination)
    try:
        _wait_for(lambda: emu.app.log.count(endpoint) >= after, endpoint)
        time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=SAFETY)
        release.set()
    assert process.returncode == -signal.SIGKILL

    emu.app.faults.latency_ms = 0
    mutate_everything(emu)  # and SFMC changed in the meantime
    run = cli.run(emu, duckdb_destination)
    assert run.returncode == 0, run.stderr
    assert_equals_emulator(duckdb_destination, emu)


def test_the_run_after_a_kill_between_normalize_and_load_syncs_every_collection(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    syncs: Syncs,
    client_factory: Callable[..., SfmcClient],
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert_ok(syncs.run(emu, duckdb_destination))
    # What a SIGKILL during the lists load leaves behind: a normalized, unloaded package.
    emu.app.mutate.update("lists", 2005, ListName="changed before the kill")
    pipeline = syncs.pipeline(duckdb_destination)
    pipeline.extract(sfmc_source(client_factory(emu), ["lists"]))
    pipeline.normalize()
    assert pipeline.has_pending_data
    emu.app.mutate.update("campaigns", "1003", name="changed after the kill")
    emu.app.log.clear()

    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    assert_equals_emulator(duckdb_destination, emu)


@pytest.mark.parametrize(
    ("lists", "stall_every", "must_succeed"),
    [
        # Five pages; requests 3, 6, 9... stall: every retrieve, restarted or not, loses a
        # continuation. A client that re-sends a stalled ContinueRequest gets the page after
        # the one it lost and silently skips it.
        pytest.param(10_001, 3, False, id="5-pages-every-3rd-request"),
        # Three pages; request 4 (the last continuation) stalls: a restarted retrieve gets
        # through, every row once.
        pytest.param(5_001, 4, True, id="3-pages-every-4th-request"),
    ],
)
def test_a_stalled_soap_page_is_not_skipped(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    syncs: Syncs,
    client_factory: Callable[..., SfmcClient],
    lists: int,
    stall_every: int,
    must_succeed: bool,
) -> None:
    # A Describe (API request 1), then the Retrieve's pages of 2,500. A stalled request
    # outlives the client's timeout, yet SFMC still answers it, moving its RequestID on.
    emu = emulator_factory(
        sizes=Sizes(campaigns=1, assets_per_campaign=0, lists=lists, journeys=1),
        faults=Faults(stall_every=stall_every, stall_seconds=1.0),
    )
    client = client_factory(emu, timeout=0.5)

    result = syncs.run(emu, duckdb_destination, client=client, collections=["lists"])

    [lists_result] = result.collections
    assert lists_result.ok or not must_succeed, lists_result.error
    assert emu.app.log.count(LIST_RETRIEVES) > math.ceil(lists / 2_500), "nothing stalled"
    if lists_result.ok:  # retried by starting the retrieve over: every row, once
        assert_equals_emulator(duckdb_destination, emu, ["lists"])
        assert lists_result.rows == lists  # the rows read again count once
    else:  # or failed loudly, writing nothing; the next clean run converges
        assert "lists" not in duckdb_destination.tables()
        emu.app.faults.stall_every = 0
        assert_ok(syncs.run(emu, duckdb_destination))
        assert_equals_emulator(duckdb_destination, emu)
    time.sleep(1.0)  # let the emulator answer the stalled requests before it stops


# ---- 11. a fresh machine continues incrementally ------------------------------------------


def test_a_fresh_machine_continues_incrementally_from_the_destination(
    emulator_factory: Callable[..., Emulator], destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    assert_ok(syncs.run(emu, destination, machine="first"))
    changed = mutate_everything(emu)
    emu.app.log.clear()

    result = syncs.run(emu, destination, machine="second")

    assert_ok(result)
    assert changed <= set(asset_campaigns(emu))
    assert counts(emu)[ASSETS] < len(emu.app.unit().campaigns) / 2
    assert {c.name: c.rows for c in result.collections}["lists"] < len(emu.app.unit().lists) / 2
    assert_equals_emulator(destination, emu)


def test_the_command_line_with_a_fresh_home_and_cwd_continues_incrementally(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, cli: Cli
) -> None:
    emu = emulator_factory(sizes=SMALL)
    run = cli.run(emu, duckdb_destination, home="first")
    assert run.returncode == 0, run.stderr
    changed = mutate_everything(emu)
    emu.app.log.clear()

    run = cli.run(emu, duckdb_destination, home="second")

    assert run.returncode == 0, run.stderr
    assert changed <= set(asset_campaigns(emu))
    assert counts(emu)[ASSETS] < len(emu.app.unit().campaigns) / 2
    assert_equals_emulator(duckdb_destination, emu)


# ---- 12. paging edges --------------------------------------------------------------------


@pytest.mark.parametrize(
    "n",
    [pytest.param(0, id="full-pages-50-50-2500-50"), pytest.param(1, id="one-more-51-51-2501-51")],
)
def test_paging_edges_land_every_row_exactly_once(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    syncs: Syncs,
    n: int,
) -> None:
    campaigns, assets, lists, versions = 50 + n, 50 + n, 2_500 + n, 50 + n
    emu = emulator_factory(
        sizes=Sizes(
            campaigns=campaigns,
            assets_per_campaign=0,
            lists=lists,
            journeys=1,
            versions_per_journey=1,
        )
    )
    unit, mutate = emu.app.unit(), emu.app.mutate
    for i in range(assets):
        mutate.add("campaign_assets", campaignId=1000, type="EMAIL", itemID=i)
    journey = next(iter(unit.journeys))
    while len(list(unit.journey_versions())) < versions:
        mutate.add("interactions", id=journey)
    expected = snapshot(emu)
    assert [
        len(expected[t]) for t in ("campaigns", "campaign_assets", "lists", "interactions")
    ] == [
        campaigns,
        assets,
        lists,
        versions,
    ]

    assert_ok(syncs.run(emu, duckdb_destination))

    seen = counts(emu)
    assert seen[CAMPAIGN_PAGES] == math.ceil(campaigns / 50)
    assert seen[ASSETS] == campaigns - 1 + math.ceil(assets / 50)
    assert seen[LIST_RETRIEVES] == math.ceil(lists / 2_500)
    assert seen[JOURNEY_PAGES] == math.ceil(versions / 50)
    assert_warehouse_equals(duckdb_destination, expected)


# ---- 13. what SFMC's docs print: 202 Accepted on a GET --------------------------------------


def test_campaigns_and_assets_answered_202_land_exactly(
    emulator_factory: Callable[..., Emulator], duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL, rest=RestOptions(success_status=202))
    expected = snapshot(emu)

    result = syncs.run(emu, duckdb_destination)

    assert_ok(result)
    seen = counts(emu)
    assert emu.app.log.count(CAMPAIGN_PAGES, 202) == seen[CAMPAIGN_PAGES] > 0
    assert emu.app.log.count(ASSETS, 202) == seen[ASSETS] == len(emu.app.unit().campaigns)
    assert_warehouse_equals(duckdb_destination, expected)


# ---- list properties a tenant refuses -------------------------------------------------------


@pytest.mark.parametrize("describe", ["described", "empty-describe"])
def test_list_properties_the_tenant_refuses_are_null_not_errors(
    emulator_factory: Callable[..., Emulator],
    duckdb_destination: Destination,
    syncs: Syncs,
    describe: str,
) -> None:
    refused = {"Client.PartnerUserKey", "Client.CustomerKey", "Client.UserID"}
    emu = emulator_factory(
        sizes=SMALL, unretrievable={"List": refused}, empty_describe=describe == "empty-describe"
    )
    expected = snapshot(emu, ["lists"])
    for row in expected["lists"]:
        row.update(client_partner_user_key=None, client_customer_key=None, client_user_id=None)
    assert any(r.fields.get("Client.UserID") for r in emu.app.unit().lists.values())

    result = syncs.run(emu, duckdb_destination, collections=["lists"])

    assert outcome(result) == {"lists": None}
    assert_warehouse_equals(duckdb_destination, expected)
    retrieves = emu.app.log.count("SOAP Retrieve List")
    assert retrieves == (1 if describe == "described" else 2)
