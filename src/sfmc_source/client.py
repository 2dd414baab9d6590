"""One HTTP client for SFMC's auth host, REST and SOAP, with one retry policy.

Transient failures (429, 5xx, SOAP throttling and outages, timeouts, connection errors) are
retried with exponential backoff and full jitter, honouring ``Retry-After``, a bounded number
of times; everything else raises a typed error from ``errors``. Every request is counted.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from sfmc_source import __version__, soap
from sfmc_source.auth import (
    TOKEN_PLACEHOLDER,
    AccessToken,
    SfmcAuth,
    read_token,
    token_request,
    unreachable,
)
from sfmc_source.auth import (
    Credentials as Credentials,  # re-exported: made here by credentials_from
)
from sfmc_source.errors import (
    AuthenticationError,
    ConfigError,
    PermissionDenied,
    RequestRejected,
    ResponseError,
    Stopped,
    TransientError,
)
from sfmc_source.workers import PageParser, default_workers

USER_AGENT = f"sfmc-source/{__version__}"
MAX_RETRY_AFTER = 300.0
DEFAULT_CONCURRENCY = 5
Item = TypeVar("Item")
Result = TypeVar("Result")


def credentials_from(
    client_id: str | None,
    client_secret: str | None,
    subdomain: str | None,
    account_id: int | None = None,
    auth_url: str | None = None,
) -> Credentials:
    """Credentials from command-line settings; what is missing is a usage error."""
    missing = [
        flag
        for flag, value in (
            ("--client-id / SFMC_CLIENT_ID", client_id),
            ("--client-secret / SFMC_CLIENT_SECRET", client_secret),
        )
        if not value
    ]
    if not (subdomain or auth_url):
        missing.append("--subdomain / SFMC_SUBDOMAIN")
    if missing or not client_id or not client_secret:
        raise ConfigError(f"missing {', '.join(missing)}")
    if auth_url:
        return Credentials(client_id, client_secret, auth_url, account_id)
    assert subdomain
    return Credentials.for_subdomain(client_id, client_secret, subdomain, account_id)


@dataclass(frozen=True)
class RetryPolicy:
    tries: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class Throttle:
    """How many API requests may be in flight: at most ``limit``. Each 429 halves the
    allowance; as many successes in a row as the allowance win one more slot back.

    ``readers`` bounds the chains of requests that ``SfmcClient.interleave`` reads beside
    each interleaving's first (other EventDate windows), across every collection, to half of
    ``limit``: the other half stays for the requests of other collections, and each chain holds
    a page or two in memory."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ConfigError(f"concurrency must be at least 1, not {limit}")
        self.limit = self.allowed = limit
        self._in_flight = self._streak = 0
        self._changed = threading.Condition()
        self.extra_readers = limit // 2
        self.readers = threading.BoundedSemaphore(max(self.extra_readers, 1))

    def acquire(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight < self.allowed)
            self._in_flight += 1

    def release(self, throttled: bool) -> None:
        with self._changed:
            self._in_flight -= 1
            if throttled:
                self.allowed, self._streak = max(1, self.allowed // 2), 0
            else:
                self._streak += 1
                if self._streak >= self.allowed and self.allowed < self.limit:
                    self.allowed, self._streak = self.allowed + 1, 0
            self._changed.notify_all()


class SfmcClient:
    """Authenticated REST and SOAP calls against one business unit, ``concurrency`` at most
    at a time (fewer while SFMC throttles); clients given one ``throttle`` share it. Large
    SOAP pages are read in worker processes by the ``parser``, which clients may share too
    (whoever made it closes it); by default each has its own, of ``default_workers``."""

    def __init__(
        self,
        credentials: Credentials,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        throttle: Throttle | None = None,
        parser: PageParser | None = None,
    ) -> None:
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.throttle = throttle or Throttle(concurrency)
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )
        self.auth = SfmcAuth(self._fetch_token)
        self.requests = 0
        self.requests_by: Counter[str] = Counter()
        self.retries = 0
        self._count_lock = threading.Lock()
        self._business_unit_id = credentials.account_id
        # Asked before each request: once it says so, none is sent (Stopped is raised).
        self.stop: Callable[[], bool] = _never
        self.parser = parser or PageParser(default_workers())
        self._own_parser = parser is None

    def close(self) -> None:
        if self._own_parser:
            self.parser.close()
        self.http.close()

    def secrets(self) -> list[str]:
        """What output must never show: the client secret and the current access token."""
        return [self.credentials.client_secret, self.auth.current_value]

    def __enter__(self) -> SfmcClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def map(self, fetch: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """``fetch`` of each item, in order, with up to ``concurrency`` requests in flight. On
        the first failure the fetches not yet started never start (a worker checks before it
        starts one); it is raised once the running ones end."""
        workers = min(self.throttle.limit, len(items))
        if workers <= 1:
            return [fetch(item) for item in items]
        failed = threading.Event()

        def guarded(item: Item) -> Result:
            if failed.is_set():
                raise _NotStarted
            try:
                return fetch(item)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(workers, thread_name_prefix="sfmc-source") as pool:
            futures = [pool.submit(guarded, item) for item in items]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
        errors = (f.exception() for f in futures if not f.cancelled())
        failure = next(
            (e for e in errors if e is not None and not isinstance(e, _NotStarted)), None
        )
        if failure is not None:
            raise failure
        return [future.result() for future in futures]

    def interleave(
        self, produce: Callable[[Item], Iterable[Result]], items: Sequence[Item]
    ) -> Iterator[Result]:
        """What ``produce`` yields for each item, each result as it arrives (one item's in
        order, items mixed): one item read at a time, and as many more beside it as the
        throttle's ``readers`` allow. The first failure stops every item at its next result and
        is raised once they have stopped; closing the iterator stops them the same way. A few
        results at most wait for the caller."""
        workers = min(1 + self.throttle.extra_readers, len(items))
        if workers <= 1:
            for item in items:
                yield from produce(item)
            return
        flow = _Interleaving(produce, items, workers, self.throttle.readers)
        try:
            yield from flow.results()
        finally:
            flow.stop()

    def business_unit_id(self) -> int:
        """The MID this client acts in: the account id asked for, else the package's own
        business unit as the auth host's ``/v2/userinfo`` names it (asked once)."""
        if self._business_unit_id is None:
            url = self.credentials.auth_url.rstrip("/") + "/v2/userinfo"
            request = self.http.build_request("GET", url, headers={"Accept": "application/json"})
            what = "GET /v2/userinfo"
            response = self._send(request, what, label="userinfo")
            _raise_for_rest(response, what)
            try:
                mid = response.json()["organization"]["member_id"]
            except (ValueError, KeyError, TypeError):
                mid = None
            if not isinstance(mid, int) or isinstance(mid, bool):
                raise ResponseError(f"{what}: the response names no organization.member_id")
            self._business_unit_id = mid
        return self._business_unit_id

    # ---- REST ---------------------------------------------------------------------------

    def get_json(self, path: str, params: dict[str, Any] | None = None, label: str = "") -> Any:
        """GET a REST path relative to the token's ``rest_instance_url``."""
        url = self.auth.token().rest_url + path.lstrip("/")
        request = self.http.build_request(
            "GET", url, params=params, headers={"Accept": "application/json"}
        )
        what = f"GET {path}"
        response = self._send(request, what, label=label)
        _raise_for_rest(response, what)
        try:
            return response.json()
        except ValueError as exc:
            raise ResponseError(f"{what}: malformed JSON in the response ({exc})") from None

    # ---- SOAP ---------------------------------------------------------------------------

    def soap_call(
        self, action: str, envelope: bytes, what: str, label: str = "", tries: int | None = None
    ) -> bytes:
        """POST an envelope built with ``TOKEN_PLACEHOLDER`` to the token's SOAP instance."""
        url = self.auth.token().soap_url + "Service.asmx"
        headers = {"SOAPAction": action, "Content-Type": "text/xml; charset=utf-8"}
        request = self.http.build_request("POST", url, content=envelope, headers=headers)
        response = self._send(request, what, label=label, tries=tries)
        if response.status_code == 200:
            return response.content
        fault = soap.fault_of(response.content)
        if fault and fault.code.endswith("Security"):
            raise AuthenticationError(f"{what}: SFMC rejected the access token ({fault.text})")
        detail = fault.text if fault else response.reason_phrase
        raise RequestRejected(f"{what}: HTTP {response.status_code} {detail}")

    def retrieve(
        self,
        object_type: str,
        properties: Sequence[str],
        where: soap.Filter | None = None,
        label: str = "",
        ahead: bool = True,
    ) -> Iterator[soap.Rows]:
        """Every row of a SOAP Retrieve, one page at a time (``paging.soap_pages``)."""
        from sfmc_source.paging import soap_pages

        return soap_pages(self, object_type, properties, where, label, ahead)

    def describe(self, object_type: str, label: str = "") -> dict[str, soap.DescribedProperty]:
        envelope = soap.describe_envelope(TOKEN_PLACEHOLDER, object_type)
        what = f"SOAP Describe of {object_type}"
        return soap.parse_describe(self.soap_call("Describe", envelope, what, label))

    # ---- transport ----------------------------------------------------------------------

    def _send(
        self,
        request: httpx.Request,
        what: str,
        *,
        signed: bool = True,
        label: str = "",
        tries: int | None = None,
        final: tuple[type[httpx.TransportError], ...] = (),
    ) -> httpx.Response:
        """The response, after the retries a transient failure deserves; a transport error of
        a ``final`` type is raised as it is, untried again."""
        tries = tries or self.retry.tries
        for attempt in range(1, tries + 1):
            if self.stop():
                raise Stopped(f"{what}: not sent, the run was asked to stop")
            with self._count_lock:
                self.requests += 1
                self.requests_by[label or what] += 1
            retry_after: float | None = None
            try:
                response = self._deliver(request, signed)
            except final:
                raise
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__} ({exc})" if str(exc) else type(exc).__name__
            else:
                if not _transient(response):
                    return response
                failure = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            if attempt == tries:
                tried = "1 try" if attempt == 1 else f"{attempt} tries"
                raise TransientError(f"{what} still failing after {tried}: {failure}")
            with self._count_lock:
                self.retries += 1
            time.sleep(self.retry.delay(attempt, retry_after))
        raise AssertionError("unreachable")

    def _deliver(self, request: httpx.Request, signed: bool) -> httpx.Response:
        """One HTTP exchange. API calls take a throttle slot; token requests, made while an
        API call holds its slot, do not."""
        if not signed:
            return self.http.send(request)
        self.throttle.acquire()
        response = None
        try:
            response = self.http.send(request, auth=self.auth)
            return response
        finally:
            self.throttle.release(throttled=response is not None and response.status_code == 429)

    def _fetch_token(self) -> AccessToken:
        """A token by the one retry policy. On the client's first request, a host that does
        not resolve or refuses connections is a wrong subdomain or auth URL, not a fault that
        retries would outlast."""
        request = token_request(self.credentials, self.http)
        final = (httpx.ConnectError,) if not self.auth.current_value else ()
        try:
            response = self._send(
                request, "token request", signed=False, label="token", final=final
            )
        except httpx.ConnectError as exc:
            raise unreachable(self.credentials, exc) from None
        return read_token(response, self.credentials)


class _NotStarted(Exception):
    """A fetch of ``map`` that did not start: another had failed."""


def _never() -> bool:
    return False


class _Interleaving:
    """The threads of one ``SfmcClient.interleave``: each takes the next item and hands what
    ``produce`` yields for it to a short queue, checking between results whether to stop."""

    def __init__(
        self,
        produce: Callable[[Any], Iterable[Any]],
        items: Sequence[Any],
        workers: int,
        readers: threading.BoundedSemaphore,
    ) -> None:
        self.produce, self.readers = produce, readers
        self.items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for item in items:
            self.items.put(item)
        self.arrived: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=workers)
        self.stopped = threading.Event()
        self.failure: BaseException | None = None
        self.threads = [  # the first reads without a slot among the readers
            threading.Thread(
                target=self._work, args=(n == 0,), name="sfmc-source-interleave", daemon=True
            )
            for n in range(workers)
        ]
        for thread in self.threads:
            thread.start()

    def results(self) -> Iterator[Any]:
        running = len(self.threads)
        while running:
            try:
                done, result = self.arrived.get(timeout=_POLL)
            except queue.Empty:
                done, result = False, _NOTHING
            if self.failure is not None:
                raise self.failure
            if done:
                running -= 1
            elif result is not _NOTHING:
                yield result

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join()

    def _work(self, first: bool) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    item = self.items.get_nowait()
                except queue.Empty:
                    break
                if not (first or self._reader()):
                    break
                try:
                    self._read(item)
                finally:
                    if not first:
                        self.readers.release()
        except BaseException as exc:
            self.failure = self.failure or exc
            self.stopped.set()
        self._offer((True, None))

    def _read(self, item: Any) -> None:
        results = iter(self.produce(item))
        try:
            for result in results:
                if not self._offer((False, result)):
                    return
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()

    def _reader(self) -> bool:
        """A slot among the throttle's ``readers``; ``False`` once told to stop."""
        while not self.readers.acquire(timeout=_POLL):
            if self.stopped.is_set():
                return False
        return True

    def _offer(self, entry: tuple[bool, Any]) -> bool:
        """Queue ``entry`` for the caller; ``False`` once told to stop."""
        while not self.stopped.is_set():
            try:
                self.arrived.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False


# How often a thread of ``interleave`` waiting on its queue looks whether to stop (seconds).
_POLL = 0.05
_NOTHING = object()


def _transient(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.status_code < 500:
        return False
    fault = soap.fault_of(response.content)
    return fault is None or fault.code.endswith("Server")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _raise_for_rest(response: httpx.Response, what: str) -> None:
    """Any 2xx is success: SFMC's docs print "202 Accepted" above GET examples. Whether its
    body is the JSON asked for is the caller's to check."""
    if response.is_success:
        return
    message = _rest_message(response)
    if response.status_code == 401:
        raise AuthenticationError(f"{what}: SFMC rejected the access token (HTTP 401 {message})")
    if response.status_code == 403:
        raise PermissionDenied(f"{what}: HTTP 403 {message}")
    raise RequestRejected(f"{what}: HTTP {response.status_code} {message}")


def _rest_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict):
        code = body.get("errorcode", body.get("errorCode"))
        message = str(body.get("message") or response.reason_phrase)
        return f"{message} (errorcode {code})" if code is not None else message
    return response.reason_phrase
