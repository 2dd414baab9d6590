"""Shaping records into seed columns: names, types, UTC, and refusing wrong shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sfmc_source.errors import ResponseError
from sfmc_source.rows import convert, dlt_columns, shape
from sfmc_source.specs import CAMPAIGN_ASSETS, CAMPAIGNS, COLLECTIONS, GOALS, INTERACTIONS, LISTS


def test_a_campaign_gets_seed_columns_and_utc_timestamps() -> None:
    row = shape(
        CAMPAIGNS,
        {
            "id": "301",
            "createdDate": "2019-11-29T16:18:31",
            "modifiedDate": "2019-11-29T16:18:30.5",
            "name": "Spring Sale",
            "campaignCode": "spring2019",
            "color": "d2e7b8",
            "favorite": False,
        },
    )
    assert row == {
        "id": "301",
        "name": "Spring Sale",
        "description": None,
        "campaign_code": "spring2019",
        "color": "d2e7b8",
        "favorite": False,
        "created_date": datetime(2019, 11, 29, 22, 18, 31, tzinfo=UTC),
        "modified_date": datetime(2019, 11, 29, 22, 18, 30, 500_000, tzinfo=UTC),
    }


def test_asset_ids_are_text_so_they_join_campaigns_without_a_cast() -> None:
    row = shape(
        CAMPAIGN_ASSETS,
        {
            "id": "16",
            "campaignId": 330,
            "type": "EMAIL",
            "itemID": 7897,
            "createdDate": "2019-01-07T10:49:45",
        },
    )
    assert (row["campaign_id"], row["item_id"]) == ("330", "7897")


def test_an_asset_known_by_its_object_id_keeps_it() -> None:
    guid = "5d1f5b22-6bb1-4a40-9a7e-2c1a0b3e9f11"
    record = {"id": "17", "campaignId": 330, "type": "TRIGGERED", "objectID": guid}
    row = shape(CAMPAIGN_ASSETS, record)
    assert (row["item_id"], row["object_id"]) == (None, guid)


def test_soap_text_is_typed() -> None:
    row = shape(
        LISTS,
        {
            "ID": "23",
            "Category": "412",
            "Client.ID": "512345678",
            "Client.UserID": None,
            "Description": "",
            "ModifiedDate": "2017-02-16T01:59:27.29",
            "CreatedDate": None,
        },
        soap=True,
    )
    assert (row["id"], row["category"], row["client_id"], row["client_user_id"]) == (
        23,
        412,
        512345678,
        None,
    )
    assert row["description"] == ""
    assert row["modified_date"] == datetime(2017, 2, 16, 7, 59, 27, 290_000, tzinfo=UTC)


def test_interaction_nested_fields_and_never_published() -> None:
    item = {
        "id": "j",
        "version": 2,
        "workflowApiVersion": 1.0,
        "lastPublishedDate": "0001-01-01T00:00:00",
        "stats": {
            "currentPopulation": 112,
            "cumulativePopulation": 56,
            "metGoal": 0,
            "goalPerformance": 0.0,
        },
        "defaults": {
            "email": ["{{Contact.Default.Email}}"],
            "properties": {"analyticsTracking": {"enabled": False, "analyticsType": "google"}},
        },
    }
    row = shape(INTERACTIONS, item)
    assert row["last_published_date"] is None
    assert (row["stats_current_population"], row["stats_goal_performance"]) == (112, 0.0)
    assert json.loads(row["default_email"]) == ["{{Contact.Default.Email}}"]  # JSON column
    assert (row["default_analytics_type"], row["default_enabled"]) == ("google", False)
    assert shape(INTERACTIONS, {"id": "j", "version": 1})["stats_met_goal"] is None


def test_goal_columns_including_the_seed_spelling_of_dequeue_reason_type() -> None:
    goal = {
        "interaction_id": "j",
        "interaction_version": 1,
        "key": "GOAL",
        "configurationArguments": {"schemaVersionId": "218"},
        "metaData": {"conversionValue": "30", "isExitCriteria": True},
        "schema": {"arguments": {"dequeueReason": {"dataType": "Text", "isNullable": True}}},
    }
    row = shape(GOALS, goal)
    assert row["config_arguments_schema_version_id"] == 218
    assert row["metadata_conversion_value"] == 30.0
    assert row["metadata_is_exit_criteria"] is True
    assert row["schema_args_dequeue_reason_type"] == "Text"
    assert row["schema_args_dequeue_reason_is_nullable"] is True
    assert "schema_args_dequeue_reason_data_type" not in row
    assert "schema_args_filter_result_data_type" in row


@pytest.mark.parametrize(
    ("record", "message"),
    [
        pytest.param(
            {"id": "1", "favorite": "yes"}, "favorite is 'yes', not a boolean", id="text-for-bool"
        ),
        pytest.param(
            {"id": "1", "name": {"a": 1}}, "name is an object or array", id="object-for-text"
        ),
        pytest.param(
            {"id": "1", "createdDate": "yesterday"}, "not an SFMC timestamp", id="bad-timestamp"
        ),
        pytest.param({"name": "no id"}, r"no id \(primary key\)", id="null-primary-key"),
    ],
)
def test_wrong_shapes_are_errors_not_rows(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        shape(CAMPAIGNS, record)


@pytest.mark.parametrize(
    ("value", "kind", "from_text", "expected"),
    [
        ("true", "bool", True, True),
        ("12.5", "double", False, 12.5),
        ("-7", "bigint", True, -7),
        (3.0, "bigint", False, 3),
        ("  padded  ", "text", False, "  padded  "),
    ],
)
def test_convert(value: Any, kind: str, from_text: bool, expected: Any) -> None:
    assert convert(value, kind, from_text=from_text) == expected


@pytest.mark.parametrize(
    ("value", "kind"), [(True, "bigint"), ("1.5", "bigint"), ("x", "double"), (1, "bool")]
)
def test_convert_refuses(value: Any, kind: str) -> None:
    with pytest.raises(TypeError):
        convert(value, kind)


@pytest.mark.parametrize("name", list(COLLECTIONS))
def test_every_column_is_typed_and_keys_are_not_null(name: str) -> None:
    collection = COLLECTIONS[name]
    hints = dlt_columns(collection)
    assert list(hints) == [*(c.name for c in collection.columns), "business_unit_id"]
    assert all(hints[key]["nullable"] is False for key in collection.table_key)
    assert collection.table_key == ("business_unit_id", *collection.primary_key)
    assert len(set(hints)) == len(hints)
