"""The SOAP object catalogue: which objects the emulator serves, with their properties as data.

Each object is one row: its name, the scope its package needs, its properties in WSDL order
(that is the order SFMC writes them) with their Describe data type, and where its records
live. Subscriber, ListSubscriber, Send, the tracking events and data extensions are added as
rows here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from sfmc_source.emulator.data import BusinessUnit, Row


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

    @property
    def parent(self) -> str | None:
        return self.name.split(".", 1)[0] if "." in self.name else None


@dataclass(frozen=True)
class SoapObject:
    name: str
    scope: str
    properties: tuple[SoapProperty, ...]
    rows: Callable[[BusinessUnit], Iterable[Row]]

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

CATALOGUE: dict[str, SoapObject] = {obj.name: obj for obj in (LIST,)}

# Written on every Results element whether requested or not (sfmc-api.md §3.4).
ALWAYS_RETURNED = frozenset({"PartnerKey", "ObjectID"})
