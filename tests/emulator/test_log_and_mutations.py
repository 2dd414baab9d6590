"""The request log, the HTTP control endpoint and the mutation API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sfmc_source.emulator import Emulator
from tests.conftest import Session


def test_the_log_counts_per_endpoint_status_and_token(http: httpx.Client, session: Session) -> None:
    session.rest("hub/v1/campaigns")
    session.rest("hub/v1/campaigns", **{"$page": 2})
    session.rest("hub/v1/campaigns/1000/assets")
    session.rest("hub/v1/campaigns/0")
    session.rest("interaction/v1/interactions")
    log = session.emulator.app.log
    assert log.token_requests == 1
    assert log.by_endpoint() == {
        "POST /v2/token": 1,
        "GET /hub/v1/campaigns": 2,
        "GET /hub/v1/campaigns/{id}/assets": 1,
        "GET /hub/v1/campaigns/{id}": 1,
        "GET /interaction/v1/interactions": 1,
    }
    assert log.by_status() == {200: 5, 400: 1}
    assert log.count("GET /hub/v1/campaigns", status=200) == 2
    assert {e.mid for e in log.entries if e.endpoint != "POST /v2/token"} == {
        session.emulator.config.mids[0]
    }


def test_the_control_endpoint_reports_and_clears_the_log(
    http: httpx.Client, session: Session
) -> None:
    session.rest("hub/v1/campaigns")
    url = f"{session.emulator.auth_url}/_emulator/requests"
    summary = http.get(url).json()
    assert summary["total"] == 2 and summary["token_requests"] == 1
    assert summary["by_endpoint"]["GET /hub/v1/campaigns"] == 1
    assert http.delete(url).json()["total"] == 0
    assert session.emulator.app.log.entries == []


def newest_campaigns(session: Session) -> list[dict[str, str]]:
    items: list[dict[str, str]] = session.rest("hub/v1/campaigns").json()["items"]
    return items


def test_an_updated_campaign_moves_to_the_top_with_a_new_modified_date(session: Session) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    session.emulator.app.mutate.update("campaigns", "1007", name="Renamed ✨")
    row = session.emulator.app.unit().campaigns["1007"]
    assert row.fields["modifiedDate"] > before
    top = newest_campaigns(session)[0]
    assert (top["id"], top["name"]) == ("1007", "Renamed ✨")


def test_added_and_deleted_campaigns(session: Session) -> None:
    mutate = session.emulator.app.mutate
    new_id = mutate.add("campaigns", name="Brand new", favorite=True)
    assert newest_campaigns(session)[0]["id"] == new_id
    assert session.rest(f"hub/v1/campaigns/{new_id}/assets").json()["items"] == []
    mutate.delete("campaigns", "1001")
    assert session.rest("hub/v1/campaigns/1001").status_code == 400
    assert session.rest("hub/v1/campaigns").json()["count"] == 60


def test_asset_changes_touch_their_campaign(session: Session) -> None:
    mutate = session.emulator.app.mutate
    asset_id = mutate.add("campaign_assets", campaignId=1020, type="EMAIL", itemID=42)
    assert newest_campaigns(session)[0]["id"] == "1020"
    assets = session.rest("hub/v1/campaigns/1020/assets").json()["items"]
    assert assets[-1]["id"] == asset_id
    first = session.emulator.app.unit().assets["1030"][0].fields["id"]
    mutate.delete("campaign_assets", first)
    assert newest_campaigns(session)[0]["id"] == "1030"
    assert first not in {
        a["id"] for a in session.rest("hub/v1/campaigns/1030/assets").json()["items"]
    }


def test_asset_update_without_touch_leaves_the_campaign_alone(session: Session) -> None:
    row = session.emulator.app.unit().assets["1030"][0]
    before = session.emulator.app.unit().campaigns["1030"].fields["modifiedDate"]
    session.emulator.app.mutate.update(
        "campaign_assets", row.fields["id"], touch=False, type="list"
    )
    assert session.emulator.app.unit().campaigns["1030"].fields["modifiedDate"] == before
    assert session.rest("hub/v1/campaigns/1030/assets").json()["items"][0]["type"] == "list"


def test_new_journey_versions_and_deletions(session: Session) -> None:
    mutate = session.emulator.app.mutate
    journey_id, versions = next(iter(session.emulator.app.unit().journeys.items()))
    new = mutate.add("interactions", id=journey_id, name="Version next")
    assert new == (journey_id, len(versions) + 1)
    latest = session.rest(f"interaction/v1/interactions/{journey_id}").json()
    assert (latest["version"], latest["name"], latest["status"]) == (
        new[1],
        "Version next",
        "Draft",
    )
    mutate.delete("interactions", new)
    listed = session.rest(
        "interaction/v1/interactions", mostRecentVersionOnly="false", **{"$pageSize": 50}
    )
    assert new not in {(i["id"], i["version"]) for i in listed.json()["items"]}
    deleted = session.rest("interaction/v1/interactions", status="Deleted").json()["items"]
    assert [(i["id"], i["version"]) for i in deleted] == [new]
    brand_new = mutate.add("interactions", name="Fresh")
    assert brand_new[1] == 1
    assert (
        session.rest(f"interaction/v1/interactions/{brand_new[0]}").json()["definitionId"]
        == brand_new[0]
    )


def test_stats_move_without_modified_date_moving(session: Session) -> None:
    unit = session.emulator.app.unit()
    row = next(r for r in unit.journey_versions() if "stats" in r.fields)
    key = (row.fields["id"], row.fields["version"])
    before = row.fields["modifiedDate"]
    stats = {**row.fields["stats"], "currentPopulation": 123_456}
    session.emulator.app.mutate.update("interactions", key, touch=False, stats=stats)
    served = session.rest(f"interaction/v1/interactions/{key[0]}", versionNumber=key[1]).json()
    assert served["stats"]["currentPopulation"] == 123_456
    assert row.fields["modifiedDate"] == before


def test_mutations_address_a_business_unit(emulator_factory: Callable[..., Emulator]) -> None:
    emulator = emulator_factory(business_units=2)
    second = emulator.config.mids[1]
    key = emulator.app.mutate.add("lists", mid=second, ListName="Only in the second unit")
    assert emulator.app.unit(second).lists[key].fields["Client.ID"] == second
    assert all(
        r.fields.get("ListName") != "Only in the second unit"
        for r in emulator.app.unit().lists.values()
    )


def test_unknown_keys_raise(emulator: Emulator) -> None:
    with pytest.raises(KeyError):
        emulator.app.mutate.update("campaigns", "nope", name="x")
    with pytest.raises(KeyError):
        emulator.app.mutate.update("journeys", "x", name="x")
