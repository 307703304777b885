"""Anonymised staff alert for red flags, posted to a webhook (e.g. a Slack incoming webhook).

Configured by STAFF_ALERT_WEBHOOK_URL. The alert carries the tier, the category, the
channel and a conversation reference (a hash of the sender id), never the message text
or a name. It is sent in the background with a bounded timeout, so a slow or failing
webhook never delays or breaks the reply to the user; failures are logged.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
from typing import Any, Dict, Optional, Set

import aiohttp

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 3.0
_pending: Set[asyncio.Task] = set()  # keeps background tasks alive until they finish


def conversation_reference(sender_id: str) -> str:
    """Lets staff find the conversation in the tracker store without exposing the id."""
    return hashlib.sha256(sender_id.encode("utf-8")).hexdigest()[:16]


def alert_payload(tier: str, category: Optional[str], channel: Optional[str],
                  sender_id: str) -> Dict[str, Any]:
    reference = conversation_reference(sender_id)
    category = category or "unspecified"
    channel = channel or "unknown"
    if tier == "crisis":
        text = (f"Crisis message (thoughts of self-harm or suicide) on {channel}; the user "
                f"was given the crisis line and the emergency number. "
                f"Conversation ref {reference}.")
    else:
        text = (f"Red flag ({tier}, {category.replace('_', ' ')}) reported on {channel}; "
                f"the user was told to seek {'emergency' if tier == 'emergency' else 'urgent'}"
                f" care. Conversation ref {reference}.")
    return {
        "text": text,
        "tier": tier,
        "category": category,
        "channel": channel,
        "conversation_ref": reference,
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


async def _post(url: str, payload: Dict[str, Any], timeout: float) -> None:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(url, json=payload) as response:
                if response.status >= 400:
                    logger.warning("Staff alert webhook answered HTTP %s", response.status)
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        logger.warning("Staff alert webhook failed: %r", error)


def send_staff_alert(tier: str, category: Optional[str], channel: Optional[str],
                     sender_id: str) -> Optional[asyncio.Task]:
    """Schedule the alert in the background; returns the task (None when not configured)."""
    url = os.environ.get("STAFF_ALERT_WEBHOOK_URL", "").strip()
    if not url:
        return None
    timeout = float(os.environ.get("STAFF_ALERT_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    task = asyncio.create_task(_post(url, alert_payload(tier, category, channel, sender_id),
                                     timeout))
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task
