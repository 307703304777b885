"""Rasa's Redis ticket lock store, with every change to a lock made atomically in Redis.

Rasa's `RedisLockStore` (rasa#9213) reads a lock, changes it in Python and writes it back.
Two Rasa processes that receive messages for one conversation at the same moment can
therefore draw the same ticket and both go ahead, or one can overwrite the ticket the other
just added or delete a lock someone is waiting on; the conversation's events then interleave
or are lost (`SQLTrackerStore.save` appends by counting the stored events).

Here each read-change-write runs as an optimistic Redis transaction (WATCH the key, MULTI,
EXEC; redis-py retries when another client changed the key in between), so the tickets are
issued in one total order across processes. The lock format, the ticket algorithm
(`rasa.core.lock.TicketLock`) and the configuration keys are Rasa's:

    lock_store:
      type: stores.lock_store.ClinicRedisLockStore
      url: <host>
      port: 6379
      db: 1
      # optional, as for `type: redis`: username, password, use_ssl, ssl_certfile,
      # ssl_keyfile, ssl_ca_certs, key_prefix, socket_timeout

One difference: a lock key expires in Redis with its last ticket, so a process that died
while holding or waiting for a lock leaves nothing behind.
"""
from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Callable, Optional, Text, Tuple, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig
from redis.client import Pipeline

logger = logging.getLogger(__name__)

Result = TypeVar("Result")
# Given the stored lock (None if there is none): the lock to store (None deletes it) and
# the value to return.
Change = Callable[[Optional[TicketLock]], Tuple[Optional[TicketLock], Result]]


class ClinicRedisLockStore(RedisLockStore):
    """`RedisLockStore` whose ticket issuing, release and expiry are atomic in Redis."""

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        # Rasa builds custom lock stores as `cls(endpoint_config=...)`; its own Redis store
        # is built as `RedisLockStore(host=config.url, **config.kwargs)`: same keys here.
        if endpoint_config is not None:
            kwargs = {**endpoint_config.kwargs, **kwargs}
            if endpoint_config.url:
                kwargs.setdefault("host", endpoint_config.url)
        super().__init__(**kwargs)

    def _change_atomically(self, conversation_id: Text, change: Change[Result]) -> Result:
        key = self.key_prefix + conversation_id

        def transaction(pipe: Pipeline) -> Result:
            # The pipeline is in immediate mode until multi(): this GET reads the watched
            # key, and EXEC fails (WatchError, retried by redis-py) if it changes before.
            stored = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(stored)) if stored else None
            new_lock, result = change(lock)
            pipe.multi()
            if new_lock is None:
                pipe.delete(key)
            else:
                new_lock.remove_expired_tickets()
                if new_lock.is_someone_waiting():
                    pipe.set(key, new_lock.dumps(), px=_milliseconds_left(new_lock))
                else:
                    # Nobody holds or waits for it: same as Rasa's cleanup.
                    pipe.delete(key)
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issue the next ticket for `conversation_id` (creating the lock if needed)."""
        logger.debug(f"Issuing ticket for conversation '{conversation_id}'.")

        def issue(lock: Optional[TicketLock]) -> Tuple[TicketLock, int]:
            lock = lock or self.create_lock(conversation_id)
            return lock, lock.issue_ticket(lock_lifetime)

        try:
            return self._change_atomically(conversation_id, issue)
        except Exception as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}")

    def update_lock(self, conversation_id: Text) -> None:
        """Remove the expired tickets of the lock for `conversation_id`, if there is one."""

        def drop_expired(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            # `_change_atomically` removes expired tickets from every lock it stores.
            return lock, None

        self._change_atomically(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove ticket `ticket_number` from the lock for `conversation_id`."""

        def remove_ticket(lock: Optional[TicketLock]) -> Tuple[Optional[TicketLock], None]:
            if lock is not None:
                lock.remove_ticket_for(ticket_number)
            return lock, None

        self._change_atomically(conversation_id, remove_ticket)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove ticket `ticket_number`, and the lock too if nobody else is waiting.

        Rasa does this in three steps, so a ticket issued in between could be deleted with
        the lock; `finish_serving` deletes a lock without live tickets in the same
        transaction."""
        self.finish_serving(conversation_id, ticket_number)


def _milliseconds_left(lock: TicketLock) -> int:
    """How long the lock's last ticket has to live (at least 1 ms, as Redis requires)."""
    latest = max(ticket.expires for ticket in lock.tickets)
    return max(1, math.ceil((latest - time.time()) * 1000))
