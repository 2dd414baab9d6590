"""The spec rows are the declaration: resources, load groups and the prose of ``collections``
all come from them, and a row nothing can read fails loudly."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sfmc_source.client import Credentials, SfmcClient
from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.reader import Reader
from sfmc_source.source import UnitRun, resources_of
from sfmc_source.specs import (
    CAMPAIGNS,
    COLLECTIONS,
    ChangedParents,
    Listed,
    Rest,
    load_groups,
)
from sfmc_source.state import RunStates
from sfmc_source.sync import pipeline_for, run_sync
from sfmc_source.tally import Tally
from sfmc_source.timefmt import SYSTEM_TIME

TINY = Sizes(campaigns=3, lists=4, journeys=2, subscribers=20, sends=2, recipients_per_send=5)


def test_every_collection_is_in_exactly_one_load_group_after_its_parent() -> None:
    groups = load_groups()
    names = [name for group in groups for name in group]
    assert sorted(names) == sorted(COLLECTIONS)
    for group in groups:
        root = COLLECTIONS[group[0]]
        assert root.parent is None
        assert all(COLLECTIONS[name].parent in group for name in group[1:])


def test_a_group_loads_after_the_groups_whose_state_it_reads() -> None:
    order = {name: i for i, group in enumerate(load_groups()) for name in group}
    for spec in COLLECTIONS.values():
        for dependency in spec.depends_on:
            assert order[dependency] < order[spec.name], (spec.name, dependency)


def test_what_collections_says_is_derived_from_the_row() -> None:
    assert CAMPAIGNS.api == "REST GET /hub/v1/campaigns"
    assert CAMPAIGNS.strategy == "page by modifiedDate DESC, stop past the cursor"
    assert COLLECTIONS["lists"].strategy == "ModifiedDate filter from the cursor"
    assert COLLECTIONS["goals"].api == "the goals and exits of each interaction version"
    assert COLLECTIONS["sends"].strategy.startswith(
        "ModifiedDate filter from the cursor, plus a re-read by ID of those of the last 30 days"
    )
    assert COLLECTIONS["open_events"].strategy.startswith("half-open EventDate windows")
    assert COLLECTIONS["emails"].strategy == "ModifiedDate filter from the cursor"
    assert COLLECTIONS["triggered_sends"].api == "SOAP Retrieve TriggeredSendDefinition"
    assert COLLECTIONS["triggered_sends"].strategy.startswith("listed in full every run: ")
    assert COLLECTIONS["triggered_sends"].strategy.endswith("; each run replaces the unit's")
    moved = replace(COLLECTIONS["lists"], incremental=Listed("a reason"))
    assert moved.strategy == "listed in full every run: a reason"


def test_an_optional_column_is_read_only_with_its_option() -> None:
    emails = COLLECTIONS["emails"]
    bodies = {"html_body", "text_body"}
    assert bodies <= {c.name for c in emails.columns}
    assert not bodies & {c.name for c in emails.with_options(frozenset()).columns}
    assert emails.with_options({"email_bodies"}) == emails
    assert COLLECTIONS["lists"].with_options(frozenset()) is COLLECTIONS["lists"]


def unit_run(emulator: Emulator) -> UnitRun:
    creds = Credentials(emulator.config.client_id, emulator.config.client_secret, emulator.auth_url)
    reader = Reader(SfmcClient(creds), 512345678, SYSTEM_TIME, False)
    now = datetime.now(UTC)
    return UnitRun(reader, Tally(Counter()), RunStates({}, 512345678), False, now, now)


def test_a_row_whose_strategy_nothing_reads_fails_when_the_source_is_made(
    emulator_factory: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = emulator_factory(sizes=TINY)
    odd = replace(
        COLLECTIONS["lists"], name="odd", incremental=ChangedParents((("list_id", "id"),))
    )
    monkeypatch.setitem(COLLECTIONS, "odd", odd)
    with pytest.raises(NotImplementedError, match="odd: no reader for ChangedParents"):
        resources_of(unit_run(emulator))


def test_a_full_sync_loads_every_collection_declared(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    emulator = emulator_factory(sizes=Sizes())
    creds = Credentials(emulator.config.client_id, emulator.config.client_secret, emulator.auth_url)
    pipeline = pipeline_for(f"duckdb:///{tmp_path}/w.duckdb", "sfmc", str(tmp_path / "dlt"))
    with SfmcClient(creds) as client:
        result = run_sync(client, pipeline, backfill=timedelta(days=3650))  # all the history
    assert result.exit_code == 0, [c.error for c in result.collections]
    assert sorted(c.collection for c in result.collections) == sorted(COLLECTIONS)
    with pipeline.sql_client() as sql:
        for name in COLLECTIONS:
            table = sql.make_qualified_table_name(name)
            assert sql.execute_sql(f"SELECT count(*) FROM {table}")[0][0] > 0, name


def test_rows_read_per_parent_name_only_what_the_parent_has() -> None:
    """A ``ChangedParents`` row replaces by the columns that hold its parent's key, and its
    path and params name only its parent's columns."""
    for spec in COLLECTIONS.values():
        how = spec.incremental
        if not isinstance(how, ChangedParents):
            continue
        assert spec.parent is not None and isinstance(spec.source, Rest)
        parent = {c.name for c in COLLECTIONS[spec.parent].columns}
        assert spec.replaced_by == tuple(child for child, _ in how.parent_key)
        assert {column for _, column in how.parent_key} | {how.stamp} <= parent
        named = re.findall(r"{(\w+)}", spec.source.path + str(spec.source.params))
        assert named and set(named) <= parent, spec.name


def test_collections_says_which_columns_an_option_brings() -> None:
    from click.testing import CliRunner

    from sfmc_source.cli import main

    text = CliRunner().invoke(main, ["collections"]).output
    assert "html_body" in text and "← HTMLBody  (with --email-bodies)" in text
    described = CliRunner().invoke(main, ["collections", "--json"]).output
    assert '"option": "email_bodies"' in described
