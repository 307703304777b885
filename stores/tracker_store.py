"""Rasa's SQL tracker store (SQLite or PostgreSQL), tuned for a clinic that runs for months.

- Flat cost per turn: Rasa rebuilds the tracker from every event of the session on each
  message, and its policies re-read it all, so a reply at turn 200 used to cost many times
  one at turn 5. Our dialogue needs only the recent turns (every rule is one user turn)
  and the slots, so `retrieve` loads the last `window_events` events, starting at a turn
  boundary, plus the latest value of each slot set before them. Everything is still
  stored; `retrieve_full_tracker` (HTTP API, exports) returns it all.
- Privacy: phone numbers and e-mail addresses that users type are masked before the
  message is stored; conversations idle for more than `retention_days` are deleted.
- Faults: if the database is unreachable, events are kept in memory and written, in
  order, as soon as it answers again, so users get answers and nothing is lost.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Text, Tuple

import phonenumbers
import sqlalchemy as sa
import sqlalchemy.exc
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Restarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_EVENTS = 30  # about four turns; every rule needs one
DEFAULT_RETENTION_DAYS = 90
PURGE_INTERVAL_SECONDS = 3600
RECENT_TRACKERS = 1000  # kept in memory to carry on through a database outage
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Phone-like runs the phone library rejects as invalid (e.g. numbers from unassigned
# ranges): nine or more digits, with the separators people type.
DIGIT_RUN = re.compile(r"(?<!\w)\+?\d[\d ()-]{7,}\d(?!\w)")
PHONE_MASK = "[phone number]"
EMAIL_MASK = "[e-mail address]"
DB_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
             sqlalchemy.exc.DatabaseError)


def _setting(value: Any, env: str, default: int) -> int:
    """Endpoint value, else environment variable, else default."""
    raw = value if value not in (None, "") else os.environ.get(env, "")
    return int(raw) if str(raw).strip() else default


def _phone_region() -> Optional[str]:
    """Region for reading local phone numbers: the clinic's own country."""
    from actions.content import clinic

    try:
        number = phonenumbers.parse(clinic()["phone"], None)
        return phonenumbers.region_code_for_number(number)
    except (phonenumbers.NumberParseException, KeyError):
        return None


def _sqlite_write_ahead_log(connection: Any, _: Any) -> None:
    """WAL journal with NORMAL sync: a commit costs one write instead of several fsyncs,
    readers do not block the writer, and a crash of Rasa loses nothing (a power cut can
    lose the last commits; deployments use PostgreSQL, see README "Deployment")."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Masker:
    """Replaces phone numbers and e-mail addresses in free text."""

    def __init__(self, region: Optional[str]) -> None:
        self.region = region or "ZZ"  # ZZ: only numbers written with +country code

    def mask(self, text: Text) -> Text:
        text = EMAIL.sub(EMAIL_MASK, text)
        # VALID, not POSSIBLE: years, dates and counts are not phone numbers.
        matches = list(phonenumbers.PhoneNumberMatcher(
            text, self.region, leniency=phonenumbers.Leniency.VALID))
        for match in reversed(matches):
            text = text[:match.start] + PHONE_MASK + text[match.end:]
        return DIGIT_RUN.sub(lambda m: PHONE_MASK if sum(c.isdigit() for c in m.group())
                             >= 9 else m.group(), text)

    def mask_event(self, data: Dict[str, Any]) -> Dict[str, Any]:
        if data.get("event") != UserUttered.type_name or not isinstance(data.get("text"), str):
            return data
        masked = self.mask(data["text"])
        if masked == data["text"]:
            return data
        data = {**data, "text": masked}
        if isinstance(data.get("parse_data"), dict):
            data["parse_data"] = {**data["parse_data"], "text": masked}
        return data


class ClinicTrackerStore(SQLTrackerStore):
    """SQLTrackerStore with a recent-events window, masking, retention and write-behind."""

    def __init__(self, domain: Optional[Domain] = None,
                 window_events: Optional[int] = None,
                 retention_days: Optional[int] = None,
                 **kwargs: Any) -> None:
        self.window_events = max(10, _setting(window_events, "TRACKER_WINDOW_EVENTS",
                                              DEFAULT_WINDOW_EVENTS))
        self.retention_days = _setting(retention_days, "RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
        self.masker = Masker(_phone_region())
        # Trackers whose newest events could not be written: sender -> (tracker, how
        # many of its events are already in the database).
        self._pending: Dict[Text, Tuple[DialogueStateTracker, int]] = {}
        # How many events of each tracker handed out by `retrieve` are in the database.
        self._loaded: Dict[Text, int] = {}
        # The latest saved trackers, to go on with if the database becomes unreachable.
        self._recent: "OrderedDict[Text, Tuple[DialogueStateTracker, int]]" = OrderedDict()
        self._last_purge = 0.0
        self._warn_if_unreachable(kwargs)
        super().__init__(domain, **kwargs)
        # Test pooled connections before use, so that the first request after a database
        # restart does not fail on a connection that died with the old server.
        url = self.engine.url
        self.engine.dispose()
        options = create_engine_kwargs(url)
        if url.get_backend_name() == "sqlite":
            # One connection kept open instead of a new one per query (SQLAlchemy 1.4's
            # default for SQLite files); SQLite serialises writers anyway.
            options["poolclass"] = sa.pool.SingletonThreadPool
        self.engine = sa.create_engine(url, pool_pre_ping=True, **options)
        if url.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_write_ahead_log)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self.purge_expired()

    @staticmethod
    def _warn_if_unreachable(kwargs: Dict[str, Any]) -> None:
        """Rasa waits for the database in a loop; say clearly what it is waiting for."""
        url = SQLTrackerStore.get_db_url(
            kwargs.get("dialect", "sqlite"), kwargs.get("host"), kwargs.get("port"),
            kwargs.get("db", "rasa.db"), kwargs.get("username"), kwargs.get("password"),
            kwargs.get("login_db"), kwargs.get("query"))
        engine = sa.create_engine(url)
        try:
            engine.connect().close()
        except DB_ERRORS as error:
            logger.error("Tracker store database %s is unreachable (%s). Rasa will retry "
                         "every 5 s and start answering once it is back.",
                         repr(engine.url), str(error).splitlines()[0])
        finally:
            engine.dispose()

    # --- reading ---------------------------------------------------------------------

    def _window_ids(self, session: Any, sender_id: Text) -> List[int]:
        """Ids of the events `retrieve` loads: the latest slot values, then the recent
        events of the current session from a turn boundary on."""
        event = self.SQLEvent
        session_events = self._event_query(session, sender_id,
                                           fetch_events_from_all_sessions=False).order_by(None)
        recent = (session_events.with_entities(event.id, event.type_name, event.action_name)
                  .order_by(event.id.desc()).limit(self.window_events).all())
        recent.reverse()
        if len(recent) < self.window_events:
            return [row.id for row in recent]
        # Start where the bot listens, so the first user turn has its full context.
        start = next((i for i, row in enumerate(recent)
                      if row.type_name == ActionExecuted.type_name
                      and row.action_name == ACTION_LISTEN_NAME), 0)
        recent = recent[start:]
        cutoff = recent[0].id
        last_restart = session_events.with_entities(sa.func.max(event.id)).filter(
            event.type_name == Restarted.type_name, event.id < cutoff).scalar() or 0
        # SQLTrackerStore stores a SlotSet's slot name in `action_name`.
        carried = session_events.with_entities(sa.func.max(event.id)).filter(
            event.type_name == SlotSet.type_name, event.id < cutoff,
            event.id > last_restart).group_by(event.action_name).all()
        return sorted(row[0] for row in carried) + [row.id for row in recent]

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The current session's recent events and slots (see the module docstring)."""
        try:
            self._flush_pending()
            with self.session_scope() as session:
                ids = self._window_ids(session, sender_id)
                rows = (session.query(self.SQLEvent.data).filter(self.SQLEvent.id.in_(ids))
                        .order_by(self.SQLEvent.id).all()) if ids else []
        except DB_ERRORS as error:
            self._log_unreachable("read", sender_id, error)
            # Without the database, go on with what we have in memory (or a new
            # conversation); its events are written once the database is back.
            kept = self._pending.get(sender_id) or self._recent.get(sender_id)
            if not kept:
                return None
            self._loaded[sender_id] = kept[1]
            return kept[0]
        self._loaded[sender_id] = len(rows)
        if not (self.domain and rows):
            return None
        events = [json.loads(row.data) for row in rows]
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    # --- writing ---------------------------------------------------------------------

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Write the tracker's new events (masked); keep them in memory if that fails."""
        await self.stream_events(tracker)
        sender_id = tracker.sender_id
        if sender_id in self._pending:
            stored = self._pending[sender_id][1]
        else:
            stored = self._loaded.pop(sender_id, None)
        try:
            self._flush_pending(skip=sender_id)
            with self.session_scope() as session:
                if stored is None:  # a tracker `retrieve` did not hand out
                    stored = len(self._window_ids(session, sender_id))
                self._insert(session, tracker, stored)
                session.commit()
        except DB_ERRORS as error:
            self._log_unreachable("write", sender_id, error)
            self._pending[sender_id] = (tracker, stored or 0)
            return
        self._pending.pop(sender_id, None)
        self._remember(tracker)
        self._maybe_purge()

    def _remember(self, tracker: DialogueStateTracker) -> None:
        self._recent[tracker.sender_id] = (tracker, len(tracker.events))
        self._recent.move_to_end(tracker.sender_id)
        while len(self._recent) > RECENT_TRACKERS:
            self._recent.popitem(last=False)

    def _insert(self, session: Any, tracker: DialogueStateTracker, stored: int) -> None:
        for event in list(tracker.events)[stored:]:
            data = self.masker.mask_event(event.as_dict())
            session.add(self.SQLEvent(
                sender_id=tracker.sender_id,
                type_name=event.type_name,
                timestamp=data.get("timestamp"),
                intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                action_name=data.get("name"),
                data=json.dumps(data),
            ))

    def _flush_pending(self, skip: Optional[Text] = None) -> None:
        """Write the events kept while the database was unreachable, oldest first."""
        for sender_id, (tracker, stored) in list(self._pending.items()):
            if sender_id == skip:
                continue
            with self.session_scope() as session:
                self._insert(session, tracker, stored)
                session.commit()
            del self._pending[sender_id]
            logger.warning("Tracker store database is back: wrote the kept events of "
                           "conversation %s.", sender_id)

    def _log_unreachable(self, what: str, sender_id: Text, error: Exception) -> None:
        logger.error("Tracker store database unreachable, could not %s conversation %s; "
                     "keeping its events in memory until it is back: %s",
                     what, sender_id, str(error).splitlines()[0])

    # --- retention -------------------------------------------------------------------

    def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge >= PURGE_INTERVAL_SECONDS:
            asyncio.get_running_loop().run_in_executor(None, self.purge_expired)

    def purge_expired(self) -> int:
        """Delete every conversation whose latest event is older than `retention_days`."""
        self._last_purge = time.monotonic()
        if self.retention_days <= 0:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        event = self.SQLEvent
        try:
            with self.session_scope() as session:
                stale = (session.query(event.sender_id).group_by(event.sender_id)
                         .having(sa.func.max(event.timestamp) < cutoff))
                deleted = (session.query(event).filter(event.sender_id.in_(stale))
                           .delete(synchronize_session=False))
                session.commit()
        except DB_ERRORS as error:
            logger.error("Could not delete expired conversations: %s", error)
            return 0
        if deleted:
            logger.info("Deleted %d events of conversations idle for more than %d days.",
                        deleted, self.retention_days)
        return deleted
