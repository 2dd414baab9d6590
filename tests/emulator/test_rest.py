"""REST conformance: hub campaigns, campaign assets and journeys (docs/sfmc-api.md#rest)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sfmc_source.emulator import Emulator, EmulatorConfig, RestOptions, Sizes
from sfmc_source.emulator.data import Row
from sfmc_source.timefmt import NEVER, format_system_time
from tests.conftest import Session

SFMC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?")


def session_for(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], **config: Any
) -> Session:
    config.setdefault("sizes", Sizes(campaigns=5, lists=2, journeys=3))
    return Session(http, emulator_factory(EmulatorConfig(**config)))


def all_pages(session: Session, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in range(1, 1_000):
        body = session.rest(path, **{"$page": page, **params}).json()
        if not body["items"]:
            return items
        items += body["items"]
    raise AssertionError("paging never ended")


def expected_json(row: Row) -> dict[str, Any]:
    return {k: format_system_time(v) if hasattr(v, "tzinfo") else v for k, v in row.fields.items()}


# ---- campaigns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("campaigns", "pages"),
    [
        pytest.param(50, [50], id="exactly-50"),
        pytest.param(51, [50, 1], id="51"),
        pytest.param(0, [], id="none"),
        pytest.param(120, [50, 50, 20], id="120"),
    ],
)
def test_campaign_paging_edges(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], campaigns: int, pages: list[int]
) -> None:
    session = session_for(
        http, emulator_factory, sizes=Sizes(campaigns=campaigns, lists=1, journeys=0)
    )
    sizes = []
    for page in range(1, len(pages) + 2):
        body = session.rest("hub/v1/campaigns", **{"$page": page, "$pageSize": 50}).json()
        assert (body["count"], body["page"], body["pageSize"]) == (campaigns, page, 50)
        assert ("next" in body["links"]) == (page * 50 < campaigns)
        sizes.append(len(body["items"]))
    assert sizes == [*pages, 0]


def test_campaign_envelope_and_items_match_the_data(http: httpx.Client, session: Session) -> None:
    body = session.rest("hub/v1/campaigns", **{"$pageSize": 50}).json()
    assert list(body) == ["count", "page", "pageSize", "links", "items"]
    assert body["links"]["self"] == {"href": "/v1/campaigns?$page=1&$pagesize=50"}
    rows = session.emulator.app.unit().campaigns
    for item in body["items"]:
        assert item == expected_json(rows[item["id"]])
        assert isinstance(item["id"], str) and item["id"].isdigit()
        assert SFMC_TIME.fullmatch(item["createdDate"]) and SFMC_TIME.fullmatch(
            item["modifiedDate"]
        )


def test_page_size_is_capped_at_50_and_the_echo_says_so(
    http: httpx.Client, session: Session
) -> None:
    body = session.rest("hub/v1/campaigns", **{"$pageSize": 500}).json()
    assert body["pageSize"] == 50
    assert len(body["items"]) == 50


def test_default_order_is_modified_date_descending(http: httpx.Client, session: Session) -> None:
    items = all_pages(session, "hub/v1/campaigns")
    rows = session.emulator.app.unit().campaigns
    dates = [rows[item["id"]].fields["modifiedDate"] for item in items]
    assert dates == sorted(dates, reverse=True)
    assert len(items) == len(rows)


@pytest.mark.parametrize(
    ("order_by", "key", "reverse"),
    [
        pytest.param(
            "ModifiedDate ASC", lambda r: r.fields["modifiedDate"], False, id="modified-asc"
        ),
        pytest.param(
            "CreatedDate DESC", lambda r: r.fields["createdDate"], True, id="created-desc"
        ),
        pytest.param("ID ASC", lambda r: int(r.fields["id"]), False, id="id-asc"),
        pytest.param("id desc", lambda r: int(r.fields["id"]), True, id="lower-case"),
    ],
)
def test_campaign_order_by(
    http: httpx.Client, session: Session, order_by: str, key: Callable[[Row], Any], reverse: bool
) -> None:
    items = all_pages(session, "hub/v1/campaigns", **{"$orderBy": order_by})
    rows = session.emulator.app.unit().campaigns
    values = [key(rows[item["id"]]) for item in items]
    assert values == sorted(values, reverse=reverse)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"$page": "0"}, id="page-0"),
        pytest.param({"$pageSize": "ten"}, id="size-text"),
        pytest.param({"$orderBy": "Color DESC"}, id="unknown-field"),
        pytest.param({"$orderBy": "Name SIDEWAYS"}, id="bad-direction"),
    ],
)
def test_bad_paging_or_order_is_400_with_errorcode_10000(
    session: Session, params: dict[str, str]
) -> None:
    response = session.rest("hub/v1/campaigns", **params)
    assert response.status_code == 400
    assert response.json()["errorcode"] == 10000


def test_parameter_names_are_case_insensitive_like_sfmc_links(session: Session) -> None:
    body = session.rest("hub/v1/campaigns", **{"$page": 2, "$pagesize": 7}).json()
    assert (body["page"], body["pageSize"], len(body["items"])) == (2, 7, 7)


def test_a_trailing_slash_is_accepted(session: Session) -> None:
    assert session.rest("hub/v1/campaigns/").status_code == 200


def test_one_campaign(session: Session) -> None:
    row = next(iter(session.emulator.app.unit().campaigns.values()))
    response = session.rest(f"hub/v1/campaigns/{row.fields['id']}")
    assert response.status_code == 200
    assert response.json() == expected_json(row)


@pytest.mark.parametrize("path", ["hub/v1/campaigns/999999", "hub/v1/campaigns/999999/assets"])
def test_unknown_campaign_is_400_campaign_id_is_invalid(session: Session, path: str) -> None:
    response = session.rest(path)
    assert response.status_code == 400
    assert response.json() == {
        "message": "Campaign ID is invalid",
        "errorcode": 10000,
        "documentation": "",
    }


def test_campaign_data_has_nasty_values_and_missing_keys(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = session_for(http, emulator_factory, sizes=Sizes(campaigns=400, lists=1, journeys=0))
    items = all_pages(session, "hub/v1/campaigns")
    names = {item["name"] for item in items}
    assert any("🌸" in n for n in names) and any("DROP TABLE" in n for n in names)
    assert any("description" not in item for item in items)
    assert any(item.get("description") is None and "description" in item for item in items)
    assert any(item.get("description") == "" for item in items)
    assert max(len(item.get("description") or "") for item in items) == 512
    assert any(
        item.get("campaignCode", "").startswith("00") for item in items if item.get("campaignCode")
    )


# ---- campaign assets --------------------------------------------------------------------


@pytest.mark.parametrize("envelope", ["items", "entities"])
def test_assets_envelope_variants(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], envelope: str
) -> None:
    session = session_for(http, emulator_factory, rest=RestOptions(assets_envelope=envelope))
    unit = session.emulator.app.unit()
    campaign_id, rows = next((k, v) for k, v in unit.assets.items() if v)
    body = session.rest(f"hub/v1/campaigns/{campaign_id}/assets").json()
    assert list(body) == ["count", "page", "pageSize", "links", envelope]
    assert body[envelope] == [expected_json(r) for r in rows]
    assert all(isinstance(item["campaignId"], int) for item in body[envelope])


def test_assets_as_a_bare_list(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = session_for(http, emulator_factory, rest=RestOptions(assets_envelope="list"))
    campaign_id, rows = next((k, v) for k, v in session.emulator.app.unit().assets.items() if v)
    assert session.rest(f"hub/v1/campaigns/{campaign_id}/assets").json() == [
        expected_json(r) for r in rows
    ]


def test_assets_page_at_50(http: httpx.Client, emulator_factory: Callable[..., Emulator]) -> None:
    session = session_for(http, emulator_factory)
    for _ in range(51):
        session.emulator.app.mutate.add("campaign_assets", campaignId=1000, type="EMAIL", itemID=1)
    count = len(session.emulator.app.unit().assets["1000"])
    first = session.rest("hub/v1/campaigns/1000/assets").json()
    second = session.rest("hub/v1/campaigns/1000/assets", **{"$page": 2}).json()
    assert (first["count"], len(first["items"]), len(second["items"])) == (count, 50, count - 50)


def test_one_asset_and_an_unknown_one(session: Session) -> None:
    campaign_id, rows = next((k, v) for k, v in session.emulator.app.unit().assets.items() if v)
    assert session.rest(
        f"hub/v1/campaigns/{campaign_id}/assets/{rows[0].fields['id']}"
    ).json() == expected_json(rows[0])
    assert session.rest(f"hub/v1/campaigns/{campaign_id}/assets/0").status_code == 400


# ---- journeys ---------------------------------------------------------------------------


def journey_rows(emulator: Emulator) -> list[Row]:
    return list(emulator.app.unit().journey_versions())


def test_all_versions_are_listed_with_most_recent_version_only_false(session: Session) -> None:
    items = all_pages(session, "interaction/v1/interactions", mostRecentVersionOnly="false")
    expected = {(r.fields["id"], r.fields["version"]) for r in journey_rows(session.emulator)}
    assert {(i["id"], i["version"]) for i in items} == expected
    assert len(items) == len(expected)


def test_by_default_only_the_latest_version_is_listed(session: Session) -> None:
    items = all_pages(session, "interaction/v1/interactions")
    unit = session.emulator.app.unit()
    assert {(i["id"], i["version"]) for i in items} == {
        (jid, versions[-1].fields["version"]) for jid, versions in unit.journeys.items()
    }


def test_journey_items_have_the_list_shape(session: Session) -> None:
    body = session.rest("interaction/v1/interactions", mostRecentVersionOnly="false").json()
    assert body["links"] == {}
    for item in body["items"]:
        assert {"goals", "exits", "notifiers", "defaults", "metaData", "definitionId"} <= set(item)
        assert "activities" not in item and "triggers" not in item
        for field in ("createdDate", "modifiedDate", "lastPublishedDate"):
            assert SFMC_TIME.fullmatch(item[field])
        if item["version"] == 1:
            assert item["definitionId"] == item["id"]


@pytest.mark.parametrize("extras", ["activities", "all"])
def test_extras_add_activities_and_triggers(session: Session, extras: str) -> None:
    items = session.rest("interaction/v1/interactions", extras=extras).json()["items"]
    assert all("activities" in item and item["triggers"] for item in items)
    assert any(item["activities"] for item in items)  # some versions have none


def test_journeys_page_at_50_and_honour_the_echo_variant(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    sizes = Sizes(campaigns=0, lists=1, journeys=40, versions_per_journey=3)
    served = session_for(http, emulator_factory, sizes=sizes)
    total = len(journey_rows(served.emulator))
    body = served.rest(
        "interaction/v1/interactions", mostRecentVersionOnly="false", **{"$pageSize": 500}
    ).json()
    assert (body["count"], body["pageSize"], len(body["items"])) == (total, 50, 50)
    liar = session_for(
        http, emulator_factory, sizes=sizes, rest=RestOptions(page_size_echo="requested")
    )
    body = liar.rest(
        "interaction/v1/interactions", mostRecentVersionOnly="false", **{"$pageSize": 500}
    ).json()
    assert (body["pageSize"], len(body["items"])) == (500, 50)


def test_journey_data_covers_the_documented_variants(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = session_for(http, emulator_factory, sizes=Sizes(campaigns=0, lists=1, journeys=60))
    items = all_pages(session, "interaction/v1/interactions", mostRecentVersionOnly="false")
    assert any("stats" not in item for item in items)
    assert any(item["lastPublishedDate"] == NEVER for item in items)
    goals = [g for item in items for g in item["goals"] + item["exits"]]
    assert any("eventDefinitionId" in g["arguments"] for g in goals)
    assert any(g["arguments"].get("filterResult") == "true" for g in goals)
    assert any(g["metaData"]["isExitCriteria"] for g in goals)
    assert any(
        isinstance(g.get("configurationArguments", {}).get("schemaVersionId"), str) for g in goals
    )
    assert {type(item["workflowApiVersion"]) for item in items} == {int, float}
    for item in items:
        keys = [g["key"] for g in item["goals"] + item["exits"]]
        assert len(keys) == len(set(keys))


@pytest.mark.parametrize("status", ["Published", "Draft", "Stopped"])
def test_status_filter(session: Session, status: str) -> None:
    items = all_pages(
        session, "interaction/v1/interactions", status=status, mostRecentVersionOnly="false"
    )
    expected = [r for r in journey_rows(session.emulator) if r.fields["status"] == status]
    assert len(items) == len(expected)
    assert all(item["status"] == status for item in items)


def test_unknown_status_is_400(session: Session) -> None:
    assert session.rest("interaction/v1/interactions", status="Paused").status_code == 400


def test_version_number_and_name_filters(session: Session) -> None:
    ones = all_pages(session, "interaction/v1/interactions", versionNumber=1)
    assert {i["version"] for i in ones} == {1}
    assert len(ones) == len(session.emulator.app.unit().journeys)
    name = journey_rows(session.emulator)[0].fields["name"]
    found = all_pages(session, "interaction/v1/interactions", nameOrDescription=name[:5].upper())
    assert any(i["name"] == name for i in found)


def test_one_journey_by_id_and_by_key(session: Session) -> None:
    versions = next(iter(session.emulator.app.unit().journeys.values()))
    latest = versions[-1].fields
    by_id = session.rest(f"interaction/v1/interactions/{latest['id']}").json()
    by_key = session.rest(f"interaction/v1/interactions/key:{latest['key']}").json()
    assert by_id["version"] == by_key["version"] == latest["version"]
    first = session.rest(f"interaction/v1/interactions/{latest['id']}", versionNumber=1).json()
    assert first["version"] == 1 and first["definitionId"] == latest["id"]


def test_one_version_by_key_carries_its_activities_with_extras(session: Session) -> None:
    unit = session.emulator.app.unit()
    version = next(v.fields for v in unit.journey_versions() if v.fields["activities"])
    path = f"interaction/v1/interactions/key:{version['key']}"
    found = session.rest(path, versionNumber=version["version"], extras="activities").json()
    assert (found["id"], found["version"]) == (version["id"], version["version"])
    assert [a["key"] for a in found["activities"]] == [a["key"] for a in version["activities"]]
    assert "activities" not in session.rest(path, versionNumber=version["version"]).json()


def test_one_journey_without_a_version_whose_latest_is_deleted_is_not_found(
    session: Session,
) -> None:
    """The deleted-latest-version quirk (docs/sfmc-api.md#journey-activities): the single GET
    without ``versionNumber`` takes the latest version, deleted or not."""
    versions = next(v for v in session.emulator.app.unit().journeys.values() if len(v) > 1)
    latest, earlier = versions[-1].fields, versions[-2].fields
    session.emulator.app.mutate.delete("interactions", (latest["id"], latest["version"]))
    path = f"interaction/v1/interactions/key:{latest['key']}"
    response = session.rest(path, extras="activities")
    assert response.status_code == 404
    assert response.json()["message"] == "Interaction matching criteria not found."
    assert response.json()["errorcode"] == 30003
    found = session.rest(path, versionNumber=earlier["version"], extras="activities")
    assert found.status_code == 200 and found.json()["version"] == earlier["version"]


@pytest.mark.parametrize(
    "path",
    [
        "interaction/v1/interactions/nope",
        "interaction/v1/interactions/key:nope",
        "hub/v1/nothing-here",
    ],
)
def test_unknown_journey_or_path_is_the_generic_404(session: Session, path: str) -> None:
    response = session.rest(path)
    assert response.status_code == 404
    assert response.json() == {
        "message": "Not Found",
        "errorcode": 404,
        "documentation": "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm",
    }
