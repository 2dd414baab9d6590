"""End to end: classic emails and triggered send definitions, synced into DuckDB and Postgres
against the emulator and compared with its records column by column (README.md#tables).

Expectations are computed here from the emulator's records, never through the specs.
``emails`` follow a ModifiedDate cursor, their bodies only when asked for;
``triggered_sends`` are listed in full every run and replace the unit's rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import test_sync_e2e as e2e
from test_sync_e2e import TOKEN, USERINFO, Cli, Destination, Syncs, as_int, counts, utc

from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.sync import SyncResult

# The e2e module's fixtures, used here by name.
client_factory = e2e.client_factory
destination_factory = e2e.destination_factory
destination = e2e.destination
duckdb_destination = e2e.duckdb_destination
syncs = e2e.syncs
cli = e2e.cli

EMAIL_RETRIEVES = "SOAP Retrieve Email"
TSD_RETRIEVES = "SOAP Retrieve TriggeredSendDefinition"
NAMES = ("emails", "triggered_sends")
SIZES = Sizes(campaigns=0, lists=30, journeys=0, subscribers=0, sends=0, emails=40)
MID = 512_345_678

Factory = Callable[..., Emulator]


def _text(value: Any) -> Any:
    return value


# column → (emulator field, how the warehouse holds it)
EMAIL_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "id": ("ID", as_int),
    "customer_key": ("CustomerKey", _text),
    "name": ("Name", _text),
    "subject": ("Subject", _text),
    "category_id": ("CategoryID", as_int),
    "email_type": ("EmailType", _text),
    "is_html_paste": ("IsHTMLPaste", _text),
    "character_set": ("CharacterSet", _text),
    "status": ("Status", _text),
    "content_check_status": ("ContentCheckStatus", _text),
    "has_dynamic_subject_line": ("HasDynamicSubjectLine", _text),
    "created_date": ("CreatedDate", utc),
    "modified_date": ("ModifiedDate", utc),
}
BODY_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "html_body": ("HTMLBody", _text),
    "text_body": ("TextBody", _text),
}
TSD_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "object_id": ("ObjectID", _text),
    "customer_key": ("CustomerKey", _text),
    "name": ("Name", _text),
    "description": ("Description", _text),
    "status": ("TriggeredSendStatus", _text),
    "email_id": ("Email.ID", as_int),
    "list_id": ("List.ID", as_int),
    "send_classification_key": ("SendClassification.CustomerKey", _text),
    "priority": ("Priority", _text),
    "created_date": ("CreatedDate", utc),
    "modified_date": ("ModifiedDate", utc),
}


def expected(
    rows: Any, fields: dict[str, tuple[str, Callable[[Any], Any]]], key: str
) -> dict[Any, dict[str, Any]]:
    """The warehouse rows the emulator's records make, by key; every one in business unit MID."""
    found = {}
    for row in rows:
        shaped = {column: convert(row.fields.get(src)) for column, (src, convert) in fields.items()}
        found[(MID, shaped[key])] = {**shaped, "business_unit_id": MID}
    return found


def expected_emails(emu: Emulator, bodies: bool = False) -> dict[Any, dict[str, Any]]:
    fields = {**EMAIL_FIELDS, **(BODY_FIELDS if bodies else {})}
    return expected(emu.app.unit().emails.values(), fields, "id")


def expected_triggered_sends(emu: Emulator) -> dict[Any, dict[str, Any]]:
    return expected(emu.app.unit().triggered_sends.values(), TSD_FIELDS, "object_id")


def landed(dest: Destination, table: str, key: str) -> dict[Any, dict[str, Any]]:
    columns = [c for c in table_columns(dest, table) if not c.startswith("_dlt")]
    selected = ", ".join(f'"{c}"' for c in columns)
    rows = [
        dict(zip(columns, r, strict=True))
        for r in dest.query(f"SELECT {selected} FROM {{schema}}.{table}")
    ]
    found = {(r["business_unit_id"], r[key]): r for r in rows}
    assert len(found) == len(rows), f"{table}: duplicate keys"
    return found


def table_columns(dest: Destination, table: str) -> list[str]:
    rows = dest.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (dest.schema, table),
    )
    return sorted(r[0] for r in rows)


def assert_lands(actual: dict[Any, dict[str, Any]], wanted: dict[Any, dict[str, Any]]) -> None:
    """The same keys, and in each row the same value of every column, type included."""
    assert sorted(actual) == sorted(wanted)
    problems = [
        f"{key} {column}: expected {value!r}, got {actual[key][column]!r}"
        for key, row in wanted.items()
        for column, value in row.items()
        if not e2e._same(value, actual[key][column])
    ]
    assert not problems, "\n".join(problems[:20])
    extra = {c for row in actual.values() for c in row} - {
        c for row in wanted.values() for c in row
    }
    assert not extra, f"columns beyond the declared ones: {extra}"


def run(syncs: Syncs, emu: Emulator, dest: Destination, **options: Any) -> SyncResult:
    options.setdefault("collections", list(NAMES))
    result = syncs.run(emu, dest, **options)
    assert result.exit_code == 0, [(c.name, c.error) for c in result.collections]
    return result


def rows_of(result: SyncResult) -> dict[str, int]:
    return {c.name: c.rows for c in result.collections}


def test_emails_and_triggered_sends_equal_the_emulator_column_by_column(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    unit = emu.app.unit()
    # the shapes the facts leave open are all there (docs/sfmc-api.md#email)
    assert {r.fields["EmailType"] for r in unit.emails.values()} >= {"Normal", "Text Only"}
    assert any(r.fields["TextBody"] == "" for r in unit.emails.values())
    assert any(r.fields["Email.ID"] not in unit.emails for r in unit.triggered_sends.values())
    assert any(r.fields["List.ID"] is None for r in unit.triggered_sends.values())

    result = run(syncs, emu, destination)

    # one Retrieve each, no Describe
    assert counts(emu) == {TOKEN: 1, USERINFO: 1, EMAIL_RETRIEVES: 1, TSD_RETRIEVES: 1}
    assert rows_of(result) == {"emails": 40, "triggered_sends": len(unit.triggered_sends)}
    assert_lands(landed(destination, "emails", "id"), expected_emails(emu))
    assert_lands(landed(destination, "triggered_sends", "object_id"), expected_triggered_sends(emu))
    # bodies are off by default: not read, no columns
    assert "html_body" not in table_columns(destination, "emails")
    assert "text_body" not in table_columns(destination, "emails")


def change_emails(emu: Emulator) -> set[int]:
    """Two emails edited and one added: the ids a second sync must read."""
    mutate, unit = emu.app.mutate, emu.app.unit()
    edited = sorted(unit.emails)[:2]
    mutate.update("emails", edited[0], Subject="changed ✉", IsHTMLPaste=True)
    mutate.update("emails", edited[1], Name="renamed", CategoryID=None)
    added = mutate.add("emails", Name="new email", Subject="hello", EmailType="Normal")
    return {*edited, added}


def change_triggered_sends(emu: Emulator) -> tuple[str, str]:
    """One definition edited, one added, one deleted (a tombstone), one purged outright."""
    mutate, unit = emu.app.mutate, emu.app.unit()
    first, tombstone, purged = sorted(unit.triggered_sends)[:3]
    mutate.update("triggered_sends", first, Name="renamed", TriggeredSendStatus="Inactive")
    mutate.add("triggered_sends", Name="new", TriggeredSendStatus="New", Priority="3")
    mutate.delete("triggered_sends", tombstone)
    mutate.delete("triggered_sends", purged, purge=True)
    return tombstone, purged


def test_a_second_sync_reads_only_the_changed_emails_and_converges(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    unit = emu.app.unit()
    run(syncs, emu, destination)
    cursor = max(r.fields["ModifiedDate"] for r in unit.emails.values())
    # the cursor's overlap re-reads an hour behind the newest email loaded
    overlap = {
        i for i, r in unit.emails.items() if r.fields["ModifiedDate"] >= cursor - timedelta(hours=1)
    }
    changed = change_emails(emu)
    tombstone, purged = change_triggered_sends(emu)
    emu.app.log.clear()

    second = run(syncs, emu, destination)

    assert counts(emu) == {TOKEN: 1, USERINFO: 1, EMAIL_RETRIEVES: 1, TSD_RETRIEVES: 1}
    assert rows_of(second) == {
        "emails": len(changed | overlap),
        "triggered_sends": len(unit.triggered_sends),
    }
    assert_lands(landed(destination, "emails", "id"), expected_emails(emu))
    sends = landed(destination, "triggered_sends", "object_id")
    assert_lands(sends, expected_triggered_sends(emu))
    assert sends[(MID, tombstone)]["status"] == "Deleted"
    assert (MID, purged) not in sends

    # nothing new: one Retrieve each, no email read but the overlap
    emu.app.log.clear()
    third = run(syncs, emu, destination)
    assert counts(emu) == {TOKEN: 1, USERINFO: 1, EMAIL_RETRIEVES: 1, TSD_RETRIEVES: 1}
    assert rows_of(third)["emails"] == len(changed)  # the run before's, all within the hour


BODY_SIZES = Sizes(campaigns=0, lists=2, journeys=0, subscribers=0, sends=0, emails=2_600)


def test_email_bodies_arrive_page_by_page_when_asked_for(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=BODY_SIZES)
    unit = emu.app.unit()
    run(syncs, emu, destination, collections=["emails"])
    assert "html_body" not in table_columns(destination, "emails")
    emu.app.log.clear()

    # turned on later: a full refresh fills every email's body
    result = run(
        syncs, emu, destination, collections=["emails"], email_bodies=True, full_refresh=True
    )

    # 2,600 emails are two pages of one Retrieve
    assert counts(emu) == {TOKEN: 1, USERINFO: 1, EMAIL_RETRIEVES: math.ceil(2_600 / 2_500)}
    assert rows_of(result) == {"emails": len(unit.emails)}
    emails = landed(destination, "emails", "id")
    assert_lands(emails, expected_emails(emu, bodies=True))
    longest = max(len(r["html_body"] or "") for r in emails.values())
    assert longest > 40_000, "some body is a whole document"


@pytest.mark.parametrize("how", ["flag", "environment", "toml"])
def test_the_command_line_reads_bodies_with_email_bodies(
    emulator_factory: Factory, duckdb_destination: Destination, cli: Cli, how: str
) -> None:
    emu = emulator_factory(sizes=SIZES)
    config = cli.tmp_path / "sfmc.toml"
    config.write_text("email_bodies = true\n")
    args, env = {
        "flag": (["--email-bodies"], {}),
        "environment": ([], {"SFMC_EMAIL_BODIES": "1"}),
        "toml": (["--config", str(config)], {}),
    }[how]

    done = cli.run(emu, duckdb_destination, "--collections", "emails", *args, **env)

    assert done.returncode == 0, done.stderr
    assert_lands(landed(duckdb_destination, "emails", "id"), expected_emails(emu, bodies=True))
