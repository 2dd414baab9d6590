"""The paging contracts, both in one place (docs/sfmc-api.md#rest-paging and
docs/sfmc-api.md#soap-paging): REST ``$page``/``$pageSize`` listings and SOAP
``Retrieve`` → ``ContinueRequest`` chains. Each takes a client and a request and yields pages
until the response says there are no more; a spec row names its REST paginator
(``PAGINATORS``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sfmc_source import soap
from sfmc_source.auth import TOKEN_PLACEHOLDER
from sfmc_source.errors import ResponseError, TransientError

if TYPE_CHECKING:
    from sfmc_source.client import SfmcClient

PAGE_SIZE = 50
EXPIRED_CONTINUATION = "The RequestID sent through ContinueRequest does not exist"
Rows = soap.Rows  # a page's rows, column by column


def rest_pages(
    client: SfmcClient, path: str, params: dict[str, Any], label: str
) -> Iterator[list[Any]]:
    """Every page of a REST collection: ``$page``/``$pageSize`` until ``count`` items arrived
    or a page is empty. A short page before ``count`` means keep going
    (docs/sfmc-api.md#journey-paging); a page that repeats the previous one is an error, not
    a loop."""
    page, seen, previous = 1, 0, None
    while True:
        body = client.get_json(path, {**params, "$page": page, "$pageSize": PAGE_SIZE}, label)
        items, count = _envelope(body, path)
        if not items:
            return
        if items == previous:
            raise ResponseError(f"GET {path}: page {page} repeats page {page - 1}")
        yield items
        seen += len(items)
        if count is None or seen >= count:
            return
        page, previous = page + 1, items


def one_resource(
    client: SfmcClient, path: str, params: dict[str, Any], label: str
) -> Iterator[list[Any]]:
    """A single resource (one journey version): one GET, its JSON object the only item."""
    body = client.get_json(path, params, label)
    if not isinstance(body, dict):
        raise ResponseError(f"GET {path}: the response is not a JSON object")
    yield [body]


PAGINATORS: dict[str, Callable[[SfmcClient, str, dict[str, Any], str], Iterator[list[Any]]]] = {
    "pages": rest_pages,
    "one": one_resource,
}


def _envelope(body: Any, path: str) -> tuple[list[Any], int | None]:
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        raise ResponseError(f"GET {path}: the response is not a JSON object")
    items = body.get("items", body.get("entities"))
    count = body.get("count", body.get("totalCount"))
    if not isinstance(items, list) or not isinstance(count, int) or isinstance(count, bool):
        raise ResponseError(f"GET {path}: the response has no items/entities list and count")
    return items, count


def soap_pages(
    client: SfmcClient,
    object_type: str,
    properties: Sequence[str],
    where: soap.Filter | None = None,
    label: str = "",
    ahead: bool = True,
) -> Iterator[Rows]:
    """Every row of a SOAP Retrieve, one page (≤ 2,500 rows) at a time; with ``ahead``, the
    next page is fetched while the caller handles one.

    A ``ContinueRequest`` that fails is never sent again: SFMC may already have served its
    page, and the next answer would silently skip it. The Retrieve starts over instead (a
    bounded number of times); rows yielded before come again, and loads merge them on the
    primary key.
    """
    retrieval = _Retrieval(client, object_type, properties, where, label)
    pages = retrieval.pages if ahead else retrieval.pages_in_turn
    for restart in range(1, client.retry.tries + 1):
        try:
            yield from pages()
            return
        except _LostContinuation as lost:
            reason = str(lost)
            if restart < client.retry.tries:
                time.sleep(client.retry.delay(restart, None))
    raise TransientError(
        f"{retrieval.what}: a continuation kept failing, {restart} starts: {reason}"
    )


class _Retrieval:
    """One Retrieve request and the chain of continuations that pages it."""

    def __init__(
        self,
        client: SfmcClient,
        object_type: str,
        properties: Sequence[str],
        where: soap.Filter | None,
        label: str,
    ) -> None:
        self.client, self.object_type, self.properties = client, object_type, properties
        self.where, self.label = where, label
        self.what = f"SOAP Retrieve of {object_type}"

    def pages(self) -> Iterator[Rows]:
        """The pages of one Retrieve. While the caller handles a page, the next one is
        already being fetched and parsed: SFMC builds it while we load."""
        with ThreadPoolExecutor(1, thread_name_prefix="sfmc-source-retrieve") as ahead:
            page = self.fetch(None)
            while True:
                following = ahead.submit(self.fetch, page.request_id) if page.more else None
                yield page.columns
                if following is None:
                    return
                page = following.result()

    def pages_in_turn(self) -> Iterator[Rows]:
        """The pages of one Retrieve, each fetched once the caller is done with the one
        before: for Retrieves read side by side, which overlap fetching and loading already
        and would each hold one page more."""
        page = self.fetch(None)
        yield page.columns
        while page.more:
            page = self.fetch(page.request_id)
            yield page.columns

    def fetch(self, request_id: str | None) -> soap.RetrievePage:
        envelope = soap.retrieve_envelope(
            TOKEN_PLACEHOLDER,
            self.object_type,
            self.properties,
            self.where,
            continue_request=request_id,
        )
        call = self.client.soap_call
        if request_id is None:
            content = call("Retrieve", envelope, self.what, self.label)
        else:
            try:
                content = call("Retrieve", envelope, self.what, self.label, tries=1)
            except TransientError as exc:
                raise _LostContinuation(str(exc)) from exc
        page = self.client.parser.parse_retrieve(
            content, self.properties, object_type=self.object_type
        )
        if request_id is not None and page.status.startswith(EXPIRED_CONTINUATION):
            raise _LostContinuation(page.status)
        soap.raise_for_status(page, self.object_type)
        return page


class _LostContinuation(Exception):
    """A ContinueRequest failed; the Retrieve it belonged to must start over."""
