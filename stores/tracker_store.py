"""Rasa's SQL tracker store (SQLite or PostgreSQL), tuned for a clinic that runs for months.

- Flat cost per turn: Rasa rebuilds the tracker from every event of the session on each
  message, and its policies re-read it all, so a reply at turn 200 used to cost many times
  one at turn 5. Our dialogue needs only the recent turns (every rule is one user turn)
  and the slots, so `retrieve` loads the last `window_events` events, starting at a turn
  boundary, plus the latest value of each slot set before them. Everything is still
  stored; `retrieve_full_tracker` (HTTP API, exports) returns it all.
- Few queries per turn: the window of a conversation is kept in memory as it is written
  (stores/recent_events.py), so the next message costs one indexed query (is the newest
  event still the one this process wrote?) instead of reading and decoding the events.
- Privacy: personal data that users type (phone numbers in any format, e-mail addresses,
  names, addresses, postcodes, dates of birth, NHS, card and NI numbers, handles) is
  masked before the message is stored (privacy/pii.py, Microsoft Presidio);
  conversations idle for more than `retention_days` are deleted.
- Faults: if the database cannot be written, the turn's events go to a durable spool
  (stores/spool.py: fsync'd, masked, its space reserved) and the conversation carries on
  from memory; the spool is written to the database, in order and without duplicates,
  as soon as it answers again and whenever a process starts. If even the spool cannot be
  written, the turn fails (SpoolError) and the channel answers 503.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Text, Tuple

import sqlalchemy as sa
import sqlalchemy.exc
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (Event, Restarted, SessionStarted, SlotSet,
                                     UserUttered)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from privacy.pii import phone_region
from runtime import fast_json
from stores.recent_events import RecentEvents
from stores.spool import Spool, SpoolError
from stores.turn_statements import TurnStatements

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_EVENTS = 30  # about four turns; every rule needs one
DEFAULT_RETENTION_DAYS = 90
PURGE_INTERVAL_SECONDS = 3600
RECENT_TRACKERS = 1000  # kept in memory to carry on through a database outage
EVENT_COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
DB_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
             sqlalchemy.exc.DatabaseError)


def _setting(value: Any, env: str, default: int) -> int:
    """Endpoint value, else environment variable, else default."""
    raw = value if value not in (None, "") else os.environ.get(env, "")
    return int(raw) if str(raw).strip() else default


def _phone_region() -> Optional[str]:
    """Region for reading local phone numbers: the clinic's own country."""
    return phone_region(_clinic_details().get("phone", ""))


def _clinic_details() -> Dict[str, Any]:
    """The clinic's public details (data/clinic.yml): never masked when users quote them."""
    from actions.content import ContentError, clinic

    try:
        return clinic()
    except (ContentError, OSError, KeyError) as error:
        logger.error("Clinic settings unreadable (%s): its own phone number and address "
                     "will be masked like any other.", error)
        return {}


def _sqlite_rollback_journal(connection: Any, _: Any) -> None:
    """A rollback journal, not WAL: WAL memory-maps its index (`-shm`), and when that file
    cannot be written (truncated by another process, a failing disk) the whole process
    dies of SIGBUS mid-turn, where a write error would have gone to the spool. A save
    costs about 1.1 ms more (README "Known gaps"); the two workers of
    endpoints.workers.yml still share the file (SQLite's file locks; a writer waits up to
    the driver's 5 s busy timeout)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=DELETE")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Masker:
    """Replaces personal data in free text with "[phone number]", "[name]", ...
    (privacy/pii.py); button payloads and the clinic's own details stay as written."""

    def __init__(self, region: Optional[str],
                 public: Optional[Dict[str, Any]] = None) -> None:
        from privacy import pii

        self.region = region or "ZZ"  # ZZ: only numbers written with +country code
        # One per process and settings: building it loads the spaCy pipeline.
        self._pii = pii.masker(self.region, _clinic_details() if public is None else public)

    def mask(self, text: Text) -> Text:
        return self._pii.mask(text)

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
                 spool_dir: Optional[Text] = None,
                 **kwargs: Any) -> None:
        self.window_events = max(10, _setting(window_events, "TRACKER_WINDOW_EVENTS",
                                              DEFAULT_WINDOW_EVENTS))
        self.retention_days = _setting(retention_days, "RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
        self.masker = Masker(_phone_region())
        # Trackers whose newest events are in the spool, not the database: sender ->
        # (tracker, how many of its events are in the database or the spool).
        self._pending: Dict[Text, Tuple[DialogueStateTracker, int]] = {}
        # The tracker last handed out (or written) for each conversation, how many of its
        # events are in the database, and its window; None: `retrieve` found nothing.
        self._loaded: Dict[Text, Tuple[Optional["weakref.ref[DialogueStateTracker]"], int,
                                       Optional[RecentEvents]]] = {}
        # The windows of the latest conversations written, kept up to date in memory:
        # the next message needs no read, and an outage of the database none at all.
        self._recent: "OrderedDict[Text, RecentEvents]" = OrderedDict()
        self._last_purge = 0.0
        self._warn_if_unreachable(kwargs)
        super().__init__(domain, **kwargs)
        url = self.engine.url
        self.engine.dispose()
        options = create_engine_kwargs(url)
        if url.get_backend_name() == "sqlite":
            # One connection kept open instead of a new one per query (SQLAlchemy 1.4's
            # default for SQLite files); SQLite serialises writers anyway.
            options["poolclass"] = sa.pool.SingletonThreadPool
        else:
            # Test pooled connections before use, so that the first request after a
            # database restart does not fail on a connection that died with the old
            # server. (A SQLite file has no server to lose.)
            options["pool_pre_ping"] = True
        self.engine = sa.create_engine(url, **options)
        if url.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_rollback_journal)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        self._turn = TurnStatements(self.engine, self.SQLEvent.__table__, EVENT_COLUMNS)
        self.spool = Spool(Path(spool_dir or os.environ.get("SPOOL_DIR") or (
            Path(url.database).parent / "spool" if url.get_backend_name() == "sqlite"
            else Path("var") / "spool")))
        self._spooled = self.spool.pending()  # left by a process that stopped
        try:
            self._replay_spool()
        except DB_ERRORS as error:
            self._log_unreachable("write the spool for", "(all)", error)
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

    def _newest_id(self, connection: Any, sender_id: Text) -> Optional[int]:
        return self._turn.newest_id(connection, sender_id)

    def _load(self, session: Any, sender_id: Text, newest_id: Optional[int]) -> RecentEvents:
        """What `retrieve` hands out, from the database (see stores/recent_events.py)."""
        event = self.SQLEvent
        of_sender = session.query(event).filter(event.sender_id == sender_id)
        session_start = of_sender.with_entities(sa.func.max(event.timestamp)).filter(
            event.type_name == SessionStarted.type_name).scalar()
        in_session = of_sender if session_start is None else of_sender.filter(
            event.timestamp >= session_start)
        tail = (in_session.with_entities(event.id, event.data).order_by(event.id.desc())
                .limit(self.window_events).all())
        tail.reverse()
        slots: List[Any] = []
        if len(tail) >= self.window_events:
            before = in_session.filter(event.id < tail[0].id)
            last_restart = before.with_entities(sa.func.max(event.id)).filter(
                event.type_name == Restarted.type_name).scalar() or 0
            # SQLTrackerStore stores a SlotSet's slot name in `action_name`.
            latest = (before.with_entities(sa.func.max(event.id))
                      .filter(event.type_name == SlotSet.type_name, event.id > last_restart)
                      .group_by(event.action_name))
            slots = (session.query(event.id, event.data).filter(event.id.in_(latest))
                     .order_by(event.id).all())
        return RecentEvents.from_rows(self.window_events, newest_id, session_start,
                                      _deserialised(tail), _deserialised(slots))

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The current session's recent events and slots (see the module docstring).

        The window of each conversation this process wrote last is kept in memory; it is
        used when the conversation's newest event in the database is still the one this
        process wrote (another process, e.g. after a fail-over, may have written since)."""
        try:
            self._replay_spool()
            # A turn's few statements go through SQLAlchemy Core: the ORM session's
            # bookkeeping cost more than the statements. The ORM reads only on a miss.
            with self.engine.connect() as connection:
                newest = self._newest_id(connection, sender_id)
            # Read from the database again: its events are all there now.
            self._pending.pop(sender_id, None)
            known = self._recent.get(sender_id)
            if newest is None:
                recent = RecentEvents(self.window_events)
            elif known is not None and known.newest_id == newest:
                recent = known
            else:
                with self.session_scope() as session:
                    recent = self._load(session, sender_id, newest)
        except DB_ERRORS as error:
            self._log_unreachable("read", sender_id, error)
            # Without the database, go on with what we have in memory (or a new
            # conversation); its events are written once the database is back.
            if sender_id in self._pending:
                return self._pending[sender_id][0]
            recent = self._recent.get(sender_id)
            if recent is None:
                return None
        events = recent.events()
        if not (self.domain and events):
            self._loaded[sender_id] = (None, 0, recent)
            return None
        tracker = DialogueStateTracker.from_events(sender_id, events, self.domain.slots)
        self._loaded[sender_id] = (weakref.ref(tracker), len(events), recent)
        return tracker

    # --- writing ---------------------------------------------------------------------

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Write the tracker's new events (masked); to the spool if that fails (see the
        module docstring), or raise SpoolError if that fails too."""
        await self.stream_events(tracker)
        sender_id = tracker.sender_id
        stored, recent = self._stored_events(tracker)
        try:
            self._replay_spool()  # what was spooled before goes first
            if stored is None:  # a tracker `retrieve` did not hand out
                with self.session_scope() as session:
                    stored = len(self._load(session, sender_id, None).events())
            with self.engine.begin() as connection:  # committed at the end
                written = self._insert(connection, tracker, stored)
                newest = self._newest_id(connection, sender_id) if written else None
        except DB_ERRORS as error:
            self._log_unreachable("write", sender_id, error)
            rows, _ = self._rows(tracker, stored or 0)  # (all of them if unknown:
            self._recent.pop(sender_id, None)           # the replay skips duplicates)
            try:
                self.spool.append(rows)
            except SpoolError:
                logger.error("Could not write conversation %s to the database or the "
                             "spool: the turn is refused", sender_id)
                self._pending.pop(sender_id, None)
                raise
            self._spooled = True
            self._pending[sender_id] = (tracker, len(tracker.events))
            return
        self._pending.pop(sender_id, None)
        recent = self._remember(sender_id, recent, written, newest)
        # Rasa saves a new tracker twice (on creation and after the turn).
        self._loaded[sender_id] = (weakref.ref(tracker), len(tracker.events), recent)
        self._maybe_purge()

    def _stored_events(self, tracker: DialogueStateTracker
                       ) -> Tuple[Optional[int], Optional[RecentEvents]]:
        """How many of the tracker's events are in the database (None: unknown) and the
        window they came from."""
        pending = self._pending.get(tracker.sender_id)
        if pending is not None and pending[0] is tracker:
            self._loaded.pop(tracker.sender_id, None)
            return pending[1], None
        handed_out, stored, recent = self._loaded.pop(tracker.sender_id, (None, None, None))
        if stored is None or (handed_out is not None and handed_out() is not tracker):
            return None, None
        return stored, recent

    def _remember(self, sender_id: Text, recent: Optional[RecentEvents],
                  written: List[Event], newest: Optional[int]) -> Optional[RecentEvents]:
        """Keep the conversation's window, with the events just written, for the next
        `retrieve` (and to carry on with if the database becomes unreachable)."""
        self._recent.pop(sender_id, None)
        if recent is None:
            return None
        recent = recent.copy()  # the one handed out stays as it was, should the save fail
        if not all(recent.add(event) for event in written):
            return None
        if written:
            recent.newest_id = newest
        self._recent[sender_id] = recent
        while len(self._recent) > RECENT_TRACKERS:
            self._recent.popitem(last=False)
        return recent

    def _insert(self, connection: Any, tracker: DialogueStateTracker, stored: int
                ) -> List[Event]:
        """Insert the tracker's events after the first `stored`, masked, in one statement
        (the ORM's unit of work cost more than the rest of a save); returns them as
        stored."""
        rows, written = self._rows(tracker, stored)
        if rows:
            self._turn.insert(connection, rows)
        return written

    def _rows(self, tracker: DialogueStateTracker, stored: int
              ) -> Tuple[List[Dict[str, Any]], List[Event]]:
        """The rows of the tracker's events after the first `stored` (masked), and the
        events as they will be stored."""
        rows, written = [], []
        for event in list(tracker.events)[stored:]:
            original = event.as_dict()
            data = self.masker.mask_event(original)
            rows.append({
                "sender_id": tracker.sender_id,
                "type_name": event.type_name,
                "timestamp": data.get("timestamp"),
                "intent_name": data.get("parse_data", {}).get("intent", {}).get(
                    INTENT_NAME_KEY),
                "action_name": data.get("name"),
                "data": fast_json.dumps_text(data),
            })
            written.append(event if data is original else Event.from_parameters(data))
        return rows, written

    def _replay_spool(self) -> None:
        """Write the spooled rows to the database, oldest first, skipping any it already
        has (a replay cut short after its commit); raises DB_ERRORS while it is away."""
        if not self._spooled:
            return
        cutoff = time.time() - self.retention_days * 86400 if self.retention_days > 0 else 0
        for path, rows in self.spool.batches():
            rows = [row for row in rows if (row.get("timestamp") or 0) >= cutoff]
            with self.engine.begin() as connection:
                new = self._not_stored(connection, rows)
                if new:
                    self._turn.insert(connection, new)
            self.spool.done(path)
            logger.warning("Tracker store database is back: wrote %d spooled events "
                           "(%d were already there).", len(new), len(rows) - len(new))
        # The counts of `_pending` stay right: what they count as spooled is now stored.
        self._spooled = False

    def _not_stored(self, connection: Any, rows: List[Dict[str, Any]]
                    ) -> List[Dict[str, Any]]:
        table = self.SQLEvent.__table__
        by_sender: Dict[Text, List[Dict[str, Any]]] = {}
        for row in rows:
            by_sender.setdefault(row["sender_id"], []).append(row)
        kept = set()
        for sender_id, own in by_sender.items():
            earliest = min((row.get("timestamp") or 0) for row in own)
            there = set(connection.execute(
                sa.select(table.c.timestamp, table.c.type_name, table.c.data)
                .where(table.c.sender_id == sender_id, table.c.timestamp >= earliest)))
            for row in own:  # in the database, or earlier in the spool: not again
                key = (row.get("timestamp"), row["type_name"], row["data"])
                if key not in there:
                    there.add(key)
                    kept.add(id(row))
        return [row for row in rows if id(row) in kept]  # in the spool's order

    def _log_unreachable(self, what: str, sender_id: Text, error: Exception) -> None:
        logger.error("Tracker store database unreachable, could not %s conversation %s; "
                     "carrying on from memory and the spool until it is back: %s",
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


def _deserialised(rows: Iterable[Any]) -> List[Event]:
    return [Event.from_parameters(fast_json.loads(row.data)) for row in rows]
