"""``journey_activities`` end to end: real syncs into DuckDB and Postgres against the emulator,
compared column by column with the activities of the versions the emulator lists
(``expected_journey_activities``), and the single-journey GETs counted at the emulator: one per
version whose modifiedDate moved, always with its ``versionNumber``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import test_sync_e2e as e2e
from test_sync_e2e import (
    Destination,
    Syncs,
    assert_warehouse_equals,
    outcome,
    snapshot,
)

from sfmc_source.emulator import Emulator, Sizes
from sfmc_source.sync import SyncResult

client_factory = e2e.client_factory
destination_factory = e2e.destination_factory
destination = e2e.destination
duckdb_destination = e2e.duckdb_destination
syncs = e2e.syncs

Factory = Callable[..., Emulator]
# Enough versions (about 50) for every variant of the activities to show up.
SMALL = Sizes(campaigns=1, assets_per_campaign=0, lists=2, journeys=25)
ONE_VERSION = "GET /interaction/v1/interactions/key:{key}"
SYNCED = ("interactions", "journey_activities")  # a child syncs with its parent
Version = tuple[str, int]


def assert_synced(result: SyncResult) -> None:
    assert result.fatal is None, result.fatal
    assert outcome(result) == dict.fromkeys(SYNCED), outcome(result)


def run(syncs: Syncs, emu: Emulator, dest: Destination) -> None:
    emu.app.log.clear()
    assert_synced(syncs.run(emu, dest, collections=("journey_activities",)))


def version_reads(emu: Emulator) -> list[tuple[str, str, str]]:
    """The single-journey GETs made: key, versionNumber and extras of each."""
    reads = []
    for entry in emu.app.log.entries:
        if entry.endpoint == ONE_VERSION:
            assert entry.status == 200, entry
            query = dict(entry.query)
            key = unquote(entry.path.rsplit("key:", 1)[1])
            reads.append((key, query.get("versionnumber", ""), query.get("extras", "")))
    return sorted(reads)


def reads_of(emu: Emulator, versions: list[Version]) -> list[tuple[str, str, str]]:
    """The GETs that read exactly ``versions``."""
    unit = emu.app.unit()
    keys = {jid: rows[0].fields["key"] for jid, rows in unit.journeys.items()}
    return sorted((keys[jid], str(number), "activities") for jid, number in versions)


def live(emu: Emulator) -> list[Version]:
    return [
        (v.fields["id"], v.fields["version"])
        for v in emu.app.unit().journey_versions()
        if v.fields["status"] != "Deleted"
    ]


def assert_covers_variants(rows: list[dict[str, Any]], emu: Emulator) -> None:
    """The data holds what the facts say varies, so the comparison means something."""
    assert {"EMAILV2", "WAIT", "Wait", "MULTICRITERIADECISION"} <= {r["type"] for r in rows}
    assert any(r["triggered_send_id"] for r in rows)
    assert any(r["type"] == "EMAILV2" and r["triggered_send_id"] is None for r in rows)
    assert any(r["email_id"] is not None for r in rows)
    assert any(r["metadata"] is None for r in rows) or any(r["name"] is None for r in rows)
    assert any(len(r["outcomes"]) > 1 for r in rows)  # a decision's paths
    assert any(not v.fields["activities"] for v in emu.app.unit().journey_versions())


def test_every_listed_versions_activities_land_exactly(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    unit = emu.app.unit()
    # The deleted-latest-version quirk: this journey's single GET without versionNumber
    # answers 404; its earlier versions are still listed and must be read.
    older = next(versions for versions in unit.journeys.values() if len(versions) > 1)
    emu.app.mutate.delete("interactions", (older[-1].fields["id"], older[-1].fields["version"]))
    expected = snapshot(emu, SYNCED)
    assert_covers_variants(expected["journey_activities"], emu)

    run(syncs, emu, destination)

    assert_warehouse_equals(destination, expected)
    assert version_reads(emu) == reads_of(emu, live(emu))


def change_activities(emu: Emulator) -> list[Version]:
    """Activities added to one version, changed and removed in another, all of a third's
    removed, a new version; a stats change that moves no modifiedDate. The versions whose
    modifiedDate moved."""
    unit, mutate = emu.app.unit(), emu.app.mutate
    rich = [v.fields for v in unit.journey_versions() if len(v.fields["activities"]) >= 2]
    grown, edited, emptied = rich[0], rich[1], rich[2]
    added = dict(copy.deepcopy(grown["activities"][0]), key="WAIT-99", type="WAIT", name="new")
    mutate.update("interactions", (grown["id"], grown["version"]), activities=[
        *copy.deepcopy(grown["activities"]), added
    ])  # fmt: skip
    renamed = dict(copy.deepcopy(edited["activities"][0]), name="Renamed ✨ step")
    mutate.update("interactions", (edited["id"], edited["version"]), activities=[renamed])
    mutate.update("interactions", (emptied["id"], emptied["version"]), activities=[])
    new = mutate.add("interactions", id=rich[3]["id"], name="Next version")
    quiet = rich[4]
    mutate.update("interactions", (quiet["id"], quiet["version"]), touch=False, stats={})
    changed = [(v["id"], v["version"]) for v in (grown, edited, emptied)]
    return [*changed, new]


def test_only_changed_versions_are_read_again_and_replace_their_activities(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    run(syncs, emu, destination)
    changed = change_activities(emu)

    run(syncs, emu, destination)

    assert version_reads(emu) == reads_of(emu, changed)
    assert_warehouse_equals(destination, snapshot(emu, SYNCED))
    emptied = changed[2]
    assert not destination.query(
        "SELECT key FROM {schema}.journey_activities "
        "WHERE interaction_id = %s AND interaction_version = %s",
        emptied,
    )

    # read once: the run after reads no version again
    run(syncs, emu, destination)
    assert version_reads(emu) == []
    assert_warehouse_equals(destination, snapshot(emu, SYNCED))


def test_a_full_refresh_reads_every_version_again(
    emulator_factory: Factory, duckdb_destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    run(syncs, emu, duckdb_destination)
    emu.app.log.clear()
    assert_synced(
        syncs.run(emu, duckdb_destination, collections=("journey_activities",), full_refresh=True)
    )
    assert version_reads(emu) == reads_of(emu, live(emu))
    assert_warehouse_equals(duckdb_destination, snapshot(emu, SYNCED))
