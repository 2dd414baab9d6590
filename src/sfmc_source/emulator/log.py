"""The request log: every request the emulator answered, for tests and the demo to count."""

from __future__ import annotations

import threading
from collections import Counter
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

    def summary(self) -> dict[str, Any]:
        return {
            "total": len(self.entries),
            "token_requests": self.token_requests,
            "by_endpoint": self.by_endpoint(),
            "by_status": self.by_status(),
        }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
