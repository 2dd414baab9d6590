"""The collections, as data: one row each.

A row names the table, its primary key, the API it comes from, how it stays incremental, the
permission a package needs for it, and its columns: seed column name ← source path, with the
warehouse type. ``rows.py`` shapes records with these columns; ``source.py`` wires them to dlt.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypeAlias

from sfmc_source.errors import ConfigError


@dataclass(frozen=True)
class Column:
    """``source`` is a dotted path into a REST item, or a SOAP property name."""

    name: str
    source: str
    type: str = "text"  # a dlt data type: text, bigint, double, bool, timestamp or json
    # The source option (``sfmc_source(email_bodies=True)``) without which the column is
    # neither read nor in the table; None: always.
    option: str | None = None


@dataclass(frozen=True)
class Rest:
    """Read with REST GETs of ``path``, paged by the paginator of that name
    (``paging.PAGINATORS``). Under a parent, ``{column}`` in the path and params is that
    column of each parent row; ``within``: the rows are the entries of that array of each
    item."""

    path: str
    params: tuple[tuple[str, str], ...] = ()
    paginator: str = "pages"
    note: str = ""  # said after the path, for people
    within: str = ""

    @property
    def api(self) -> str:
        # a parent's values in the query are part of what is read: say them
        templated = any("{" in value for _, value in self.params)
        query = "?" + "&".join(f"{n}={v}" for n, v in self.params) if templated else ""
        return f"REST GET /{self.path}{query}{f' ({self.note})' if self.note else ''}"


@dataclass(frozen=True)
class Soap:
    """Read with SOAP Retrieves of ``object``; ``describe``: a Describe first names the
    properties this tenant cannot return (they stay null)."""

    object: str
    describe: bool = False

    @property
    def api(self) -> str:
        return f"SOAP Retrieve {self.object}"


@dataclass(frozen=True)
class Nested:
    """Rows shaped from arrays inside each parent record, read with it; ``parent_key`` names
    each of the row's columns that holds a column of the parent's key."""

    arrays: tuple[str, ...]
    parent_key: tuple[tuple[str, str], ...]

    def api(self, parent: str) -> str:
        arrays = " and ".join(self.arrays)
        return f"the {arrays} of each {parent.removesuffix('s')} version"


# ---- how a collection stays incremental: each says so for ``sfmc-source collections`` ----


@dataclass(frozen=True)
class Cursor:
    """Rows whose ``column`` moved past the highest loaded, less ``overlap``: a filter, or
    for a listing ordered newest first, paging that stops past the cursor. ``recent``: the
    rows of that many days back are read again by id, with those a dependency found new
    events for (their counters move without ``column`` moving)."""

    column: str = "modified_date"
    overlap: timedelta = timedelta(hours=1)
    newest_first: bool = False
    recent: timedelta | None = None
    backfill: bool = False  # a first sync starts --backfill-days back, not at the beginning
    recent_dates: tuple[str, str] = ("", "")  # what dates a row for ``recent``: one, else two


@dataclass(frozen=True)
class EventWindows:
    """Half-open windows of ``column`` from the cursor less ``overlap`` (late events) to now;
    a first sync starts --backfill-days back."""

    column: str = "event_date"
    overlap: timedelta = timedelta(hours=6)


@dataclass(frozen=True)
class ChangedParents:
    """Read again for each parent row whose ``stamp`` column moved since its rows were read;
    they replace that parent's rows. ``parent_key``: each of the row's columns that holds a
    column of the parent's key (a parent with no rows left gets a marker row of them that
    deletes its old ones). The stamps read are kept for the parents a later run can list
    again: for a parent listed in full, exactly those listed; else those its cursor's
    overlap reads again."""

    parent_key: tuple[tuple[str, str], ...]
    stamp: str = "modified_date"


@dataclass(frozen=True)
class ParentKeys:
    """The rows whose ``column`` the parent's rows name, ``batch`` keys a request; every row
    on a unit's first sync and on a full refresh."""

    column: str
    batch: int = 100


@dataclass(frozen=True)
class Listed:
    """Listed in full every run."""

    why: str = ""


Strategy: TypeAlias = Cursor | EventWindows | ChangedParents | ParentKeys | Listed


@dataclass(frozen=True)
class Collection:
    """One table: everything a collection is, declared once. The resource, its load group,
    ``collections``' prose and ``check``'s probe are derived from it."""

    name: str
    primary_key: tuple[str, ...]
    permission: str  # the Installed Package permission it needs (the seed's table)
    columns: tuple[Column, ...]
    source: Rest | Soap | Nested
    incremental: Strategy
    parent: str | None = None
    # None: merged on the key. A tuple: each load replaces the rows of the units (and of the
    # values of these columns) it read, so rows SFMC removed go too.
    replaced_by: tuple[str, ...] | None = None
    # The collections whose learned state this one reads (their group loads first).
    depends_on: tuple[str, ...] = ()

    @property
    def table_key(self) -> tuple[str, ...]:
        """The warehouse primary key: the business unit, then the collection's own key."""
        return (BUSINESS_UNIT_ID.name, *self.primary_key)

    @property
    def table_columns(self) -> tuple[Column, ...]:
        """The warehouse columns: the collection's, then the business unit's."""
        return (*self.columns, BUSINESS_UNIT_ID)

    @property
    def cursor(self) -> str | None:
        return getattr(self.incremental, "column", None)

    @property
    def soap_object(self) -> str | None:
        return self.source.object if isinstance(self.source, Soap) else None

    @property
    def api(self) -> str:
        """Where it comes from, for people."""
        if isinstance(self.source, Nested):
            return self.source.api(self.parent or "")
        return self.source.api

    @property
    def strategy(self) -> str:
        """How it stays incremental, for people."""
        return describe(self)

    @property
    def probe_property(self) -> str:
        """A property to probe the SOAP object with: its first column that SFMC sends."""
        first = next(c for c in self.columns if c is not EVENT_KEY)
        return (
            self.source_of(self.primary_key[0])
            if self.primary_key[0] != EVENT_KEY.name
            else first.source
        )

    def source_of(self, column: str) -> str:
        return next(c.source for c in self.columns if c.name == column)

    def with_options(self, options: AbstractSet[str]) -> Collection:
        """The collection as a run with these source options reads it: without the columns
        of the options not given."""
        columns = tuple(c for c in self.columns if c.option is None or c.option in options)
        return self if columns == self.columns else replace(self, columns=columns)


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
    source=Rest("hub/v1/campaigns", (("$orderBy", "ModifiedDate DESC"),)),
    incremental=Cursor(newest_first=True),
    primary_key=("id",),
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
    source=Rest("hub/v1/campaigns/{id}/assets"),
    incremental=ChangedParents((("campaign_id", "id"),)),
    parent="campaigns",
    replaced_by=("campaign_id",),
    primary_key=("id",),
    permission=HUB,
    columns=_columns(
        ("id", "id"),
        ("campaign_id", "campaignId"),
        ("item_id", "itemID"),
        ("type", "type"),
        ("created_date", "createdDate", "timestamp"),
        # extra: TRIGGERED and AUTOMATION_DEFINITION assets name their object by GUID instead
        ("object_id", "objectID"),
    ),
)

LISTS = Collection(
    name="lists",
    source=Soap("List", describe=True),
    incremental=Cursor(),
    primary_key=("id",),
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

FOLDERS = Collection(
    name="folders",
    source=Soap("DataFolder"),
    incremental=Listed("folders are few, and a deleted one leaves nothing a cursor could find"),
    replaced_by=(),
    primary_key=("id",),
    # No permission is documented for DataFolder; lists' folders are read with lists'.
    permission=CONTACTS,
    columns=_columns(
        ("id", "ID", "bigint"),
        ("name", "Name"),
        ("description", "Description"),
        ("content_type", "ContentType"),
        ("parent_folder_id", "ParentFolder.ID", "bigint"),
        ("is_active", "IsActive", "bool"),
        ("is_editable", "IsEditable", "bool"),
        ("allow_children", "AllowChildren", "bool"),
        ("customer_key", "CustomerKey"),
        ("created_date", "CreatedDate", "timestamp"),
        ("modified_date", "ModifiedDate", "timestamp"),
        ("client_id", "Client.ID", "bigint"),
    ),
)

INTERACTIONS = Collection(
    name="interactions",
    source=Rest(
        "interaction/v1/interactions",
        (("mostRecentVersionOnly", "false"), ("$orderBy", "ModifiedDate DESC")),
        note="all versions",
    ),
    incremental=Listed("stats are live counters (one request per 50 versions)"),
    primary_key=("id", "version"),
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
    source=Nested(
        ("goals", "exits"), (("interaction_id", "id"), ("interaction_version", "version"))
    ),
    incremental=Listed(),
    parent="interactions",
    replaced_by=(),
    primary_key=("interaction_id", "interaction_version", "key"),
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

JOURNEY_ACTIVITIES = Collection(
    name="journey_activities",
    # The listing's extras=activities is uncertain, the single GET's is confirmed; without
    # versionNumber it can answer 404 (docs/sfmc-api.md#journey-activities).
    source=Rest(
        "interaction/v1/interactions/key:{key}",
        (("versionNumber", "{version}"), ("extras", "activities")),
        paginator="one",
        within="activities",
    ),
    incremental=ChangedParents((("interaction_id", "id"), ("interaction_version", "version"))),
    parent="interactions",
    replaced_by=("interaction_id", "interaction_version"),
    primary_key=("interaction_id", "interaction_version", "key"),
    permission=JOURNEYS,
    columns=_columns(
        ("interaction_id", "interaction_id"),
        ("interaction_version", "interaction_version", "bigint"),
        ("key", "key"),
        ("id", "id"),
        ("name", "name"),
        ("description", "description"),
        ("type", "type"),
        ("outcomes", "outcomes", "json"),
        ("arguments", "arguments", "json"),
        ("configuration_arguments", "configurationArguments", "json"),
        ("metadata", "metaData", "json"),
        # join keys (EMAILV2): the TriggeredSendDefinition's ObjectID and the legacy email id
        ("triggered_send_id", "configurationArguments.triggeredSendId"),
        ("email_id", "configurationArguments.triggeredSend.emailId", "bigint"),
    ),
)

SUBSCRIBERS = Collection(
    name="subscribers",
    source=Soap("Subscriber"),
    incremental=ParentKeys("subscriber_key"),
    parent="list_subscribers",
    primary_key=("id",),
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
    name="list_subscribers",
    source=Soap("ListSubscriber"),
    incremental=Cursor(),
    primary_key=("list_id", "subscriber_key"),
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

# The object each event collection reads.
EVENT_OBJECTS = {
    "sent_events": "SentEvent",
    "open_events": "OpenEvent",
    "click_events": "ClickEvent",
    "bounce_events": "BounceEvent",
    "unsub_events": "UnsubEvent",
    "not_sent_events": "NotSentEvent",
}

SENDS = Collection(
    name="sends",
    source=Soap("Send"),
    incremental=Cursor(
        recent=timedelta(days=30), recent_dates=("send_date", "created_date"), backfill=True
    ),
    depends_on=tuple(EVENT_OBJECTS),
    primary_key=("id",),
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

# Classic emails only: Content Builder emails are REST assets (docs/sfmc-api.md#email).
EMAILS = Collection(
    name="emails",
    source=Soap("Email"),
    incremental=Cursor(),
    primary_key=("id",),
    permission=EMAIL,
    columns=(
        *_columns(
            ("id", "ID", "bigint"),
            ("customer_key", "CustomerKey"),
            ("name", "Name"),
            ("subject", "Subject"),
            ("category_id", "CategoryID", "bigint"),
            ("email_type", "EmailType"),
            ("is_html_paste", "IsHTMLPaste", "bool"),
            ("character_set", "CharacterSet"),
            ("status", "Status"),
            ("content_check_status", "ContentCheckStatus"),
            ("has_dynamic_subject_line", "HasDynamicSubjectLine", "bool"),
            ("created_date", "CreatedDate", "timestamp"),
            ("modified_date", "ModifiedDate", "timestamp"),
        ),
        # whole documents: read only when asked for (--email-bodies)
        Column("html_body", "HTMLBody", option="email_bodies"),
        Column("text_body", "TextBody", option="email_bodies"),
    ),
)

TRIGGERED_SENDS = Collection(
    name="triggered_sends",
    source=Soap("TriggeredSendDefinition"),
    incremental=Listed(
        "a ModifiedDate filter is unproven and definitions are few "
        "(one Retrieve); Deleted ones keep their row with that status"
    ),
    replaced_by=(),
    primary_key=("object_id",),
    permission=EMAIL,
    columns=_columns(
        ("object_id", "ObjectID"),
        ("customer_key", "CustomerKey"),
        ("name", "Name"),
        ("description", "Description"),
        ("status", "TriggeredSendStatus"),
        ("email_id", "Email.ID", "bigint"),
        ("list_id", "List.ID", "bigint"),
        ("send_classification_key", "SendClassification.CustomerKey"),
        ("priority", "Priority"),
        ("created_date", "CreatedDate", "timestamp"),
        ("modified_date", "ModifiedDate", "timestamp"),
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


def _event_collection(name: str, object_type: str) -> Collection:
    return Collection(
        name=name,
        source=Soap(object_type),
        incremental=EventWindows(),
        primary_key=("event_key",),
        permission=TRACKING,
        columns=(EVENT_KEY, *EVENT_COLUMNS, *EVENT_EXTRAS[object_type]),
    )


EVENTS = tuple(_event_collection(name, obj) for name, obj in EVENT_OBJECTS.items())

COLLECTIONS = {
    c.name: c
    for c in (
        CAMPAIGNS,
        CAMPAIGN_ASSETS,
        LISTS,
        FOLDERS,
        INTERACTIONS,
        GOALS,
        JOURNEY_ACTIVITIES,
        LIST_SUBSCRIBERS,
        SUBSCRIBERS,
        SENDS,
        EMAILS,
        TRIGGERED_SENDS,
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


def load_groups() -> tuple[tuple[str, ...], ...]:
    """The collections loaded together: each collection without a parent with those read
    from it. A group whose collections depend on another's learned state loads after it."""
    groups = [(c.name, *_descendants(c.name)) for c in COLLECTIONS.values() if c.parent is None]
    ordered: list[tuple[str, ...]] = []
    while groups:
        ready = next(g for g in groups if not _needs(g, groups))
        ordered.append(ready)
        groups.remove(ready)
    return tuple(ordered)


def _descendants(name: str) -> list[str]:
    children = [c.name for c in COLLECTIONS.values() if c.parent == name]
    return [d for child in children for d in (child, *_descendants(child))]


def _needs(group: tuple[str, ...], waiting: list[tuple[str, ...]]) -> bool:
    """Whether ``group`` depends on a collection of another group not yet ordered."""
    needed = {d for name in group for d in COLLECTIONS[name].depends_on}
    pending = {n for g in waiting if g is not group for n in g}
    return bool(needed & pending)


def describe(collection: Collection) -> str:
    """How ``collection`` stays incremental, in words derived from its declaration."""
    how = collection.incremental
    parent = COLLECTIONS[collection.parent] if collection.parent else None
    if isinstance(how, Cursor):
        return _describe_cursor(collection, how)
    if isinstance(how, EventWindows):
        field = collection.source_of(how.column)
        return (
            f"half-open {field} windows from the cursor less {_hours(how.overlap)} (late "
            "events) to now; a first sync starts --backfill-days back, in 30-day windows "
            "that widen while quiet"
        )
    if isinstance(how, ChangedParents):
        assert parent is not None
        return (
            f"re-read for each row of {parent.name} whose {parent.source_of(how.stamp)} moved "
            f"(all of them on a full refresh); they replace that row's {collection.name}"
        )
    if isinstance(how, ParentKeys):
        assert parent is not None
        key = collection.source_of(how.column)
        return (
            f"the {collection.name} of changed {parent.name}, {how.batch} {key}s a request; "
            "all of them on a first sync or a full refresh"
        )
    replaced = "" if collection.replaced_by is None else "; each run replaces the unit's"
    if isinstance(collection.source, Nested):
        assert parent is not None
        return f"read with {parent.name}, listed in full every run{replaced}"
    return f"listed in full every run{f': {how.why}' if how.why else ''}{replaced}"


def _describe_cursor(collection: Collection, how: Cursor) -> str:
    field = collection.source_of(how.column)
    if how.newest_first:
        text = f"page by {field} DESC, stop past the cursor"
    else:
        text = f"{field} filter from the cursor"
    if how.recent is not None:
        readers = ", ".join(collection.depends_on)
        text += (
            f", plus a re-read by ID of those of the last {how.recent.days} days and of those "
            f"{readers} found new events for (counters move without {field})"
        )
    return text


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} hours"
