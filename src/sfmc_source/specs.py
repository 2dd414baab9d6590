"""The collections, as data: one row each.

A row names the table, its primary key, the API it comes from, how it stays incremental, the
permission a package needs for it, and its columns: seed column name ← source path, with the
warehouse type. ``rows.py`` shapes records with these columns; ``source.py`` wires them to dlt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sfmc_source.errors import ConfigError


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
    soap_object: str | None = None  # the SOAP object it retrieves; None for REST

    @property
    def table_key(self) -> tuple[str, ...]:
        """The warehouse primary key: the business unit, then the collection's own key."""
        return (BUSINESS_UNIT_ID.name, *self.primary_key)

    @property
    def table_columns(self) -> tuple[Column, ...]:
        """The warehouse columns: the collection's, then the business unit's."""
        return (*self.columns, BUSINESS_UNIT_ID)


# On every row of every table: the MID of the business unit the row was read in.
BUSINESS_UNIT_ID = Column("business_unit_id", "the business unit (MID) synced", "bigint")


def _columns(*specs: tuple[str, str] | tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


HUB = "Hub > Campaigns > Read"
CONTACTS = "Contacts > Lists and Subscribers > Read"
JOURNEYS = "Automation > Journeys > Read"
EMAIL = "Email > Read"
TRACKING = "Data > Tracking Events > Read"

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
    soap_object="List",
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

SUBSCRIBERS = Collection(
    soap_object="Subscriber",
    name="subscribers",
    api="SOAP Retrieve Subscriber",
    primary_key=("id",),
    parent="list_subscribers",
    strategy="the subscribers of changed list memberships, 100 SubscriberKeys a request "
    "(Subscriber has no ModifiedDate); all of them on a first sync or a full refresh",
    permission=CONTACTS,
    columns=_columns(
        ("id", "ID", "bigint"),
        ("subscriber_key", "SubscriberKey"),
        ("email_address", "EmailAddress"),
        ("status", "Status"),
        ("email_type_preference", "EmailTypePreference"),
        ("unsubscribed_date", "UnsubscribedDate", "timestamp"),
        ("created_date", "CreatedDate", "timestamp"),
        ("partner_key", "PartnerKey"),
        ("client_id", "Client.ID", "bigint"),
        ("client_partner_client_key", "Client.PartnerClientKey"),
    ),
)

LIST_SUBSCRIBERS = Collection(
    soap_object="ListSubscriber",
    name="list_subscribers",
    api="SOAP Retrieve ListSubscriber",
    primary_key=("list_id", "subscriber_key"),
    cursor="modified_date",
    strategy="ModifiedDate filter from the cursor",
    permission=CONTACTS,
    columns=_columns(
        ("list_id", "ListID", "bigint"),
        ("subscriber_key", "SubscriberKey"),
        ("status", "Status"),
        ("created_date", "CreatedDate", "timestamp"),
        ("modified_date", "ModifiedDate", "timestamp"),
        ("object_id", "ObjectID"),
        ("partner_key", "PartnerKey"),
        ("client_id", "Client.ID", "bigint"),
    ),
)

SENDS = Collection(
    soap_object="Send",
    name="sends",
    api="SOAP Retrieve Send",
    primary_key=("id",),
    cursor="modified_date",
    strategy="ModifiedDate filter from the cursor, plus a re-read by ID of the sends of the "
    "last 30 days and of those with new tracking events (counters move without ModifiedDate)",
    permission=EMAIL,
    columns=_columns(
        ("id", "ID", "bigint"),
        ("email_id", "EmailID", "bigint"),
        ("email_name", "EmailName"),
        ("subject", "Subject"),
        ("from_address", "FromAddress"),
        ("from_name", "FromName"),
        ("bcc_email", "BccEmail"),
        ("status", "Status"),
        ("is_always_on", "IsAlwaysOn", "bool"),
        ("is_multipart", "IsMultipart", "bool"),
        ("send_date", "SendDate", "timestamp"),
        ("sent_date", "SentDate", "timestamp"),
        ("preview_url", "PreviewURL"),
        ("number_targeted", "NumberTargeted", "bigint"),
        ("number_sent", "NumberSent", "bigint"),
        ("number_delivered", "NumberDelivered", "bigint"),
        ("number_errored", "NumberErrored", "bigint"),
        ("number_excluded", "NumberExcluded", "bigint"),
        ("hard_bounces", "HardBounces", "bigint"),
        ("soft_bounces", "SoftBounces", "bigint"),
        ("other_bounces", "OtherBounces", "bigint"),
        ("unique_opens", "UniqueOpens", "bigint"),
        ("unique_clicks", "UniqueClicks", "bigint"),
        ("unsubscribes", "Unsubscribes", "bigint"),
        ("forwarded_emails", "ForwardedEmails", "bigint"),
        ("missing_addresses", "MissingAddresses", "bigint"),
        ("duplicates", "Duplicates", "bigint"),
        ("invalid_addresses", "InvalidAddresses", "bigint"),
        ("created_date", "CreatedDate", "timestamp"),
        ("modified_date", "ModifiedDate", "timestamp"),
        ("partner_key", "PartnerKey"),
        ("client_id", "Client.ID", "bigint"),
    ),
)

# The natural key of an event (docs/sfmc-api.md#event-natural-key) may hold a null
# SubscriberKey, which no primary key column can: ``event_key`` joins its parts into one text
# (``shape_events``).
EVENT_KEY = Column("event_key", "SendID|EventType|SubscriberKey|EventDate|BatchID[|URL]")
EVENT_COLUMNS = _columns(
    ("send_id", "SendID", "bigint"),
    ("subscriber_key", "SubscriberKey"),
    ("event_date", "EventDate", "timestamp"),
    ("event_type", "EventType"),
    ("batch_id", "BatchID", "bigint"),
    ("triggered_send_definition_object_id", "TriggeredSendDefinitionObjectID"),
    ("partner_key", "PartnerKey"),
    ("client_id", "Client.ID", "bigint"),
)
EVENT_EXTRAS = {
    "SentEvent": _columns(
        ("list_id", "ListID", "bigint"), ("subscriber_id", "SubscriberID", "bigint")
    ),
    "OpenEvent": (),
    "ClickEvent": _columns(
        ("url", "URL"), ("url_id", "URLID", "bigint"), ("url_id_long", "URLIDLong", "bigint")
    ),
    "BounceEvent": _columns(
        ("bounce_category", "BounceCategory"),
        ("bounce_type", "BounceType"),
        ("smtp_code", "SMTPCode"),
        ("smtp_reason", "SMTPReason"),
    ),
    "UnsubEvent": _columns(("is_master_unsubscribed", "IsMasterUnsubscribed", "bool")),
    "NotSentEvent": (),
}
EVENTS_STRATEGY = (
    "half-open EventDate windows from the cursor less 6 hours (late events) to now; a first "
    "sync starts --backfill-days (730) back, in 30-day windows that widen while quiet"
)


def _event_collection(name: str, object_type: str) -> Collection:
    return Collection(
        name=name,
        api=f"SOAP Retrieve {object_type}",
        soap_object=object_type,
        primary_key=("event_key",),
        cursor="event_date",
        strategy=EVENTS_STRATEGY,
        permission=TRACKING,
        columns=(EVENT_KEY, *EVENT_COLUMNS, *EVENT_EXTRAS[object_type]),
    )


# The object each event collection reads.
EVENT_OBJECTS = {
    "sent_events": "SentEvent",
    "open_events": "OpenEvent",
    "click_events": "ClickEvent",
    "bounce_events": "BounceEvent",
    "unsub_events": "UnsubEvent",
    "not_sent_events": "NotSentEvent",
}
EVENTS = tuple(_event_collection(name, obj) for name, obj in EVENT_OBJECTS.items())

COLLECTIONS = {
    c.name: c
    for c in (
        CAMPAIGNS,
        CAMPAIGN_ASSETS,
        LISTS,
        INTERACTIONS,
        GOALS,
        LIST_SUBSCRIBERS,
        SUBSCRIBERS,
        SENDS,
        *EVENTS,
    )
}


def selected(names: Sequence[str] | None) -> set[str]:
    """The collections a run syncs: ``names`` (all when none) and their parents, since a child
    is read from its parent, whose cursor must move with it. An unknown name is a usage error."""
    wanted = set(names or COLLECTIONS)
    unknown = sorted(wanted - set(COLLECTIONS))
    if unknown:
        raise ConfigError(
            f"unknown collection {', '.join(unknown)}; choose from {', '.join(COLLECTIONS)}"
        )
    return wanted | {p for p in (COLLECTIONS[n].parent for n in wanted) if p}
