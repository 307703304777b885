"""Which platform deliveries were seen already, across every Rasa process.

Slack delivers at least once: it retries an event it thinks was not received, and a
signed interaction (a button click) sent again within the five minutes its signature
stays valid is indistinguishable from the first. Each delivery is answered once: its
key is recorded where every Rasa process of the deployment sees it, the Redis of the
lock store when there is one (stores/lock_store.py; `SET key NX PX` is atomic, so of
two processes receiving the same delivery at once exactly one goes ahead), otherwise in
this process's memory (one process: scripts/run.sh, endpoints.yml). A key is remembered
for TTL_SECONDS, longer than Slack's signatures stay valid (rasa.core.channels.slack
refuses a request signed more than five minutes ago), so a replay that outlives it is
refused anyway. When Redis fails, the memory is used and the failure logged: a second
answer is better than none.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from typing import Any, Optional

from rasa.core.lock_store import RedisLockStore

logger = logging.getLogger(__name__)

TTL_SECONDS = 10 * 60
MAX_REMEMBERED = 100_000  # in memory; the oldest go first
KEY_PREFIX = "delivery:"  # after the lock store's own prefix ("lock:" by default)


class DeliveryLog:
    def __init__(self, ttl_seconds: float = TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._seen: "OrderedDict[str, float]" = OrderedDict()  # key -> expiry

    def first_time(self, key: str, lock_store: Optional[Any] = None) -> bool:
        """Whether `key` is seen for the first time (and from now on is not)."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        if isinstance(lock_store, RedisLockStore):
            try:
                name = f"{lock_store.key_prefix}{KEY_PREFIX}{digest}"
                return bool(lock_store.red.set(name, b"1", nx=True,
                                               px=int(self.ttl_seconds * 1000)))
            except Exception as error:  # noqa: BLE001 - any Redis failure: use the memory
                logger.warning("Could not record a delivery in Redis (%s); remembering it "
                               "in this process only", type(error).__name__)
        return self._first_in_memory(digest)

    def _first_in_memory(self, digest: str) -> bool:
        now = time.monotonic()
        while self._seen and (next(iter(self._seen.values())) <= now
                              or len(self._seen) >= MAX_REMEMBERED):
            self._seen.popitem(last=False)
        if digest in self._seen:
            return False
        self._seen[digest] = now + self.ttl_seconds
        return True
