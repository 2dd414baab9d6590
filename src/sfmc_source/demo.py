"""``sfmc-source demo``: the emulator at work, offline and without credentials.

Until the sync lands (issue #3) the demo walks the emulated API the way a connector does: one
token, every campaign page, every journey version, every list through SOAP paging, then a
change to the data and the one request that sees it.
"""

from __future__ import annotations

import time
from typing import Any

import click
import httpx
from lxml import etree

from sfmc_source.emulator import Emulator, EmulatorConfig

PARTNER = "{http://exacttarget.com/wsdl/partnerAPI}"
RETRIEVE = """<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
<s:Header><fueloauth xmlns="http://exacttarget.com">{token}</fueloauth></s:Header>
<s:Body><RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI"><RetrieveRequest>
{request}</RetrieveRequest></RetrieveRequestMsg></s:Body></s:Envelope>"""
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def run_demo() -> None:
    with Emulator(EmulatorConfig(seed=1)) as emulator, httpx.Client(timeout=30) as http:
        started = time.perf_counter()
        token = http.post(
            f"{emulator.auth_url}/v2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": emulator.config.client_id,
                "client_secret": emulator.config.client_secret,
            },
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        rest = token["rest_instance_url"]
        campaigns = _rest_items(http, rest + "hub/v1/campaigns", headers)
        journeys = _rest_items(
            http, rest + "interaction/v1/interactions", headers, mostRecentVersionOnly="false"
        )
        lists = _soap_rows(http, token, "<ObjectType>List</ObjectType><Properties>ID</Properties>")
        click.echo(
            f"campaigns: {len(campaigns)}  journey versions: {len(journeys)}  lists: {lists}"
        )
        emulator.app.mutate.update("campaigns", campaigns[-1]["id"], name="Renamed in the demo")
        newest = _rest_items(http, rest + "hub/v1/campaigns", headers, pages=1)[0]
        click.echo(f"after a change, the newest campaign is {newest['id']}: {newest['name']}")
        click.echo(f"{time.perf_counter() - started:.2f}s; requests by endpoint:")
        for endpoint, count in sorted(emulator.app.log.by_endpoint().items()):
            click.echo(f"  {count:>4}  {endpoint}")


def _rest_items(
    http: httpx.Client, url: str, headers: dict[str, str], pages: int = 10_000, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in range(1, pages + 1):
        body = http.get(url, headers=headers, params={"$page": page, "$pageSize": 50, **params})
        chunk = body.raise_for_status().json()["items"]
        items += chunk
        if not chunk or len(items) >= body.json()["count"]:
            break
    return items


def _soap_rows(http: httpx.Client, token: dict[str, Any], request: str) -> int:
    rows = 0
    while True:
        envelope = RETRIEVE.format(token=token["access_token"], request=request)
        response = http.post(
            token["soap_instance_url"] + "Service.asmx",
            content=envelope.encode(),
            headers={"SOAPAction": "Retrieve", "Content-Type": "text/xml; charset=utf-8"},
        )
        message = etree.fromstring(response.raise_for_status().content, _PARSER)
        rows += len(message.findall(f".//{PARTNER}Results"))
        if message.findtext(f".//{PARTNER}OverallStatus") != "MoreDataAvailable":
            return rows
        request = f"<ContinueRequest>{message.findtext(f'.//{PARTNER}RequestID')}</ContinueRequest>"
