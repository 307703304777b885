"""Rasa's Redis ticket lock store, with every change to a lock made atomically in Redis.

Rasa's `RedisLockStore` (rasa#9213) reads a lock, changes it in Python and writes it back.
Two Rasa processes that receive messages for one conversation at the same moment can
therefore draw the same ticket and both go ahead, or one can overwrite the ticket the other
just added or delete a lock someone is waiting on; the conversation's events then interleave
or are lost (`SQLTrackerStore.save` appends by counting the stored events).

Here each change of a lock (issue a ticket, release one, drop expired ones) is one Lua
script that Redis runs atomically, so the tickets are issued in one total order across
processes, in one round trip per change (an optimistic WATCH/MULTI/EXEC transaction took
three or more, about 3 ms of Rasa's CPU per message). The scripts implement Rasa's ticket
algorithm (`rasa.core.lock.TicketLock`: a ticket lives until `expires`; the next number
follows the last live ticket, or is 0) and store the lock in Rasa's JSON format, which
Rasa's `get_lock` reads. The configuration keys are Rasa's:

    lock_store:
      type: stores.lock_store.ClinicRedisLockStore
      url: <host>
      port: 6379
      db: 1
      # optional, as for `type: redis`: username, password, use_ssl, ssl_certfile,
      # ssl_keyfile, ssl_ca_certs, key_prefix, socket_timeout

One difference: a lock key expires in Redis with its last ticket, so a process that died
while holding or waiting for a lock leaves nothing behind. And a message for a conversation
nobody else is serving costs two round trips (issue, release): the issuing script says
whether the ticket is the only one, so Rasa's read of the lock to check that is skipped.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Dict, Optional, Text

from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

# KEYS[1]: the lock; ARGV[1]: conversation id, ARGV[2]: now (the caller's clock, as
# Rasa's expiry checks use), then the script's own arguments.
_COMMON = """
local function live_tickets(now, drop)
  local tickets, stored = {}, redis.call('GET', KEYS[1])
  if stored then
    -- Rasa's format: each ticket is a JSON string inside the lock's JSON.
    for _, raw in ipairs(cjson.decode(stored).tickets or {}) do
      local ticket = raw
      if type(raw) == 'string' then ticket = cjson.decode(raw) end
      if ticket.expires >= now and ticket.number ~= drop then
        table.insert(tickets, ticket)
      end
    end
  end
  return tickets
end

-- Store the lock until its last ticket expires; without tickets nobody holds or waits
-- for it: delete it (Rasa's cleanup).
local function store(tickets, now)
  if #tickets == 0 then
    redis.call('DEL', KEYS[1])
    return
  end
  local latest, encoded = tickets[1].expires, {}
  for i, ticket in ipairs(tickets) do
    if ticket.expires > latest then latest = ticket.expires end
    encoded[i] = cjson.encode({number = ticket.number, expires = ticket.expires})
  end
  redis.call('SET', KEYS[1], cjson.encode({conversation_id = ARGV[1], tickets = encoded}),
             'PX', math.max(1, math.ceil((latest - now) * 1000)))
end
"""
# ARGV[3]: the ticket's lifetime in seconds. Returns the ticket's number, and 1 if it is
# the only live ticket (its holder may go ahead), else 0.
_ISSUE = _COMMON + """
local now = tonumber(ARGV[2])
local tickets = live_tickets(now, nil)
local number = 0
if #tickets > 0 then number = tickets[#tickets].number + 1 end
table.insert(tickets, {number = number, expires = now + tonumber(ARGV[3])})
store(tickets, now)
if #tickets == 1 then return {number, 1} end
return {number, 0}
"""
# ARGV[3]: the ticket to remove, or "" to drop only the expired ones. A missing lock stays
# missing (`store` deletes a lock without tickets).
_RELEASE = _COMMON + """
local now = tonumber(ARGV[2])
store(live_tickets(now, tonumber(ARGV[3])), now)
return 0
"""


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
        # redis-py sends each script once, then calls it by its hash.
        self._issue = self.red.register_script(_ISSUE)
        self._release = self.red.register_script(_RELEASE)
        # conversation -> the ticket just issued to it, when it was the only live one
        self._issued_alone: Dict[Text, Ticket] = {}

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Issue the next ticket for `conversation_id` (creating the lock if needed)."""
        logger.debug(f"Issuing ticket for conversation '{conversation_id}'.")
        try:
            number, alone = self._run(self._issue, conversation_id, lock_lifetime)
        except Exception as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}")
        if alone:
            self._issued_alone[conversation_id] = Ticket(int(number), time.time() + lock_lifetime)
        else:
            self._issued_alone.pop(conversation_id, None)
        return int(number)

    async def _acquire_lock(self, conversation_id: Text, ticket: int,
                            wait_time_in_seconds: float) -> TicketLock:
        """Rasa reads the lock right after issuing a ticket to see whether the ticket may
        go ahead. When the issuing script found it the only live ticket, it may: tickets
        are only added after it, so it stays first; that saves a round trip."""
        alone = self._issued_alone.pop(conversation_id, None)
        if alone is not None and alone.number == ticket:
            return TicketLock(conversation_id, deque([alone]))
        return await super()._acquire_lock(conversation_id, ticket, wait_time_in_seconds)

    def update_lock(self, conversation_id: Text) -> None:
        """Remove the expired tickets of the lock for `conversation_id`, if there is one."""
        self._run(self._release, conversation_id, "")

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove ticket `ticket_number` (and expired ones) from the lock for
        `conversation_id`; delete the lock if no ticket is left."""
        self._run(self._release, conversation_id, ticket_number)

    def _run(self, script: Any, conversation_id: Text, argument: Any) -> Any:
        return script(keys=[self.key_prefix + conversation_id],
                      args=[conversation_id, time.time(), argument])

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Remove ticket `ticket_number`, and the lock too if nobody else is waiting.

        Rasa does this in three steps, so a ticket issued in between could be deleted with
        the lock; `finish_serving` deletes a lock without live tickets in the same
        script."""
        self.finish_serving(conversation_id, ticket_number)
