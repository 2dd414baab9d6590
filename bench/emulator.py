"""How fast the emulator serves: it must never be a benchmark's bottleneck.

Runs the emulator in its own process (as `sfmc-source emulator`) and measures, over real
sockets: REST requests per second (one client, then four in parallel), and the time to serve a
full 2,500-row SOAP List page (first page, which filters the whole table, and continued pages,
cold and warm). Prints a table and writes bench/results/emulator.json.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

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


def soap_pages(env: dict[str, str]) -> dict[str, float]:
    with httpx.Client(timeout=60) as http:
        auth = token(http, env)
        url = auth["soap_instance_url"] + "Service.asmx"
        props = "".join(f"<Properties>{p}</Properties>" for p in LIST_PROPERTIES)
        since = (
            '<Filter xsi:type="SimpleFilterPart"><Property>ModifiedDate</Property>'
            "<SimpleOperator>greaterThanOrEqual</SimpleOperator>"
            "<DateValue>2023-01-01T00:00:00</DateValue></Filter>"
        )

        def call(inner: str) -> tuple[float, bytes]:
            envelope = (
                '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><s:Header>'
                f'<fueloauth xmlns="http://exacttarget.com">{auth["access_token"]}</fueloauth>'
                '</s:Header><s:Body><RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI">'
                f"<RetrieveRequest>{inner}</RetrieveRequest></RetrieveRequestMsg></s:Body></s:Envelope>"
            )
            started = time.perf_counter()
            response = http.post(url, content=envelope.encode(), headers={"SOAPAction": "Retrieve"})
            return time.perf_counter() - started, response.content

        def sweep() -> tuple[float, list[float]]:
            first, body = call(f"<ObjectType>List</ObjectType>{props}{since}")
            times: list[float] = []
            while b"MoreDataAvailable" in body and len(times) < 20:
                request_id = body.split(b"<RequestID>")[1].split(b"</RequestID>")[0].decode()
                elapsed, body = call(f"<ContinueRequest>{request_id}</ContinueRequest>")
                times.append(elapsed)
            return first, times

        first_cold, cold = sweep()
        _, warm = sweep()
        return {
            "first_page_ms (filters 200k rows)": first_cold * 1000,
            "continued_page_cold_ms (median)": statistics.median(cold) * 1000,
            "continued_page_warm_ms (median)": statistics.median(warm) * 1000,
            "page_bytes": float(len(call(f"<ObjectType>List</ObjectType>{props}")[1])),
        }


def main() -> None:
    process, env, startup = start("large")
    try:
        results: dict[str, float] = {"startup_large_s (generates the tenant)": startup}
        with httpx.Client() as http:
            token(http, env)
        results["rest_requests_per_s (1 client)"] = rest_rate(env, 1)
        results["rest_requests_per_s (4 clients)"] = rest_rate(env, 4)
        results.update(soap_pages(env))
    finally:
        process.terminate()
        process.wait(timeout=10)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "emulator.json").write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:>12,.1f}")


if __name__ == "__main__":
    main()
