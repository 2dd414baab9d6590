"""SFMC's SOAP API from the client side: build request envelopes, read responses. No HTTP here.

Requests (docs/sfmc-api.md#soap) are SOAP 1.1 envelopes with the access token in a
``fueloauth`` header, ``RetrieveRequest`` children in WSDL order and ``xsi:type`` on every
filter part; every text is XML-escaped.

Responses are read with lxml with entities, DTDs and network access off. A Retrieve page is
read into one list of values per requested property (``Rows``), never a dict per row; a page
over ``STREAM_ABOVE`` bytes is streamed one ``<Results>`` at a time, each dropped once read,
so large rows cost little memory. A row (docs/sfmc-api.md#retrieve-response) holds exactly
the requested properties: an absent or ``xsi:nil`` element is ``None``, an empty one ``""``,
other text is kept as written; ``Client.ID`` is read from ``<Client><ID>``, and
``PartnerProperties`` (and DataExtensionObject ``Properties``) Name/Value pairs count as
properties named by their ``Name``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TypeAlias, overload

import pyarrow as pa
from lxml import etree

from sfmc_source.errors import PermissionDenied, PropertyRefused, RequestRejected, ResponseError
from sfmc_source.timefmt import SYSTEM_TIME

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "http://exacttarget.com/wsdl/partnerAPI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FUEL = "http://exacttarget.com"

MAX_BATCH_SIZE = 2_500
SIMPLE_OPERATORS = frozenset(
    {
        "equals", "notEquals", "greaterThan", "lessThan", "isNull", "isNotNull",
        "greaterThanOrEqual", "lessThanOrEqual", "between", "IN", "like", "existsInString",
        "existsInStringAsAWord", "notExistsInString", "beginsWith", "endsWith", "contains",
        "notContains", "isAnniversary", "isNotAnniversary", "greaterThanAnniversary",
        "lessThanAnniversary",
    }
)  # fmt: skip
LOGICAL_OPERATORS = frozenset({"AND", "OR"})

Row: TypeAlias = dict[str, str | None]


@dataclass(frozen=True)
class SimpleFilter:
    """A ``SimpleFilterPart``: ``property operator values``; ``date`` sends ``<DateValue>``s."""

    property: str
    operator: str
    values: tuple[str, ...]
    date: bool = False

    def __post_init__(self) -> None:
        if self.operator not in SIMPLE_OPERATORS:
            raise ValueError(f"unknown SOAP filter operator {self.operator!r}")
        values: object = self.values
        if not isinstance(values, tuple) or not all(isinstance(v, str) for v in values):
            raise TypeError(f"filter values must be a tuple of strings, not {values!r}")


@dataclass(frozen=True)
class ComplexFilter:
    """A ``ComplexFilterPart``: ``left logical right``, plus any ``additional`` operands."""

    left: Filter
    logical: str
    right: Filter
    additional: tuple[Filter, ...] = ()

    def __post_init__(self) -> None:
        if self.logical not in LOGICAL_OPERATORS:
            raise ValueError(f"logical operator must be AND or OR, not {self.logical!r}")


Filter: TypeAlias = SimpleFilter | ComplexFilter


def retrieve_envelope(
    token: str,
    object_type: str,
    properties: Sequence[str],
    filter: Filter | None = None,
    batch_size: int = MAX_BATCH_SIZE,
    continue_request: str | None = None,
    client_ids: Sequence[int] = (),
) -> bytes:
    """A Retrieve request envelope, children in WSDL order (docs/sfmc-api.md#retrieve-request).

    With ``continue_request`` the whole request is repeated with ``<ContinueRequest>`` added,
    the form zeep-based clients send; SFMC reads the continuation and ignores the rest.
    """
    if not 0 < batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}")
    parts = [f"<ClientIDs>{_element('ID', str(int(mid)))}</ClientIDs>" for mid in client_ids]
    parts.append(_element("ObjectType", object_type))
    parts += [_element("Properties", name) for name in properties]
    if filter is not None:
        parts.append(_filter_part("Filter", filter))
    if continue_request is not None:
        parts.append(_element("ContinueRequest", continue_request))
    parts.append(f"<Options>{_element('BatchSize', str(batch_size))}</Options>")
    request = "".join(parts)
    return _envelope(
        token,
        f'<RetrieveRequestMsg xmlns="{PARTNER}"><RetrieveRequest>{request}</RetrieveRequest>'
        "</RetrieveRequestMsg>",
    )


def describe_envelope(token: str, object_type: str) -> bytes:
    """A Describe request envelope for one object type (docs/sfmc-api.md#describe)."""
    return _envelope(
        token,
        f'<DefinitionRequestMsg xmlns="{PARTNER}"><DescribeRequests><ObjectDefinitionRequest>'
        f"{_element('ObjectType', object_type)}</ObjectDefinitionRequest></DescribeRequests>"
        "</DefinitionRequestMsg>",
    )


def format_date_value(instant: datetime) -> str:
    """An aware instant as a filter ``DateValue`` with an explicit offset, in system time with
    milliseconds (``2024-06-01T00:00:00.000-06:00``), which SFMC converts correctly
    (docs/sfmc-api.md#dates-in-filters)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"a filter date needs a time zone: {instant.isoformat()}")
    return instant.astimezone(SYSTEM_TIME).isoformat(timespec="milliseconds")


def _envelope(token: str, body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:xsi="{XSI}">'
        f'<s:Header><fueloauth xmlns="{FUEL}">{_escape(token)}</fueloauth></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _filter_part(tag: str, part: Filter) -> str:
    if isinstance(part, SimpleFilter):
        kind, inner = "SimpleFilterPart", _simple_filter(part)
    else:
        kind, inner = "ComplexFilterPart", _complex_filter(part)
    return f'<{tag} xsi:type="{kind}">{inner}</{tag}>'


def _simple_filter(part: SimpleFilter) -> str:
    value_tag = "DateValue" if part.date else "Value"
    values = "".join(_element(value_tag, value) for value in part.values)
    return (
        f"{_element('Property', part.property)}{_element('SimpleOperator', part.operator)}{values}"
    )


def _complex_filter(part: ComplexFilter) -> str:
    inner = (
        _filter_part("LeftOperand", part.left)
        + _element("LogicalOperator", part.logical)
        + _filter_part("RightOperand", part.right)
    )
    if part.additional:
        operands = "".join(_filter_part("Operand", operand) for operand in part.additional)
        inner += f"<AdditionalOperands>{operands}</AdditionalOperands>"
    return inner


def _element(tag: str, text: str) -> str:
    return f"<{tag}>{_escape(text)}</{tag}>"


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(text: str) -> str:
    """Text content that parses back to ``text`` exactly, carriage returns included."""
    bad = _NOT_XML.search(text)
    if bad:
        raise ValueError(f"{bad.group()!r} cannot be sent in XML: {text!r}")
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


class Rows(Sequence[Row]):
    """The rows of a page, held column by column: ``columns`` maps each requested property
    to its values in row order, and ``array`` gives them as Arrow text. Indexed or iterated,
    it gives the rows as dicts. It is pickled (out of a worker process) as Arrow arrays, which
    cost a fraction of Python strings to send and to load."""

    def __init__(self, columns: dict[str, list[str | None]], size: int) -> None:
        self._columns: dict[str, list[str | None]] | None = columns
        self._arrays: dict[str, pa.StringArray] = {}
        self.size = size

    @property
    def columns(self) -> dict[str, list[str | None]]:
        if self._columns is None:
            self._columns = {name: values.to_pylist() for name, values in self._arrays.items()}
        return self._columns

    def array(self, name: str) -> pa.StringArray | None:
        """The values of property ``name`` as Arrow text; ``None`` if it was not requested."""
        if name in self._arrays:
            return self._arrays[name]
        if self._columns is None or name not in self._columns:
            return None
        return pa.array(self._columns[name], pa.string())  # not kept: the caller keeps it

    def __getstate__(self) -> dict[str, Any]:
        names = list(self._arrays if self._columns is None else self._columns)
        return {"size": self.size, "arrays": {name: self.array(name) for name in names}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.size, self._arrays, self._columns = state["size"], state["arrays"], None

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if not -self.size <= index < self.size:
            raise IndexError(f"row {index} of {self.size}")
        return {name: values[index] for name, values in self.columns.items()}

    def __iter__(self) -> Iterator[Row]:
        names = list(self.columns)
        if not names:
            return iter([{} for _ in range(self.size)])
        rows = zip(*self.columns.values(), strict=True)
        return (dict(zip(names, values, strict=True)) for values in rows)


@dataclass
class RetrievePage:
    """One Retrieve response: its ``OverallStatus``, ``RequestID`` and rows."""

    status: str
    request_id: str | None
    columns: Rows = field(default_factory=lambda: Rows({}, 0))

    @property
    def more(self) -> bool:
        """Whether another page waits behind ``request_id``."""
        return self.status == "MoreDataAvailable"

    @property
    def rows(self) -> list[Row]:
        """The rows as dicts of the requested properties."""
        return list(self.columns)


@dataclass(frozen=True)
class DescribedProperty:
    """One ``Properties`` entry of a Describe response; ``data_type`` is SFMC's .NET name."""

    name: str
    data_type: str
    retrievable: bool


@dataclass(frozen=True)
class Fault:
    """A SOAP fault: its ``faultcode`` as written (``q0:Security``) and its ``faultstring``."""

    code: str
    text: str


def _partner(name: str) -> str:
    return f"{{{PARTNER}}}{name}"


_RESPONSE_MSG = _partner("RetrieveResponseMsg")
_STATUS = _partner("OverallStatus")
_REQUEST_ID = _partner("RequestID")
_RESULTS = _partner("Results")
_NAME = _partner("Name")
_VALUE = _partner("Value")
_BODY = f"{{{SOAP_ENV}}}Body"
_FAULT = f"{{{SOAP_ENV}}}Fault"
_NIL = f"{{{XSI}}}nil"
_RELEASE_EVERY = 256
# Pages longer than this are streamed rather than read as one tree (bytes).
STREAM_ABOVE = 16 * 2**20
_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": True,
    "remove_comments": True,
    "remove_pis": True,
}


def parse_retrieve(
    content: bytes, properties: Sequence[str], *, object_type: str | None = None
) -> RetrievePage:
    """Read a RetrieveResponseMsg into rows of the requested ``properties``, column by column
    (docs/sfmc-api.md#retrieve-response).

    Raises ``ResponseError`` for malformed XML or a body without ``OverallStatus``;
    ``object_type`` only names the object in that message. The status is not judged here:
    see ``raise_for_status``.
    """
    reader = _ColumnReader(properties)
    try:
        if len(content) > STREAM_ABOVE:
            root, heading = _stream(content, reader)
        else:
            root, heading = _whole(content, reader)
    except etree.XMLSyntaxError as exc:
        raise ResponseError(_malformed(exc, object_type)) from None
    _refuse_dtd(root, object_type)
    if not heading.get(_STATUS):
        raise ResponseError(
            _not_a_response("RetrieveResponseMsg/OverallStatus", content, object_type)
        )
    return RetrievePage(heading[_STATUS], heading.get(_REQUEST_ID) or None, reader.rows())


def _whole(content: bytes, reader: _ColumnReader) -> tuple[etree._Element | None, dict[str, str]]:
    """The message's heading, its rows read into ``reader``, from the tree of the whole
    page: a page of plain rows is read in half the time a streamed one takes."""
    root = etree.fromstring(content, etree.XMLParser(**_PARSER_OPTIONS))
    heading: dict[str, str] = {}
    for element in next(root.iter(_RESPONSE_MSG), ()):
        if element.tag == _RESULTS:
            reader.read(element)
        elif element.tag in (_STATUS, _REQUEST_ID):
            heading[element.tag] = (element.text or "").strip()
    return root, heading


def _stream(content: bytes, reader: _ColumnReader) -> tuple[etree._Element | None, dict[str, str]]:
    """As ``_whole``, one ``<Results>`` at a time, each dropped once read: a page of large
    rows (email bodies) never stands in memory as a tree."""
    heading: dict[str, str] = {}
    events = etree.iterparse(
        io.BytesIO(content),
        events=("end",),
        tag=(_RESULTS, _STATUS, _REQUEST_ID),
        **_PARSER_OPTIONS,
    )
    for _, element in events:
        if _parent_tag(element) != _RESPONSE_MSG:
            continue
        if element.tag == _RESULTS:
            reader.read(element)
            element.clear()
            if reader.count % _RELEASE_EVERY == 0:
                _drop_preceding(element)
        else:
            heading[element.tag] = (element.text or "").strip()
    return events.root, heading


def parse_describe(
    content: bytes, *, object_type: str | None = None
) -> dict[str, DescribedProperty]:
    """The properties of a DefinitionResponseMsg by name; empty when SFMC lists none."""
    root = _parse(content, object_type)
    message = root.find(f"{_BODY}/{_partner('DefinitionResponseMsg')}")
    if message is None:
        raise ResponseError(_not_a_response("DefinitionResponseMsg", content, object_type))
    described: dict[str, DescribedProperty] = {}
    path = f"{_partner('ObjectDefinition')}/{_partner('Properties')}"
    for entry in message.iterfind(path):
        name = (entry.findtext(_NAME) or "").strip()
        if name:
            described[name] = DescribedProperty(
                name=name,
                data_type=(entry.findtext(_partner("DataType")) or "").strip(),
                retrievable=_true(entry.findtext(_partner("IsRetrievable"))),
            )
    return described


def fault_of(content: bytes) -> Fault | None:
    """The SOAP fault in a response body, or ``None`` for anything else, malformed included."""
    try:
        root = etree.fromstring(content, etree.XMLParser(**_PARSER_OPTIONS))
    except (etree.LxmlError, ValueError, TypeError):
        return None
    for body in root.iter(_BODY):
        for fault in body.iter(_FAULT):
            return Fault(
                code=(fault.findtext("faultcode") or "").strip(),
                text=(fault.findtext("faultstring") or "").strip(),
            )
    return None


def raise_for_status(page: RetrievePage, object_type: str) -> None:
    """Raise unless ``page`` is ``OK`` or ``MoreDataAvailable`` with a ``RequestID``.

    ``Error: API Permission Failed`` raises ``PermissionDenied``; properties the tenant will
    not return, ``PropertyRefused`` naming them; any other status ``RequestRejected`` with the
    status text as SFMC wrote it.
    """
    if page.status == "OK":
        return
    if page.more:
        if not page.request_id:
            raise ResponseError(
                f"SOAP Retrieve of {object_type} says MoreDataAvailable without a RequestID "
                "to continue from"
            )
        return
    message = f"SOAP Retrieve of {object_type} failed: {page.status}"
    if page.status.startswith("Error: API Permission Failed"):
        raise PermissionDenied(
            f"{message} (check that the installed package may read {object_type})"
        )
    refused = _REFUSED_PROPERTIES.search(page.status)
    if refused:
        names = tuple(sorted({n.strip() for n in refused.group(1).split(",") if n.strip()}))
        raise PropertyRefused(message, names)
    raise RequestRejected(message)


# How SFMC names the properties a tenant will not return for an object.
_REFUSED_PROPERTIES = re.compile(r"Request Property\(s\) (.+?) do not match")


class _Pairs(Enum):
    """Elements holding Name/Value pairs instead of a property's value."""

    ONE = "the element is one pair, like PartnerProperties"
    MANY = "each child is a pair, like DataExtensionObject Properties/Property"


_Plan: TypeAlias = "dict[str, list[str | None] | _Plan | _Pairs]"


class _ColumnReader:
    """Reads ``<Results>`` elements into one list of values per requested property."""

    def __init__(self, properties: Sequence[str]) -> None:
        self.columns: dict[str, list[str | None]] = {p: [] for p in dict.fromkeys(properties)}
        self.plan = _plan(self.columns)
        self.count = self.room = 0

    def read(self, results: etree._Element) -> None:
        if self.count == self.room:  # room for the rows to come, a block at a time
            for values in self.columns.values():
                values.extend([None] * _RELEASE_EVERY)
            self.room += _RELEASE_EVERY
        _fill(self.columns, self.count, results, self.plan)
        self.count += 1

    def rows(self) -> Rows:
        for values in self.columns.values():
            del values[self.count :]
        return Rows(self.columns, self.count)


def _plan(columns: dict[str, list[str | None]]) -> _Plan:
    """Where each requested property sits: element tag → its column, or → a nested plan."""
    plan: _Plan = {_partner("PartnerProperties"): _Pairs.ONE, _partner("Properties"): _Pairs.MANY}
    for name, values in columns.items():
        *parents, leaf = name.split(".")
        level = plan
        for parent in parents:
            nested = level.get(_partner(parent))
            if not isinstance(nested, dict):
                nested = level[_partner(parent)] = {}
            level = nested
        level.setdefault(_partner(leaf), values)
    return plan


def _fill(
    columns: dict[str, list[str | None]], row: int, element: etree._Element, plan: _Plan
) -> None:
    """Row ``row`` of ``columns`` from the children of ``element``; the last of repeated
    elements counts."""
    for child in element:
        step = plan.get(child.tag)
        if step is None:
            continue
        if type(step) is list:
            text = child.text
            step[row] = text if text is not None else _empty(child)
        elif type(step) is dict:
            _fill(columns, row, child, step)
        elif step is _Pairs.ONE:
            _fill_pair(columns, row, child)
        else:
            for pair in child:
                _fill_pair(columns, row, pair)


def _fill_pair(columns: dict[str, list[str | None]], row: int, pair: etree._Element) -> None:
    name, value = "", None
    for part in pair:  # a loop over two children costs less than find() and findtext()
        if part.tag == _NAME:
            name = (part.text or "").strip()
        elif part.tag == _VALUE:
            value = part
    values = columns.get(name)
    if values is not None:
        values[row] = None if value is None else _value(value)


def _value(element: etree._Element) -> str | None:
    text = element.text
    return text if text is not None else _empty(element)


def _empty(element: etree._Element) -> str | None:
    return None if element.get(_NIL) in ("true", "1") else ""


def _drop_preceding(element: etree._Element) -> None:
    """Free the siblings before ``element``; done every few hundred rows, it keeps memory flat
    for a fraction of what a per-row deletion costs."""
    parent = element.getparent()
    if parent is not None:
        del parent[: parent.index(element)]


def _parent_tag(element: etree._Element) -> object:
    parent = element.getparent()
    return None if parent is None else parent.tag


def _true(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")


def _parse(content: bytes, object_type: str | None) -> etree._Element:
    try:
        root = etree.fromstring(content, etree.XMLParser(**_PARSER_OPTIONS))
    except etree.XMLSyntaxError as exc:
        raise ResponseError(_malformed(exc, object_type)) from None
    _refuse_dtd(root, object_type)
    return root


def _refuse_dtd(root: etree._Element | None, object_type: str | None) -> None:
    """SOAP 1.1 forbids a DTD; one here would only hide text behind unexpanded entities."""
    if root is None:
        return
    doctype: str = root.getroottree().docinfo.doctype  # type: ignore[attr-defined]  # not in stubs
    if doctype:
        raise ResponseError(f"malformed {_subject(object_type)}: it has a DTD, which SOAP forbids")


def _subject(object_type: str | None) -> str:
    return f"SOAP response for {object_type}" if object_type else "SOAP response"


def _malformed(exc: etree.XMLSyntaxError, object_type: str | None) -> str:
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return f"malformed {_subject(object_type)}: {reason}"


def _not_a_response(expected: str, content: bytes, object_type: str | None) -> str:
    fault = fault_of(content)
    found = f"a SOAP fault {fault.code}: {fault.text}" if fault else "something else"
    return f"{_subject(object_type)} has no {expected}; found {found}"
