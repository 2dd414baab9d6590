"""The SOAP object catalogue: which objects the emulator serves, with their properties as data.

Each object is one row: its name, the scope its package needs, its properties in WSDL order
(that is the order SFMC writes them) with their Describe data type, and where its records
live (docs/sfmc-api.md#objects): ``Row`` objects, or for tracking events an ``EventTable`` of
columns.
Data extensions are still to come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from sfmc_source.emulator.data import BusinessUnit, Row
from sfmc_source.emulator.tracking import EventTable


@dataclass(frozen=True)
class SoapProperty:
    """One property as Describe reports it. ``nillable`` ones are written ``xsi:nil`` when null
    (WSDL); dotted names (``Client.ID``) nest inside their parent element."""

    name: str
    data_type: str
    retrievable: bool = True
    updatable: bool = True
    nillable: bool = False
    max_length: int | None = None
    # Returned as a PartnerProperties Name/Value pair, not an element of its own (SentEvent).
    pair: bool = False

    @property
    def parent(self) -> str | None:
        return self.name.split(".", 1)[0] if "." in self.name else None


@dataclass(frozen=True)
class SoapObject:
    name: str
    scope: str
    properties: tuple[SoapProperty, ...]
    rows: Callable[[BusinessUnit], Iterable[Row]]
    # Where a tracking event object's rows are (``rows`` then makes a Row of each, in order).
    table: Callable[[BusinessUnit], EventTable] | None = None

    def property(self, name: str) -> SoapProperty | None:
        return self.by_name.get(name)

    @cached_property
    def by_name(self) -> dict[str, SoapProperty]:
        return {p.name: p for p in self.properties}


def _client_properties() -> tuple[SoapProperty, ...]:
    return (
        SoapProperty("Client", "ClientID", retrievable=False),
        SoapProperty("Client.ID", "Int32"),
        SoapProperty("Client.PartnerClientKey", "String", max_length=100),
        SoapProperty("Client.UserID", "Int32"),
        SoapProperty("Client.PartnerUserKey", "String", max_length=100),
        SoapProperty("Client.CreatedBy", "Int32", updatable=False),
        SoapProperty("Client.ModifiedBy", "Int32", updatable=False),
        SoapProperty("Client.EnterpriseID", "Int64", updatable=False),
        SoapProperty("Client.CustomerKey", "String", max_length=100),
    )


def _api_object(*retrievable: str) -> tuple[SoapProperty, ...]:
    """APIObject's part, in WSDL order, for objects that let only ``retrievable`` of its plain
    properties be retrieved (the ``Client`` children always can)."""
    plain = (
        ("CreatedDate", "DateTime"),
        ("ModifiedDate", "DateTime"),
        ("ID", "Int32"),
        ("ObjectID", "String"),
        ("CustomerKey", "String"),
        ("Owner", "Owner"),
        ("CorrelationID", "String"),
        ("ObjectState", "String"),
    )
    return (
        *_client_properties(),
        SoapProperty("PartnerKey", "String", nillable=True, max_length=100),
        SoapProperty("PartnerProperties", "APIProperty[]", retrievable=False),
        *(
            SoapProperty(
                name,
                kind,
                retrievable=name in retrievable,
                nillable=name in ("ObjectID", "ModifiedDate"),
            )
            for name, kind in plain
        ),
    )


LIST = SoapObject(
    name="List",
    scope="list_and_subscribers_read",
    properties=(
        *_client_properties(),
        SoapProperty("PartnerKey", "String", nillable=True, max_length=100),
        SoapProperty("PartnerProperties", "APIProperty[]", retrievable=False),
        SoapProperty("CreatedDate", "DateTime", updatable=False),
        SoapProperty("ModifiedDate", "DateTime", updatable=False, nillable=True),
        SoapProperty("ID", "Int32"),
        SoapProperty("ObjectID", "String", nillable=True, max_length=36),
        SoapProperty("CustomerKey", "String", max_length=36),
        SoapProperty("Owner", "Owner", retrievable=False),
        SoapProperty("CorrelationID", "String", retrievable=False),
        SoapProperty("ObjectState", "String", retrievable=False),
        SoapProperty("ListName", "String", max_length=50),
        SoapProperty("Category", "Int32"),
        SoapProperty("Type", "ListTypeEnum"),
        SoapProperty("Description", "String", max_length=4000),
        SoapProperty("Subscribers", "Subscriber[]", retrievable=False),
        SoapProperty("ListClassification", "ListClassificationEnum"),
        SoapProperty("AutomatedEmail.ID", "Int32"),
    ),
    rows=lambda unit: unit.lists.values(),
)

DATA_FOLDER = SoapObject(
    name="DataFolder",
    # undocumented (docs/sfmc-api.md#datafolder): served to packages that can read lists
    scope="list_and_subscribers_read",
    properties=(
        *_api_object("CreatedDate", "ModifiedDate", "ID", "ObjectID", "CustomerKey"),
        SoapProperty("ParentFolder", "DataFolder", retrievable=False),
        SoapProperty("ParentFolder.PartnerKey", "String", nillable=True),
        SoapProperty("ParentFolder.ID", "Int32"),
        SoapProperty("ParentFolder.ObjectID", "String", nillable=True),
        SoapProperty("ParentFolder.CustomerKey", "String"),
        SoapProperty("Name", "String", max_length=200),
        SoapProperty("Description", "String", max_length=400),
        SoapProperty("ContentType", "String"),
        SoapProperty("IsActive", "Boolean"),
        SoapProperty("IsEditable", "Boolean"),
        SoapProperty("AllowChildren", "Boolean"),
        # listed by the tap's schema, never populated
        SoapProperty("Type", "String"),
    ),
    rows=lambda unit: unit.folders.values(),  # ParentFolder's PartnerKey, ObjectID: nil
)

SUBSCRIBER = SoapObject(
    name="Subscriber",
    scope="list_and_subscribers_read",
    properties=(
        # ModifiedDate is documented but not retrievable (a recorded Describe,
        # docs/sfmc-api.md#subscriber)
        *_api_object("CreatedDate", "ID"),
        SoapProperty("EmailAddress", "String", max_length=254),
        SoapProperty("Attributes", "Attribute[]", retrievable=False),
        SoapProperty("SubscriberKey", "String", max_length=254),
        SoapProperty("UnsubscribedDate", "DateTime", nillable=True),
        SoapProperty("Status", "SubscriberStatus"),
        SoapProperty("PartnerType", "String", retrievable=False),
        SoapProperty("EmailTypePreference", "EmailType"),
        SoapProperty("Lists", "SubscriberList[]", retrievable=False),
        SoapProperty("Locale", "Locale", retrievable=False),
    ),
    rows=lambda unit: unit.subscribers.values(),
)

LIST_SUBSCRIBER = SoapObject(
    name="ListSubscriber",
    scope="list_and_subscribers_read",
    properties=(
        *_api_object("CreatedDate", "ModifiedDate", "ID"),
        SoapProperty("Status", "SubscriberStatus"),
        SoapProperty("ListID", "Int32"),
        SoapProperty("SubscriberKey", "String", max_length=254),
    ),
    rows=lambda unit: unit.list_subscribers,
)

SEND = SoapObject(
    name="Send",
    scope="email_read",
    properties=(
        *_api_object("CreatedDate", "ModifiedDate", "ID"),
        SoapProperty("SendDate", "DateTime", nillable=True),
        SoapProperty("FromAddress", "String"),
        SoapProperty("FromName", "String"),
        SoapProperty("Duplicates", "Int32"),
        SoapProperty("InvalidAddresses", "Int32"),
        SoapProperty("ExistingUndeliverables", "Int32", retrievable=False),
        SoapProperty("ExistingUnsubscribes", "Int32", retrievable=False),
        SoapProperty("HardBounces", "Int32"),
        SoapProperty("SoftBounces", "Int32"),
        SoapProperty("OtherBounces", "Int32"),
        SoapProperty("ForwardedEmails", "Int32"),
        SoapProperty("UniqueClicks", "Int32"),
        SoapProperty("UniqueOpens", "Int32"),
        SoapProperty("NumberSent", "Int32"),
        SoapProperty("NumberDelivered", "Int32"),
        SoapProperty("NumberTargeted", "Int32"),
        SoapProperty("NumberErrored", "Int32"),
        SoapProperty("NumberExcluded", "Int32"),
        SoapProperty("Unsubscribes", "Int32"),
        SoapProperty("MissingAddresses", "Int32"),
        SoapProperty("Subject", "String"),
        SoapProperty("PreviewURL", "String"),
        SoapProperty("SentDate", "DateTime", nillable=True),
        SoapProperty("EmailName", "String"),
        SoapProperty("Status", "String"),
        SoapProperty("IsMultipart", "Boolean"),
        SoapProperty("IsAlwaysOn", "Boolean"),
        SoapProperty("BccEmail", "String"),
        # accepted, never populated (docs/sfmc-api.md#send)
        SoapProperty("EmailID", "Int32"),
    ),
    rows=lambda unit: unit.sends.values(),
)


EMAIL = SoapObject(
    name="Email",
    scope="email_read",
    properties=(
        # ObjectID always nil (docs/sfmc-api.md#email)
        *_api_object("CreatedDate", "ModifiedDate", "ID", "CustomerKey"),
        SoapProperty("Name", "String"),
        SoapProperty("Folder", "String"),
        SoapProperty("CategoryID", "Int32"),
        SoapProperty("HTMLBody", "String"),
        SoapProperty("TextBody", "String"),
        SoapProperty("ContentAreas", "ContentArea[]", retrievable=False),
        SoapProperty("Subject", "String"),
        SoapProperty("IsActive", "Boolean"),
        SoapProperty("IsHTMLPaste", "Boolean"),
        SoapProperty("ClonedFromID", "Int32"),
        SoapProperty("Status", "String"),
        SoapProperty("EmailType", "String"),
        SoapProperty("CharacterSet", "String"),
        SoapProperty("HasDynamicSubjectLine", "Boolean"),
        SoapProperty("ContentCheckStatus", "String"),
        SoapProperty("SyncTextWithHTML", "Boolean", retrievable=False),
        SoapProperty("PreHeader", "String"),
    ),
    rows=lambda unit: unit.emails.values(),
)


def _with_pairs(api: tuple[SoapProperty, ...], *pairs: SoapProperty) -> tuple[SoapProperty, ...]:
    """APIObject's part with ``pairs`` right after PartnerProperties, as SFMC writes them."""
    at = next(i for i, p in enumerate(api) if p.name == "PartnerProperties")
    return (*api[: at + 1], *pairs, *api[at + 1 :])


def _reference(name: str, *plain: tuple[str, str]) -> tuple[SoapProperty, ...]:
    """A nested object reference such as ``<Email>``: its ``PartnerKey`` and ``ObjectID``
    (written whenever it is, docs/sfmc-api.md#retrieve-response) around ``plain``."""
    return (
        SoapProperty(f"{name}.PartnerKey", "String", nillable=True),
        *(SoapProperty(f"{name}.{prop}", kind) for prop, kind in plain),
        SoapProperty(f"{name}.ObjectID", "String", nillable=True),
    )


TRIGGERED_SEND_DEFINITION = SoapObject(
    name="TriggeredSendDefinition",
    scope="email_read",
    properties=(
        # ID is not returned (docs/sfmc-api.md#triggeredsenddefinition)
        *_with_pairs(
            _api_object("CreatedDate", "ModifiedDate", "ObjectID", "CustomerKey"),
            SoapProperty("TestEmailAddr", "String", pair=True),
        ),
        SoapProperty("IsPlatformObject", "Boolean"),
        SoapProperty("Name", "String"),
        SoapProperty("Description", "String"),
        SoapProperty("Keyword", "String"),
        SoapProperty("CategoryID", "Int32"),
        *_reference("SendClassification", ("CustomerKey", "String")),
        SoapProperty("FromName", "String"),
        SoapProperty("FromAddress", "String"),
        SoapProperty("TriggeredSendType", "String"),
        SoapProperty("TriggeredSendStatus", "TriggeredSendStatusEnum"),
        *_reference("Email", ("ID", "Int32")),
        # never recorded: left out with its parent when null (docs/sfmc-api.md#retrieve-response)
        SoapProperty("List.ID", "Int32"),
        SoapProperty("EmailSubject", "String"),
        SoapProperty("Priority", "String"),
    ),
    rows=lambda unit: unit.triggered_sends.values(),
)


def _tracking_event(name: str, *extra: SoapProperty, pairs: tuple[str, ...] = ()) -> SoapObject:
    """A TrackingEvent subtype: APIObject's part (with ``pairs`` returned as PartnerProperties
    right after PartnerKey, as SFMC writes them), the common event properties, then its own."""
    pair_props = tuple(SoapProperty(p, "Int32", pair=True) for p in pairs)
    return SoapObject(
        name=name,
        scope="tracking_events_read",
        properties=(
            *_with_pairs(_api_object("CorrelationID"), *pair_props),
            SoapProperty("SendID", "Int32"),
            SoapProperty("SubscriberKey", "String", max_length=254),
            SoapProperty("EventDate", "DateTime"),
            SoapProperty("EventType", "EventType"),
            SoapProperty("TriggeredSendDefinitionObjectID", "String", max_length=36),
            SoapProperty("BatchID", "Int32"),
            # accepted on every event, populated on clicks only (docs/sfmc-api.md#tracking-events)
            *(() if name == "ClickEvent" else (SoapProperty("URL", "String"),)),
            *extra,
        ),
        rows=lambda unit: _event_rows(unit.events.get(name)),
        table=lambda unit: unit.events.get(name, EventTable()),
    )


def _event_rows(table: EventTable | None) -> Iterator[Row]:
    for fields in table.records() if table is not None else ():
        yield Row(fields)


SENT_EVENT = _tracking_event("SentEvent", pairs=("ListID", "SubscriberID"))
OPEN_EVENT = _tracking_event("OpenEvent")
CLICK_EVENT = _tracking_event(
    "ClickEvent",
    SoapProperty("URLID", "Int32"),
    SoapProperty("URL", "String"),
    SoapProperty("URLIDLong", "Int64"),
)
BOUNCE_EVENT = _tracking_event(
    "BounceEvent",
    SoapProperty("SMTPCode", "String"),
    SoapProperty("BounceReason", "String", retrievable=False),
    SoapProperty("BounceCategory", "String"),
    SoapProperty("SMTPReason", "String"),
    SoapProperty("BounceType", "String"),
)
UNSUB_EVENT = _tracking_event(
    "UnsubEvent",
    SoapProperty("List", "List", retrievable=False),
    SoapProperty("IsMasterUnsubscribed", "Boolean"),
)
NOT_SENT_EVENT = _tracking_event("NotSentEvent")
TRACKING_EVENTS = (SENT_EVENT, OPEN_EVENT, CLICK_EVENT, BOUNCE_EVENT, UNSUB_EVENT, NOT_SENT_EVENT)

CATALOGUE: dict[str, SoapObject] = {
    obj.name: obj
    for obj in (
        LIST,
        DATA_FOLDER,
        SUBSCRIBER,
        LIST_SUBSCRIBER,
        SEND,
        EMAIL,
        TRIGGERED_SEND_DEFINITION,
        *TRACKING_EVENTS,
    )
}

# Written on every Results element whether requested or not
# (docs/sfmc-api.md#retrieve-response).
ALWAYS_RETURNED = frozenset({"PartnerKey", "ObjectID"})
