"""The emulator's SOAP side: read a request envelope, evaluate filters, write SFMC's XML.

Requests are parsed with lxml with entities, DTDs and network access off. Responses are
written as text, the way SFMC writes them: unprefixed children in the partnerAPI namespace,
``xsi:nil`` or a missing element for null, ``<X />`` for an empty string, naive timestamps in
system time (docs/sfmc-api.md#retrieve-response).
"""

from __future__ import annotations

import operator
import re
import uuid
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lxml import etree

from sfmc_source.emulator.catalogue import ALWAYS_RETURNED, SoapObject, SoapProperty
from sfmc_source.emulator.data import Fields, Row
from sfmc_source.emulator.tracking import EVENT_DATE, Bound, to_micros
from sfmc_source.timefmt import format_system_time, parse_timestamp

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "http://exacttarget.com/wsdl/partnerAPI"
FUEL = "http://exacttarget.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


class StatusError(Exception):
    """A request SFMC answers with HTTP 200 and this ``OverallStatus`` text."""


class Fault(Exception):
    """A request SFMC answers with HTTP 500 and a SOAP fault."""

    def __init__(self, code: str, text: str, *, security: bool = False) -> None:
        super().__init__(text)
        self.code, self.text, self.security = code, text, security


@dataclass
class Envelope:
    """What the emulator needs from a request envelope."""

    operation: str
    token: str | None
    message_id: str | None
    body: etree._Element


@dataclass
class RetrieveRequest:
    object_type: str | None = None
    properties: list[str] = field(default_factory=list)
    filter: etree._Element | None = None
    continue_request: str | None = None
    batch_size: int | None = None
    client_ids: list[int] = field(default_factory=list)
    query_all_accounts: bool = False


def read_envelope(body: bytes) -> Envelope:
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Fault("soap:Client", f"Server was unable to read request. {exc}") from None
    soap_body = root.find(f"{{{SOAP_ENV}}}Body")
    if root.tag != f"{{{SOAP_ENV}}}Envelope" or soap_body is None or len(soap_body) == 0:
        raise Fault("soap:Client", "Server was unable to read request: no SOAP 1.1 Envelope/Body.")
    token = root.findtext(f"{{{SOAP_ENV}}}Header/{{{FUEL}}}fueloauth")
    message_id = root.findtext(
        f"{{{SOAP_ENV}}}Header/{{http://schemas.xmlsoap.org/ws/2004/08/addressing}}MessageID"
    )
    operation = etree.QName(soap_body[0]).localname
    return Envelope(operation, token.strip() if token else None, message_id, soap_body[0])


def read_retrieve(message: etree._Element) -> RetrieveRequest:
    request_el = message.find(f"{{{PARTNER}}}RetrieveRequest")
    if request_el is None:
        raise Fault("soap:Client", "Server was unable to read request: no RetrieveRequest.")
    request = RetrieveRequest()
    for child in request_el:
        name, text = etree.QName(child).localname, (child.text or "").strip()
        if name == "ObjectType":
            request.object_type = text
        elif name == "Properties":
            request.properties.append(text)
        elif name == "Filter":
            request.filter = child
        elif name == "ContinueRequest":
            request.continue_request = text or None
        elif name == "QueryAllAccounts":
            request.query_all_accounts = text.lower() == "true"
        elif name == "ClientIDs":
            request.client_ids += [_int(i.text) for i in child.iter(f"{{{PARTNER}}}ID") if i.text]
        elif name == "Options":
            size = child.findtext(f"{{{PARTNER}}}BatchSize")
            request.batch_size = _int(size.strip()) if size and size.strip() else None
    return request


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise Fault(
            "soap:Client", f"Server was unable to read request. '{text}' is not an int."
        ) from None


def read_describe(message: etree._Element) -> list[str]:
    return [(el.text or "").strip() for el in message.iter(f"{{{PARTNER}}}ObjectType")]


# ---- filters ----------------------------------------------------------------------------


class Lookup(Protocol):
    """A row as a filter reads it: a dict of fields, or a view of one row of an event table."""

    def get(self, name: str, /) -> Any: ...


Predicate = Callable[[Lookup], bool]


@dataclass(frozen=True)
class Condition:
    """A compiled filter. ``test`` decides a row; ``after`` and ``until`` bound the EventDate
    window it admits, and ``rest`` is what it asks beyond that window (None: nothing), so rows
    kept in EventDate order can be found by bisection instead of a test each."""

    test: Predicate
    rest: Predicate | None
    after: Bound | None = None
    until: Bound | None = None


def compile_filter(element: etree._Element, obj: SoapObject) -> Predicate:
    """Turn a ``Filter``/``LeftOperand``/``RightOperand`` element into a row predicate."""
    return compile_condition(element, obj).test


def compile_condition(element: etree._Element, obj: SoapObject) -> Condition:
    kind = _xsi_type(element)
    if kind == "SimpleFilterPart":
        return _simple_filter(element, obj)
    if kind == "ComplexFilterPart":
        return _complex_filter(element, obj)
    raise StatusError("Error: Unknown filter of type FilterPart encountered")


def _xsi_type(element: etree._Element) -> str | None:
    value = element.get(f"{{{XSI}}}type")
    return value.rsplit(":", 1)[-1] if value else None


def _complex_filter(element: etree._Element, obj: SoapObject) -> Condition:
    operands = [
        element.find(f"{{{PARTNER}}}LeftOperand"),
        element.find(f"{{{PARTNER}}}RightOperand"),
    ]
    operands += list(element.iterfind(f"{{{PARTNER}}}AdditionalOperands/{{{PARTNER}}}Operand"))
    if any(o is None for o in operands[:2]):
        raise StatusError("Error: Incorrect syntax near the keyword 'AND'.")
    parts = [compile_condition(o, obj) for o in operands if o is not None]
    tests = [part.test for part in parts]
    logical = (element.findtext(f"{{{PARTNER}}}LogicalOperator") or "").strip()
    if logical == "AND":
        rests = [part.rest for part in parts if part.rest is not None]
        afters = [part.after for part in parts if part.after is not None]
        untils = [part.until for part in parts if part.until is not None]
        return Condition(
            _all(tests),
            _all(rests) if rests else None,
            max(afters, key=_tightest_after, default=None),
            min(untils, key=_tightest_until, default=None),
        )
    if logical == "OR":
        test: Predicate = lambda fields: any(t(fields) for t in tests)  # noqa: E731
        return Condition(test, test)
    raise StatusError(f"Error: Unknown logical operator '{logical}'.")


def _all(tests: list[Predicate]) -> Predicate:
    if len(tests) == 1:
        return tests[0]
    return lambda fields: all(t(fields) for t in tests)


def _tightest_after(bound: Bound) -> tuple[int, bool]:
    return bound.micros, not bound.inclusive


def _tightest_until(bound: Bound) -> tuple[int, bool]:
    return bound.micros, bound.inclusive


def _simple_filter(element: etree._Element, obj: SoapObject) -> Condition:
    name = (element.findtext(f"{{{PARTNER}}}Property") or "").strip()
    op_name = (element.findtext(f"{{{PARTNER}}}SimpleOperator") or "").strip()
    prop = obj.property(name)
    if prop is None:
        raise StatusError(f"Error: Invalid column name '{name}'.")
    texts = [el.text or "" for el in element.iterfind(f"{{{PARTNER}}}Value")]
    texts += [el.text or "" for el in element.iterfind(f"{{{PARTNER}}}DateValue")]
    if op_name in ("isNull", "isNotNull"):
        wanted_null = op_name == "isNull"
        test: Predicate = lambda fields: (fields.get(name) is None) == wanted_null  # noqa: E731
        return Condition(test, test)
    if not texts:
        raise StatusError(
            f"Error: Invalid argument for the {op_name} operator. Filter array cannot be null."
        )
    values = [_filter_value(prop, text) for text in texts]
    test = _comparison(name, op_name, values, prop)
    if name == EVENT_DATE and op_name in _WINDOWS:
        micros = [to_micros(value) for value in values]
        after, until = _WINDOWS[op_name](*micros[: 2 if op_name == "between" else 1])
        return Condition(test, None, after, until)
    return Condition(test, test)


# The EventDate window of each operator, from its (one or two) values in microseconds.
_WINDOWS: dict[str, Callable[..., tuple[Bound | None, Bound | None]]] = {
    "equals": lambda at: (Bound(at, True), Bound(at, True)),
    "greaterThan": lambda at: (Bound(at, False), None),
    "greaterThanOrEqual": lambda at: (Bound(at, True), None),
    "lessThan": lambda at: (None, Bound(at, False)),
    "lessThanOrEqual": lambda at: (None, Bound(at, True)),
    "between": lambda low, high: (Bound(low, True), Bound(high, True)),
}

_BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "equals": operator.eq,
    "notEquals": operator.ne,
    "greaterThan": operator.gt,
    "greaterThanOrEqual": operator.ge,
    "lessThan": operator.lt,
    "lessThanOrEqual": operator.le,
}


def _comparison(name: str, op_name: str, values: list[Any], prop: SoapProperty) -> Predicate:
    """One closure per filter, so a 200,000-row scan makes one Python call per row. A null
    value matches no comparison, as in SQL."""
    first = values[0]
    if op_name in _BINARY:
        op = _BINARY[op_name]
        return lambda fields: (v := fields.get(name)) is not None and op(v, first)
    if op_name == "IN":
        wanted = set(values)
        return lambda fields: fields.get(name) in wanted
    if op_name == "between":
        if len(values) != 2:
            raise StatusError("Error: The between operator requires exactly two values.")
        low, high = values
        return lambda fields: (v := fields.get(name)) is not None and low <= v <= high
    if op_name == "like" and prop.data_type == "String":
        pattern = re.compile(_like_regex(str(first)), re.IGNORECASE | re.DOTALL)
        return lambda fields: (v := fields.get(name)) is not None and bool(pattern.fullmatch(v))
    raise StatusError(f"Error: The {op_name} operator is not supported for property {prop.name}.")


def _like_regex(pattern: str) -> str:
    return "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)


def _filter_value(prop: SoapProperty, text: str) -> Any:
    try:
        if prop.data_type == "DateTime":
            instant = parse_timestamp(text)
            if instant is None:
                raise ValueError(text)
            return instant
        if prop.data_type in ("Int32", "Int64"):
            return int(text)
        if prop.data_type == "Boolean":
            return text.strip().lower() in ("true", "1")
    except ValueError:
        raise StatusError(f"Error: '{text}' is not a valid value for {prop.name}.") from None
    return text


# ---- writing ----------------------------------------------------------------------------

_ENVELOPE_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    f'xmlns:wsse="{WSSE}" '
    'xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
    "<soap:Header><wsa:Action>{action}</wsa:Action>"
    "<wsa:MessageID>urn:uuid:{message_id}</wsa:MessageID>"
    "<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>"
    "<wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
    '<wsse:Security><wsu:Timestamp wsu:Id="Timestamp-{timestamp_id}">'
    "<wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires>"
    "</wsu:Timestamp></wsse:Security></soap:Header><soap:Body>"
)
_ENVELOPE_TAIL = b"</soap:Body></soap:Envelope>"


def envelope(action: str, relates_to: str | None, body: bytes) -> bytes:
    """Wrap a body in SFMC's response envelope with its WS-Addressing and timestamp header."""
    now = datetime.now(UTC).replace(microsecond=0)
    head = _ENVELOPE_HEAD.format(
        action=action,
        message_id=uuid.uuid4(),
        timestamp_id=uuid.uuid4(),
        relates_to=escape(relates_to or f"urn:uuid:{uuid.uuid4()}"),
        created=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        expires=(now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return b"".join((head.encode(), body, _ENVELOPE_TAIL))  # one copy of a megabyte page


def retrieve_response(status: str, request_id: str, results: Sequence[bytes]) -> bytes:
    head = (
        f'<RetrieveResponseMsg xmlns="{PARTNER}"><OverallStatus>{escape(status)}</OverallStatus>'
        f"<RequestID>{request_id}</RequestID>"
    )
    return b"".join((head.encode(), *results, b"</RetrieveResponseMsg>"))


def fault_body(fault: Fault, actor: str) -> bytes:
    if fault.security:
        code = f'<faultcode xmlns:q0="{WSSE}">q0:Security</faultcode>'
    else:
        code = f"<faultcode>{fault.code}</faultcode>"
    detail = ""
    if fault.code == "soap:Server":
        detail = (
            '<detail><apifault xmlns="urn:fault.partner.exacttarget.com"><Code>2</Code>'
            f"<Message>{escape(fault.text)}</Message></apifault></detail>"
        )
    return (
        f"<soap:Fault>{code}<faultstring>{escape(fault.text)}</faultstring>"
        f"<faultactor>{escape(actor)}</faultactor>{detail}</soap:Fault>"
    ).encode()


def escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _format(value: Any) -> str:
    if type(value) is str:
        return escape(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_system_time(value)
    return escape(str(value))


# What to read, and the opening, closing, empty and nil forms of its element.
Slot = tuple[str, str, str, str, str]


class ResultsWriter:
    """Writes ``<Results>`` elements for one object and one set of requested properties.

    ``PartnerKey`` and ``ObjectID`` are written on every row, nil when not requested, and
    inside a nested reference that declares them (TriggeredSendDefinition ``Email``) whenever
    it is written.
    Nillable properties that are null are written ``xsi:nil="true"``; other nulls are left out
    (``null_style="missing"``, what the Retrieve doc says) or written nil (``"nil"``), and null
    children of a nested object are always left out, the parent too when all are null. A
    ``pair`` property is a ``PartnerProperties`` Name/Value pair, left out when null.
    ``groups`` holds the slot of each property written, by the element it is nested in.
    """

    def __init__(
        self, obj: SoapObject, requested: Sequence[str], null_style: str = "missing"
    ) -> None:
        # a nested reference's own PartnerKey and ObjectID come with any of its properties
        parents = {p.parent for p in obj.properties if p.name in requested and p.parent}
        companions = {f"{parent}.{name}" for parent in parents for name in ALWAYS_RETURNED}
        wanted = set(requested) | ALWAYS_RETURNED | companions
        self.obj = obj
        props = [p for p in obj.properties if p.name in wanted]
        unrequested = tuple(sorted((ALWAYS_RETURNED | companions) - set(requested)))
        self.cache_key = (obj.name, tuple(p.name for p in props), unrequested, null_style)
        self.groups: list[tuple[str | None, list[Slot]]] = []
        for prop in props:
            if not self.groups or self.groups[-1][0] != prop.parent:
                self.groups.append((prop.parent, []))
            tag = prop.name.rsplit(".", 1)[-1]
            nil = prop.nillable or (null_style == "nil" and prop.parent is None)
            source = "" if prop.name in unrequested else prop.name
            if prop.pair:
                pair, end = f"<PartnerProperties><Name>{tag}</Name>", "</PartnerProperties>"
                slot = (source, f"{pair}<Value>", f"</Value>{end}", f"{pair}<Value />{end}", "")
            else:
                slot = (
                    source,
                    f"<{tag}>",
                    f"</{tag}>",
                    f"<{tag} />",
                    f'<{tag} xsi:nil="true" />' if nil else "",
                )
            self.groups[-1][1].append(slot)

    def write(self, row: Row) -> bytes:
        cached = row.rendered.get(self.cache_key)
        if cached is None:
            cached = row.rendered[self.cache_key] = self._render(row.fields).encode()
        return cached

    def _render(self, fields: Fields) -> str:
        parts = [f'<Results xsi:type="{self.obj.name}">']
        for parent, slots in self.groups:
            elements = "".join(
                element(slot, fields.get(slot[0]) if slot[0] else None) for slot in slots
            )
            if parent is None:
                parts.append(elements)
            elif elements:
                parts.append(f"<{parent}>{elements}</{parent}>")
        parts.append("</Results>")
        return "".join(parts)


def element(slot: Slot, value: Any) -> str:
    """A slot's element for a value."""
    _, opening, closing, empty, nil = slot
    if value is None:
        return nil
    text = _format(value)
    return opening + text + closing if text else empty


def describe_response(obj: SoapObject, unretrievable: AbstractSet[str], empty: bool) -> bytes:
    """An ObjectDefinition; ``unretrievable`` names what this tenant will not return."""
    parts = [f'<DefinitionResponseMsg xmlns="{PARTNER}"><ObjectDefinition>']
    parts.append(f"<ObjectType>{obj.name}</ObjectType>")
    for prop in () if empty else obj.properties:
        can_retrieve = prop.retrievable and prop.name not in unretrievable
        parts.append('<Properties><PartnerKey xsi:nil="true" /><ObjectID xsi:nil="true" />')
        parts.append(f"<Name>{prop.name}</Name><DataType>{prop.data_type}</DataType>")
        parts.append(f"<IsUpdatable>{_format(prop.updatable)}</IsUpdatable>")
        parts.append(f"<IsRetrievable>{_format(can_retrieve)}</IsRetrievable>")
        if prop.max_length:
            parts.append(f"<MaxLength>{prop.max_length}</MaxLength>")
        if can_retrieve:
            parts.append("<IsRequired>false</IsRequired>")
        parts.append("</Properties>")
    parts.append(
        "<ExtendedProperties /><ChildObjects /></ObjectDefinition></DefinitionResponseMsg>"
    )
    return "".join(parts).encode()
