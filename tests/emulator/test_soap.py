"""Conformance of the emulator's SOAP side with docs/sfmc-api.md#soap and
docs/sfmc-api.md#time-zones.

Every test talks to a real socket and reads the answer with lxml by namespace, the way a
client would. Expected values are computed from the emulator's own data, never hard-coded.
"""

from __future__ import annotations

import operator
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from lxml import etree

from sfmc_source.emulator import Emulator, Faults, Sizes
from sfmc_source.emulator.data import Fields
from sfmc_source.timefmt import format_system_time
from tests.conftest import Session, TokenClock

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "http://exacttarget.com/wsdl/partnerAPI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
APIFAULT = "urn:fault.partner.exacttarget.com"
NS = {"soap": SOAP_ENV, "p": PARTNER, "wsa": WSA, "wsse": WSSE, "wsu": WSU}
XSI_NIL = f"{{{XSI}}}nil"
XSI_TYPE = f"{{{XSI}}}type"

SYSTEM_TIME = timezone(timedelta(hours=-6))
NAIVE_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?$")
UTC_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SMALL = Sizes(campaigns=0, lists=40, journeys=0)
LISTS_300 = Sizes(campaigns=0, lists=300, journeys=0)

DESCRIBE_LIST = (
    f'<DefinitionRequestMsg xmlns="{PARTNER}"><DescribeRequests><ObjectDefinitionRequest>'
    "<ObjectType>List</ObjectType></ObjectDefinitionRequest></DescribeRequests>"
    "</DefinitionRequestMsg>"
)
RETRIEVE_ID = (
    f'<RetrieveRequestMsg xmlns="{PARTNER}"><RetrieveRequest><ObjectType>List</ObjectType>'
    "<Properties>ID</Properties></RetrieveRequest></RetrieveRequestMsg>"
)

# WSDL element order: APIObject's part, then List's own (docs/sfmc-api.md#retrieve-response,
# docs/sfmc-api.md#list).
LIST_ORDER = (
    "Client", "PartnerKey", "PartnerProperties", "CreatedDate", "ModifiedDate", "ID", "ObjectID",
    "CustomerKey", "Owner", "CorrelationID", "ObjectState", "ListName", "Category", "Type",
    "Description", "Subscribers", "ListClassification", "AutomatedEmail",
)  # fmt: skip
CLIENT_ORDER = (
    "ID", "PartnerClientKey", "UserID", "PartnerUserKey", "CreatedBy", "ModifiedBy",
    "EnterpriseID", "CustomerKey",
)  # fmt: skip
RETRIEVABLE = (
    "Client.ID", "Client.PartnerClientKey", "Client.UserID", "Client.PartnerUserKey",
    "Client.CreatedBy", "Client.ModifiedBy", "Client.EnterpriseID", "Client.CustomerKey",
    "PartnerKey", "CreatedDate", "ModifiedDate", "ID", "ObjectID", "CustomerKey", "ListName",
    "Category", "Type", "Description", "ListClassification", "AutomatedEmail.ID",
)  # fmt: skip
ALWAYS_RETURNED = ("PartnerKey", "ObjectID")
NILLABLE = frozenset({"PartnerKey", "ObjectID", "ModifiedDate"})
DESCRIBE_ORDER = (
    "PartnerKey", "ObjectID", "Name", "DataType", "IsUpdatable", "IsRetrievable", "MaxLength",
    "IsRequired",
)  # fmt: skip

Value = str | None
Row = dict[str, Value]


# ---- reading responses -------------------------------------------------------------------


def parse(response: httpx.Response) -> etree._Element:
    return etree.fromstring(response.content)


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def message(response: httpx.Response) -> etree._Element:
    body = parse(response).find("soap:Body", NS)
    assert body is not None and len(body) == 1, response.text
    return body[0]


def status(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text = message(response).findtext("p:OverallStatus", namespaces=NS)
    assert text is not None, response.text
    return text


def request_id(response: httpx.Response) -> str:
    return message(response).findtext("p:RequestID", namespaces=NS) or ""


def result_elements(response: httpx.Response) -> list[etree._Element]:
    return message(response).findall("p:Results", NS)


def value(element: etree._Element) -> Value:
    return None if element.get(XSI_NIL) == "true" else element.text or ""


def flatten(result: etree._Element) -> Row:
    """A ``<Results>`` element as ``{"ID": "2001", "Client.ID": "5123", "ObjectID": None}``."""
    row: Row = {}
    for child in result:
        if len(child):
            row.update({f"{local(child)}.{local(leaf)}": value(leaf) for leaf in child})
        else:
            row[local(child)] = value(child)
    return row


def results(response: httpx.Response) -> list[Row]:
    return [flatten(result) for result in result_elements(response)]


def result_ids(response: httpx.Response) -> list[int]:
    return [int(row["ID"] or "") for row in results(response)]


def fault(response: httpx.Response) -> etree._Element:
    assert response.status_code == 500, response.text
    element = parse(response).find("soap:Body/soap:Fault", NS)
    assert element is not None, response.text
    return element


def header(response: httpx.Response, path: str) -> str | None:
    return parse(response).findtext(f"soap:Header/{path}", namespaces=NS)


def describe_properties(response: httpx.Response) -> dict[str, etree._Element]:
    assert response.status_code == 200, response.text
    found = message(response).findall("p:ObjectDefinition/p:Properties", NS)
    return {entry.findtext("p:Name", namespaces=NS) or "": entry for entry in found}


# ---- expectations from the emulator's data ---------------------------------------------------


def stored(emulator: Emulator, mid: int | None = None) -> list[Fields]:
    return [row.fields for row in emulator.app.unit(mid).lists.values()]


def soap_text(data: Any) -> str:
    return format_system_time(data) if isinstance(data, datetime) else str(data)


def expected_row(fields: Fields, requested: Sequence[str], null_style: str = "missing") -> Row:
    """What docs/sfmc-api.md#retrieve-response says a row looks like after flattening."""
    row: Row = {}
    for name in {*requested, *ALWAYS_RETURNED}:
        data = fields.get(name) if name in requested else None
        if data is not None:
            row[name] = soap_text(data)
        elif "." not in name and (name in NILLABLE or null_style == "nil"):
            row[name] = None
    return row


def start(http: httpx.Client, factory: Callable[..., Emulator], **config: Any) -> Session:
    config.setdefault("sizes", SMALL)
    return Session(http, factory(**config))


def page_through(
    session: Session, properties: Sequence[str], batch_size: int | None = None
) -> list[httpx.Response]:
    pages = [session.retrieve("List", list(properties), batch_size=batch_size)]
    while status(pages[-1]) == "MoreDataAvailable":
        assert len(pages) < 100
        pages.append(session.retrieve("List", [], continue_request=request_id(pages[-1])))
    return pages


# ---- filters -----------------------------------------------------------------------------

Part = tuple[str, str]


def simple(prop: str, op: str, *values: object, date: bool = False) -> Part:
    tag = "DateValue" if date else "Value"
    given = "".join(f"<{tag}>{escape(str(v), {chr(13): '&#13;'})}</{tag}>" for v in values)
    return (
        "SimpleFilterPart",
        f"<Property>{prop}</Property><SimpleOperator>{op}</SimpleOperator>{given}",
    )


def combined(left: Part, logical: str, right: Part, *more: Part) -> Part:
    inner = operand("LeftOperand", left) + f"<LogicalOperator>{logical}</LogicalOperator>"
    inner += operand("RightOperand", right)
    if more:
        extra = "".join(operand("Operand", part) for part in more)
        inner += f"<AdditionalOperands>{extra}</AdditionalOperands>"
    return "ComplexFilterPart", inner


def operand(tag: str, part: Part) -> str:
    kind, inner = part
    return f'<{tag} xsi:type="{kind}">{inner}</{tag}>'


def filter_xml(part: Part) -> str:
    return operand("Filter", part)


def system_naive(instant: datetime) -> str:
    return instant.astimezone(SYSTEM_TIME).replace(tzinfo=None).isoformat(timespec="milliseconds")


def utc_zulu(instant: datetime) -> str:
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def with_offset(instant: datetime) -> str:
    return instant.astimezone(SYSTEM_TIME).isoformat(timespec="milliseconds")


class Pivots:
    """Values picked from the data so that every filter selects some rows but not all."""

    def __init__(self, rows: list[Fields]) -> None:
        self.rows = rows
        ids = sorted(row["ID"] for row in rows)
        self.q1, self.median, self.q3 = ids[len(ids) // 4], ids[len(ids) // 2], ids[-len(ids) // 4]
        created = sorted(row["CreatedDate"] for row in rows)
        self.early, self.late = created[len(created) // 4], created[-len(created) // 4]


def name_of(row: Fields) -> str:
    return str(row["ListName"]).lower()


FILTERS = [
    pytest.param(
        lambda p: simple("ID", "equals", p.median),
        lambda r, p: r["ID"] == p.median,
        id="equals",
    ),
    pytest.param(
        lambda p: simple("ID", "notEquals", p.median),
        lambda r, p: r["ID"] != p.median,
        id="notEquals",
    ),
    pytest.param(
        lambda p: simple("ID", "greaterThan", p.median),
        lambda r, p: r["ID"] > p.median,
        id="greaterThan",
    ),
    pytest.param(
        lambda p: simple("ID", "greaterThanOrEqual", p.median),
        lambda r, p: r["ID"] >= p.median,
        id="greaterThanOrEqual",
    ),
    pytest.param(
        lambda p: simple("ID", "lessThan", p.median),
        lambda r, p: r["ID"] < p.median,
        id="lessThan",
    ),
    pytest.param(
        lambda p: simple("ID", "lessThanOrEqual", p.median),
        lambda r, p: r["ID"] <= p.median,
        id="lessThanOrEqual",
    ),
    pytest.param(
        lambda p: simple(
            "CreatedDate", "between", system_naive(p.early), system_naive(p.late), date=True
        ),
        lambda r, p: p.early <= r["CreatedDate"] <= p.late,
        id="between-inclusive",
    ),
    pytest.param(
        lambda p: simple("ID", "IN", p.q1, p.median, p.q3, 999_999),
        lambda r, p: r["ID"] in (p.q1, p.median, p.q3),
        id="IN",
    ),
    pytest.param(
        lambda p: simple("ListName", "equals", "All Subscribers"),
        lambda r, p: r["ListName"] == "All Subscribers",
        id="equals-string",
    ),
    pytest.param(
        lambda p: simple("ListName", "like", "newsletter 20%"),
        lambda r, p: name_of(r).startswith("newsletter 20"),
        id="like-prefix-case-insensitive",
    ),
    pytest.param(
        lambda p: simple("ListName", "like", "%SUBSCRIBERS"),
        lambda r, p: name_of(r).endswith("subscribers"),
        id="like-suffix-case-insensitive",
    ),
    pytest.param(
        lambda p: simple("ListName", "like", "%\U0001f338%"),
        lambda r, p: "\U0001f338" in name_of(r),
        id="like-contains-emoji",
    ),
    pytest.param(
        lambda p: combined(
            simple("ID", "greaterThan", p.median), "AND", simple("ListName", "like", "newsletter%")
        ),
        lambda r, p: r["ID"] > p.median and name_of(r).startswith("newsletter"),
        id="complex-AND",
    ),
    pytest.param(
        lambda p: combined(simple("ID", "equals", p.q1), "OR", simple("ID", "equals", p.q3)),
        lambda r, p: r["ID"] in (p.q1, p.q3),
        id="complex-OR",
    ),
    pytest.param(
        lambda p: combined(
            combined(
                simple("ID", "greaterThanOrEqual", p.q1), "AND", simple("ID", "lessThan", p.q3)
            ),
            "OR",
            simple("ListName", "equals", "All Subscribers"),
        ),
        lambda r, p: p.q1 <= r["ID"] < p.q3 or r["ListName"] == "All Subscribers",
        id="complex-nested",
    ),
    pytest.param(
        lambda p: combined(
            simple("ID", "greaterThanOrEqual", p.q1),
            "AND",
            simple("ID", "lessThanOrEqual", p.q3),
            simple("Type", "equals", "Public"),
        ),
        lambda r, p: p.q1 <= r["ID"] <= p.q3 and r["Type"] == "Public",
        id="complex-additional-operands",
    ),
]


@pytest.mark.parametrize(("build", "selects"), FILTERS)
def test_filter_selects_the_matching_rows(
    session: Session,
    build: Callable[[Pivots], Part],
    selects: Callable[[Fields, Pivots], bool],
) -> None:
    rows = stored(session.emulator)
    pivots = Pivots(rows)
    expected = {row["ID"] for row in rows if selects(row, pivots)}
    assert 0 < len(expected) < len(rows)
    response = session.retrieve("List", ["ID"], filter_xml(build(pivots)))
    assert status(response) == "OK"
    ids = result_ids(response)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": operator.eq,
    "greaterThan": operator.gt,
    "greaterThanOrEqual": operator.ge,
    "lessThan": operator.lt,
    "lessThanOrEqual": operator.le,
}


@pytest.mark.parametrize(
    "spell", [system_naive, utc_zulu, with_offset], ids=["naive", "Z", "offset"]
)
@pytest.mark.parametrize("comparison", list(COMPARISONS))
def test_date_value_is_read_in_system_time_unless_zoned(
    session: Session, comparison: str, spell: Callable[[datetime], str]
) -> None:
    rows = stored(session.emulator)
    pivot = sorted(row["ModifiedDate"] for row in rows[3:])[len(rows) // 2].astimezone(UTC)
    for row, hours in zip(rows[1:3], (-3, 3), strict=True):
        session.emulator.app.mutate.update(
            "lists", row["ID"], touch=False, ModifiedDate=pivot + timedelta(hours=hours)
        )
    compare = COMPARISONS[comparison]

    def selected(instant: datetime) -> set[int]:
        return {r["ID"] for r in rows if compare(r["ModifiedDate"].astimezone(UTC), instant)}

    expected = selected(pivot)
    assert expected != selected(pivot + timedelta(hours=6))
    assert expected != selected(pivot - timedelta(hours=6))
    part = simple("ModifiedDate", comparison, spell(pivot), date=True)
    response = session.retrieve("List", ["ID"], filter_xml(part))
    assert status(response) == "OK"
    assert set(result_ids(response)) == expected


def test_no_match_is_ok_without_results(session: Session) -> None:
    response = session.retrieve("List", ["ID"], filter_xml(simple("ID", "equals", 1)))
    assert status(response) == "OK"
    assert request_id(response)
    assert result_elements(response) == []


@pytest.mark.parametrize(
    ("filter_body", "expected"),
    [
        pytest.param(
            "<Filter><Property>ID</Property><SimpleOperator>equals</SimpleOperator>"
            "<Value>1000</Value></Filter>",
            "Error: Unknown filter of type FilterPart encountered",
            id="filter-without-xsi-type",
        ),
        pytest.param(
            '<Filter xsi:type="ComplexFilterPart"><LeftOperand><Property>ID</Property>'
            "<SimpleOperator>equals</SimpleOperator><Value>1000</Value></LeftOperand>"
            "<LogicalOperator>OR</LogicalOperator>"
            + operand("RightOperand", simple("ID", "equals", 2001))
            + "</Filter>",
            "Error: Unknown filter of type FilterPart encountered",
            id="operand-without-xsi-type",
        ),
        pytest.param(
            filter_xml(simple("ID", "equals")),
            "Error: Invalid argument for the",
            id="missing-value",
        ),
        pytest.param(
            filter_xml(simple("NoSuchColumn", "equals", 1)),
            "Error: Invalid column name",
            id="unknown-property",
        ),
    ],
)
def test_bad_filter_is_an_error_status(session: Session, filter_body: str, expected: str) -> None:
    response = session.retrieve("List", ["ID"], filter_body)
    assert status(response).startswith(expected)
    assert result_elements(response) == []


# ---- results: which elements, in which order, with which values -----------------------------

REQUESTED = [
    pytest.param(["ID"], id="id-only"),
    pytest.param(["ObjectID", "ID"], id="object-id"),
    pytest.param(["ID", "PartnerKey"], id="partner-key"),
    pytest.param(["ID", "Client.PartnerClientKey", "Client.ID"], id="client"),
    pytest.param(["Description", "ID", "CustomerKey", "ListName"], id="strings"),
    pytest.param(["ModifiedDate", "CreatedDate", "ID"], id="timestamps"),
    pytest.param(list(reversed(RETRIEVABLE)), id="everything-reversed"),
]


@pytest.mark.parametrize("requested", REQUESTED)
def test_results_hold_the_requested_values_plus_partner_key_and_object_id(
    session: Session, requested: list[str]
) -> None:
    response = session.retrieve("List", requested)
    assert status(response) == "OK"
    expected = {row["ID"]: expected_row(row, requested) for row in stored(session.emulator)}
    got = {int(row["ID"] or ""): row for row in results(response)}
    assert got == expected


@pytest.mark.parametrize("requested", REQUESTED)
def test_results_are_typed_unprefixed_partner_elements_in_wsdl_order(
    session: Session, requested: list[str]
) -> None:
    response = session.retrieve("List", requested)
    elements = result_elements(response)
    assert len(elements) == len(stored(session.emulator))
    for result in elements:
        assert result.get(XSI_TYPE) == "List"
        for element in result.iterdescendants():
            assert etree.QName(element).namespace == PARTNER
            assert element.prefix is None
        tags = [local(child) for child in result]
        assert tags == sorted(set(tags), key=LIST_ORDER.index)
        client = result.find("p:Client", NS)
        if client is not None:
            children = [local(child) for child in client]
            assert children == sorted(set(children), key=CLIENT_ORDER.index)


@pytest.mark.parametrize(
    ("first", "second"),
    [(["ID"], ["ID", "ObjectID"]), (["ID", "ObjectID"], ["ID"])],
    ids=["unrequested-then-requested", "requested-then-unrequested"],
)
def test_object_id_follows_the_current_request(
    session: Session, first: list[str], second: list[str]
) -> None:
    session.retrieve("List", first)
    response = session.retrieve("List", second)
    expected = {row["ID"]: expected_row(row, second) for row in stored(session.emulator)}
    assert {int(row["ID"] or ""): row for row in results(response)} == expected


@pytest.mark.parametrize(
    "client_properties",
    [
        pytest.param(["Client.PartnerClientKey"], id="one-mostly-null"),
        pytest.param(
            ["Client.PartnerClientKey", "Client.PartnerUserKey", "Client.CustomerKey"],
            id="several-mostly-null",
        ),
        pytest.param(["Client.ID", "Client.PartnerClientKey"], id="mixed"),
    ],
)
@pytest.mark.parametrize("null_style", ["missing", "nil"])
def test_null_client_children_are_left_out_and_client_too_when_all_null(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    client_properties: list[str],
    null_style: str,
) -> None:
    session = start(http, emulator_factory, sizes=LISTS_300, null_style=null_style)
    data = {row["ID"]: row for row in stored(session.emulator)}
    response = session.retrieve("List", ["ID", *client_properties])
    present_counts = set()
    for result in result_elements(response):
        fields = data[int(result.findtext("p:ID", namespaces=NS) or "")]
        present = [name for name in client_properties if fields.get(name) is not None]
        present_counts.add(len(present))
        client = result.find("p:Client", NS)
        if not present:
            assert client is None
            continue
        assert client is not None
        assert [(local(child), child.text or "") for child in client] == [
            (name.split(".")[1], soap_text(fields[name])) for name in present
        ]
        assert all(child.get(XSI_NIL) is None for child in client)
    assert len(present_counts) > 1


@pytest.mark.parametrize("prop", ["CustomerKey", "Description", "ListName"])
def test_empty_string_is_an_empty_element_not_nil(session: Session, prop: str) -> None:
    emulator = session.emulator
    target = stored(emulator)[5]["ID"]
    emulator.app.mutate.update("lists", target, touch=False, **{prop: ""})
    data = {row["ID"]: row.get(prop) for row in stored(emulator)}
    empty = {row_id for row_id, text in data.items() if text == ""}
    response = session.retrieve("List", ["ID", prop])
    seen = set()
    for result in result_elements(response):
        element = result.find(f"p:{prop}", NS)
        row_id = int(result.findtext("p:ID", namespaces=NS) or "")
        if row_id in empty:
            seen.add(row_id)
            assert element is not None
            assert element.text is None and len(element) == 0
            assert element.get(XSI_NIL) is None
        elif data[row_id] is None:
            assert element is None
        else:
            assert element is not None and element.text == data[row_id]
    assert seen == empty and target in seen


@pytest.mark.parametrize(
    ("null_style", "non_nillable"), [("missing", "absent"), ("nil", "nil")], ids=["default", "nil"]
)
def test_null_properties_by_null_style(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    null_style: str,
    non_nillable: str,
) -> None:
    session = start(http, emulator_factory, null_style=null_style)
    target = stored(session.emulator)[3]["ID"]
    nulls = {"CustomerKey": None, "Description": None, "ObjectID": None, "ModifiedDate": None}
    session.emulator.app.mutate.update("lists", target, touch=False, **nulls)
    part = simple("ID", "equals", target)
    response = session.retrieve("List", ["ID", *nulls], filter_xml(part))
    [result] = result_elements(response)

    def written(name: str) -> str:
        element = result.find(f"p:{name}", NS)
        if element is None:
            return "absent"
        assert element.text is None and len(element) == 0
        return "nil" if element.get(XSI_NIL) == "true" else "empty"

    assert {name: written(name) for name in nulls} == {
        "CustomerKey": non_nillable,
        "Description": non_nillable,
        "ObjectID": "nil",
        "ModifiedDate": "nil",
    }


def test_timestamps_are_naive_system_time_with_up_to_three_fraction_digits(
    session: Session,
) -> None:
    data = {row["ID"]: row for row in stored(session.emulator)}
    assert any(row["ModifiedDate"].month in (6, 7, 8) for row in data.values())
    response = session.retrieve("List", ["ID", "CreatedDate", "ModifiedDate"])
    rows = results(response)
    assert len(rows) == len(data)
    for row in rows:
        fields = data[int(row["ID"] or "")]
        for name in ("CreatedDate", "ModifiedDate"):
            text = row[name] or ""
            assert NAIVE_TIMESTAMP.match(text), text
            assert text == format_system_time(fields[name])
            assert datetime.fromisoformat(text).replace(tzinfo=SYSTEM_TIME) == fields[name]


NASTY = [
    pytest.param("Spring Sale \U0001f338\U0001f338 \U0001f48c", id="emoji"),
    pytest.param('O\'Reilly "double" \u201ccurly\u201d \u2018single\u2019 `back`', id="quotes"),
    pytest.param("<b>not html</b> & not &amp; an entity ]]>", id="markup-and-ampersand"),
    pytest.param("line one\rline two\r\nline three\n", id="carriage-returns"),
    pytest.param("  leading and trailing  \t", id="surrounding-whitespace"),
    pytest.param("\u65e5\u672c\u8a9e \u0645\u0631\u062d\u0628\u0627", id="cjk-and-rtl"),
    pytest.param("Zalgo z\u0337\u0322a\u0335l\u0336g\u0338o\u0334", id="combining-marks"),
    pytest.param("\\back\\slash\\", id="backslashes"),
]


@pytest.mark.parametrize("text", NASTY)
def test_text_round_trips_exactly(session: Session, text: str) -> None:
    key = session.emulator.app.mutate.add(
        "lists", ListName=text, Description=text, CustomerKey=text
    )
    response = session.retrieve(
        "List",
        ["ID", "ListName", "Description", "CustomerKey"],
        filter_xml(simple("ID", "equals", key)),
    )
    [row] = results(response)
    assert (row["ListName"], row["Description"], row["CustomerKey"]) == (text, text, text)


def test_generated_nasty_values_round_trip(session: Session) -> None:
    data = {row["ID"]: row for row in stored(session.emulator)}
    texts = [str(row[name]) for row in data.values() for name in ("ListName", "Description")]
    for needle in ("\r", "<", "&", "\U0001f338", '"', "'"):
        assert any(needle in text for text in texts), needle
    response = session.retrieve("List", ["ID", "ListName", "Description"])
    for row in results(response):
        fields = data[int(row["ID"] or "")]
        assert (row["ListName"], row["Description"]) == (fields["ListName"], fields["Description"])


# ---- paging ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lists", "batch_size", "per_page", "page_sizes"),
    [
        pytest.param(2_500, None, False, [2_500], id="exactly-2500-one-page"),
        pytest.param(2_501, None, False, [2_500, 1], id="2501-two-pages"),
        pytest.param(250, 100, False, [100, 100, 50], id="batch-size-100"),
        pytest.param(2_501, 5_000, False, [2_500, 1], id="batch-size-capped"),
        pytest.param(2_501, 2_500, False, [2_500, 1], id="batch-size-2500"),
        pytest.param(2_501, None, True, [2_500, 1], id="request-id-per-page"),
        pytest.param(250, 100, True, [100, 100, 50], id="request-id-per-page-three"),
    ],
)
def test_paging_with_continue_request(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    lists: int,
    batch_size: int | None,
    per_page: bool,
    page_sizes: list[int],
) -> None:
    session = start(
        http,
        emulator_factory,
        sizes=Sizes(campaigns=0, lists=lists, journeys=0),
        request_id_per_page=per_page,
    )
    pages = page_through(session, ["ID"], batch_size)
    assert [len(result_elements(page)) for page in pages] == page_sizes
    assert [status(page) for page in pages] == ["MoreDataAvailable"] * (len(pages) - 1) + ["OK"]
    ids = [request_id(page) for page in pages]
    assert all(uuid.UUID(rid) for rid in ids)
    assert len(set(ids)) == (len(ids) if per_page else 1)
    every = [row_id for page in pages for row_id in result_ids(page)]
    assert len(every) == len(set(every))
    assert sorted(every) == sorted(row["ID"] for row in stored(session.emulator))


def test_continue_request_with_the_whole_request_repeated(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = start(http, emulator_factory)
    first = session.retrieve("List", ["ID"], batch_size=30)
    assert status(first) == "MoreDataAvailable"
    body = (
        f'<RetrieveRequestMsg xmlns="{PARTNER}"><RetrieveRequest><ObjectType>List</ObjectType>'
        f"<Properties>ID</Properties><ContinueRequest>{request_id(first)}</ContinueRequest>"
        "<Options><BatchSize>30</BatchSize></Options></RetrieveRequest></RetrieveRequestMsg>"
    )
    second = session.soap("Retrieve", body)
    assert status(second) == "OK"
    every = result_ids(first) + result_ids(second)
    assert sorted(every) == sorted(row["ID"] for row in stored(session.emulator))


def test_unknown_request_id_is_an_error_status(session: Session) -> None:
    response = session.retrieve("List", [], continue_request=str(uuid.uuid4()))
    assert status(response) == "The RequestID sent through ContinueRequest does not exist."
    assert result_elements(response) == []


# ---- errors ------------------------------------------------------------------------------

NOT_A_FIELD = "Error: The Request Property(s) {} do not match with the fields of List retrieve"


@pytest.mark.parametrize(
    ("config", "object_type", "properties", "expected"),
    [
        pytest.param(
            {}, "List", ["ID", "Bogus"], NOT_A_FIELD.format("Bogus"), id="unknown-property"
        ),
        pytest.param(
            {},
            "List",
            ["ID", "Subscribers"],
            NOT_A_FIELD.format("Subscribers"),
            id="non-retrievable",
        ),
        pytest.param(
            {"unretrievable": {"List": {"Client.PartnerUserKey"}}},
            "List",
            ["ID", "Client.PartnerUserKey"],
            NOT_A_FIELD.format("Client.PartnerUserKey"),
            id="configured-unretrievable",
        ),
        pytest.param(
            {},
            "Lists",
            ["ID"],
            "Error: Unable to find a handler for object type: Lists. Object types are "
            "case-sensitive, check spelling.",
            id="unknown-object-type",
        ),
        pytest.param(
            {},
            "list",
            ["ID"],
            "Error: Unable to find a handler for object type: list.",
            id="object-type-is-case-sensitive",
        ),
        pytest.param(
            {"scopes": ("campaign_read",)},
            "List",
            ["ID"],
            "Error: API Permission Failed",
            id="missing-scope",
        ),
    ],
)
def test_request_errors_are_http_200_with_an_error_status(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    config: dict[str, Any],
    object_type: str,
    properties: list[str],
    expected: str,
) -> None:
    session = start(http, emulator_factory, **config)
    response = session.retrieve(object_type, properties)
    assert status(response).startswith(expected)
    assert result_elements(response) == []


@pytest.mark.parametrize(
    ("case", "faultstring"), [("expired", "Token Expired"), ("unknown", "Login Failed")]
)
def test_bad_token_is_an_http_500_security_fault(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    token_clock: TokenClock,
    case: str,
    faultstring: str,
) -> None:
    session = start(http, emulator_factory, token_ttl=1)
    if case == "expired":
        token_clock.now += 1.1
        response = session.soap("Retrieve", RETRIEVE_ID)
    else:
        response = session.soap("Retrieve", RETRIEVE_ID, token="not-a-token")
    element = fault(response)
    assert element.findtext("faultstring") == faultstring
    code = element.find("faultcode")
    assert code is not None and code.text == "q0:Security"
    assert code.nsmap.get("q0") == WSSE
    assert "q0" not in element.nsmap
    actor = element.findtext("faultactor") or ""
    assert actor.endswith("/soap/Service.asmx")
    assert actor == session.token["soap_instance_url"] + "Service.asmx"
    assert element.find("detail") is None
    assert (
        header(response, "wsa:Action") == "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"<s:Envelope><unclosed", id="not-well-formed"),
        pytest.param(b"this is not xml", id="not-xml"),
        pytest.param(f'<RetrieveRequestMsg xmlns="{PARTNER}"/>'.encode(), id="no-envelope"),
        pytest.param(
            f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body/></s:Envelope>'.encode(), id="empty-body"
        ),
    ],
)
def test_unreadable_request_is_an_http_500_fault(session: Session, payload: bytes) -> None:
    response = session.http.post(
        session.token["soap_instance_url"] + "Service.asmx",
        content=payload,
        headers={"SOAPAction": "Retrieve", "Content-Type": "text/xml; charset=utf-8"},
    )
    assert fault(response).findtext("faultstring")


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param(
            filter_xml(simple("ModifiedDate", "greaterThan", "", date=True)), id="empty-date-value"
        ),
        pytest.param(
            filter_xml(simple("ModifiedDate", "lessThan", "0001-01-01T00:00:00", date=True)),
            id="never-sentinel-date-value",
        ),
        pytest.param("<ClientIDs><ID>abc</ID></ClientIDs>", id="non-numeric-client-id"),
    ],
)
def test_bad_values_in_a_request_are_answered(session: Session, request_body: str) -> None:
    response = session.retrieve("List", ["ID"], request_body)
    if response.status_code == 500:
        assert fault(response) is not None
    else:
        assert status(response).startswith("Error")


# ---- envelope header ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "body", "response_action"),
    [
        ("Retrieve", RETRIEVE_ID, "RetrieveResponse"),
        ("Describe", DESCRIBE_LIST, "DescribeResponse"),
    ],
)
def test_response_header_has_action_and_a_five_minute_utc_timestamp(
    session: Session, action: str, body: str, response_action: str
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    response = session.soap(action, body)
    after = datetime.now(UTC)
    assert response.status_code == 200
    assert header(response, "wsa:Action") == response_action
    created = header(response, "wsse:Security/wsu:Timestamp/wsu:Created") or ""
    expires = header(response, "wsse:Security/wsu:Timestamp/wsu:Expires") or ""
    assert UTC_TIMESTAMP.match(created) and UTC_TIMESTAMP.match(expires)
    created_at = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    expires_at = datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= created_at <= after
    assert expires_at - created_at == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        pytest.param(
            "Retrieve",
            RETRIEVE_ID,
            id="retrieve",
        ),
        pytest.param("Describe", DESCRIBE_LIST, id="describe"),
    ],
)
def test_relates_to_echoes_the_request_message_id(session: Session, action: str, body: str) -> None:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    envelope = (
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:wsa="{WSA}"><s:Header>'
        f"<wsa:MessageID>{message_id}</wsa:MessageID>"
        f'<fueloauth xmlns="http://exacttarget.com">{session.access_token}</fueloauth>'
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
    response = session.http.post(
        session.token["soap_instance_url"] + "Service.asmx",
        content=envelope.encode(),
        headers={"SOAPAction": action, "Content-Type": "text/xml; charset=utf-8"},
    )
    assert response.status_code == 200
    assert header(response, "wsa:RelatesTo") == message_id


# ---- Describe ----------------------------------------------------------------------------


NET_TYPES = {
    "ID": "Int32",
    "Category": "Int32",
    "Client.ID": "Int32",
    "Client.UserID": "Int32",
    "Client.EnterpriseID": "Int64",
    "ListName": "String",
    "Description": "String",
    "CreatedDate": "DateTime",
    "ModifiedDate": "DateTime",
    "PartnerProperties": "APIProperty[]",
    "Subscribers": "Subscriber[]",
}


def test_describe_lists_properties_with_net_types(session: Session) -> None:
    response = session.soap("Describe", DESCRIBE_LIST)
    definition = message(response).find("p:ObjectDefinition", NS)
    assert definition is not None
    assert definition.findtext("p:ObjectType", namespaces=NS) == "List"
    properties = describe_properties(response)
    for entry in properties.values():
        tags = [local(child) for child in entry]
        assert tags[:4] == ["PartnerKey", "ObjectID", "Name", "DataType"]
        assert entry[0].get(XSI_NIL) == "true" and entry[1].get(XSI_NIL) == "true"
        assert tags == sorted(set(tags), key=DESCRIBE_ORDER.index)
        retrievable = entry.findtext("p:IsRetrievable", namespaces=NS)
        assert retrievable in ("true", "false")
        assert (entry.find("p:IsRequired", NS) is None) == (retrievable == "false")
    types = {
        name: entry.findtext("p:DataType", namespaces=NS) for name, entry in properties.items()
    }
    assert {name: types.get(name) for name in NET_TYPES} == NET_TYPES
    flags = {
        name: entry.findtext("p:IsRetrievable", namespaces=NS) for name, entry in properties.items()
    }
    assert [name for name, flag in flags.items() if flag == "true"] == list(RETRIEVABLE)
    assert flags["Subscribers"] == "false"


def test_describe_retrievable_flags_agree_with_retrieve(session: Session) -> None:
    properties = describe_properties(session.soap("Describe", DESCRIBE_LIST))
    flags = {n: e.findtext("p:IsRetrievable", namespaces=NS) for n, e in properties.items()}
    assert status(session.retrieve("List", [n for n, f in flags.items() if f == "true"])) == "OK"
    refused = [n for n, f in flags.items() if f == "false"]
    assert refused
    for name in refused:
        assert status(session.retrieve("List", ["ID", name])) == NOT_A_FIELD.format(name)


@pytest.mark.parametrize(
    ("config", "retrievable"),
    [({}, "true"), ({"unretrievable": {"List": {"Client.PartnerUserKey"}}}, "false")],
    ids=["default", "configured-unretrievable"],
)
def test_describe_reports_configured_unretrievable_property(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    config: dict[str, Any],
    retrievable: str,
) -> None:
    session = start(http, emulator_factory, **config)
    entry = describe_properties(session.soap("Describe", DESCRIBE_LIST))["Client.PartnerUserKey"]
    assert entry.findtext("p:IsRetrievable", namespaces=NS) == retrievable
    assert (entry.find("p:IsRequired", NS) is None) == (retrievable == "false")


def test_empty_describe_has_an_object_definition_without_properties(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = start(http, emulator_factory, empty_describe=True)
    response = session.soap("Describe", DESCRIBE_LIST)
    assert message(response).find("p:ObjectDefinition", NS) is not None
    assert describe_properties(response) == {}


# ---- injected faults ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knob", "server_fault"),
    [("rate_limit_every", False), ("server_error_every", True)],
    ids=["throttled", "server-error"],
)
def test_injected_faults_are_http_500_soap_faults(
    session: Session, knob: str, server_fault: bool
) -> None:
    setattr(session.emulator.app.faults, knob, 1)
    response = session.retrieve("List", ["ID"])
    element = fault(response)
    assert element.findtext("faultstring")
    if server_fault:
        code = element.find("faultcode")
        assert code is not None and code.text
        prefix, _, name = code.text.partition(":")
        assert (code.nsmap.get(prefix), name) == (SOAP_ENV, "Server")
        assert element.findtext(f"detail/{{{APIFAULT}}}apifault/{{{APIFAULT}}}Code") == "2"
    setattr(session.emulator.app.faults, knob, 0)
    assert status(session.retrieve("List", ["ID"])) == "OK"


def test_malformed_knob_cuts_exactly_the_chosen_page(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = start(
        http,
        emulator_factory,
        sizes=Sizes(campaigns=0, lists=30, journeys=0),
        faults=Faults(malformed={"List": 2}),
    )
    first = session.retrieve("List", ["ID"], batch_size=10)
    assert status(first) == "MoreDataAvailable" and len(result_elements(first)) == 10
    second = session.retrieve("List", [], continue_request=request_id(first))
    assert second.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(second.content)
    third = session.retrieve("List", [], continue_request=request_id(first))
    assert status(third) == "OK" and len(result_elements(third)) == 10


# ---- business units ----------------------------------------------------------------------


@pytest.mark.parametrize("unit", [0, 1], ids=["first-mid", "second-mid"])
def test_token_for_a_business_unit_reads_that_unit(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], unit: int
) -> None:
    emulator = emulator_factory(sizes=SMALL, business_units=2)
    mids = emulator.config.mids
    mid = mids[unit]
    per_unit = [{(r["ID"], r["ObjectID"]) for r in stored(emulator, m)} for m in mids]
    assert per_unit[0] != per_unit[1]
    session = Session(http, emulator, account_id=mid)
    rows = results(session.retrieve("List", ["ID", "ObjectID", "Client.ID"]))
    assert {row["Client.ID"] for row in rows} == {str(mid)}
    assert {(int(row["ID"] or ""), row["ObjectID"]) for row in rows} == per_unit[unit]


@pytest.mark.parametrize(
    ("client_id_unit", "query_all", "units"),
    [
        pytest.param(None, True, [0, 1], id="query-all-accounts"),
        pytest.param(1, False, [1], id="client-ids"),
        pytest.param(1, True, [0, 1], id="query-all-ignores-client-ids"),
    ],
)
def test_retrieve_across_business_units(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    client_id_unit: int | None,
    query_all: bool,
    units: list[int],
) -> None:
    emulator = emulator_factory(sizes=SMALL, business_units=2)
    mids = emulator.config.mids
    session = Session(http, emulator)
    client_ids = (
        "" if client_id_unit is None else f"<ClientIDs><ID>{mids[client_id_unit]}</ID></ClientIDs>"
    )
    query = "<QueryAllAccounts>true</QueryAllAccounts>" if query_all else ""
    body = (
        f'<RetrieveRequestMsg xmlns="{PARTNER}"><RetrieveRequest>{client_ids}'
        "<ObjectType>List</ObjectType><Properties>ID</Properties><Properties>Client.ID</Properties>"
        f"{query}</RetrieveRequest></RetrieveRequestMsg>"
    )
    response = session.soap("Retrieve", body)
    assert status(response) == "OK"
    got = sorted((int(r["Client.ID"] or ""), int(r["ID"] or "")) for r in results(response))
    assert got == sorted((mids[u], row["ID"]) for u in units for row in stored(emulator, mids[u]))


# ---- request log -------------------------------------------------------------------------


def test_request_log_counts_soap_retrieve_pages_and_describes(session: Session) -> None:
    pages = page_through(session, ["ID"], batch_size=100)
    assert len(pages) == 3
    session.soap("Describe", DESCRIBE_LIST)
    session.soap("Describe", DESCRIBE_LIST)
    log = session.emulator.app.log
    assert log.count("SOAP Retrieve List") == 3
    assert log.count("SOAP Retrieve List", status=200) == 3
    assert log.count("SOAP Describe") == 2


@pytest.mark.parametrize(
    ("soap_action", "accepted"),
    [
        pytest.param("Retrieve", True, id="bare"),
        pytest.param('"Retrieve"', True, id="quoted"),
        pytest.param("", False, id="missing"),
        pytest.param("Describe", False, id="other-operation"),
    ],
)
def test_the_soapaction_header_must_name_the_operation(
    session: Session, soap_action: str, accepted: bool
) -> None:
    envelope = (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Header><fueloauth xmlns="http://exacttarget.com">'
        f"{session.access_token}</fueloauth></s:Header><s:Body>{RETRIEVE_ID}</s:Body></s:Envelope>"
    )
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if soap_action:
        headers["SOAPAction"] = soap_action
    response = session.http.post(
        session.token["soap_instance_url"] + "Service.asmx", content=envelope, headers=headers
    )
    if accepted:
        assert status(response) == "OK"
    else:
        assert response.status_code == 500
        assert (
            fault(response)
            .findtext("faultstring", "")
            .startswith("Server did not recognize the value of HTTP Header SOAPAction")
        )


def test_a_continuation_belongs_to_its_business_unit(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    emulator = emulator_factory(sizes=LISTS_300, business_units=2)
    first_unit = Session(http, emulator)
    other_unit = Session(http, emulator, account_id=emulator.config.mids[1])
    started = first_unit.retrieve("List", ["ID"], batch_size=100)
    assert status(started) == "MoreDataAvailable"
    stolen = other_unit.retrieve("List", [], continue_request=request_id(started))
    assert status(stolen) == "The RequestID sent through ContinueRequest does not exist."


def test_a_served_page_is_not_served_again_but_a_throttled_one_is(session: Session) -> None:
    everything = set(result_ids(session.retrieve("List", ["ID"])))
    first = session.retrieve("List", ["ID"], batch_size=10)
    session.emulator.app.faults.malformed = {"List": 2}
    cut_short = session.retrieve("List", [], continue_request=request_id(first))
    with pytest.raises(etree.XMLSyntaxError):
        parse(cut_short)
    session.emulator.app.faults.malformed = {}
    third = session.retrieve("List", [], continue_request=request_id(first))
    assert set(result_ids(third)).isdisjoint(result_ids(first))
    session.emulator.app.faults.rate_limit_every = 1
    assert session.retrieve("List", [], continue_request=request_id(third)).status_code == 500
    session.emulator.app.faults.rate_limit_every = 0
    fourth = session.retrieve("List", [], continue_request=request_id(third))
    ids = result_ids(first) + result_ids(third) + result_ids(fourth)
    assert len(set(ids)) == len(ids) == 30
    assert set(ids) < everything
