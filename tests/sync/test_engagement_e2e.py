"""End to end for engagement data and business units: subscribers, list memberships, sends and
the six tracking events, synced for one or several business units into DuckDB and Postgres and
checked against the emulator's own records, column by column (expected rows computed here,
never through the product's specs).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import pytest
import test_sync_e2e as e2e
from test_sync_e2e import (
    FAST_RETRIES,
    TOKEN,
    USERINFO,
    Destination,
    Syncs,
    as_int,
    dig,
    utc,
)

from sfmc_source.client import Credentials, SfmcClient
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.sync import SyncResult

client_factory = e2e.client_factory
destination_factory = e2e.destination_factory
destination = e2e.destination
duckdb_destination = e2e.duckdb_destination
syncs = e2e.syncs

Factory = Callable[..., Emulator]
SIZES = Sizes(campaigns=2, lists=6, journeys=1, subscribers=120, sends=6, recipients_per_send=50)
# The emulator's history ends in June 2026: read all of it.
ALL_OF_IT = timedelta(days=3650)
ENGAGEMENT = (
    "list_subscribers",
    "subscribers",
    "sends",
    "sent_events",
    "open_events",
    "click_events",
    "bounce_events",
    "unsub_events",
    "not_sent_events",
)
EVENTS = {
    "sent_events": "SentEvent",
    "open_events": "OpenEvent",
    "click_events": "ClickEvent",
    "bounce_events": "BounceEvent",
    "unsub_events": "UnsubEvent",
    "not_sent_events": "NotSentEvent",
}
SUBSCRIBER_FIELDS = {
    "id": "ID",
    "subscriber_key": "SubscriberKey",
    "email_address": "EmailAddress",
    "status": "Status",
    "email_type_preference": "EmailTypePreference",
    "unsubscribed_date": "UnsubscribedDate",
    "created_date": "CreatedDate",
    "partner_key": "PartnerKey",
    "client_id": "Client.ID",
    "client_partner_client_key": "Client.PartnerClientKey",
}
MEMBERSHIP_FIELDS = {
    "list_id": "ListID",
    "subscriber_key": "SubscriberKey",
    "status": "Status",
    "created_date": "CreatedDate",
    "modified_date": "ModifiedDate",
    "object_id": "ObjectID",
    "partner_key": "PartnerKey",
    "client_id": "Client.ID",
}
COUNTERS = (
    "NumberTargeted", "NumberSent", "NumberDelivered", "NumberErrored", "NumberExcluded",
    "HardBounces", "SoftBounces", "OtherBounces", "UniqueOpens", "UniqueClicks", "Unsubscribes",
    "ForwardedEmails", "MissingAddresses", "Duplicates", "InvalidAddresses",
)  # fmt: skip
SEND_FIELDS = {
    "id": "ID",
    "email_id": "EmailID",
    "email_name": "EmailName",
    "subject": "Subject",
    "from_address": "FromAddress",
    "from_name": "FromName",
    "bcc_email": "BccEmail",
    "status": "Status",
    "is_always_on": "IsAlwaysOn",
    "is_multipart": "IsMultipart",
    "send_date": "SendDate",
    "sent_date": "SentDate",
    "preview_url": "PreviewURL",
    "created_date": "CreatedDate",
    "modified_date": "ModifiedDate",
    "partner_key": "PartnerKey",
    "client_id": "Client.ID",
    **{"".join("_" + c.lower() if c.isupper() else c for c in n).lstrip("_"): n for n in COUNTERS},
}
EVENT_FIELDS = {
    "send_id": "SendID",
    "subscriber_key": "SubscriberKey",
    "event_date": "EventDate",
    "event_type": "EventType",
    "batch_id": "BatchID",
    "triggered_send_definition_object_id": "TriggeredSendDefinitionObjectID",
    "partner_key": "PartnerKey",
    "client_id": "Client.ID",
}
EVENT_EXTRAS = {
    "sent_events": {"list_id": "ListID", "subscriber_id": "SubscriberID"},
    "click_events": {"url": "URL", "url_id": "URLID", "url_id_long": "URLIDLong"},
    "bounce_events": {
        "bounce_category": "BounceCategory",
        "bounce_type": "BounceType",
        "smtp_code": "SMTPCode",
        "smtp_reason": "SMTPReason",
    },
    "unsub_events": {"is_master_unsubscribed": "IsMasterUnsubscribed"},
}
TIMESTAMPS = {"created_date", "modified_date", "unsubscribed_date", "send_date", "sent_date"}
INTEGERS = {"id", "list_id", "client_id", "email_id", "send_id", "batch_id", "subscriber_id"}
INTEGERS |= {"url_id", "url_id_long", *(c for c in SEND_FIELDS if SEND_FIELDS[c] in COUNTERS)}


def _value(column: str, value: Any) -> Any:
    if column in TIMESTAMPS or column == "event_date":
        return utc(value)
    if column in INTEGERS:
        return as_int(value)
    return value


def _rows(records: list[dict[str, Any]], fields: dict[str, str]) -> list[dict[str, Any]]:
    return [{c: _value(c, dig(r, s)) for c, s in fields.items()} for r in records]


def event_records(emu: Emulator, name: str, mid: int | None = None) -> list[dict[str, Any]]:
    return [dict(fields) for fields in emu.app.unit(mid).events[EVENTS[name]].records()]


def fields_of(table: str) -> dict[str, str]:
    if table == "subscribers":
        return SUBSCRIBER_FIELDS
    if table == "list_subscribers":
        return MEMBERSHIP_FIELDS
    if table == "sends":
        return SEND_FIELDS
    return {**EVENT_FIELDS, **EVENT_EXTRAS.get(table, {})}


def expected(emu: Emulator, table: str, mid: int | None = None) -> list[dict[str, Any]]:
    unit = emu.app.unit(mid)
    records: list[dict[str, Any]]
    if table == "subscribers":
        records = [r.fields for r in unit.subscribers.values()]
    elif table == "list_subscribers":
        records = [r.fields for r in unit.list_subscribers]
    elif table == "sends":
        records = [r.fields for r in unit.sends.values()]
    else:
        records = event_records(emu, table, mid)
    return _rows(records, fields_of(table))


def natural_key(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """How the test tells rows apart (not the product's event_key)."""
    if table == "subscribers":
        return (row["id"],)
    if table == "sends":
        return (row["id"],)
    if table == "list_subscribers":
        return (row["list_id"], row["subscriber_key"])
    return (
        row["send_id"],
        row["event_type"],
        row["subscriber_key"] or "",
        row["event_date"],
        row["batch_id"],
        row.get("url") or "",
    )


def warehouse(dest: Destination, table: str, mid: int | None = None) -> list[dict[str, Any]]:
    columns = list(fields_of(table))
    where = "" if mid is None else f" WHERE business_unit_id = {int(mid)}"
    selected = ", ".join(f'"{c}"' for c in columns)
    found = dest.query(f"SELECT {selected} FROM {{schema}}.{table}{where}")
    return [dict(zip(columns, r, strict=True)) for r in found]


def diff(dest: Destination, emu: Emulator, table: str, mid: int | None = None) -> list[str]:
    actual = warehouse(dest, table, mid)
    want = expected(emu, table, mid)
    have = {natural_key(table, r): r for r in actual}
    wanted = {natural_key(table, r): r for r in want}
    problems = []
    if len(have) != len(actual):
        problems.append(f"{table}: {len(actual) - len(have)} duplicate rows")
    problems += [f"{table}: missing {k}" for k in sorted(wanted.keys() - have.keys(), key=str)]
    problems += [f"{table}: extra {k}" for k in sorted(have.keys() - wanted.keys(), key=str)]
    for k in wanted.keys() & have.keys():
        for column in wanted[k]:
            if wanted[k][column] != have[k][column]:
                problems.append(
                    f"{table} {k} {column}: {wanted[k][column]!r} ≠ {have[k][column]!r}"
                )
    return problems


def assert_equals_emulator(
    dest: Destination, emu: Emulator, tables: tuple[str, ...] = ENGAGEMENT, mid: int | None = None
) -> None:
    problems = [p for table in tables for p in diff(dest, emu, table, mid)]
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])


def no_duplicate_keys(dest: Destination, table: str) -> None:
    keys = {
        "subscribers": "business_unit_id, id",
        "sends": "business_unit_id, id",
        "list_subscribers": "business_unit_id, list_id, subscriber_key",
    }.get(table, "business_unit_id, event_key")
    found = dest.query(
        f"SELECT {keys}, count(*) FROM {{schema}}.{table} GROUP BY {keys} HAVING count(*) > 1"
    )
    assert found == [], table


def sync(
    syncs: Syncs, emu: Emulator, dest: Destination, **options: Any
) -> tuple[SyncResult, dict[str, int]]:
    emu.app.log.clear()
    options.setdefault("collections", ENGAGEMENT)
    options.setdefault("backfill", ALL_OF_IT)
    result = syncs.run(emu, dest, **options)
    assert result.fatal is None, result.fatal
    return result, emu.app.log.by_endpoint()


def assert_ok(result: SyncResult) -> None:
    errors = {c.name: c.error for c in result.collections if c.error}
    assert not errors, errors
    assert result.exit_code == 0


def rows_of(result: SyncResult) -> dict[str, int]:
    return {c.name: c.rows for c in result.collections}


# ---- a full sync -------------------------------------------------------------------------


def test_engagement_data_equals_the_emulator_column_by_column(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    unit = emu.app.unit()
    keyless = [r for r in event_records(emu, "open_events") if r.get("SubscriberKey") is None]
    keyless += [r for r in event_records(emu, "sent_events") if r.get("SubscriberKey") is None]

    result, _ = sync(syncs, emu, destination)

    assert_ok(result)
    assert_equals_emulator(destination, emu)
    for table in ENGAGEMENT:
        no_duplicate_keys(destination, table)
    assert rows_of(result)["subscribers"] == len(unit.subscribers)
    assert rows_of(result)["sent_events"] == len(event_records(emu, "sent_events"))
    assert keyless, "the emulator's data should hold events without a SubscriberKey"
    nulls = destination.query(
        "SELECT count(*) FROM {schema}.sent_events WHERE subscriber_key IS NULL"
    )
    assert nulls[0][0] == sum(
        r.get("SubscriberKey") is None for r in event_records(emu, "sent_events")
    )


def test_a_run_with_nothing_new_reads_one_window_per_event_object(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    assert_ok(sync(syncs, emu, duckdb_destination)[0])

    result, counts = sync(syncs, emu, duckdb_destination)

    assert_ok(result)
    # memberships once, and the subscribers of the overlap's memberships (the newest one at
    # least) in one request; sends once (no recent sends: the emulator's history ended in
    # June); each event object from its newest event less the overlap: one window, or two
    # where that is further back than the widest window
    windows = {
        k: v for k, v in counts.items() if k.removeprefix("SOAP Retrieve ") in EVENTS.values()
    }
    assert counts == {
        TOKEN: 1,
        USERINFO: 1,
        "SOAP Retrieve ListSubscriber": 1,
        "SOAP Retrieve Subscriber": 1,
        "SOAP Retrieve Send": 1,
        **windows,
    }
    assert len(windows) == 6 and set(windows.values()) <= {1, 2}
    assert 1 <= rows_of(result)["subscribers"] <= rows_of(result)["list_subscribers"] <= 100
    assert_equals_emulator(duckdb_destination, emu)


def test_the_first_sync_reads_back_as_far_as_the_backfill_says(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    newest = max(r["EventDate"] for r in event_records(emu, "sent_events"))
    days = (datetime.now(UTC) - newest).days + 200  # the last 200 days of the history
    before = datetime.now(UTC) - timedelta(days=days)

    result, counts = sync(
        syncs, emu, duckdb_destination, collections=("sent_events",), backfill=timedelta(days=days)
    )

    after = datetime.now(UTC) - timedelta(days=days)
    assert_ok(result)
    dates = [r[0] for r in duckdb_destination.query("SELECT event_date FROM {schema}.sent_events")]
    every = [utc(r["EventDate"]) for r in event_records(emu, "sent_events")]
    assert all(d > before for d in dates)
    assert len(dates) >= sum(d > after for d in every if d is not None)
    assert 0 < len(dates) < len(every)
    # a window per request the client may have in flight (five), none under 30 days wide
    assert counts["SOAP Retrieve SentEvent"] <= 6


# ---- incremental runs ----------------------------------------------------------------------


def test_late_events_new_sends_and_changed_memberships_land_without_duplicates(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    unit, mutate = emu.app.unit(), emu.app.mutate
    assert_ok(sync(syncs, emu, destination)[0])
    newest = max(r["EventDate"] for r in event_records(emu, "open_events"))
    send_id = list(unit.sends)[1]
    # a subscriber none of whose memberships the next run's overlap reads again
    latest = max(m.fields["ModifiedDate"] for m in unit.list_subscribers)
    overlap = {
        m.fields["SubscriberKey"]
        for m in unit.list_subscribers
        if m.fields["ModifiedDate"] >= latest - timedelta(hours=2)
    }
    key = next(k for k in unit.subscribers if k not in overlap)
    member = next(
        m.fields for m in unit.list_subscribers if m.fields["SubscriberKey"] not in {key, *overlap}
    )

    # a late open, dated an hour before the newest one: within the overlap
    mutate.add(
        "OpenEvent",
        EventType="Open",
        SendID=send_id,
        SubscriberKey=key,
        EventDate=newest - timedelta(hours=1),
    )
    # its send, made again three hours ago: a recent send from now on; and another send
    # changed now, so the next cursor's overlap leaves the first one out
    earlier = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    mutate.update("sends", send_id, touch=False, SendDate=earlier, ModifiedDate=earlier)
    mutate.update("sends", list(unit.sends)[2], EmailName="Renamed")
    # a subscriber whose membership changed, and one whose profile changed alone
    mutate.update("subscribers", key, touch=False, EmailAddress="new@example.com")
    mutate.update("list_subscribers", (member["ListID"], member["SubscriberKey"]), Status="Held")
    mutate.update("subscribers", member["SubscriberKey"], touch=False, Status="Held")

    result, counts = sync(syncs, emu, destination)

    assert_ok(result)
    assert counts["SOAP Retrieve Subscriber"] == 1  # the changed membership's, and the overlap's
    statuses = dict(destination.query("SELECT subscriber_key, status FROM {schema}.subscribers"))
    emails = dict(
        destination.query("SELECT subscriber_key, email_address FROM {schema}.subscribers")
    )
    assert statuses[member["SubscriberKey"]] == "Held"
    assert emails[key] != "new@example.com"  # no membership of it changed: not read (by design)
    expected_now = {t: expected(emu, t) for t in ENGAGEMENT if t != "subscribers"}
    problems = [p for t in expected_now for p in diff(destination, emu, t)]
    assert not problems, problems[:10]
    for table in ENGAGEMENT:
        no_duplicate_keys(destination, table)
    # a click moves the recent send's counters but not its ModifiedDate: read again all the same
    mutate.add(
        "ClickEvent",
        EventType="Click",
        SendID=send_id,
        SubscriberKey=key,
        URL="https://example.com/x",
    )
    result, counts = sync(syncs, emu, destination)
    assert_ok(result)
    assert counts["SOAP Retrieve Send"] == 2  # ModifiedDate since the cursor, then the recent one
    assert not diff(destination, emu, "sends")
    assert not diff(destination, emu, "click_events")


def test_a_new_event_on_an_old_send_has_its_counters_read_again_in_the_same_run(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    collections = ("sends", "open_events")
    assert_ok(sync(syncs, emu, duckdb_destination, collections=collections)[0])
    old_send = next(iter(emu.app.unit().sends))  # sent in 2024: not a recent send
    key = next(iter(emu.app.unit().subscribers))
    emu.app.mutate.add("OpenEvent", EventType="Open", SendID=old_send, SubscriberKey=key)

    # sends declare that they read what the event collections learned, so they load after
    # them: this run learns that the old send has a new open, and reads it again by id,
    # though its ModifiedDate did not move
    result, counts = sync(syncs, emu, duckdb_destination, collections=collections)
    assert_ok(result)
    assert counts["SOAP Retrieve Send"] == 2
    assert not diff(duckdb_destination, emu, "sends")
    # and once read, it is not read again
    _, counts = sync(syncs, emu, duckdb_destination, collections=collections)
    assert counts["SOAP Retrieve Send"] == 1


def test_an_event_later_than_the_overlap_needs_a_full_refresh(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    assert_ok(sync(syncs, emu, duckdb_destination, collections=("open_events",))[0])
    newest = max(r["EventDate"] for r in event_records(emu, "open_events"))
    send_id = next(iter(emu.app.unit().sends))
    emu.app.mutate.add(
        "OpenEvent", EventType="Open", SendID=send_id, EventDate=newest - timedelta(days=2)
    )

    assert_ok(sync(syncs, emu, duckdb_destination, collections=("open_events",))[0])
    assert len(diff(duckdb_destination, emu, "open_events")) == 1  # missing: 2 days late

    result, _ = sync(
        syncs, emu, duckdb_destination, collections=("open_events",), full_refresh=True
    )
    assert_ok(result)
    assert not diff(duckdb_destination, emu, "open_events")
    no_duplicate_keys(duckdb_destination, "open_events")


def test_a_failed_event_run_keeps_its_cursor_and_the_next_converges(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    assert_ok(sync(syncs, emu, duckdb_destination, collections=("click_events",))[0])
    send_id, key = next(iter(emu.app.unit().sends)), next(iter(emu.app.unit().subscribers))
    emu.app.mutate.add(
        "ClickEvent", EventType="Click", SendID=send_id, SubscriberKey=key, URL="https://x.example"
    )
    emu.app.config.faults.malformed = {"ClickEvent": 1}

    result, _ = sync(syncs, emu, duckdb_destination, collections=("click_events",))

    assert result.exit_code == 1
    emu.app.config.faults.malformed = {}
    assert len(diff(duckdb_destination, emu, "click_events")) == 1
    assert_ok(sync(syncs, emu, duckdb_destination, collections=("click_events",))[0])
    assert not diff(duckdb_destination, emu, "click_events")


# ---- business units ----------------------------------------------------------------------


def unit_client(emu: Emulator, mid: int) -> SfmcClient:
    credentials = Credentials(emu.config.client_id, emu.config.client_secret, emu.auth_url, mid)
    return SfmcClient(credentials, retry=FAST_RETRIES, timeout=5)


def test_several_business_units_load_side_by_side(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES, business_units=2)
    first, second = emu.config.mids
    with unit_client(emu, first) as one, unit_client(emu, second) as two:
        result, counts = sync(syncs, emu, destination, client=[one, two], collections=None)
        assert_ok(result)
        assert counts[TOKEN] == 2 and USERINFO not in counts  # the MIDs were given
        assert {c.name for c in result.collections} >= {f"campaigns@{first}", f"lists@{second}"}
        for mid in (first, second):
            assert_equals_emulator(destination, emu, mid=mid)
        # the same campaign ids exist in both units: each unit keeps its own rows
        ids = destination.query(
            "SELECT id, count(DISTINCT business_unit_id) FROM {schema}.campaigns GROUP BY id"
        )
        assert ids and all(n == 2 for _, n in ids)

        # a change in one unit reaches only that unit's rows
        campaign_id = next(iter(emu.app.unit(second).campaigns))
        emu.app.mutate.update("campaigns", campaign_id, mid=second, name="Second only")
        result, _ = sync(syncs, emu, destination, client=[one, two], collections=("campaigns",))
        assert_ok(result)
        names = destination.query(
            "SELECT business_unit_id, name FROM {schema}.campaigns WHERE id = %s", (campaign_id,)
        )
        assert dict(names)[second] == "Second only" and dict(names)[first] != "Second only"


def test_a_business_unit_the_package_cannot_reach_fails_only_its_collections(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES)
    reachable = emu.config.mids[0]
    with unit_client(emu, reachable) as one, unit_client(emu, 999_999_999) as other:
        result, _ = sync(
            syncs, emu, duckdb_destination, client=[one, other], collections=("lists", "sends")
        )
    errors = {c.name: c.error for c in result.collections}
    assert errors[f"lists@{reachable}"] is None and errors[f"sends@{reachable}"] is None
    assert "999999999" in (errors["lists@999999999"] or "")
    assert "invalid_grant" in (errors["sends@999999999"] or "")
    assert result.exit_code == 1
    assert_equals_emulator(duckdb_destination, emu, ("sends",), mid=reachable)


def test_tables_from_before_business_units_are_adopted_by_the_unit_synced(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SIZES, business_units=2)
    first, second = emu.config.mids
    legacy = dlt.pipeline(
        "legacy", pipelines_dir=str(syncs.tmp_path / "legacy"), destination="duckdb"
    )
    campaign_id = next(iter(emu.app.unit().campaigns))
    legacy_row = {"id": campaign_id, "name": "as an earlier version loaded it"}
    legacy.run(
        [legacy_row],
        table_name="campaigns",
        primary_key="id",
        write_disposition="merge",
        dataset_name=duckdb_destination.schema,
        destination=dlt.destinations.duckdb(str(duckdb_destination.path)),
    )
    with unit_client(emu, first) as one, unit_client(emu, second) as two:
        refused = syncs.run(emu, duckdb_destination, client=[one, two], collections=("campaigns",))
        assert refused.exit_code == 2 and "--account-ids" in str(refused.fatal)

        result = syncs.run(emu, duckdb_destination, client=one, collections=("campaigns",))
    assert_ok(result)
    rows = duckdb_destination.query(
        "SELECT business_unit_id, name FROM {schema}.campaigns WHERE id = %s", (campaign_id,)
    )
    assert rows == [(first, emu.app.unit(first).campaigns[campaign_id].fields["name"])]
    assert duckdb_destination.query(
        "SELECT count(*) FROM {schema}.campaigns WHERE business_unit_id IS NULL"
    ) == [(0,)]


@pytest.mark.parametrize("option", ["--account-ids", "SFMC_ACCOUNT_IDS"])
def test_account_ids_on_the_command_line(
    emulator_factory: Factory, duckdb_destination: Destination, cli: e2e.Cli, option: str
) -> None:
    emu = emulator_factory(sizes=SIZES, business_units=2)
    mids = ",".join(str(m) for m in emu.config.mids)
    args = ["--collections", "lists,sends", "--backfill-days", "3650"]
    env = {}
    if option.startswith("--"):
        args += [option, mids]
    else:
        env[option] = mids
    run = cli.run(emu, duckdb_destination, *args, **env)
    assert run.returncode == 0, run.stderr
    for mid in emu.config.mids:
        assert f"lists@{mid}" in run.stdout
        assert_equals_emulator(duckdb_destination, emu, ("sends",), mid=mid)
    status = subprocess.run(
        [e2e.CLI, "status", "--schema", duckdb_destination.schema],
        env=cli.env(emu, duckdb_destination, "fresh"),
        cwd=cli.cwd("fresh"),
        capture_output=True,
        text=True,
        timeout=e2e.SAFETY,
    )
    assert status.returncode == 0, status.stderr
    for mid in emu.config.mids:
        assert f"sends@{mid}" in status.stdout and f"lists@{mid}" in status.stdout
    bad = cli.run(emu, duckdb_destination, "--account-ids", "12,abc")
    assert bad.returncode == 2 and "--account-ids" in bad.stderr.strip().splitlines()[-1]


cli = e2e.cli


def test_properties_a_tenant_refuses_stay_null_and_are_not_asked_for_again(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    refused = {"SentEvent": {"BatchID"}, "Subscriber": {"EmailTypePreference"}}
    emu = emulator_factory(sizes=SIZES, unretrievable=refused)
    collections = ("sent_events", "list_subscribers", "subscribers")

    result, first = sync(syncs, emu, duckdb_destination, collections=collections)

    assert_ok(result)
    assert duckdb_destination.query(
        "SELECT count(*) FROM {schema}.sent_events WHERE batch_id IS NOT NULL"
    ) == [(0,)]
    assert duckdb_destination.query(
        "SELECT count(*) FROM {schema}.subscribers WHERE email_type_preference IS NOT NULL"
    ) == [(0,)]
    assert first["SOAP Retrieve Subscriber"] == 2  # refused once, then without it
    rows = len(event_records(emu, "sent_events"))
    assert rows_of(result)["sent_events"] == rows
    # the next run asks without them straight away: one Retrieve each
    _, second = sync(syncs, emu, duckdb_destination, collections=collections)
    assert second["SOAP Retrieve SentEvent"] == 1
    assert second["SOAP Retrieve Subscriber"] == 1
