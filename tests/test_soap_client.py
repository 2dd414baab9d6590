"""The client side of SOAP (``sfmc_source.soap``): envelopes, filters, pages, Describe, faults.

Pure tests build envelopes and read them back with lxml, and parse hand-written responses in
the shapes of docs/sfmc-api.md#soap. Round-trip tests send what ``soap`` builds to the emulator
over a socket and compare what ``soap`` reads back with the emulator's own data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from lxml import etree

from sfmc_source import soap
from sfmc_source.emulator import Emulator, EmulatorConfig, Faults, Sizes
from sfmc_source.emulator.data import Fields
from sfmc_source.errors import PermissionDenied, PropertyRefused, RequestRejected, ResponseError
from sfmc_source.soap import (
    PARTNER,
    SOAP_ENV,
    XSI,
    ComplexFilter,
    Fault,
    Filter,
    RetrievePage,
    Row,
    SimpleFilter,
    describe_envelope,
    fault_of,
    format_date_value,
    parse_describe,
    parse_retrieve,
    raise_for_status,
    retrieve_envelope,
)
from sfmc_source.timefmt import SYSTEM_TIME, format_system_time, parse_timestamp
from tests.conftest import Session

FUEL = "http://exacttarget.com"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
XSI_TYPE = f"{{{XSI}}}type"
NS = {"s": SOAP_ENV, "p": PARTNER, "fuel": FUEL}
SMALL = Sizes(campaigns=0, lists=40, journeys=0)
RETRIEVABLE_LISTS = (
    "Client.ID", "Client.PartnerClientKey", "Client.UserID", "Client.PartnerUserKey",
    "Client.CreatedBy", "Client.ModifiedBy", "Client.EnterpriseID", "Client.CustomerKey",
    "PartnerKey", "CreatedDate", "ModifiedDate", "ID", "ObjectID", "CustomerKey", "ListName",
    "Category", "Type", "Description", "ListClassification", "AutomatedEmail.ID",
)  # fmt: skip
NASTY_TEXT = [
    pytest.param("a & b < c > d", id="ampersand-and-brackets"),
    pytest.param("<b>not html</b> &amp; ]]>", id="markup-entity-and-cdata-end"),
    pytest.param("line one\rline two\r\nline three\n", id="carriage-returns"),
    pytest.param("  leading and trailing\t ", id="surrounding-whitespace"),
    pytest.param('O\'Reilly "double" \u201ccurly\u201d', id="quotes"),
    pytest.param("Spring Sale \U0001f338\U0001f338 \u65e5\u672c\u8a9e", id="emoji-and-cjk"),
]


def read_back(envelope: bytes) -> etree._Element:
    """The envelope as a server reads it: strict XML, every namespace by URI."""
    assert envelope.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    root = etree.fromstring(envelope)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    return root


def retrieve_request(envelope: bytes) -> etree._Element:
    request = read_back(envelope).find("s:Body/p:RetrieveRequestMsg/p:RetrieveRequest", NS)
    assert request is not None
    return request


def local_names(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


def partner_text(element: etree._Element, path: str) -> str | None:
    return element.findtext(path, namespaces=NS)


def test_token_travels_in_a_fueloauth_soap_header() -> None:
    root = read_back(retrieve_envelope("tok-123", "List", ["ID"]))
    header = root.find("s:Header", NS)
    assert header is not None
    assert [child.tag for child in header] == [f"{{{FUEL}}}fueloauth"]
    assert header[0].text == "tok-123"
    assert local_names(root) == ["Header", "Body"]


@pytest.mark.parametrize(
    ("arguments", "children"),
    [
        pytest.param(
            {},
            ["ObjectType", "Properties", "Properties", "Options"],
            id="plain",
        ),
        pytest.param(
            {"filter": SimpleFilter("ID", "equals", ("1",))},
            ["ObjectType", "Properties", "Properties", "Filter", "Options"],
            id="filter",
        ),
        pytest.param(
            {"client_ids": [512_345_679, 512_345_680]},
            ["ClientIDs", "ClientIDs", "ObjectType", "Properties", "Properties", "Options"],
            id="client-ids",
        ),
        pytest.param(
            {
                "filter": SimpleFilter("ID", "equals", ("1",)),
                "continue_request": "req-1",
                "client_ids": [512_345_679],
            },
            [
                "ClientIDs",
                "ObjectType",
                "Properties",
                "Properties",
                "Filter",
                "ContinueRequest",
                "Options",
            ],
            id="everything",
        ),
    ],
)
def test_retrieve_request_children_follow_wsdl_order(
    arguments: dict[str, Any], children: list[str]
) -> None:
    request = retrieve_request(retrieve_envelope("t", "List", ["ID", "Client.ID"], **arguments))
    assert local_names(request) == children
    assert partner_text(request, "p:ObjectType") == "List"
    assert [p.text for p in request.findall("p:Properties", NS)] == ["ID", "Client.ID"]
    assert partner_text(request, "p:Options/p:BatchSize") == "2500"
    assert [[partner_text(ids, "p:ID")] for ids in request.findall("p:ClientIDs", NS)] == [
        [str(mid)] for mid in arguments.get("client_ids", [])
    ]
    assert partner_text(request, "p:ContinueRequest") == arguments.get("continue_request")


@pytest.mark.parametrize("batch_size", [1, 500, 2_500], ids=["one", "500", "max"])
def test_batch_size_is_sent_in_options(batch_size: int) -> None:
    request = retrieve_request(retrieve_envelope("t", "List", ["ID"], batch_size=batch_size))
    assert partner_text(request, "p:Options/p:BatchSize") == str(batch_size)


@pytest.mark.parametrize("batch_size", [0, -1, 2_501], ids=["zero", "negative", "over-2500"])
def test_batch_size_outside_what_sfmc_serves_is_refused(batch_size: int) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        retrieve_envelope("t", "List", ["ID"], batch_size=batch_size)


def operand_shape(element: etree._Element) -> Any:
    """A filter part as nested tuples: (xsi:type, children...) with values as text."""
    kind = element.get(XSI_TYPE)
    if kind == "SimpleFilterPart":
        return (kind, *[(etree.QName(c).localname, c.text) for c in element])
    parts: list[Any] = [kind]
    for child in element:
        name = etree.QName(child).localname
        if name == "AdditionalOperands":
            parts.append((name, *[operand_shape(o) for o in child]))
        elif name == "LogicalOperator":
            parts.append((name, child.text))
        else:
            parts.append((name, operand_shape(child)))
    return tuple(parts)


def test_filter_parts_carry_xsi_type_and_nest() -> None:
    window = ComplexFilter(
        SimpleFilter(
            "ModifiedDate", "greaterThanOrEqual", ("2024-06-01T00:00:00.000-06:00",), date=True
        ),
        "AND",
        SimpleFilter("ModifiedDate", "lessThan", ("2024-06-02T00:00:00.000-06:00",), date=True),
    )
    wanted = ComplexFilter(
        window,
        "OR",
        SimpleFilter("ID", "IN", ("1", "2")),
        additional=(SimpleFilter("ListName", "isNull", ()),),
    )
    request = retrieve_request(retrieve_envelope("t", "List", ["ID"], filter=wanted))
    element = request.find("p:Filter", NS)
    assert element is not None
    assert operand_shape(element) == (
        "ComplexFilterPart",
        (
            "LeftOperand",
            (
                "ComplexFilterPart",
                (
                    "LeftOperand",
                    (
                        "SimpleFilterPart",
                        ("Property", "ModifiedDate"),
                        ("SimpleOperator", "greaterThanOrEqual"),
                        ("DateValue", "2024-06-01T00:00:00.000-06:00"),
                    ),
                ),
                ("LogicalOperator", "AND"),
                (
                    "RightOperand",
                    (
                        "SimpleFilterPart",
                        ("Property", "ModifiedDate"),
                        ("SimpleOperator", "lessThan"),
                        ("DateValue", "2024-06-02T00:00:00.000-06:00"),
                    ),
                ),
            ),
        ),
        ("LogicalOperator", "OR"),
        (
            "RightOperand",
            (
                "SimpleFilterPart",
                ("Property", "ID"),
                ("SimpleOperator", "IN"),
                ("Value", "1"),
                ("Value", "2"),
            ),
        ),
        (
            "AdditionalOperands",
            ("SimpleFilterPart", ("Property", "ListName"), ("SimpleOperator", "isNull")),
        ),
    )
    assert all(
        el.get(XSI_TYPE) in ("SimpleFilterPart", "ComplexFilterPart")
        for el in element.iter()
        if etree.QName(el).localname in ("Filter", "LeftOperand", "RightOperand", "Operand")
    )


@pytest.mark.parametrize(
    ("build", "error"),
    [
        pytest.param(
            lambda: SimpleFilter("ID", "equal", ("1",)), ValueError, id="unknown-operator"
        ),
        pytest.param(
            lambda: SimpleFilter("ID", "equals", "1"),  # type: ignore[arg-type]
            TypeError,
            id="values-not-a-tuple",
        ),
        pytest.param(
            lambda: ComplexFilter(
                SimpleFilter("ID", "equals", ("1",)), "XOR", SimpleFilter("ID", "equals", ("2",))
            ),
            ValueError,
            id="unknown-logical-operator",
        ),
    ],
)
def test_impossible_filters_are_refused_when_built(
    build: Callable[[], Filter], error: type
) -> None:
    with pytest.raises(error):
        build()


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_every_text_is_escaped_and_reads_back_exactly(text: str) -> None:
    envelope = retrieve_envelope(
        text,
        text,
        [text],
        filter=SimpleFilter(text, "equals", (text,)),
        continue_request=text,
    )
    root = read_back(envelope)
    request = retrieve_request(envelope)
    assert partner_text(root, "s:Header/fuel:fueloauth") == text
    for path in (
        "p:ObjectType",
        "p:Properties",
        "p:ContinueRequest",
        "p:Filter/p:Property",
        "p:Filter/p:Value",
    ):
        assert partner_text(request, path) == text, path


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_describe_envelope_escapes_and_reads_back(text: str) -> None:
    root = read_back(describe_envelope(text, text))
    assert partner_text(root, "s:Header/fuel:fueloauth") == text
    message = root.find("s:Body/p:DefinitionRequestMsg", NS)
    assert message is not None
    assert [el.text for el in message.iter()][-1] == text
    assert [etree.QName(el).localname for el in message.iter()] == [
        "DefinitionRequestMsg",
        "DescribeRequests",
        "ObjectDefinitionRequest",
        "ObjectType",
    ]


@pytest.mark.parametrize("bad", ["nul\x00", "bell\x07", "unit\x1fseparator"], ids=repr)
def test_characters_xml_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be sent in XML"):
        retrieve_envelope("t", "List", ["ID"], filter=SimpleFilter("ListName", "equals", (bad,)))


CHICAGO = ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    ("instant", "text"),
    [
        pytest.param(
            datetime(2024, 6, 1, 6, 0, tzinfo=UTC), "2024-06-01T00:00:00.000-06:00", id="summer-utc"
        ),
        pytest.param(
            datetime(2024, 1, 15, 12, 30, tzinfo=UTC),
            "2024-01-15T06:30:00.000-06:00",
            id="winter-utc",
        ),
        pytest.param(
            datetime(2024, 7, 4, 0, 0, tzinfo=CHICAGO),
            "2024-07-03T23:00:00.000-06:00",
            id="chicago-daylight-time-is-not-system-time",
        ),
        pytest.param(
            datetime(2024, 6, 1, 0, 0, tzinfo=SYSTEM_TIME),
            "2024-06-01T00:00:00.000-06:00",
            id="system-time",
        ),
        pytest.param(
            datetime(2024, 3, 1, 8, 15, 30, 123_987, tzinfo=timezone(timedelta(hours=9))),
            "2024-02-29T17:15:30.123-06:00",
            id="milliseconds-truncated-across-leap-day",
        ),
    ],
)
def test_format_date_value_writes_system_time_with_offset(instant: datetime, text: str) -> None:
    assert format_date_value(instant) == text
    read = parse_timestamp(text)
    assert read is not None
    assert instant - read == timedelta(microseconds=instant.microsecond % 1000)


def test_format_date_value_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="time zone"):
        format_date_value(datetime(2024, 6, 1))


def response(
    *results: str,
    status: str = "OK",
    request_id: str | None = "f06cc504-0000-4000-8000-e420ed248e72",
) -> bytes:
    """A RetrieveResponseMsg in SFMC's envelope, header and all
    (docs/sfmc-api.md#retrieve-response)."""
    request_id_element = "" if request_id is None else f"<RequestID>{request_id}</RequestID>"
    rows = "".join(f'<Results xsi:type="List">{inner}</Results>' for inner in results)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing">'
        "<soap:Header><wsa:Action>RetrieveResponse</wsa:Action>"
        "<wsa:MessageID>urn:uuid:1</wsa:MessageID></soap:Header>"
        f'<soap:Body><RetrieveResponseMsg xmlns="{PARTNER}">'
        f"<OverallStatus>{status}</OverallStatus>{request_id_element}{rows}"
        "</RetrieveResponseMsg></soap:Body></soap:Envelope>"
    ).encode()


ROW_RULES = [
    pytest.param('<PartnerKey xsi:nil="true" /><ID>23</ID>', ["ID"], {"ID": "23"}, id="value"),
    pytest.param(
        '<PartnerKey xsi:nil="true" /><ID>23</ID><ObjectID xsi:nil="true" />',
        ["ID"],
        {"ID": "23"},
        id="unrequested-partner-key-and-object-id-ignored",
    ),
    pytest.param(
        "<ID>23</ID>", ["ID", "Description"], {"ID": "23", "Description": None}, id="absent"
    ),
    pytest.param(
        '<ID>23</ID><ModifiedDate xsi:nil="true" />',
        ["ModifiedDate"],
        {"ModifiedDate": None},
        id="nil",
    ),
    pytest.param(
        '<ModifiedDate xsi:nil="1" />', ["ModifiedDate"], {"ModifiedDate": None}, id="nil-one"
    ),
    pytest.param(
        '<Description xsi:nil="false" />',
        ["Description"],
        {"Description": ""},
        id="nil-false-is-empty",
    ),
    pytest.param("<Description />", ["Description"], {"Description": ""}, id="empty-element"),
    pytest.param(
        "<Description></Description>", ["Description"], {"Description": ""}, id="empty-pair"
    ),
    pytest.param(
        '<PartnerKey xsi:nil="true" />',
        ["PartnerKey"],
        {"PartnerKey": None},
        id="requested-partner-key-nil",
    ),
    pytest.param(
        "<Client><ID>512345678</ID><UserID>7</UserID></Client><ID>23</ID>",
        ["ID", "Client.ID", "Client.UserID"],
        {"ID": "23", "Client.ID": "512345678", "Client.UserID": "7"},
        id="dotted-from-nested",
    ),
    pytest.param(
        "<Client><ID>512345678</ID></Client><ID>23</ID>",
        ["Client.ID"],
        {"Client.ID": "512345678"},
        id="nested-id-is-not-top-level-id",
    ),
    pytest.param(
        "<Client><ID>512345678</ID></Client><ID>23</ID>",
        ["ID"],
        {"ID": "23"},
        id="top-level-id-is-not-nested-id",
    ),
    pytest.param(
        "<Client><ID>512345678</ID></Client>",
        ["Client.ID", "Client.PartnerClientKey"],
        {"Client.ID": "512345678", "Client.PartnerClientKey": None},
        id="null-client-child-left-out",
    ),
    pytest.param(
        "<ID>23</ID>",
        ["Client.PartnerClientKey", "AutomatedEmail.ID"],
        {"Client.PartnerClientKey": None, "AutomatedEmail.ID": None},
        id="whole-client-left-out",
    ),
    pytest.param(
        "<Owner><Client><ID>9</ID></Client></Owner>",
        ["Owner.Client.ID"],
        {"Owner.Client.ID": "9"},
        id="two-levels-deep",
    ),
    pytest.param(
        '<PartnerKey xsi:nil="true" />'
        "<PartnerProperties><Name>ListID</Name><Value>1234</Value></PartnerProperties>"
        "<PartnerProperties><Name>SubscriberID</Name><Value>1234567</Value></PartnerProperties>"
        "<PartnerProperties><Name>Unasked</Name><Value>x</Value></PartnerProperties>"
        "<SendID>28980</SendID>",
        ["SendID", "SubscriberID", "ListID"],
        {"SendID": "28980", "SubscriberID": "1234567", "ListID": "1234"},
        id="partner-properties-flattened",
    ),
    pytest.param(
        "<PartnerProperties><Name>A</Name><Value /></PartnerProperties>"
        '<PartnerProperties><Name>B</Name><Value xsi:nil="true" /></PartnerProperties>'
        "<PartnerProperties><Name>C</Name></PartnerProperties>",
        ["A", "B", "C"],
        {"A": "", "B": None, "C": None},
        id="partner-property-empty-nil-and-valueless",
    ),
    pytest.param(
        "<SubscriberID>1234567</SubscriberID>",
        ["SubscriberID"],
        {"SubscriberID": "1234567"},
        id="direct-child-instead-of-partner-property",
    ),
    pytest.param(
        "<Properties><Property><Name>Email</Name><Value>a@example.com</Value></Property>"
        "<Property><Name>Joined</Name><Value>5/9/2024 12:00:00 AM</Value></Property>"
        "<Property><Name>Notes</Name><Value /></Property></Properties>",
        ["Email", "Joined", "Notes", "Missing"],
        {"Email": "a@example.com", "Joined": "5/9/2024 12:00:00 AM", "Notes": "", "Missing": None},
        id="data-extension-properties-flattened",
    ),
    pytest.param(
        "<ListName>  two spaces  </ListName><Description>\ttab&#13;\nline</Description>",
        ["ListName", "Description"],
        {"ListName": "  two spaces  ", "Description": "\ttab\r\nline"},
        id="whitespace-cr-lf-tab-kept",
    ),
    pytest.param(
        "<ListName>&lt;b&gt; &amp;amp; \U0001f338 \u65e5\u672c</ListName>",
        ["ListName"],
        {"ListName": "<b> &amp; \U0001f338 \u65e5\u672c"},
        id="escapes-and-emoji",
    ),
    pytest.param(
        "<ListName>a<![CDATA[<&>]]>b<!-- note -->c</ListName>",
        ["ListName"],
        {"ListName": "a<&>bc"},
        id="cdata-and-comment",
    ),
    pytest.param(
        "<ListName> </ListName>", ["ListName"], {"ListName": " "}, id="only-a-space-is-not-empty"
    ),
]


@pytest.fixture(params=["whole", "streamed"])
def either_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages read as one tree, and (as pages over ``STREAM_ABOVE`` bytes are) streamed."""
    if request.param == "streamed":
        monkeypatch.setattr(soap, "STREAM_ABOVE", 0)


@pytest.mark.usefixtures("either_way")
@pytest.mark.parametrize(("inner", "requested", "row"), ROW_RULES)
def test_row_rules(inner: str, requested: list[str], row: Row) -> None:
    page = parse_retrieve(response(inner), requested)
    assert page.rows == [row]
    assert list(page.rows[0]) == list(dict.fromkeys(requested))


@pytest.mark.usefixtures("either_way")
def test_rows_keep_their_order_and_are_independent() -> None:
    page = parse_retrieve(
        response("<ID>1</ID><ListName>a</ListName>", "<ID>2</ID>", "<ID>3</ID><ListName />"),
        ["ID", "ListName"],
    )
    assert page.rows == [
        {"ID": "1", "ListName": "a"},
        {"ID": "2", "ListName": None},
        {"ID": "3", "ListName": ""},
    ]
    # held column by column, read as rows by position too
    assert page.columns.columns == {"ID": ["1", "2", "3"], "ListName": ["a", None, ""]}
    assert (len(page.columns), page.columns[-1], page.columns[1:]) == (
        3,
        page.rows[2],
        page.rows[1:],
    )
    with pytest.raises(IndexError):
        page.columns[3]


def test_a_page_of_no_properties_still_counts_its_rows() -> None:
    assert parse_retrieve(response("<ID>1</ID>", "<ID>2</ID>"), []).rows == [{}, {}]


@pytest.mark.usefixtures("either_way")
def test_a_long_page_is_read_whole() -> None:
    rows = [f"<ID>{i}</ID><Description>{'y' * 1000}</Description>" for i in range(3_000)]
    page = parse_retrieve(response(*rows), ["ID", "Description"])
    assert [row["ID"] for row in page.rows] == [str(i) for i in range(3_000)]
    assert {row["Description"] for row in page.rows} == {"y" * 1000}


@pytest.mark.usefixtures("either_way")
@pytest.mark.parametrize(
    ("status", "request_id", "more"),
    [
        pytest.param("OK", "r-1", False, id="ok"),
        pytest.param("MoreDataAvailable", "r-1", True, id="more"),
        pytest.param("Error: Invalid column name 'X'", "r-1", False, id="error"),
        pytest.param("OK", None, False, id="ok-without-request-id"),
    ],
)
def test_status_and_request_id_are_read(status: str, request_id: str | None, more: bool) -> None:
    page = parse_retrieve(response(status=status, request_id=request_id), ["ID"])
    assert (page.status, page.request_id, page.more, page.rows) == (status, request_id, more, [])


@pytest.mark.usefixtures("either_way")
def test_properties_named_like_the_heading_stay_in_their_row() -> None:
    inner = "<OverallStatus>Active</OverallStatus><RequestID>inner</RequestID>"
    page = parse_retrieve(response(inner, request_id="outer"), ["OverallStatus", "RequestID"])
    assert (page.status, page.request_id) == ("OK", "outer")
    assert page.rows == [{"OverallStatus": "Active", "RequestID": "inner"}]


def test_empty_request_id_is_none() -> None:
    assert parse_retrieve(response(request_id=""), ["ID"]).request_id is None


PAGE = response("<ID>1</ID>", "<ID>2</ID>")
NOT_A_PAGE = [
    pytest.param(PAGE[: len(PAGE) // 2], "malformed SOAP response", id="cut-short"),
    pytest.param(b"", "malformed SOAP response", id="empty"),
    pytest.param(b"Service Unavailable", "malformed SOAP response", id="not-xml"),
    pytest.param(
        b"<html><body>Service Unavailable</body></html>",
        "has no RetrieveResponseMsg/OverallStatus",
        id="html",
    ),
    pytest.param(
        response().replace(b"<OverallStatus>OK</OverallStatus>", b""),
        "has no RetrieveResponseMsg/OverallStatus",
        id="no-overall-status",
    ),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + PAGE.split(b"?>", 1)[1].replace(b"<ID>1</ID>", b"<ID>&e;</ID>"),
        "DTD",
        id="dtd-with-external-entity",
    ),
]


@pytest.mark.usefixtures("either_way")
@pytest.mark.parametrize(("content", "message"), NOT_A_PAGE)
def test_what_is_not_a_page_raises_a_one_line_response_error(content: bytes, message: str) -> None:
    with pytest.raises(ResponseError, match=message) as caught:
        parse_retrieve(content, ["ID"])
    assert "\n" not in str(caught.value)


def test_response_error_names_the_object_type_when_given() -> None:
    with pytest.raises(ResponseError, match=r"^malformed SOAP response for SentEvent: "):
        parse_retrieve(PAGE[:-40], ["ID"], object_type="SentEvent")


def test_fault_instead_of_a_page_is_named_in_the_error() -> None:
    with pytest.raises(ResponseError, match="q0:Security: Token Expired"):
        parse_retrieve(TOKEN_EXPIRED, ["ID"])


SUBSCRIBER_DESCRIBED = f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}">
  <soap:Header><wsa:Action xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
    >DescribeResponse</wsa:Action></soap:Header>
  <soap:Body>
    <DefinitionResponseMsg xmlns="{PARTNER}">
      <ObjectDefinition>
        <ObjectType>Subscriber</ObjectType>
        <Properties>
          <PartnerKey xsi:nil="true" /><ObjectID xsi:nil="true" />
          <Name>ID</Name><DataType>Int32</DataType><IsUpdatable>false</IsUpdatable>
          <IsRetrievable>true</IsRetrievable><IsRequired>false</IsRequired>
        </Properties>
        <Properties>
          <PartnerKey xsi:nil="true" /><ObjectID xsi:nil="true" />
          <Name>EmailAddress</Name><DataType>String</DataType><IsUpdatable>true</IsUpdatable>
          <IsRetrievable>true</IsRetrievable><MaxLength>254</MaxLength>
        </Properties>
        <Properties>
          <PartnerKey xsi:nil="true" /><ObjectID xsi:nil="true" />
          <Name>ModifiedDate</Name><DataType>DateTime</DataType><IsUpdatable>false</IsUpdatable>
          <IsRetrievable>false</IsRetrievable>
        </Properties>
        <Properties>
          <PartnerKey xsi:nil="true" /><ObjectID xsi:nil="true" />
          <Name>Status</Name><DataType>SubscriberStatus</DataType>
          <IsRetrievable>true</IsRetrievable>
        </Properties>
        <ExtendedProperties>
          <ExtendedProperty><Name>First Name</Name><DataType>text</DataType></ExtendedProperty>
        </ExtendedProperties>
        <ChildObjects />
      </ObjectDefinition>
    </DefinitionResponseMsg>
  </soap:Body>
</soap:Envelope>""".encode()


def test_describe_reads_name_type_and_retrievable() -> None:
    described = parse_describe(SUBSCRIBER_DESCRIBED)
    assert {
        name: (prop.name, prop.data_type, prop.retrievable) for name, prop in described.items()
    } == {
        "ID": ("ID", "Int32", True),
        "EmailAddress": ("EmailAddress", "String", True),
        "ModifiedDate": ("ModifiedDate", "DateTime", False),
        "Status": ("Status", "SubscriberStatus", True),
    }


def test_empty_describe_is_an_empty_mapping() -> None:
    content = (
        SUBSCRIBER_DESCRIBED.split(b"<Properties>")[0]
        + SUBSCRIBER_DESCRIBED.split(b"</Properties>")[-1]
    )
    assert b"ExtendedProperties" in content
    assert parse_describe(content) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            SUBSCRIBER_DESCRIBED[:500], "malformed SOAP response for List", id="cut-short"
        ),
        pytest.param(PAGE, "has no DefinitionResponseMsg", id="a-retrieve-page"),
        pytest.param(b"", "malformed", id="empty"),
    ],
)
def test_describe_that_is_not_a_definition_raises(content: bytes, message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        parse_describe(content, object_type="List")


TOKEN_EXPIRED = f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="{SOAP_ENV}" xmlns:xsi="{XSI}"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
    xmlns:wsse="{WSSE}"
    xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
  <soap:Header>
    <wsa:Action>http://schemas.xmlsoap.org/ws/2004/08/addressing/fault</wsa:Action>
    <wsa:MessageID>urn:uuid:0c1f2f8e-0000-4000-8000-1a2b3c4d5e6f</wsa:MessageID>
    <wsa:RelatesTo>urn:uuid:9a8b7c6d-0000-4000-8000-6f5e4d3c2b1a</wsa:RelatesTo>
    <wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
    <wsse:Security><wsu:Timestamp wsu:Id="Timestamp-1">
      <wsu:Created>2021-12-29T21:27:30Z</wsu:Created>
      <wsu:Expires>2021-12-29T21:32:30Z</wsu:Expires>
    </wsu:Timestamp></wsse:Security>
  </soap:Header>
  <soap:Body>
    <soap:Fault>
      <faultcode xmlns:q0="{WSSE}">q0:Security</faultcode>
      <faultstring>Token Expired</faultstring>
      <faultactor>https://mc123.soap.marketingcloudapis.com/Service.asmx</faultactor>
    </soap:Fault>
  </soap:Body>
</soap:Envelope>""".encode()

SERVER_FAULT = (
    f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultcode>soap:Server</faultcode>'
    "<faultstring>Unplanned Outage</faultstring><faultactor>x</faultactor>"
    '<detail><apifault xmlns="urn:fault.partner.exacttarget.com"><Code>2</Code>'
    "<Message>Unplanned Outage</Message></apifault></detail></s:Fault></s:Body></s:Envelope>"
).encode()


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        pytest.param(TOKEN_EXPIRED, Fault("q0:Security", "Token Expired"), id="token-expired"),
        pytest.param(SERVER_FAULT, Fault("soap:Server", "Unplanned Outage"), id="server-detail"),
        pytest.param(
            SERVER_FAULT.replace(b"<s:Body>", b"<s:Body><Wrapper>").replace(
                b"</s:Body>", b"</Wrapper></s:Body>"
            ),
            Fault("soap:Server", "Unplanned Outage"),
            id="nested-under-body",
        ),
        pytest.param(PAGE, None, id="retrieve-page"),
        pytest.param(SUBSCRIBER_DESCRIBED, None, id="describe"),
        pytest.param(TOKEN_EXPIRED[:300], None, id="cut-short"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"Service Unavailable", None, id="not-xml"),
        pytest.param(b"<html><body>Fault</body></html>", None, id="html"),
        pytest.param(
            SERVER_FAULT.replace(b"<s:Fault>", b'<Fault xmlns="urn:other">').replace(
                b"</s:Fault>", b"</Fault>"
            ),
            None,
            id="fault-in-another-namespace",
        ),
        pytest.param(
            SERVER_FAULT.replace(b"s:Body", b"s:Header"), None, id="fault-outside-the-body"
        ),
    ],
)
def test_fault_of(content: bytes, fault: Fault | None) -> None:
    assert fault_of(content) == fault


NOT_A_FIELD = "Error: The Request Property(s) X do not match with the fields of List retrieve"


@pytest.mark.parametrize(
    ("status", "request_id"),
    [pytest.param("OK", None, id="ok"), pytest.param("MoreDataAvailable", "r-1", id="more")],
)
def test_ok_and_more_data_pass(status: str, request_id: str | None) -> None:
    raise_for_status(RetrievePage(status, request_id, []), "List")


@pytest.mark.parametrize(
    ("status", "request_id", "error", "message"),
    [
        pytest.param(
            "Error: API Permission Failed",
            "r-1",
            PermissionDenied,
            "SOAP Retrieve of List failed: Error: API Permission Failed",
            id="permission",
        ),
        pytest.param(
            NOT_A_FIELD,
            "r-1",
            PropertyRefused,
            f"SOAP Retrieve of List failed: {NOT_A_FIELD}",
            id="property",
        ),
        pytest.param("Error", "r-1", RequestRejected, "of List failed: Error", id="bare-error"),
        pytest.param(
            "The RequestID sent through ContinueRequest does not exist.",
            "r-1",
            RequestRejected,
            "failed: The RequestID sent through ContinueRequest does not exist.",
            id="unknown-continuation",
        ),
        pytest.param(
            "MoreDataAvailable", None, ResponseError, "without a RequestID", id="more-without-id"
        ),
    ],
)
def test_other_statuses_raise(
    status: str, request_id: str | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        raise_for_status(RetrievePage(status, request_id, []), "List")
    assert type(caught.value) is error
    assert message in str(caught.value)


def post(session: Session, action: str, envelope: bytes) -> httpx.Response:
    return session.http.post(
        session.token["soap_instance_url"] + "Service.asmx",
        content=envelope,
        headers={"SOAPAction": action, "Content-Type": "text/xml; charset=utf-8"},
    )


def retrieve(
    session: Session, object_type: str, properties: Sequence[str], **arguments: Any
) -> RetrievePage:
    envelope = retrieve_envelope(session.access_token, object_type, properties, **arguments)
    answer = post(session, "Retrieve", envelope)
    assert answer.status_code == 200, answer.text
    return parse_retrieve(answer.content, properties, object_type=object_type)


def retrieve_all(
    session: Session, properties: Sequence[str], **arguments: Any
) -> list[RetrievePage]:
    pages = [retrieve(session, "List", properties, **arguments)]
    while pages[-1].more:
        assert len(pages) < 20
        raise_for_status(pages[-1], "List")
        pages.append(
            retrieve(
                session, "List", properties, continue_request=pages[-1].request_id, **arguments
            )
        )
    raise_for_status(pages[-1], "List")
    return pages


def soap_text(value: Any) -> str | None:
    """A stored value as the emulator writes it (``emulator.soap._format``), unescaped."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_system_time(value)
    return str(value)


def stored(emulator: Emulator, mid: int | None = None) -> list[Fields]:
    return [row.fields for row in emulator.app.unit(mid).lists.values()]


def expected_rows(
    emulator: Emulator, properties: Sequence[str], mid: int | None = None
) -> dict[str, Row]:
    return {
        str(fields["ID"]): {name: soap_text(fields.get(name)) for name in properties}
        for fields in stored(emulator, mid)
    }


def by_id(rows: list[Row]) -> dict[str, Row]:
    keyed = {row["ID"] or "": row for row in rows}
    assert len(keyed) == len(rows)
    return keyed


def start(http: httpx.Client, factory: Callable[..., Emulator], **config: Any) -> Session:
    config.setdefault("sizes", SMALL)
    return Session(http, factory(**config))


@pytest.mark.parametrize("null_style", ["missing", "nil"])
def test_rows_equal_the_emulator_data_whatever_the_null_style(
    http: httpx.Client, emulator_factory: Callable[..., Emulator], null_style: str
) -> None:
    session = start(http, emulator_factory, sizes=Sizes(), null_style=null_style)
    page = retrieve(session, "List", RETRIEVABLE_LISTS)
    raise_for_status(page, "List")
    assert page.status == "OK"
    expected = expected_rows(session.emulator, RETRIEVABLE_LISTS)
    assert by_id(page.rows) == expected
    values = [value for row in expected.values() for value in row.values()]
    assert None in values and "" in values
    assert any(value and "\r" in value for value in values)
    assert any(value and value != value.strip() for value in values)


@pytest.mark.parametrize(
    ("batch_size", "page_sizes"),
    [
        pytest.param(2_500, [2_500, 1], id="full-pages"),
        pytest.param(1_000, [1_000, 1_000, 501], id="batch-1000"),
    ],
)
def test_continue_request_pages_through_2501_lists(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    batch_size: int,
    page_sizes: list[int],
) -> None:
    emulator = emulator_factory(EmulatorConfig(sizes=Sizes(campaigns=0, lists=2501, journeys=0)))
    session = Session(http, emulator)
    properties = ["ID", "ObjectID", "ModifiedDate", "Client.ID"]
    pages = retrieve_all(session, properties, batch_size=batch_size)
    assert [len(page.rows) for page in pages] == page_sizes
    assert [page.more for page in pages] == [True] * (len(pages) - 1) + [False]
    every = [row for page in pages for row in page.rows]
    assert by_id(every) == expected_rows(emulator, properties)


def test_continuation_the_emulator_forgot_is_rejected(session: Session) -> None:
    page = retrieve(session, "List", ["ID"], continue_request="no-such-request")
    with pytest.raises(RequestRejected, match="ContinueRequest does not exist"):
        raise_for_status(page, "List")


WINDOW_START = datetime(2024, 6, 1, 0, 0, 0, 250_000, tzinfo=SYSTEM_TIME)
WINDOW_END = datetime(2024, 9, 1, 0, 0, 0, 250_000, tzinfo=SYSTEM_TIME)


@pytest.mark.parametrize(
    "zone",
    [UTC, SYSTEM_TIME, CHICAGO, timezone(timedelta(hours=5, minutes=30))],
    ids=["utc", "system-time", "chicago-with-dst", "plus-0530"],
)
def test_date_filter_selects_exactly_the_rows_in_the_window(
    session: Session, zone: timezone | ZoneInfo
) -> None:
    lists = sorted(session.emulator.app.unit().lists)
    one_ms = timedelta(milliseconds=1)
    pinned = {
        lists[1]: WINDOW_START - one_ms,
        lists[2]: WINDOW_START,
        lists[3]: WINDOW_END - one_ms,
        lists[4]: WINDOW_END,
    }
    for key, instant in pinned.items():
        session.emulator.app.mutate.update("lists", key, touch=False, ModifiedDate=instant)
    since, until = WINDOW_START.astimezone(zone), WINDOW_END.astimezone(zone)
    window = ComplexFilter(
        SimpleFilter("ModifiedDate", "greaterThanOrEqual", (format_date_value(since),), date=True),
        "AND",
        SimpleFilter("ModifiedDate", "lessThan", (format_date_value(until),), date=True),
    )
    page = retrieve(session, "List", ["ID", "ModifiedDate"], filter=window)
    raise_for_status(page, "List")
    expected = {
        str(fields["ID"])
        for fields in stored(session.emulator)
        if since <= fields["ModifiedDate"] < until
    }
    assert 4 < len(expected) < len(lists)
    assert {str(lists[2]), str(lists[3])} <= expected
    assert not {str(lists[1]), str(lists[4])} & expected
    assert set(by_id(page.rows)) == expected


@pytest.mark.parametrize("text", NASTY_TEXT)
def test_filter_values_reach_the_emulator_intact(session: Session, text: str) -> None:
    key = session.emulator.app.mutate.add("lists", ListName=text, Description=text)
    page = retrieve(
        session,
        "List",
        ["ID", "ListName", "Description"],
        filter=SimpleFilter("ListName", "equals", (text,)),
    )
    raise_for_status(page, "List")
    assert page.rows == [{"ID": str(key), "ListName": text, "Description": text}]


def test_or_with_additional_operands_selects_each_operand(session: Session) -> None:
    chosen = sorted(session.emulator.app.unit().lists)[5:8]
    equals = [SimpleFilter("ID", "equals", (str(key),)) for key in chosen]
    page = retrieve(
        session,
        "List",
        ["ID"],
        filter=ComplexFilter(equals[0], "OR", equals[1], additional=(equals[2],)),
    )
    raise_for_status(page, "List")
    assert sorted(int(row["ID"] or "") for row in page.rows) == chosen


def test_client_ids_read_another_business_unit(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = start(http, emulator_factory, business_units=2)
    other = session.emulator.config.mids[1]
    properties = ["ID", "ObjectID", "Client.ID"]
    page = retrieve(session, "List", properties, client_ids=[other])
    raise_for_status(page, "List")
    assert by_id(page.rows) == expected_rows(session.emulator, properties, other)
    assert {row["Client.ID"] for row in page.rows} == {str(other)}


@pytest.mark.parametrize(
    ("config", "retrievable"),
    [({}, True), ({"unretrievable": {"List": {"Client.UserID"}}}, False)],
    ids=["default", "client-user-id-unretrievable"],
)
def test_describe_round_trip(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    config: dict[str, Any],
    retrievable: bool,
) -> None:
    session = start(http, emulator_factory, **config)
    answer = post(session, "Describe", describe_envelope(session.access_token, "List"))
    assert answer.status_code == 200, answer.text
    described = parse_describe(answer.content, object_type="List")
    assert described["Client.UserID"].retrievable is retrievable
    assert (described["ID"].data_type, described["CreatedDate"].data_type) == ("Int32", "DateTime")
    assert not described["Subscribers"].retrievable
    usable = [name for name, prop in described.items() if prop.retrievable]
    assert set(usable) == set(RETRIEVABLE_LISTS) - ({"Client.UserID"} if not retrievable else set())
    raise_for_status(retrieve(session, "List", usable), "List")
    page = retrieve(session, "List", ["ID", "Client.UserID"])
    if retrievable:
        raise_for_status(page, "List")
    else:
        with pytest.raises(RequestRejected) as caught:
            raise_for_status(page, "List")
        assert str(caught.value) == (
            "SOAP Retrieve of List failed: Error: The Request Property(s) Client.UserID "
            "do not match with the fields of List retrieve"
        )


def test_missing_scope_is_permission_denied(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = start(http, emulator_factory, scopes=("campaign_read",))
    with pytest.raises(PermissionDenied, match="SOAP Retrieve of List failed"):
        raise_for_status(retrieve(session, "List", ["ID"]), "List")


@pytest.mark.parametrize(
    ("setup", "fault"),
    [
        pytest.param(
            lambda session: setattr(session, "access_token", "not-a-token"),
            Fault("q0:Security", "Login Failed"),
            id="unknown-token",
        ),
        pytest.param(
            lambda session: setattr(session.emulator.app.faults, "server_error_every", 1),
            Fault("soap:Server", "Unplanned Outage"),
            id="server-error",
        ),
        pytest.param(
            lambda session: setattr(session.emulator.app.faults, "rate_limit_every", 1),
            Fault("soap:Server", "Server too busy. Please retry later."),
            id="throttled",
        ),
    ],
)
def test_fault_of_reads_the_emulator_faults(
    http: httpx.Client,
    emulator_factory: Callable[..., Emulator],
    setup: Callable[[Session], None],
    fault: Fault,
) -> None:
    session = start(http, emulator_factory)
    setup(session)
    answer = post(session, "Retrieve", retrieve_envelope(session.access_token, "List", ["ID"]))
    assert answer.status_code == 500
    assert fault_of(answer.content) == fault
    with pytest.raises(ResponseError, match=f"{fault.code}: {fault.text}"):
        parse_retrieve(answer.content, ["ID"], object_type="List")


def test_fault_of_a_good_page_is_none(session: Session) -> None:
    answer = post(session, "Retrieve", retrieve_envelope(session.access_token, "List", ["ID"]))
    assert answer.status_code == 200
    assert fault_of(answer.content) is None


def test_malformed_page_from_the_emulator_raises_response_error(
    http: httpx.Client, emulator_factory: Callable[..., Emulator]
) -> None:
    session = start(http, emulator_factory, faults=Faults(malformed={"List": 2}))
    first = retrieve(session, "List", ["ID"], batch_size=10)
    assert first.more and len(first.rows) == 10
    with pytest.raises(ResponseError, match=r"^malformed SOAP response for List: "):
        retrieve(session, "List", ["ID"], batch_size=10, continue_request=first.request_id)


def test_a_refused_property_is_named_by_its_error() -> None:
    status = "Error: The Request Property(s) Client.UserID, Client.ModifiedBy do not match with"
    with pytest.raises(PropertyRefused) as caught:
        raise_for_status(RetrievePage(status, None, []), "List")
    assert caught.value.properties == ("Client.ModifiedBy", "Client.UserID")
