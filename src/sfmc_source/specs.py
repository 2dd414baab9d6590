"""The collections, as data: one row each.

A row names the table, its primary key, the API it comes from, how it stays incremental, the
permission a package needs for it, and its columns: seed column name ← source path, with the
warehouse type. ``rows.py`` shapes records with these columns; ``source.py`` wires them to dlt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """``source`` is a dotted path into a REST item, or a SOAP property name."""

    name: str
    source: str
    type: str = "text"  # a dlt data type: text, bigint, double, bool, timestamp or json


@dataclass(frozen=True)
class Collection:
    name: str
    api: str  # what it reads, for people
    primary_key: tuple[str, ...]
    strategy: str  # how it stays incremental, for people
    permission: str  # the Installed Package permission it needs (the seed's table)
    columns: tuple[Column, ...]
    cursor: str | None = None
    parent: str | None = None


def _columns(*specs: tuple[str, str] | tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


HUB = "Hub > Campaigns > Read"
CONTACTS = "Contacts > Lists and Subscribers > Read"
JOURNEYS = "Automation > Journeys > Read"

CAMPAIGNS = Collection(
    name="campaigns",
    api="REST GET /hub/v1/campaigns",
    primary_key=("id",),
    cursor="modified_date",
    strategy="page by ModifiedDate DESC, stop past the cursor",
    permission=HUB,
    columns=_columns(
        ("id", "id"),
        ("name", "name"),
        ("description", "description"),
        ("campaign_code", "campaignCode"),
        ("color", "color"),
        ("favorite", "favorite", "bool"),
        ("created_date", "createdDate", "timestamp"),
        ("modified_date", "modifiedDate", "timestamp"),
    ),
)

CAMPAIGN_ASSETS = Collection(
    name="campaign_assets",
    api="REST GET /hub/v1/campaigns/{id}/assets",
    primary_key=("id",),
    parent="campaigns",
    strategy="re-read the assets of changed campaigns (all campaigns on a full refresh)",
    permission=HUB,
    columns=_columns(
        ("id", "id"),
        ("campaign_id", "campaignId"),
        ("item_id", "itemID"),
        ("type", "type"),
        ("created_date", "createdDate", "timestamp"),
    ),
)

LISTS = Collection(
    name="lists",
    api="SOAP Retrieve List",
    primary_key=("id",),
    cursor="modified_date",
    strategy="ModifiedDate filter from the cursor",
    permission=CONTACTS,
    columns=_columns(
        ("id", "ID", "bigint"),
        ("object_id", "ObjectID"),
        ("partner_key", "PartnerKey"),
        ("customer_key", "CustomerKey"),
        ("list_name", "ListName"),
        ("description", "Description"),
        ("category", "Category", "bigint"),
        ("type", "Type"),
        ("list_classification", "ListClassification"),
        ("created_date", "CreatedDate", "timestamp"),
        ("modified_date", "ModifiedDate", "timestamp"),
        ("client_id", "Client.ID", "bigint"),
        ("client_partner_client_key", "Client.PartnerClientKey"),
        ("client_created_by", "Client.CreatedBy", "bigint"),
        ("client_modified_by", "Client.ModifiedBy", "bigint"),
        ("client_customer_key", "Client.CustomerKey"),
        ("client_partner_user_key", "Client.PartnerUserKey"),
        ("client_user_id", "Client.UserID", "bigint"),
    ),
)

INTERACTIONS = Collection(
    name="interactions",
    api="REST GET /interaction/v1/interactions (all versions)",
    primary_key=("id", "version"),
    strategy="listed in full every run: stats are live counters (one request per 50 versions)",
    permission=JOURNEYS,
    columns=_columns(
        ("id", "id"),
        ("key", "key"),
        ("name", "name"),
        ("description", "description"),
        ("version", "version", "bigint"),
        ("workflow_api_version", "workflowApiVersion", "double"),
        ("created_date", "createdDate", "timestamp"),
        ("modified_date", "modifiedDate", "timestamp"),
        ("last_published_date", "lastPublishedDate", "timestamp"),
        ("status", "status"),
        ("execution_mode", "executionMode"),
        ("definition_id", "definitionId"),
        ("stats_cumulative_population", "stats.cumulativePopulation", "bigint"),
        ("stats_current_population", "stats.currentPopulation", "bigint"),
        ("stats_goal_performance", "stats.goalPerformance", "double"),
        ("stats_met_goal", "stats.metGoal", "bigint"),
        ("default_email", "defaults.email", "json"),
        ("default_analytics_type", "defaults.properties.analyticsTracking.analyticsType"),
        ("default_enabled", "defaults.properties.analyticsTracking.enabled", "bool"),
    ),
)

SCHEMA_ARGUMENTS = {
    "condition_outcome": "conditionOutcome",
    "dequeue_reason": "dequeueReason",
    "filter_result": "filterResult",
    "last_executed_activity_key": "lastExecutedActivityKey",
    "start_activity_key": "startActivityKey",
}
SCHEMA_FIELDS = {
    "access": ("access", "text"),
    "data_type": ("dataType", "text"),
    "direction": ("direction", "text"),
    "is_nullable": ("isNullable", "bool"),
    "read_only": ("readOnly", "bool"),
}


def _schema_columns() -> tuple[Column, ...]:
    columns = []
    for arg, arg_source in SCHEMA_ARGUMENTS.items():
        for suffix, (field_source, kind) in SCHEMA_FIELDS.items():
            # The seed spells dequeue reason's data type column "..._type"; keep it.
            if arg == "dequeue_reason" and suffix == "data_type":
                suffix = "type"
            columns.append(
                Column(
                    f"schema_args_{arg}_{suffix}",
                    f"schema.arguments.{arg_source}.{field_source}",
                    kind,
                )
            )
    return tuple(columns)


GOALS = Collection(
    name="goals",
    api="the goals and exits of each interaction version",
    primary_key=("interaction_id", "interaction_version", "key"),
    parent="interactions",
    strategy="with their interaction: every version's goals replaced on every run",
    permission=JOURNEYS,
    columns=_columns(
        ("interaction_id", "interaction_id"),
        ("interaction_version", "interaction_version", "bigint"),
        ("key", "key"),
        ("name", "name"),
        ("description", "description"),
        ("type", "type"),
        ("arguments_dequeue_reason", "arguments.dequeueReason"),
        ("arguments_filter_result", "arguments.filterResult"),
        ("arguments_last_executed_activity_key", "arguments.lastExecutedActivityKey"),
        ("start_activity_key", "arguments.startActivityKey"),
        ("config_arguments_filter_def_id", "configurationArguments.filterDefinitionId"),
        ("config_arguments_criteria", "configurationArguments.criteria"),
        ("config_arguments_schema_version_id", "configurationArguments.schemaVersionId", "bigint"),
        ("metadata_is_exit_criteria", "metaData.isExitCriteria", "bool"),
        ("metadata_conversion_unit", "metaData.conversionUnit"),
        ("metadata_conversion_value", "metaData.conversionValue", "double"),
        ("metadata_event_definition_id", "metaData.eventDefinitionId"),
        ("metadata_event_definition_key", "metaData.eventDefinitionKey"),
        ("metadata_configuration_description", "metaData.configurationDescription"),
        ("metadata_configuration_chain_type", "metaData.chainType"),
        ("metadata_configuration_required", "metaData.configurationRequired", "bool"),
        ("metadata_configuration_icon_url", "metaData.iconUrl"),
        ("metadata_configuration_title", "metaData.title"),
    )
    + _schema_columns(),
)

COLLECTIONS = {c.name: c for c in (CAMPAIGNS, CAMPAIGN_ASSETS, LISTS, INTERACTIONS, GOALS)}
