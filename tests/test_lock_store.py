"""stores/lock_store.py against the local Redis: tickets are issued atomically (rasa#9213),
locks exclude across processes, are released and expire."""
from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
import uuid
from multiprocessing.synchronize import Barrier as ProcessBarrier
from typing import Iterator, List, Tuple

import pytest
import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore, RedisLockStore
from rasa.core.utils import read_endpoints_from_path

from scripts.servers import ROOT
from stores.lock_store import ClinicRedisLockStore

REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 1


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_reachable(),
                                reason=f"Redis is not running on {REDIS_HOST}:{REDIS_PORT}")


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own (Rasa allows only alphanumeric ones); its keys are
    deleted afterwards."""
    prefix = f"locktest{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def new_store(prefix: str, cls: type = ClinicRedisLockStore) -> RedisLockStore:
    return cls(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, key_prefix=prefix)


def raw() -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)


def test_the_committed_endpoints_file_builds_it(prefix, monkeypatch):
    for name, value in {"RASA_PORT": "5005", "DB_HOST": "db", "DB_PORT": "5432",
                        "DB_USER": "rasa", "DB_PASSWORD": "", "DB_NAME": "rasa",
                        "REDIS_HOST": REDIS_HOST, "REDIS_PORT": str(REDIS_PORT),
                        "REDIS_DB": "3"}.items():
        monkeypatch.setenv(name, value)
    endpoints = read_endpoints_from_path(ROOT / "endpoints.postgres.yml")
    store = LockStore.create(endpoints.lock_store)
    assert type(store) is ClinicRedisLockStore
    assert store.red.connection_pool.connection_kwargs["host"] == REDIS_HOST
    assert store.red.connection_pool.connection_kwargs["port"] == REDIS_PORT
    assert store.red.connection_pool.connection_kwargs["db"] == 3
    assert store.key_prefix == "lock:"  # Rasa's default
    # Rasa's optional keys work the same way.
    endpoints.lock_store.kwargs.update(key_prefix=prefix, password=None, socket_timeout=4)
    store = LockStore.create(endpoints.lock_store)
    assert store.key_prefix == f"{prefix}:lock:"
    assert store.red.connection_pool.connection_kwargs["socket_timeout"] == 4


def _issue_many(prefix: str, conversation: str, count: int, start: threading.Barrier,
                out: List[int]) -> None:
    store = new_store(prefix)  # a connection of its own, like another Rasa process
    start.wait(timeout=30)
    for _ in range(count):
        out.append(store.issue_ticket(conversation, lock_lifetime=60))


def test_threads_with_their_own_store_get_distinct_consecutive_tickets(prefix):
    threads, per_thread, results = 16, 10, []
    start = threading.Barrier(threads)
    workers = [threading.Thread(target=_issue_many, args=(prefix, "c1", per_thread, start, results))
               for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(results) == list(range(threads * per_thread))


def _issue_in_process(prefix: str, conversation: str, count: int, start: ProcessBarrier,
                      queue: "multiprocessing.Queue[List[int]]") -> None:
    store = new_store(prefix)
    start.wait(timeout=60)
    queue.put([store.issue_ticket(conversation, lock_lifetime=60) for _ in range(count)])


def test_processes_get_distinct_consecutive_tickets(prefix):
    context = multiprocessing.get_context("spawn")
    processes, per_process = 4, 50
    start, queue = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_issue_in_process,
                               args=(prefix, "c1", per_process, start, queue))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    tickets = [ticket for _ in workers for ticket in queue.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert sorted(tickets) == list(range(processes * per_process))
    lock = new_store(prefix).get_lock("c1")
    assert [ticket.number for ticket in lock.tickets] == list(range(processes * per_process))


def _both_read_before_either_writes(store_class: type, prefix: str,
                                    monkeypatch: pytest.MonkeyPatch) -> Tuple[int, int]:
    """Two stores issue a ticket for one conversation; each has read the lock before the
    other writes it back (the interleaving of rasa#9213, forced with a barrier)."""
    barrier, first_call = threading.Barrier(2), threading.local()
    issue = TicketLock.issue_ticket

    def issue_after_both_read(lock: TicketLock, lifetime: float) -> int:
        if not getattr(first_call, "done", False):
            first_call.done = True
            barrier.wait(timeout=10)
        return issue(lock, lifetime)

    monkeypatch.setattr(TicketLock, "issue_ticket", issue_after_both_read)
    tickets: List[int] = []
    stores = [new_store(prefix, store_class), new_store(prefix, store_class)]
    workers = [threading.Thread(target=lambda s=s: tickets.append(s.issue_ticket("c1", 60)))
               for s in stores]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert len(tickets) == 2
    return tickets[0], tickets[1]


def test_rasas_store_hands_out_one_ticket_twice(prefix, monkeypatch):
    # The bug this module exists for: both go ahead with ticket 0.
    assert _both_read_before_either_writes(RedisLockStore, prefix, monkeypatch) == (0, 0)
    lock = new_store(prefix).get_lock("c1")
    assert [ticket.number for ticket in lock.tickets] == [0]  # one write was lost, too


def test_ours_hands_out_the_next_ticket(prefix, monkeypatch):
    # Its read-change-write runs inside Redis (a Lua script), where nothing can come
    # between the read and the write: the same two requests get two tickets.
    assert sorted(_both_read_before_either_writes(ClinicRedisLockStore, prefix, monkeypatch)) \
        == [0, 1]
    lock = new_store(prefix).get_lock("c1")
    assert [ticket.number for ticket in lock.tickets] == [0, 1]


def _count_under_lock(prefix: str, conversation: str, tasks: int,
                      start: ProcessBarrier) -> None:
    """Increment a Redis counter by reading and writing it back, which is only correct
    if nobody else does it at the same time; record how many were inside at once."""
    store, client = new_store(prefix), raw()
    counter, inside, seen = f"{prefix}:counter", f"{prefix}:inside", f"{prefix}:seen"

    async def one() -> None:
        async with store.lock(conversation, lock_lifetime=30, wait_time_in_seconds=0.005):
            client.rpush(seen, client.incr(inside))
            value = int(client.get(counter) or 0)
            await asyncio.sleep(0.002)
            client.set(counter, value + 1)
            client.decr(inside)

    async def main() -> None:
        await asyncio.gather(*(one() for _ in range(tasks)))

    start.wait(timeout=60)
    asyncio.run(main())


def test_the_lock_excludes_across_processes_and_is_released(prefix):
    context = multiprocessing.get_context("spawn")
    processes, tasks = 4, 15
    start = context.Barrier(processes)
    workers = [context.Process(target=_count_under_lock, args=(prefix, "c1", tasks, start))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    client = raw()
    assert int(client.get(f"{prefix}:counter")) == processes * tasks  # no update lost
    # Never two inside at once.
    assert client.lrange(f"{prefix}:seen", 0, -1) == [b"1"] * (processes * tasks)
    assert not client.exists(f"{prefix}:lock:c1")  # the last one out deleted the lock


def test_release_keeps_the_lock_for_whoever_waits(prefix):
    store, client = new_store(prefix), raw()
    assert [store.issue_ticket("c1", 60) for _ in range(3)] == [0, 1, 2]
    store.cleanup("c1", 1)  # a waiter gave up: the others keep their places
    assert [t.number for t in store.get_lock("c1").tickets] == [0, 2]
    store.cleanup("c1", 0)
    assert store.get_lock("c1").now_serving == 2
    store.cleanup("c1", 2)
    assert not client.exists(f"{prefix}:lock:c1")
    assert store.issue_ticket("c1", 60) == 0  # a fresh lock starts again at 0


def test_the_key_lives_as_long_as_its_last_ticket(prefix):
    store, client = new_store(prefix), raw()
    key = f"{prefix}:lock:c1"
    store.issue_ticket("c1", lock_lifetime=0.3)
    assert 0 < client.pttl(key) <= 300
    store.issue_ticket("c1", lock_lifetime=5)
    assert 4000 < client.pttl(key) <= 5000
    time.sleep(0.4)
    store.update_lock("c1")  # drops the expired ticket 0
    assert [t.number for t in store.get_lock("c1").tickets] == [1]
    store.issue_ticket("c1", lock_lifetime=0.2)  # the last expiry is still ticket 1's
    assert 4000 < client.pttl(key) <= 5000


def test_a_lock_whose_holder_died_frees_itself(prefix):
    """A process that took a ticket and died never releases it: the next message for the
    conversation goes ahead when that ticket expires, and the key then disappears."""
    client = raw()
    new_store(prefix).issue_ticket("c1", lock_lifetime=1)  # the holder that died

    async def next_message() -> float:
        started = time.monotonic()
        async with new_store(prefix).lock("c1", lock_lifetime=30, wait_time_in_seconds=0.05) as lock:
            waited = time.monotonic() - started
            assert [t.number for t in lock.tickets] == [1]
        return waited

    waited = asyncio.run(next_message())
    assert 0.8 <= waited < 5
    assert not client.exists(f"{prefix}:lock:c1")
    new_store(prefix).issue_ticket("c3", lock_lifetime=0.1)
    time.sleep(0.2)
    assert not client.exists(f"{prefix}:lock:c3")


def test_redis_errors_surface_as_rasas_lock_error():
    store = ClinicRedisLockStore(host="127.0.0.1", port=1, socket_timeout=1)
    with pytest.raises(LockError, match="Error while acquiring lock"):
        store.issue_ticket("c1")


def test_locks_are_stored_in_rasas_format(prefix):
    """Rasa's own store and ours read and extend each other's locks (tickets as JSON
    strings inside the lock's JSON), e.g. during an upgrade."""
    rasas, ours = new_store(prefix, RedisLockStore), new_store(prefix)
    assert [rasas.issue_ticket("c1", 60) for _ in range(2)] == [0, 1]
    assert ours.issue_ticket("c1", 60) == 2
    ours.finish_serving("c1", 0)
    assert [t.number for t in rasas.get_lock("c1").tickets] == [1, 2]
    assert rasas.issue_ticket("c1", 60) == 3
    assert rasas.get_lock("c1").now_serving == 1


def test_an_uncontended_lock_costs_no_read_and_a_contended_one_still_waits(prefix):
    store, reads, order = new_store(prefix), [], []
    read = store.red.get
    store.red.get = lambda key: reads.append(key) or read(key)

    async def alone() -> None:
        async with store.lock("c1", lock_lifetime=60, wait_time_in_seconds=0.01):
            order.append("alone")

    asyncio.run(alone())
    assert reads == [] and order == ["alone"]  # the issuing script said it was free

    async def holder(entered: asyncio.Event, leave: asyncio.Event) -> None:
        async with store.lock("c1", lock_lifetime=60, wait_time_in_seconds=0.01):
            order.append("first in")
            entered.set()
            await leave.wait()
            order.append("first out")

    async def waiter() -> None:
        async with store.lock("c1", lock_lifetime=60, wait_time_in_seconds=0.01):
            order.append("second in")

    async def both() -> None:
        entered, leave = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(holder(entered, leave))
        await entered.wait()
        second = asyncio.create_task(waiter())
        await asyncio.sleep(0.1)  # the waiter polls the lock meanwhile
        leave.set()
        await asyncio.gather(first, second)

    asyncio.run(both())
    assert order[1:] == ["first in", "first out", "second in"]
    assert reads  # the waiter read the lock until the holder left
    assert not raw().exists(f"{prefix}:lock:c1")
