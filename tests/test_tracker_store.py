"""stores/tracker_store.py: recent-events window, masking, retention, write-behind."""
from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Iterator, List

import pytest
import sqlalchemy.exc
import sqlalchemy.orm
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (ActionExecuted, BotUttered, Restarted, SessionStarted,
                                     SlotSet, UserUttered)

from stores.tracker_store import ClinicTrackerStore

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))


def make_store(tmp_path: Path, **kwargs) -> ClinicTrackerStore:
    return ClinicTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "tracker.db"), **kwargs)


def turn(n: int) -> list:
    return [UserUttered(f"message {n}", {"name": "greet", "confidence": 1.0}),
            ActionExecuted("utter_greet"), BotUttered(f"reply {n}"),
            ActionExecuted("action_listen")]


def rows(tmp_path: Path, sender: str) -> List[dict]:
    with contextlib.closing(sqlite3.connect(tmp_path / "tracker.db")) as db:
        return [json.loads(data) for (data,) in db.execute(
            "select data from events where sender_id = ? order by id", (sender,))]


async def new_conversation(store: ClinicTrackerStore, sender: str):
    tracker = await store.get_or_create_tracker(sender)
    tracker.update(SessionStarted())
    tracker.update(ActionExecuted("action_listen"))
    return tracker


async def test_a_long_conversation_loads_only_recent_events_and_keeps_slots(tmp_path):
    store = make_store(tmp_path, window_events=40)
    tracker = await new_conversation(store, "long")
    tracker.update(SlotSet("exercise", "clamshell"))
    for n in range(100):
        tracker.update_with_events(turn(n), DOMAIN)
    await store.save(tracker)
    stored = len(rows(tmp_path, "long"))

    loaded = await store.retrieve("long")
    # The slot set at the start survives; the events start at a turn boundary.
    assert loaded.get_slot("exercise") == "clamshell"
    assert len(loaded.events) <= 41
    assert loaded.events[1] == ActionExecuted("action_listen")
    assert loaded.latest_message.text == "message 99"

    # Only the new events are written, after the old ones.
    loaded.update_with_events(turn(100), DOMAIN)
    await store.save(loaded)
    events = rows(tmp_path, "long")
    assert len(events) == stored + 4
    assert [e["text"] for e in events if e["event"] == "user"] == [
        f"message {n}" for n in range(101)]
    full = await store.retrieve_full_tracker("long")
    assert len(full.events) == stored + 4


async def test_a_short_conversation_is_loaded_whole(tmp_path):
    store = make_store(tmp_path, window_events=40)
    tracker = await new_conversation(store, "short")
    tracker.update_with_events(turn(1), DOMAIN)
    await store.save(tracker)
    # Exactly what Rasa's own SQL tracker store loads.
    assert list((await store.retrieve("short")).events) == list(
        (await SQLTrackerStore.retrieve(store, "short")).events)


async def test_slots_reset_by_a_restart_before_the_window_stay_reset(tmp_path):
    store = make_store(tmp_path, window_events=20)
    tracker = await new_conversation(store, "restarted")
    tracker.update(SlotSet("exercise", "clamshell"))
    tracker.update(Restarted())
    tracker.update(ActionExecuted("action_listen"))
    for n in range(10):
        tracker.update_with_events(turn(n), DOMAIN)
    await store.save(tracker)
    assert (await store.retrieve("restarted")).get_slot("exercise") is None


async def test_phone_numbers_and_emails_are_masked_in_storage_only(tmp_path):
    store = make_store(tmp_path)
    tracker = await new_conversation(store, "private")
    text = "call me on 020 7946 0999 or mail jo@example.org, pain since 2019"
    tracker.update(UserUttered(text, {"name": "book_appointment", "confidence": 0.9},
                               parse_data={"text": text}))
    await store.save(tracker)
    assert tracker.latest_message.text == text
    user = [e for e in rows(tmp_path, "private") if e["event"] == "user"][0]
    masked = "call me on [phone number] or mail [e-mail address], pain since 2019"
    assert user["text"] == masked
    assert user["parse_data"]["text"] == masked


async def test_conversations_idle_longer_than_the_retention_are_deleted(tmp_path):
    store = make_store(tmp_path, retention_days=30)
    old = store.init_tracker("old")
    for event in turn(1):
        event.timestamp = time.time() - 31 * 86400
        old.update(event)
    recent = await new_conversation(store, "recent")
    await store.save(old)
    await store.save(recent)
    assert store.purge_expired() == len(old.events)
    assert rows(tmp_path, "old") == []
    assert len(rows(tmp_path, "recent")) == len(recent.events)


async def test_retention_zero_keeps_everything(tmp_path):
    store = make_store(tmp_path, retention_days=0)
    old = store.init_tracker("old")
    for event in turn(1):
        event.timestamp = 0
        old.update(event)
    await store.save(old)
    assert store.purge_expired() == 0
    assert len(rows(tmp_path, "old")) == len(old.events)


@contextlib.contextmanager
def database_down(store: ClinicTrackerStore) -> Iterator[None]:
    """Every connection, ORM session or not, fails as to a database that is gone."""
    working = store.engine, store.sessionmaker
    gone = sqlalchemy.create_engine("sqlite:////nonexistent/directory/tracker.db")
    store.engine, store.sessionmaker = gone, sqlalchemy.orm.sessionmaker(bind=gone)
    try:
        yield
    finally:
        store.engine, store.sessionmaker = working


async def test_events_written_while_the_database_is_down_are_kept_and_written_later(
        tmp_path, caplog):
    store = make_store(tmp_path)
    tracker = await new_conversation(store, "outage")
    tracker.update_with_events(turn(1), DOMAIN)
    await store.save(tracker)
    before = len(rows(tmp_path, "outage"))

    with database_down(store):
        # The conversation goes on from memory, in the same session.
        during = await store.retrieve("outage")
        assert during.latest_message.text == "message 1"
        during.update_with_events(turn(2), DOMAIN)
        await store.save(during)
        again = await store.retrieve("outage")
        assert again is during
        again.update_with_events(turn(3), DOMAIN)
        await store.save(again)
        # A conversation the store has never seen starts afresh.
        assert await store.retrieve("someone else") is None
    assert "Tracker store database unreachable" in caplog.text
    assert len(rows(tmp_path, "outage")) == before

    after = await store.retrieve("outage")  # the database is back: flushed first
    events = rows(tmp_path, "outage")
    assert [e["text"] for e in events if e["event"] == "user"] == [
        "message 1", "message 2", "message 3"]
    assert sum(e["event"] == "session_started" for e in events) == 1
    assert len(events) == before + 8
    assert after.latest_message.text == "message 3"


SLOTS = ("exercise", "red_flag", "answers_since_feedback")


def random_turn(rng: random.Random, n: int) -> list:
    """One user turn with the events that change the window: slots, restarts, sessions."""
    events = []
    if rng.random() < 0.05:
        events += [ActionExecuted("action_session_start"), SessionStarted(),
                   ActionExecuted("action_listen")]
    events += [UserUttered(f"message {n}", {"name": "greet", "confidence": 1.0})]
    for _ in range(rng.choice((0, 0, 1, 2))):
        events.append(SlotSet(rng.choice(SLOTS), rng.randint(0, 3)))
    if rng.random() < 0.05:
        events += [Restarted()]
    events += [ActionExecuted("utter_greet"), BotUttered(f"reply {n}"),
               ActionExecuted("action_listen")]
    return events


@pytest.mark.parametrize("seed", range(12))
async def test_the_window_kept_in_memory_is_the_one_read_from_the_database(tmp_path, seed):
    """Every retrieve from memory equals a retrieve by a fresh store (which reads the
    database), over random conversations with slots, restarts and new sessions."""
    rng = random.Random(seed)
    size = rng.randint(10, 16)
    store, reader = make_store(tmp_path, window_events=size), make_store(tmp_path,
                                                                          window_events=size)
    hits = 0
    tracker = await new_conversation(store, "c")
    for n in range(60):
        for event in random_turn(rng, n):
            tracker.update(event)
        await store.save(tracker)
        hits += store._recent.get("c") is not None
        tracker = await store.retrieve("c")
        reader._recent.clear()
        expected = await reader.retrieve("c")
        assert [e.as_dict() for e in tracker.events] == [e.as_dict() for e in expected.events]
    assert hits >= 50  # the memory is used, not just re-read
