"""The emulator as a plain function of a request: routing, faults, the REST and SOAP services.

Transports (a socket server, an httpx transport) call ``EmulatorApp.handle``. Paths are laid
out like three SFMC hosts on one port: the auth host at ``/`` (``/v2/token``), the REST
instance at ``/rest/`` and the SOAP instance at ``/soap/``; the token response names the last
two, so a client that builds URLs by hand instead of using them fails here as it would live.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sfmc_source.emulator import rest, soap
from sfmc_source.emulator.auth import (
    READ_SCOPES,
    TOKEN_PATH,
    USERINFO_PATH,
    Package,
    Token,
    TokenIssuer,
)
from sfmc_source.emulator.catalogue import CATALOGUE, SoapObject, SoapProperty
from sfmc_source.emulator.data import BusinessUnit, Clock, Mutations
from sfmc_source.emulator.generate import Sizes, generate_unit
from sfmc_source.emulator.log import TOKEN_ENDPOINT, LoggedRequest, RequestLog
from sfmc_source.emulator.messages import (
    XML,
    Request,
    Response,
    not_authorized,
    not_found,
    rest_error,
    to_json,
)
from sfmc_source.emulator.retrieval import Matches, select

MAX_BATCH = 2_500
SOAP_PATHS = ("/soap/service.asmx",)


@dataclass
class Faults:
    """Fault knobs, read on every request, so tests may change them while the emulator runs.

    Counters run over API requests (REST and SOAP, not token requests), starting at 1:
    request n gets a reset if ``reset_every`` divides n, else a throttle if
    ``rate_limit_every`` does (REST 429 with Retry-After, SOAP HTTP 500), else a server error
    if ``server_error_every`` does. Independently, request n stalls for ``stall_seconds`` before
    it is answered if ``stall_every`` divides n. ``malformed`` maps a resource (``campaigns``,
    ``campaign_assets``, ``interactions`` or a SOAP object type such as ``List``) to the page
    number whose body is cut short. ``repeat`` maps a REST listing (``campaigns``,
    ``campaign_assets``, ``interactions``) to a page number N > 1 whose first item is the first
    item of page N−1, in place of its own (``count`` unchanged), as SFMC-SDK's recorded second
    page of journeys repeats the first page's first item.

    Every request waits ``latency_ms`` before it is answered; a SOAP request waits
    ``soap_latency_ms`` instead when that is set, then ``soap_row_ms`` for each row of the
    Retrieve page it returns (real SFMC: REST ~150 ms, a SOAP Retrieve ~800 ms and more for
    more rows).
    """

    latency_ms: float = 0.0
    soap_latency_ms: float | None = None
    soap_row_ms: float = 0.0
    rate_limit_every: int = 0
    retry_after: int = 1
    blocked: bool = False
    server_error_every: int = 0
    server_error_status: int = 500
    reset_every: int = 0
    stall_every: int = 0
    stall_seconds: float = 30.0
    malformed: dict[str, int] = field(default_factory=dict)
    repeat: dict[str, int] = field(default_factory=dict)

    def latency_for(self, soap_call: bool) -> float:
        """Milliseconds a request waits before it is answered, rows aside."""
        if soap_call and self.soap_latency_ms is not None:
            return self.soap_latency_ms
        return self.latency_ms


@dataclass
class EmulatorConfig:
    """Everything that makes one emulated tenant. Defaults follow docs/sfmc-api.md; the variant
    knobs choose between shapes the facts leave uncertain (docs/sfmc-api.md#confidence-labels)."""

    seed: int = 1
    sizes: Sizes = field(default_factory=Sizes)
    business_units: int = 1
    client_id: str = ""
    client_secret: str = ""
    token_ttl: int = 1079
    # How long tokens really live, when that differs from the expires_in they announce.
    token_lifetime: float | None = None
    scopes: tuple[str, ...] = READ_SCOPES
    package_enabled: bool = True
    faults: Faults = field(default_factory=Faults)
    rest: rest.RestOptions = field(default_factory=rest.RestOptions)
    forbidden_body: str = "errorcode"  # errorcode (help article) | message (live probe)
    null_style: str = "missing"  # how SOAP writes a null non-nillable property: missing | nil
    request_id_per_page: bool = False
    unretrievable: dict[str, set[str]] = field(default_factory=dict)
    empty_describe: bool = False

    def __post_init__(self) -> None:
        digest = hashlib.sha256(f"sfmc-emulator-{self.seed}".encode()).hexdigest()
        self.client_id = self.client_id or digest[:24]
        self.client_secret = (
            self.client_secret or base64.b32encode(bytes.fromhex(digest[24:54])).decode()[:24]
        )

    @property
    def mids(self) -> list[int]:
        return [512_345_678 + i for i in range(max(self.business_units, 1))]

    @property
    def subdomain(self) -> str:
        digest = hashlib.sha256(f"subdomain-{self.seed}".encode()).hexdigest()
        return f"mc{digest[:17]}-{digest[17:25]}"


@dataclass
class Cursor:
    """A Retrieve in progress: the rows matched when it began, and how far it has got."""

    writer: soap.ResultsWriter
    rows: Matches
    batch: int
    mid: int
    chain: str  # the RequestID that began it, which every page it serves is logged under
    offset: int = 0
    page: int = 0


class Gate:
    """Holds API requests (not token requests) while closed: a test keeps a sync mid-run for
    as long as it needs, and waits until a request is held rather than on a clock."""

    def __init__(self) -> None:
        self._open = True
        self._held = {"rest": True, "soap": True}
        self.waiting = 0
        self._changed = threading.Condition()

    def close(self, rest: bool = True, soap: bool = True) -> None:
        """Hold the REST requests, the SOAP ones, or both, from now on."""
        with self._changed:
            self._open = False
            self._held = {"rest": rest, "soap": soap}

    def open(self) -> None:
        with self._changed:
            self._open = True
            self._changed.notify_all()

    def pass_through(self, soap_call: bool) -> None:
        with self._changed:
            if not self._open and self._held["soap" if soap_call else "rest"]:
                self.waiting += 1
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._open)
                self.waiting -= 1

    def wait_until_holding(
        self, requests: int = 1, timeout: float = 600, alive: Callable[[], bool] = lambda: True
    ) -> None:
        """Until ``requests`` requests wait at the closed gate; fails as soon as ``alive``
        says the client is gone (``timeout`` only guards against a hang)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.waiting < requests:
                if not alive():
                    raise RuntimeError("the client ended before its request reached the gate")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {requests} requests held in {timeout} s")
                self._changed.wait(0.05)


class EmulatorApp:
    def __init__(self, config: EmulatorConfig | None = None, base_url: str = "") -> None:
        self.config = config or EmulatorConfig()
        self.base_url = base_url
        self.units: dict[int, BusinessUnit] = {
            mid: generate_unit(self.config.seed, mid, self.config.sizes) for mid in self.config.mids
        }
        self.mutate = Mutations(self.units, Clock(), self.config.mids[0])
        self.log = RequestLog()
        self.tokens = TokenIssuer(self._package)
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._counter = 0
        self._lock = threading.Lock()
        self.gate = Gate()

    @property
    def faults(self) -> Faults:
        return self.config.faults

    def unit(self, mid: int | None = None) -> BusinessUnit:
        return self.mutate.unit(mid)

    def _package(self) -> Package:
        cfg = self.config
        return Package(
            cfg.client_id,
            cfg.client_secret,
            cfg.package_enabled,
            cfg.scopes,
            cfg.token_ttl,
            cfg.token_ttl if cfg.token_lifetime is None else cfg.token_lifetime,
            self.units.keys(),
            cfg.mids[0],
        )

    # ---- entry point --------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_emulator/"):
            return self._control(request)
        started = time.monotonic()
        soap_call = request.path.lower() in SOAP_PATHS
        latency_ms = self.faults.latency_for(soap_call)
        _wait(latency_ms)
        try:
            endpoint, mid, response = self._dispatch(request)
        except Exception as exc:  # a real server answers 500 rather than drop the connection
            endpoint, mid, response = "unhandled", None, self._unhandled(request, exc)
        if response.rows:
            rows_ms = self.faults.soap_row_ms * response.rows
            _wait(rows_ms)
            latency_ms += rows_ms
        if (
            response.page_of
            and self.faults.malformed.get(response.page_of[0]) == response.page_of[1]
        ):
            response.body = response.body[: len(response.body) // 2]
        self.log.record(
            LoggedRequest(
                request.method,
                request.path,
                endpoint,
                0 if response.reset else response.status,
                mid,
                tuple(sorted(request.query.items())),
                api="SOAP" if soap_call else "REST",
                rows=response.rows,
                chain=response.chain or _listing(request),
                latency_ms=latency_ms,
                started=started,
                finished=time.monotonic(),
            )
        )
        return response

    def _dispatch(self, request: Request) -> tuple[str, int | None, Response]:
        path = request.path
        if path == TOKEN_PATH:
            if request.method != "POST":
                return f"{request.method} {path}", None, rest_error(405, "Method Not Allowed", None)
            return TOKEN_ENDPOINT, None, self.tokens.issue(request, self.base_url)
        if path == USERINFO_PATH and request.method == "GET":
            return f"GET {USERINFO_PATH}", None, self.tokens.userinfo(request)
        if path.lower() in SOAP_PATHS:
            return self._soap(request)
        if path.startswith("/rest/"):
            return self._rest(request, path.removeprefix("/rest"))
        return f"{request.method} {path}", None, not_found()

    def _injected_fault(self, soap_call: bool) -> Response | None:
        self.gate.pass_through(soap_call)
        with self._lock:
            self._counter += 1
            n = self._counter
        faults = self.faults
        if faults.stall_every and n % faults.stall_every == 0:
            time.sleep(faults.stall_seconds)
        if faults.reset_every and n % faults.reset_every == 0:
            return Response(0, reset=True)
        if faults.rate_limit_every and n % faults.rate_limit_every == 0:
            if soap_call:
                return self._soap_fault(
                    soap.Fault("soap:Server", "Server too busy. Please retry later."), None
                )
            if faults.blocked:
                return rest_error(429, "Your requests are temporarily blocked.", 50200)
            response = rest_error(429, "Rate limit exceeded", 50100, retryAfter=faults.retry_after)
            response.headers["Retry-After"] = str(faults.retry_after)
            return response
        if faults.server_error_every and n % faults.server_error_every == 0:
            if soap_call:
                return self._soap_fault(soap.Fault("soap:Server", "Unplanned Outage"), None)
            return Response(
                faults.server_error_status,
                b"<html><body>Service Unavailable</body></html>",
                content_type="text/html",
            )
        return None

    # ---- REST ---------------------------------------------------------------------------

    def _rest(self, request: Request, path: str) -> tuple[str, int | None, Response]:
        found = rest.find_route(path)
        endpoint = found[0].endpoint if found else f"{request.method} {path}"
        injected = self._injected_fault(soap_call=False)
        if injected:
            return endpoint, None, injected
        header = request.headers.get("authorization", "")
        token, expired = self.tokens.holder(
            header[7:].strip() if header[:7].lower() == "bearer " else None
        )
        if token is None or expired:
            return endpoint, None, not_authorized()
        if found is None or request.method != "GET":
            return endpoint, token.mid, not_found()
        route, params = found
        if route.scope not in token.scopes:
            return endpoint, token.mid, self._forbidden()
        unit = self.units[token.mid]
        call = rest.RestCall(
            request, unit, params, self.config.rest, self.mutate.lock, self.faults.repeat
        )
        try:
            response = route.handler(call)
        except rest.BadRequest as exc:
            return endpoint, token.mid, rest.bad_request(exc)
        if response.status == 200:
            response.status = self.config.rest.success_status
        return endpoint, token.mid, response

    def _forbidden(self) -> Response:
        if self.config.forbidden_body == "message":
            return rest_error(403, "Insufficient privileges to complete this action.", None)
        return rest_error(403, "Insufficient Privileges to complete this action.", 20002)

    # ---- SOAP ---------------------------------------------------------------------------

    def _soap(self, request: Request) -> tuple[str, int | None, Response]:
        try:
            envelope = soap.read_envelope(request.body)
        except soap.Fault as fault:
            return "SOAP (unreadable)", None, self._soap_fault(fault, None)
        operation = {"RetrieveRequestMsg": "Retrieve", "DefinitionRequestMsg": "Describe"}.get(
            envelope.operation, envelope.operation
        )
        injected = self._injected_fault(soap_call=True)
        endpoint = f"SOAP {operation}"
        if injected:
            return endpoint, None, injected
        action = request.headers.get("soapaction", "").strip().strip('"').rsplit("/", 1)[-1]
        if action != operation:
            unknown = soap.Fault(
                "soap:Client",
                f"Server did not recognize the value of HTTP Header SOAPAction: {action}.",
            )
            return endpoint, None, self._soap_fault(unknown, envelope.message_id)
        token, expired = self.tokens.holder(envelope.token)
        if token is None or expired:
            denied = soap.Fault(
                "q0:Security", "Token Expired" if expired else "Login Failed", security=True
            )
            return endpoint, None, self._soap_fault(denied, envelope.message_id)
        try:
            if operation == "Retrieve":
                request_msg = soap.read_retrieve(envelope.body)
                label, body = self._retrieve(request_msg, token, envelope.message_id)
                return f"{endpoint} {label}", token.mid, body
            if operation == "Describe":
                return endpoint, token.mid, self._describe(envelope, token)
            raise soap.Fault(
                "soap:Client", f"The operation {operation} is not supported by the emulator."
            )
        except soap.Fault as fault:
            return endpoint, token.mid, self._soap_fault(fault, envelope.message_id)

    def _unhandled(self, request: Request, exc: Exception) -> Response:
        if request.path.lower() in SOAP_PATHS:
            text = f"Server was unable to process request. ---> {exc}"
            return self._soap_fault(soap.Fault("soap:Server", text), None)
        return rest_error(500, "An unexpected error occurred.", 0)

    def _soap_fault(self, fault: soap.Fault, relates_to: str | None) -> Response:
        actor = f"{self.base_url.rstrip('/')}/soap/Service.asmx"
        body = soap.envelope(
            "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault",
            relates_to,
            soap.fault_body(fault, actor),
        )
        return Response(500, body, content_type=XML)

    def _retrieve(
        self, request: soap.RetrieveRequest, token: Token, relates_to: str | None
    ) -> tuple[str, Response]:
        label = request.object_type or ""
        try:
            if request.continue_request:
                cursor, request_id = self._continued(request.continue_request, token)
            else:
                request_id = str(uuid.uuid4())
                cursor = self._new_cursor(request, token, request_id)
        except soap.StatusError as exc:
            body = soap.retrieve_response(str(exc), str(uuid.uuid4()), [])
            return label, Response(
                200, soap.envelope("RetrieveResponse", relates_to, body), content_type=XML
            )
        label = cursor.writer.obj.name
        chunk = cursor.rows[cursor.offset : cursor.offset + cursor.batch]
        cursor.offset += len(chunk)
        cursor.page += 1
        more = cursor.offset < len(cursor.rows)
        if more:
            with self._lock:
                self._cursors[request_id] = cursor
                while len(self._cursors) > 256:
                    self._cursors.popitem(last=False)
        status = "MoreDataAvailable" if more else "OK"
        body = soap.retrieve_response(status, request_id, chunk.write(cursor.writer))
        response = Response(
            200,
            soap.envelope("RetrieveResponse", relates_to, body),
            content_type=XML,
            page_of=(label, cursor.page),
            rows=len(chunk),
            chain=cursor.chain,
        )
        return label, response

    def _continued(self, request_id: str, token: Token) -> tuple[Cursor, str]:
        with self._lock:
            cursor = self._cursors.get(request_id)
            if cursor is not None and cursor.mid == token.mid:
                del self._cursors[request_id]
            else:
                cursor = None
        if cursor is None:
            raise soap.StatusError("The RequestID sent through ContinueRequest does not exist.")
        return cursor, str(uuid.uuid4()) if self.config.request_id_per_page else request_id

    def _new_cursor(self, request: soap.RetrieveRequest, token: Token, request_id: str) -> Cursor:
        obj = CATALOGUE.get(request.object_type or "")
        if obj is None:
            raise soap.StatusError(
                f"Error: Unable to find a handler for object type: {request.object_type}. "
                "Object types are case-sensitive, check spelling."
            )
        if obj.scope not in token.scopes:
            raise soap.StatusError("Error: API Permission Failed")
        bad = [
            name for name in request.properties if not self._retrievable(obj, obj.property(name))
        ]
        if bad or not request.properties:
            raise soap.StatusError(
                f"Error: The Request Property(s) {', '.join(bad) or '(none)'} do not "
                f"match with the fields of {obj.name} retrieve"
            )
        with self.mutate.lock:
            rows = select(obj, self._units_for(request, token), request.filter)
        batch = (
            request.batch_size
            if request.batch_size and 0 < request.batch_size < MAX_BATCH
            else MAX_BATCH
        )
        writer = soap.ResultsWriter(obj, request.properties, self.config.null_style)
        return Cursor(writer, rows, batch, token.mid, request_id)

    def _units_for(self, request: soap.RetrieveRequest, token: Token) -> list[BusinessUnit]:
        if request.query_all_accounts:
            return list(self.units.values())
        if request.client_ids:
            return [self.units[mid] for mid in request.client_ids if mid in self.units]
        return [self.units[token.mid]]

    def _retrievable(self, obj: SoapObject, prop: SoapProperty | None) -> bool:
        return (
            prop is not None
            and prop.retrievable
            and prop.name not in self.config.unretrievable.get(obj.name, set())
        )

    def _describe(self, envelope: soap.Envelope, token: Token) -> Response:
        parts = []
        for name in soap.read_describe(envelope.body):
            obj = CATALOGUE.get(name)
            if obj is None:
                raise soap.Fault(
                    "soap:Client", f"Unable to find a handler for object type: {name}."
                )
            unretrievable = self.config.unretrievable.get(name, set())
            parts.append(soap.describe_response(obj, unretrievable, self.config.empty_describe))
        return Response(
            200,
            soap.envelope("DescribeResponse", envelope.message_id, b"".join(parts)),
            content_type=XML,
        )

    # ---- control ------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        if request.path == "/_emulator/requests":
            if request.method == "DELETE":
                self.log.clear()
            return Response(200, to_json(self.log.summary()))
        return not_found()


def _wait(milliseconds: float) -> None:
    if milliseconds > 0:
        time.sleep(milliseconds / 1000)


def _listing(request: Request) -> str | None:
    """The pages of one REST listing share this: the request but its ``$page``."""
    if "$page" not in request.query:
        return None
    rest = sorted((k, v) for k, v in request.query.items() if k != "$page")
    return f"{request.method} {request.path}?{rest}"
