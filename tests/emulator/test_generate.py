"""The data generator: deterministic, realistic, nasty."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from sfmc_source.emulator import SCALES, Sizes, sizes_for
from sfmc_source.emulator.generate import HISTORY_END, NASTY, generate_unit


def snapshot(seed: int, sizes: Sizes) -> list[object]:
    unit = generate_unit(seed, 512_345_678, sizes)
    return [
        [r.fields for r in unit.campaigns.values()],
        [[r.fields for r in rows] for rows in unit.assets.values()],
        [r.fields for r in unit.lists.values()],
        [r.fields for r in unit.journey_versions()],
    ]


def test_the_same_seed_gives_the_same_tenant() -> None:
    assert snapshot(7, Sizes()) == snapshot(7, Sizes())
    assert snapshot(7, Sizes()) != snapshot(8, Sizes())


def test_business_units_differ() -> None:
    first = generate_unit(1, 1, Sizes())
    second = generate_unit(1, 2, Sizes())
    assert [r.fields["name"] for r in first.campaigns.values()] != [
        r.fields["name"] for r in second.campaigns.values()
    ]


@pytest.mark.parametrize("sizes", [Sizes(), Sizes(campaigns=51, lists=2_501, journeys=7)], ids=str)
def test_sizes_are_honoured(sizes: Sizes) -> None:
    unit = generate_unit(1, 1, sizes)
    assert len(unit.campaigns) == sizes.campaigns
    assert len(unit.lists) == sizes.lists
    assert len(unit.journeys) == sizes.journeys
    assert all(1 <= len(v) <= sizes.versions_per_journey for v in unit.journeys.values())


def test_all_dates_are_in_the_past_and_within_the_history() -> None:
    unit = generate_unit(3, 1, Sizes(campaigns=300, lists=300, journeys=60))
    stamps = [
        v
        for r in unit.campaigns.values()
        for v in (r.fields["createdDate"], r.fields["modifiedDate"])
    ]
    stamps += [r.fields["ModifiedDate"] for r in unit.lists.values()]
    stamps += [r.fields["modifiedDate"] for r in unit.journey_versions()]
    assert max(stamps) <= HISTORY_END < datetime.now(UTC)


def test_lists_include_all_subscribers_and_nasty_values() -> None:
    unit = generate_unit(1, 1, Sizes(lists=500))
    rows = [r.fields for r in unit.lists.values()]
    assert rows[0]["ListName"] == "All Subscribers"
    assert rows[0]["CustomerKey"] == f"All Subscribers - {rows[0]['Category']}"
    names = {r["ListName"] for r in rows}
    assert len(names & set(NASTY)) >= 5
    assert any(r["CustomerKey"] == "" for r in rows) and any(r["CustomerKey"] is None for r in rows)
    assert any(r["ObjectID"] is None for r in rows)
    assert any(r["Client.PartnerUserKey"] for r in rows)


def test_triggered_and_automation_assets_carry_an_object_id_instead_of_an_item_id() -> None:
    unit = generate_unit(1, 1, Sizes())
    assets = [row.fields for rows in unit.assets.values() for row in rows]
    by_object = [a for a in assets if a["type"] in ("TRIGGERED", "AUTOMATION_DEFINITION")]
    assert {a["type"] for a in by_object} == {"TRIGGERED", "AUTOMATION_DEFINITION"}
    for asset in by_object:
        assert "itemID" not in asset
        assert str(uuid.UUID(asset["objectID"])) == asset["objectID"]
    others = [a for a in assets if a not in by_object]
    assert others and all("itemID" in a and "objectID" not in a for a in others)


def test_scales() -> None:
    assert sizes_for("small") == SCALES["small"]
    assert sizes_for("large").lists == 200_000
    assert sizes_for("3").campaigns == 3 * SCALES["small"].campaigns
    with pytest.raises(ValueError, match="scale"):
        sizes_for("-1")
    with pytest.raises(ValueError, match="invalid literal"):
        sizes_for("huge")
