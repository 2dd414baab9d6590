"""``folders`` end to end: real syncs into DuckDB and Postgres against the emulator, compared
column by column with its DataFolder records (``expected_folders``); the README's recursive
query resolves every list's ``category`` to the path the emulator's tree gives; renamed,
moved, added and deleted folders show after the next run."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import test_sync_e2e as e2e
from test_sync_e2e import SMALL, Destination, Syncs, assert_warehouse_equals, outcome, snapshot

from sfmc_source.emulator import Emulator

client_factory = e2e.client_factory
destination_factory = e2e.destination_factory
destination = e2e.destination
duckdb_destination = e2e.duckdb_destination
syncs = e2e.syncs

Factory = Callable[..., Emulator]
SYNCED = ("lists", "folders")
FOLDER_RETRIEVES = "SOAP Retrieve DataFolder"
README = (Path(__file__).parents[2] / "README.md").read_text()
# The README's example: each list with its folder path.
FOLDER_PATHS = next(
    re.sub(r"^  ", "", block, flags=re.M)
    for block in re.findall(r"```sql\n(.*?)```", README, re.S)
    if "WITH RECURSIVE" in block
)


def run(syncs: Syncs, emu: Emulator, dest: Destination) -> None:
    emu.app.log.clear()
    result = syncs.run(emu, dest, collections=SYNCED)
    assert result.fatal is None, result.fatal
    assert outcome(result) == dict.fromkeys(SYNCED), outcome(result)


def folder_paths(emu: Emulator) -> list[tuple[int, int, str, str | None]]:
    """Each list with the names of its folder and its ancestors, root first."""
    unit = emu.app.unit()
    found = []
    for row in unit.lists.values():
        names: list[str] = []
        folder = unit.folders.get(row.fields["Category"])
        while folder is not None:
            names.insert(0, folder.fields["Name"])
            folder = unit.folders.get(folder.fields["ParentFolder.ID"])
        path = " > ".join(names) if names else None
        found.append((unit.mid, row.fields["ID"], row.fields["ListName"], path))
    return sorted(found)


def test_folders_land_exactly_and_resolve_list_categories_to_paths(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    folders = emu.app.unit().folders.values()
    assert {"Hidden", "SSJSActivity"} <= {f.fields["ContentType"] for f in folders}
    assert any(f.fields["ParentFolder.ID"] == 0 for f in folders)

    run(syncs, emu, destination)

    assert_warehouse_equals(destination, snapshot(emu, SYNCED))
    assert emu.app.log.by_endpoint()[FOLDER_RETRIEVES] == 1
    paths = destination.query(FOLDER_PATHS.replace("sfmc.", "{schema}."))
    assert sorted(paths) == folder_paths(emu)
    assert all(path.count(" > ") >= 1 for *_, path in paths)  # under the lists root


def test_changed_moved_added_and_deleted_folders_show_after_the_next_run(
    emulator_factory: Factory, destination: Destination, syncs: Syncs
) -> None:
    emu = emulator_factory(sizes=SMALL)
    run(syncs, emu, destination)
    unit, mutate = emu.app.unit(), emu.app.mutate
    leaves = sorted(
        set(unit.folders) - {f.fields["ParentFolder.ID"] for f in unit.folders.values()}
    )
    renamed, moved, deleted = leaves[:3]
    mutate.update("folders", renamed, Name="Renamed ✨ 'folder'")
    mutate.update("folders", moved, **{"ParentFolder.ID": 2})
    mutate.delete("folders", deleted)
    mutate.add("folders", Name="New", ContentType="email", **{"ParentFolder.ID": 3})

    run(syncs, emu, destination)

    assert_warehouse_equals(destination, snapshot(emu, SYNCED))
    assert emu.app.log.by_endpoint()[FOLDER_RETRIEVES] == 1
    assert sorted(destination.query(FOLDER_PATHS.replace("sfmc.", "{schema}."))) == folder_paths(
        emu
    )
