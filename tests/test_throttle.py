"""How many requests the client keeps in flight: the ``Throttle`` (at most ``limit``, halved on
each 429, won back one slot per ``allowed`` successes in a row), ``SfmcClient.map``, which
fetches items concurrently behind it, in order, stopping at the first failure, and
``SfmcClient.interleave``, which does the same for items of many results, as they arrive."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sfmc_source.client import Credentials, RetryPolicy, SfmcClient, Throttle
from sfmc_source.emulator import Emulator, Faults, Sizes
from sfmc_source.emulator.messages import Request, Response
from sfmc_source.errors import ConfigError

FAST = RetryPolicy(tries=8, base_delay=0.001, max_delay=0.01)
ASSETS = "GET /hub/v1/campaigns/{id}/assets"
NOWHERE = Credentials("id", "secret", "http://127.0.0.1:9")  # map alone never authenticates
SAFETY = 600  # seconds; only so that a hung wait fails its test instead of hanging the suite


class InFlight:
    """Counts calls running at once and remembers the most there ever were."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.now -= 1


def cycle(throttle: Throttle, throttled: bool = False, times: int = 1) -> None:
    """``times`` requests through the throttle, one after another."""
    for _ in range(times):
        throttle.acquire()
        throttle.release(throttled=throttled)


def started_thread(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def acquiring(throttle: Throttle) -> tuple[threading.Thread, threading.Event]:
    """A thread waiting for a slot, and the event it sets once it has one."""
    got = threading.Event()

    def acquire() -> None:
        throttle.acquire()
        got.set()

    return started_thread(acquire), got


# ---- Throttle -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1])
def test_a_throttle_needs_at_least_one_slot(limit: int) -> None:
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        Throttle(limit)
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        SfmcClient(NOWHERE, concurrency=limit)


def test_a_throttle_starts_with_every_slot_allowed() -> None:
    throttle = Throttle(5)
    assert (throttle.limit, throttle.allowed) == (5, 5)


@pytest.mark.parametrize("limit", [1, 3, 5])
def test_never_more_than_limit_are_in_flight(limit: int) -> None:
    throttle, in_flight = Throttle(limit), InFlight()

    def hammer() -> None:
        for _ in range(40):
            throttle.acquire()
            try:
                with in_flight:
                    time.sleep(0.0005)
            finally:
                throttle.release(throttled=False)

    threads = [started_thread(hammer) for _ in range(limit * 3)]
    for thread in threads:
        thread.join(timeout=SAFETY)
        assert not thread.is_alive()

    assert in_flight.most == limit
    assert in_flight.now == 0
    assert throttle.allowed == limit


def test_an_acquire_beyond_the_allowance_waits_for_a_release() -> None:
    throttle = Throttle(2)
    throttle.acquire()
    throttle.acquire()
    waiter, got = acquiring(throttle)

    assert not got.wait(0.1)
    throttle.release(throttled=False)
    assert got.wait(5)
    waiter.join(5)


def test_a_throttled_release_halves_the_allowance_down_to_one() -> None:
    throttle = Throttle(10)
    seen = []
    for _ in range(5):
        cycle(throttle, throttled=True)
        seen.append(throttle.allowed)
    assert seen == [5, 2, 1, 1, 1]
    assert throttle.limit == 10


def test_as_many_successes_in_a_row_as_allowed_win_one_slot_back_up_to_the_limit() -> None:
    throttle = Throttle(4)
    cycle(throttle, throttled=True, times=3)
    assert throttle.allowed == 1
    steps = []
    for _ in range(14):
        cycle(throttle)
        steps.append(throttle.allowed)
    # 1 success wins the 2nd slot, 2 more the 3rd, 3 more the 4th; then the limit holds
    assert steps == [2, 2, 3, 3, 3, 4, *[4] * 8]


def test_a_429_restarts_the_streak() -> None:
    throttle = Throttle(8)
    cycle(throttle, throttled=True)
    assert throttle.allowed == 4
    cycle(throttle, times=3)  # one short of winning a slot
    assert throttle.allowed == 4
    cycle(throttle, throttled=True)
    assert throttle.allowed == 2
    cycle(throttle)  # the earlier streak does not count
    assert throttle.allowed == 2
    cycle(throttle)
    assert throttle.allowed == 3


def test_a_halved_allowance_holds_back_new_requests_while_more_are_in_flight() -> None:
    throttle = Throttle(4)
    for _ in range(4):
        throttle.acquire()
    throttle.release(throttled=True)  # 3 in flight, 2 allowed
    assert throttle.allowed == 2
    waiter, got = acquiring(throttle)

    throttle.release(throttled=False)  # 2 in flight: still none free
    assert not got.wait(0.1)
    throttle.release(throttled=False)  # 1 in flight
    assert got.wait(5)
    waiter.join(5)


# ---- SfmcClient.map, no server -------------------------------------------------------------


@pytest.fixture
def offline() -> Iterator[Callable[[int], SfmcClient]]:
    clients: list[SfmcClient] = []

    def make(concurrency: int) -> SfmcClient:
        client = SfmcClient(NOWHERE, retry=FAST, concurrency=concurrency)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class Boom(Exception):
    pass


def test_map_returns_results_in_input_order(offline: Callable[[int], SfmcClient]) -> None:
    client = offline(4)
    items = list(range(24))

    def fetch(n: int) -> str:
        time.sleep((23 - n) % 5 * 0.004)  # later items tend to finish first
        return f"r{n}"

    assert client.map(fetch, items) == [f"r{n}" for n in items]
    assert client.map(fetch, []) == []


@pytest.mark.parametrize("concurrency", [1, 3, 5])
def test_map_runs_at_most_concurrency_fetches_at_once(
    offline: Callable[[int], SfmcClient], concurrency: int
) -> None:
    client, in_flight = offline(concurrency), InFlight()
    first = threading.Barrier(concurrency, timeout=SAFETY)

    def fetch(n: int) -> int:
        with in_flight:
            if n < concurrency:  # the first ones all run at once, however slow the machine
                first.wait()
            time.sleep(0.01)
        return n

    assert client.map(fetch, list(range(20))) == list(range(20))
    assert in_flight.most == concurrency


def test_map_with_concurrency_one_fetches_on_the_calling_thread_in_order(
    offline: Callable[[int], SfmcClient],
) -> None:
    client, calls = offline(1), []

    def fetch(n: int) -> int:
        calls.append((n, threading.current_thread()))
        return n * 2

    assert client.map(fetch, [3, 1, 2]) == [6, 2, 4]
    assert calls == [(n, threading.current_thread()) for n in (3, 1, 2)]


def test_map_raises_the_failure_and_never_starts_the_rest(
    offline: Callable[[int], SfmcClient],
) -> None:
    client = offline(3)
    started: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()
    failure = Boom("item 0 failed")

    def fetch(n: int) -> int:
        with lock:
            started.append(n)
        if n == 0:
            raise failure
        time.sleep(0.1)
        with lock:
            finished.append(n)
        return n

    with pytest.raises(Boom) as caught:
        client.map(fetch, list(range(20)))

    assert caught.value is failure
    # 1 and 2 may have started with 0 (three workers); a worker checks for a failure before
    # it starts an item, so nothing after them ever starts, and what was running ran to
    # its end first.
    assert 0 in started
    assert set(started) <= {0, 1, 2}
    assert sorted(finished) == sorted(set(started) - {0})


def test_map_stops_starting_fetches_once_one_failed_even_behind_a_slow_one(
    offline: Callable[[int], SfmcClient],
) -> None:
    """Item 1 fails at once while item 0 is still running: the items after them must not
    start ("the rest never start"), whatever order the running ones end in."""
    client = offline(3)
    started: list[int] = []
    lock = threading.Lock()

    def fetch(n: int) -> int:
        with lock:
            started.append(n)
        if n == 1:
            raise Boom("item 1 failed")
        time.sleep(0.3 if n == 0 else 0.02)
        return n

    with pytest.raises(Boom, match="item 1 failed"):
        client.map(fetch, list(range(20)))

    # 0, 1 and 2 start together (at most); the slot item 1 freed checks for the failure
    # before it takes item 3, and so does every later one.
    assert set(started) <= {0, 1, 2}, sorted(started)


# ---- SfmcClient.interleave, no server --------------------------------------------------------


class Produced:
    """What the items of an interleaving produced, and which of them were closed."""

    def __init__(self) -> None:
        self.results: list[tuple[int, int]] = []
        self.closed: set[int] = set()
        self._lock = threading.Lock()

    def items(self, n: int, count: int | None = None, pause: float = 0.0) -> Iterator[str]:
        """Item ``n``'s results: ``count`` of them, or endless ones."""
        try:
            for k in itertools.count() if count is None else range(count):
                time.sleep(pause)
                with self._lock:
                    self.results.append((n, k))
                yield f"{n}.{k}"
        finally:
            with self._lock:
                self.closed.add(n)


def interleaving_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sfmc-source-interleave"]


def test_interleave_yields_every_result_each_items_in_order(
    offline: Callable[[int], SfmcClient],
) -> None:
    client, produced = offline(4), Produced()

    found = list(client.interleave(lambda n: produced.items(n, 5, n % 3 * 0.002), range(10)))

    assert sorted(found) == sorted(f"{n}.{k}" for n in range(10) for k in range(5))
    for n in range(10):
        assert [r for r in found if r.startswith(f"{n}.")] == [f"{n}.{k}" for k in range(5)]
    assert produced.closed == set(range(10))
    assert list(client.interleave(lambda n: produced.items(n, 1), [])) == []


@pytest.mark.parametrize(("concurrency", "together"), [(2, 2), (5, 3), (10, 6)])
def test_interleave_reads_one_item_and_half_the_concurrency_more_at_once(
    offline: Callable[[int], SfmcClient], concurrency: int, together: int
) -> None:
    client, in_flight = offline(concurrency), InFlight()
    first = threading.Barrier(together, timeout=SAFETY)

    def item(n: int) -> Iterator[int]:
        with in_flight:
            if n < together:  # the first ones all run at once, however slow the machine
                first.wait()
            for k in range(3):
                time.sleep(0.002)
                yield k

    assert len(list(client.interleave(item, range(12)))) == 36
    assert in_flight.most == together


def test_interleave_with_concurrency_one_reads_on_the_calling_thread_in_order(
    offline: Callable[[int], SfmcClient],
) -> None:
    client, threads = offline(1), set()

    def item(n: int) -> Iterator[int]:
        threads.add(threading.current_thread())
        yield from (n, n)

    assert list(client.interleave(item, [3, 1, 2])) == [3, 3, 1, 1, 2, 2]
    assert threads == {threading.current_thread()}


def test_interleave_raises_a_failure_once_the_others_stopped_at_their_next_result(
    offline: Callable[[int], SfmcClient],
) -> None:
    client, produced = offline(3), Produced()
    failure = Boom("item 0 failed")
    failed_after: list[int] = []

    def item(n: int) -> Iterator[str]:
        if n == 0:
            time.sleep(0.05)  # the others are running by then
            failed_after.append(len(produced.results))
            raise failure
        yield from produced.items(n, pause=0.005)  # endless

    with pytest.raises(Boom) as caught:
        for _ in client.interleave(item, range(20)):
            pass

    assert caught.value is failure
    # 1 ran beside 0 (concurrency 3: one item and one more) and made at most one result once
    # it had failed; it was closed, and nothing after it started
    assert produced.closed == {1}
    assert len(produced.results) - failed_after[0] <= 1
    assert not interleaving_threads()


def test_interleavings_behind_one_throttle_read_their_first_items_and_half_its_limit_more(
    offline: Callable[[int], SfmcClient],
) -> None:
    client, in_flight = offline(4), InFlight()  # two readers beside each interleaving's first

    def item(n: int) -> Iterator[int]:
        with in_flight:
            for k in range(3):
                time.sleep(0.005)
                yield k

    with ThreadPoolExecutor(3) as pool:  # three collections read at once, say
        read = list(pool.map(lambda _: len(list(client.interleave(item, range(8)))), range(3)))

    assert read == [24, 24, 24]
    assert 3 <= in_flight.most <= 3 + 2


def test_closing_an_interleaving_stops_its_items(offline: Callable[[int], SfmcClient]) -> None:
    client, produced = offline(3), Produced()
    results = client.interleave(lambda n: produced.items(n, pause=0.001), range(20))

    taken = list(itertools.islice(results, 10))
    results.close()  # type: ignore[attr-defined]  # a generator

    assert len(taken) == 10
    assert produced.closed == {0, 1}
    assert not interleaving_threads()


# ---- SfmcClient.map against the emulator -----------------------------------------------------


@pytest.fixture
def connect(emulator_factory: Callable[..., Emulator]) -> Iterator[Callable[..., SfmcClient]]:
    clients: list[SfmcClient] = []

    def make(emulator: Emulator, concurrency: int) -> SfmcClient:
        creds = Credentials(
            emulator.config.client_id, emulator.config.client_secret, emulator.auth_url
        )
        client = SfmcClient(creds, retry=FAST, timeout=5, concurrency=concurrency)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def server_in_flight(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, together: int = 1
) -> InFlight:
    """Count the API requests the emulator is answering at once (token requests aside). With
    ``together``, each answer waits until that many are in flight: a client that keeps them in
    flight is seen to, however slow the machine, and one that does not never gets an answer."""
    in_flight, handle = InFlight(), emulator.app.handle
    rounds = threading.Barrier(together, timeout=SAFETY)

    def counted(request: Request) -> Response:
        if request.path == "/v2/token":
            return handle(request)
        with in_flight:
            rounds.wait()
            return handle(request)

    monkeypatch.setattr(emulator.app, "handle", counted)
    return in_flight


def asset_ids(body: Any) -> list[str]:
    return [item["id"] for item in body["items"]]


def test_map_keeps_at_most_concurrency_requests_in_flight_at_the_server(
    emulator_factory: Callable[..., Emulator],
    connect: Callable[..., SfmcClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    latency = 0.05
    emulator = emulator_factory(
        sizes=Sizes(campaigns=20, assets_per_campaign=2, lists=1, journeys=1),
        faults=Faults(latency_ms=latency * 1000),
    )
    unit = emulator.app.unit()
    campaigns = sorted(unit.campaigns, key=int)
    assert len(campaigns) == 20
    client = connect(emulator, concurrency=5)
    client.auth.token()
    in_flight = server_in_flight(emulator, monkeypatch, together=5)

    started = time.monotonic()
    bodies = client.map(lambda c: client.get_json(f"hub/v1/campaigns/{c}/assets"), campaigns)
    elapsed = time.monotonic() - started

    assert [asset_ids(b) for b in bodies] == [
        [a.fields["id"] for a in unit.assets[c]] for c in campaigns
    ]
    assert in_flight.most == 5
    assert emulator.app.log.count(ASSETS) == 20
    # 20 requests of 50 ms, 5 at a time: four rounds, each answered only once all five had
    # arrived (twenty one at a time would never have been answered)
    assert 4 * latency <= elapsed, elapsed


def test_map_backs_off_on_429_and_still_returns_every_result(
    emulator_factory: Callable[..., Emulator],
    connect: Callable[..., SfmcClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator = emulator_factory(
        sizes=Sizes(campaigns=40, assets_per_campaign=2, lists=1, journeys=1),
        faults=Faults(latency_ms=5, rate_limit_every=4, retry_after=0),
    )
    unit, log = emulator.app.unit(), emulator.app.log
    campaigns = sorted(unit.campaigns, key=int)
    client = connect(emulator, concurrency=5)
    client.auth.token()
    in_flight = server_in_flight(emulator, monkeypatch)

    bodies = client.map(lambda c: client.get_json(f"hub/v1/campaigns/{c}/assets"), campaigns)

    assert [asset_ids(b) for b in bodies] == [
        [a.fields["id"] for a in unit.assets[c]] for c in campaigns
    ]
    throttled = log.count(ASSETS, status=429)
    assert throttled > 0
    assert log.count(ASSETS, status=200) == len(campaigns)
    assert log.count(ASSETS) == len(campaigns) + throttled
    assert client.retries == throttled
    # every 4th request is a 429: three successes never win the allowance back past 3
    assert 1 <= client.throttle.allowed <= 3
    assert client.throttle.limit == 5
    assert in_flight.most <= 5

    # once SFMC stops throttling, successes win every slot back
    emulator.app.faults.rate_limit_every = 0
    log.clear()
    client.map(lambda c: client.get_json(f"hub/v1/campaigns/{c}/assets"), campaigns)
    assert log.count(ASSETS, status=200) == len(campaigns)
    assert client.throttle.allowed == 5
