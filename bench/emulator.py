"""How fast the emulator serves: it must never be a benchmark's bottleneck.

Runs the emulator in its own process (as `sfmc-source emulator`) and measures, over real
sockets: REST requests per second (one client, then four in parallel), and the time to serve a
full 2,500-row SOAP List page (first page, which filters the whole table, and continued pages,
cold and warm). Then, on a tenant of a million tracking events (``--scale events``): its
startup time and memory, and how many SentEvent rows per second it serves when they are read
as a connector reads them, in 30-day EventDate windows of 2,500-row pages. Prints a table and
writes bench/results/emulator.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from sfmc_source.emulator.catalogue import SENT_EVENT
from sfmc_source.emulator.generate import HISTORY_END

Env = dict[str, str]

LIST_PROPERTIES = [
    "ID", "ObjectID", "PartnerKey", "CustomerKey", "ListName", "Description", "Category", "Type",
    "ListClassification", "CreatedDate", "ModifiedDate", "Client.ID", "Client.PartnerClientKey",
    "Client.CreatedBy", "Client.ModifiedBy", "Client.CustomerKey", "Client.UserID",
    "Client.PartnerUserKey",
]  # fmt: skip


def start(scale: str) -> tuple[subprocess.Popen[str], dict[str, str], float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "sfmc_source", "emulator", "--scale", scale],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(4)]
    env = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    return process, env, time.perf_counter() - started


def token(http: httpx.Client, env: dict[str, str]) -> dict[str, Any]:
    body = {
        "grant_type": "client_credentials",
        "client_id": env["SFMC_CLIENT_ID"],
        "client_secret": env["SFMC_CLIENT_SECRET"],
    }
    result: dict[str, Any] = http.post(f"{env['SFMC_AUTH_URL']}/v2/token", json=body).json()
    return result


def rest_rate(env: dict[str, str], clients: int, seconds: float = 3.0) -> float:
    def worker(_: int) -> int:
        with httpx.Client() as http:
            auth = token(http, env)
            url = auth["rest_instance_url"] + "hub/v1/campaigns"
            headers = {"Authorization": f"Bearer {auth['access_token']}"}
            done, deadline = 0, time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                page = done % 20 + 1
                http.get(url, params={"$page": page, "$pageSize": 50}, headers=headers)
                done += 1
            return done

    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(worker, range(clients)))
    return total / seconds


class Soap:
    """Retrieve calls with a token, timed."""

    def __init__(self, http: httpx.Client, env: Env) -> None:
        auth = token(http, env)
        self.http, self.token = http, auth["access_token"]
        self.url = auth["soap_instance_url"] + "Service.asmx"

    def call(self, inner: str) -> tuple[float, bytes]:
        envelope = (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Header>'
            f'<fueloauth xmlns="http://exacttarget.com">{self.token}</fueloauth>'
            '</s:Header><s:Body><RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI">'
            f"<RetrieveRequest>{inner}</RetrieveRequest></RetrieveRequestMsg></s:Body></s:Envelope>"
        )
        started = time.perf_counter()
        response = self.http.post(
            self.url, content=envelope.encode(), headers={"SOAPAction": "Retrieve"}
        )
        return time.perf_counter() - started, response.content

    def sweep(self, inner: str, pages: int | None = None) -> tuple[float, list[float], int]:
        """A Retrieve and up to ``pages`` ContinueRequests: the first page's time, the others',
        and the number of rows."""
        first, body = self.call(inner)
        times: list[float] = []
        rows = body.count(b"<Results ")
        while b"MoreDataAvailable" in body[:2_000] and (pages is None or len(times) < pages):
            elapsed, body = self.call(f"<ContinueRequest>{request_id(body)}</ContinueRequest>")
            times.append(elapsed)
            rows += body.count(b"<Results ")
        return first, times, rows


def request_id(body: bytes) -> str:
    """The RequestID of a response, found near its start."""
    start = body.index(b"<RequestID>", 0, 2_000) + len(b"<RequestID>")
    return body[start : body.index(b"</RequestID>", start)].decode()


def soap_pages(env: dict[str, str]) -> dict[str, float]:
    with httpx.Client(timeout=60) as http:
        soap = Soap(http, env)
        props = "".join(f"<Properties>{p}</Properties>" for p in LIST_PROPERTIES)
        since = (
            '<Filter xsi:type="SimpleFilterPart"><Property>ModifiedDate</Property>'
            "<SimpleOperator>greaterThanOrEqual</SimpleOperator>"
            "<DateValue>2023-01-01T00:00:00</DateValue></Filter>"
        )
        first_cold, cold, _ = soap.sweep(f"<ObjectType>List</ObjectType>{props}{since}", 20)
        _, warm, _ = soap.sweep(f"<ObjectType>List</ObjectType>{props}{since}", 20)
        return {
            "first_page_ms (filters 200k rows)": first_cold * 1000,
            "continued_page_cold_ms (median)": statistics.median(cold) * 1000,
            "continued_page_warm_ms (median)": statistics.median(warm) * 1000,
            "page_bytes": float(len(soap.call(f"<ObjectType>List</ObjectType>{props}")[1])),
        }


def window_filter(after: datetime, until: datetime) -> str:
    """``EventDate greaterThan after AND EventDate lessThanOrEqual until``, as the connector
    asks for a window."""

    def part(operator: str, instant: datetime) -> str:
        return (
            f'<{{side}} xsi:type="SimpleFilterPart"><Property>EventDate</Property>'
            f"<SimpleOperator>{operator}</SimpleOperator>"
            f"<DateValue>{instant.isoformat()}</DateValue></{{side}}>"
        )

    return (
        '<Filter xsi:type="ComplexFilterPart">'
        + part("greaterThan", after).format(side="LeftOperand")
        + "<LogicalOperator>AND</LogicalOperator>"
        + part("lessThanOrEqual", until).format(side="RightOperand")
        + "</Filter>"
    )


def event_windows(env: Env, days: int = 30) -> dict[str, float]:
    """Every SentEvent with all its retrievable properties, window by window, page by page."""
    props = "".join(
        f"<Properties>{p.name}</Properties>" for p in SENT_EVENT.properties if p.retrievable
    )
    with httpx.Client(timeout=60) as http:
        soap = Soap(http, env)
        rows, first_pages, pages = 0, list[float](), list[float]()
        after = HISTORY_END - timedelta(days=731)
        last = HISTORY_END + timedelta(days=days)  # opens and clicks come days after a send
        started = time.perf_counter()
        while after < last:
            until = after + timedelta(days=days)
            inner = f"<ObjectType>SentEvent</ObjectType>{props}{window_filter(after, until)}"
            first, times, count = soap.sweep(inner)
            rows, after = rows + count, until
            first_pages.append(first)
            pages += times
        elapsed = time.perf_counter() - started
    return {
        "events_sent_rows (all SentEvents)": float(rows),
        f"events_rows_per_s (SentEvent, {days}-day windows)": rows / elapsed,
        "events_first_page_ms (median, bisects 650k)": statistics.median(first_pages) * 1000,
        "events_continued_page_ms (median)": statistics.median(pages) * 1000,
    }


def rss_mb(process: subprocess.Popen[str]) -> float:
    """The resident memory of a process (Linux; elsewhere NaN)."""
    status = Path(f"/proc/{process.pid}/status")
    if not status.exists():
        return float("nan")
    return int(status.read_text().split("VmRSS:")[1].split()[0]) / 1024


def measure(scale: str, measurements: Callable[[Env], dict[str, float]]) -> dict[str, float]:
    process, env, startup = start(scale)
    try:
        results = {f"startup_{scale}_s (generates the tenant)": startup}
        with httpx.Client() as http:
            token(http, env)
        results[f"rss_{scale}_mb (after startup)"] = rss_mb(process)
        results.update(measurements(env))
        results[f"rss_{scale}_mb (after serving)"] = rss_mb(process)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return results


def main() -> None:
    def large(env: Env) -> dict[str, float]:
        return {
            "rest_requests_per_s (1 client)": rest_rate(env, 1),
            "rest_requests_per_s (4 clients)": rest_rate(env, 4),
            **soap_pages(env),
        }

    results = {**measure("large", large), **measure("events", event_windows)}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "emulator.json").write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:>12,.1f}")


if __name__ == "__main__":
    main()
