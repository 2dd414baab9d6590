"""The request log: every request the emulator answered, for tests and the demo to count."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TOKEN_ENDPOINT = "POST /v2/token"


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    endpoint: str
    status: int
    mid: int | None
    query: tuple[tuple[str, str], ...] = ()  # the parameters, lower-cased names, sorted
    api: str = "REST"  # or SOAP; the auth host counts as REST
    rows: int | None = None  # of a SOAP Retrieve page
    # Shared by the pages of one SOAP Retrieve (its first RequestID) or of one REST listing.
    chain: str | None = None
    latency_ms: float = 0.0  # what the emulator waited before answering (Faults)
    started: float = 0.0  # time.monotonic() on arrival
    finished: float = 0.0  # time.monotonic() when answered


class RequestLog:
    """Every request the emulator answered, for tests and the demo to count."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def count(self, endpoint: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for e in self.entries
            if (endpoint is None or e.endpoint == endpoint)
            and (status is None or e.status == status)
        )

    @property
    def token_requests(self) -> int:
        return self.count(TOKEN_ENDPOINT)

    def by_endpoint(self) -> dict[str, int]:
        return dict(Counter(e.endpoint for e in self.entries))

    def by_status(self) -> dict[int, int]:
        return dict(Counter(e.status for e in self.entries))

    def latency(self) -> dict[str, float]:
        """Milliseconds of added latency: over all requests (``total``), and along the longest
        chain of requests that followed one another (``longest_chain``, see ``chain_ms``)."""
        entries = self.entries
        chains: defaultdict[str, list[LoggedRequest]] = defaultdict(list)
        for entry in entries:
            if entry.chain is not None:
                chains[entry.chain].append(entry)
        return {
            "total": sum(e.latency_ms for e in entries),
            "longest_chain": max(map(chain_ms, chains.values()), default=0.0),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "total": len(self.entries),
            "token_requests": self.token_requests,
            "by_endpoint": self.by_endpoint(),
            "by_status": self.by_status(),
            "latency_ms": self.latency(),
        }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def chain_ms(pages: Sequence[LoggedRequest]) -> float:
    """The most latency along pages of one chain that each arrived after the one before was
    answered: all of a SOAP Retrieve's pages, all of a REST listing's when the client reads
    them one by one, fewer when it asks for several at once."""
    ordered = sorted(pages, key=lambda e: e.started)
    along: list[float] = []  # the longest such sequence ending at each page
    for n, page in enumerate(ordered):
        before = [along[i] for i in range(n) if ordered[i].finished <= page.started]
        along.append(page.latency_ms + max(before, default=0.0))
    return max(along, default=0.0)
