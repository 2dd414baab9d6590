"""SOAP pages read in worker processes (``workers.PageParser``): the same page or the same error
as a read in this process, and this process's read whenever a worker cannot give one."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sfmc_source import soap, workers
from sfmc_source.errors import ResponseError
from sfmc_source.workers import ELSEWHERE_ABOVE, PageParser
from tests.test_soap_client import response

PROPERTIES = ["ID", "ListName", "Description", "Client.ID", "SubscriberID"]
ROW = (
    "<Client><ID>7</ID></Client><ID>{n}</ID><ListName>list &amp; {n}</ListName>"
    '<Description xsi:nil="true" /><PartnerProperties><Name>SubscriberID</Name>'
    "<Value>{n}</Value></PartnerProperties>"
)
# a page large enough to be read by a worker
LARGE = response(*(ROW.format(n=n) for n in range(3_000)), status="MoreDataAvailable")


@pytest.fixture
def parser() -> Iterator[PageParser]:
    pages = PageParser(1)
    yield pages
    pages.close()


def free_workers(parser: PageParser) -> list[workers._Worker]:
    return [reader for *_, reader in list(parser._free.queue) if reader is not None]


def started(parser: PageParser) -> workers._Worker:
    """The worker a first large page starts (the page itself is read here), once it is
    free for the next."""
    first = parser.parse_retrieve(LARGE, PROPERTIES)
    assert first.rows[2]["ID"] == "2"
    deadline = time.monotonic() + 60
    while not free_workers(parser):
        assert time.monotonic() < deadline, "the worker never greeted"
        time.sleep(0.01)
    [worker] = free_workers(parser)
    assert worker.answered == 0
    return worker


def test_a_large_page_is_read_by_a_worker_as_this_process_reads_it(parser: PageParser) -> None:
    assert len(LARGE) >= ELSEWHERE_ABOVE
    worker = started(parser)

    page = parser.parse_retrieve(LARGE, PROPERTIES, object_type="List")

    assert worker.answered == 1
    here = soap.parse_retrieve(LARGE, PROPERTIES, object_type="List")
    assert (page.status, page.request_id, page.rows) == (here.status, here.request_id, here.rows)
    assert page.rows[1] == {
        "ID": "1",
        "ListName": "list & 1",
        "Description": None,
        "Client.ID": "7",
        "SubscriberID": "1",
    }
    parser.close()
    assert worker.process is not None and worker.process.returncode == 0


def test_a_small_page_is_read_here(parser: PageParser) -> None:
    small = response(ROW.format(n=1))
    assert (
        parser.parse_retrieve(small, PROPERTIES).rows == soap.parse_retrieve(small, PROPERTIES).rows
    )
    assert parser._started == []


def test_a_page_too_large_for_one_tree_is_read_here(
    parser: PageParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = started(parser)
    monkeypatch.setattr(soap, "STREAM_ABOVE", len(LARGE) - 1)  # streamed: wide rows
    assert parser.parse_retrieve(LARGE, PROPERTIES).rows[2]["ID"] == "2"
    assert worker.answered == 0


def test_each_page_goes_to_the_first_free_reader_a_worker_first(parser: PageParser) -> None:
    worker = started(parser)
    parser.parse_retrieve(LARGE, PROPERTIES)
    assert worker.answered == 1  # both free: the worker reads
    busy = parser._free.get()
    assert busy[-1] is worker  # while it reads another page, this process reads
    parser.parse_retrieve(LARGE, PROPERTIES)
    assert worker.answered == 1
    parser._free.put(busy)
    free, here = parser._free.get(), parser._free.get()
    assert (free[-1], here[-1]) == (worker, None)
    parser._free.put(free)  # while this process reads another page, the worker reads
    parser.parse_retrieve(LARGE, PROPERTIES)
    assert worker.answered == 2
    parser._free.put(here)


def test_a_worker_raises_the_error_this_process_would(parser: PageParser) -> None:
    worker = started(parser)
    cut = LARGE[: len(LARGE) - 100]
    with pytest.raises(ResponseError) as here:
        soap.parse_retrieve(cut, PROPERTIES, object_type="List")
    with pytest.raises(ResponseError) as there:
        parser.parse_retrieve(cut, PROPERTIES, object_type="List")
    assert str(there.value) == str(here.value)
    assert worker.answered == 1
    assert free_workers(parser) == [worker]  # and it is there for the next page


def test_pages_are_read_here_when_no_worker_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(Path(sys.executable).parent / "python-missing"))
    parser = PageParser(1)
    try:
        for _ in range(3):
            assert parser.parse_retrieve(LARGE, PROPERTIES).rows[2]["ID"] == "2"
        assert (parser.workers, parser._started) == (0, [])
    finally:
        parser.close()


def test_a_worker_reading_with_another_soap_module_is_never_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "_SOAP_MODULE", "/elsewhere/sfmc_source/soap.py")
    parser = PageParser(1)
    try:
        assert parser.parse_retrieve(LARGE, PROPERTIES).rows[2]["ID"] == "2"
        deadline = time.monotonic() + 60
        while parser.workers:  # until it has greeted, and been sent away
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert (parser._started, free_workers(parser)) == ([], [])
    finally:
        parser.close()


def test_a_worker_that_dies_leaves_its_pages_to_this_process(parser: PageParser) -> None:
    worker = started(parser)
    assert worker.process is not None
    worker.process.kill()
    worker.process.wait()

    assert parser.parse_retrieve(LARGE, PROPERTIES).rows[2]["ID"] == "2"
    assert (parser.workers, parser._started) == (0, [])


def test_a_worker_leaves_stop_signals_to_its_parent(parser: PageParser) -> None:
    worker = started(parser)
    assert worker.process is not None
    worker.process.send_signal(signal.SIGINT)  # as a Ctrl-C reaches the whole process group
    worker.process.send_signal(signal.SIGTERM)  # as systemd stops the whole unit

    assert parser.parse_retrieve(LARGE, PROPERTIES).rows[2]["ID"] == "2"
    assert worker.answered == 1


def test_a_closed_parser_reads_pages_here(parser: PageParser) -> None:
    worker = started(parser)
    parser.close()
    assert parser.parse_retrieve(LARGE, PROPERTIES).rows[2]["ID"] == "2"
    assert worker.answered == 0
    assert worker.process is not None and worker.process.returncode == 0
