"""DataFolder as the emulator serves it (docs/sfmc-api.md#datafolder): the shapes recorded,
a tree that every list's ``Category`` hangs in, and the ModifiedDate filter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta

import httpx

from sfmc_source.emulator import Emulator, Sizes
from tests.conftest import Session
from tests.emulator.test_soap import (
    NS,
    XSI_NIL,
    filter_xml,
    local,
    result_elements,
    results,
    simple,
    status,
    system_naive,
)

FOLDERS = Sizes(campaigns=0, lists=40, journeys=0)
PROPERTIES = ["ID", "Name", "ContentType", "ParentFolder.ID", "IsEditable", "ModifiedDate"]


Factory = Callable[..., Emulator]


def folder_session(http: httpx.Client, emulator_factory: Factory) -> Session:
    return Session(http, emulator_factory(sizes=FOLDERS))


def test_parent_folder_is_nested_with_nil_partner_key_and_object_id(
    http: httpx.Client, emulator_factory: Factory
) -> None:
    session = folder_session(http, emulator_factory)
    response = session.retrieve("DataFolder", PROPERTIES)
    assert status(response) == "OK"
    elements = result_elements(response)
    assert len(elements) == len(session.emulator.app.unit().folders)
    for result in elements:
        parent = result.find("p:ParentFolder", NS)
        assert parent is not None
        assert [local(child) for child in parent] == ["PartnerKey", "ID", "ObjectID"]
        assert parent[0].get(XSI_NIL) == parent[2].get(XSI_NIL) == "true"


def test_folders_form_a_tree_holding_every_list_category(
    http: httpx.Client, emulator_factory: Factory
) -> None:
    session = folder_session(http, emulator_factory)
    rows = results(session.retrieve("DataFolder", PROPERTIES))
    parents = {int(r["ID"] or ""): int(r["ParentFolder.ID"] or "") for r in rows}
    kinds = {int(r["ID"] or ""): r["ContentType"] for r in rows}
    assert 0 in parents.values()  # roots
    assert {"Hidden", "SSJSActivity", "list", "dataextension"} <= set(kinds.values())
    for folder in parents:
        seen = set()
        while folder:  # reaches a root, no cycle
            assert folder not in seen
            seen.add(folder)
            folder = parents[folder]
    categories = {r.fields["Category"] for r in session.emulator.app.unit().lists.values()}
    assert {kinds[c] for c in categories} == {"list"}


def test_modified_date_filter_selects_the_folders_changed_after(
    http: httpx.Client, emulator_factory: Factory
) -> None:
    session = folder_session(http, emulator_factory)
    emulator: Emulator = session.emulator
    folders = emulator.app.unit().folders
    moved = sorted(folders)[3]
    emulator.app.mutate.update("folders", moved, **{"ParentFolder.ID": 2})
    since = max(f.fields["ModifiedDate"] for i, f in folders.items() if i != moved)
    since += timedelta(seconds=1)  # the filter's value has milliseconds
    part = simple("ModifiedDate", "greaterThan", system_naive(since.astimezone(UTC)), date=True)
    rows = results(session.retrieve("DataFolder", PROPERTIES, filter_xml(part)))
    assert [(r["ID"], r["ParentFolder.ID"]) for r in rows] == [(str(moved), "2")]
