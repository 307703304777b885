"""The durable spool (stores/spool.py): the file itself, then the tracker store writing
to it during an outage and back from it when the database returns or a new process
starts: nothing lost, nothing twice, in order, masked."""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest
import sqlalchemy.exc

from stores.spool import Spool, SpoolError
from tests.test_tracker_store import DOMAIN, database_down, make_store, new_conversation, \
    rows, turn


# -- the file --------------------------------------------------------------------------
def test_rows_come_back_in_order_from_a_private_file(tmp_path):
    spool = Spool(tmp_path / "spool", reserve_bytes=4096)
    spool.append([{"n": 1}, {"n": 2}])
    spool.append([{"n": 3, "text": "é \n \"quoted\""}])
    [(path, found)] = list(spool.batches())
    assert found == [{"n": 1}, {"n": 2}, {"n": 3, "text": "é \n \"quoted\""}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / "spool" / "spool.reserve").stat().st_size == 4096
    spool.done(path)
    assert not spool.pending() and list(spool.batches()) == []


def test_a_line_torn_by_a_crash_is_skipped_and_what_follows_is_kept(tmp_path):
    spool = Spool(tmp_path, reserve_bytes=0)
    spool.append([{"n": 1}])
    with open(spool.path, "ab") as handle:
        handle.write(b'\n{"n": 2, "te')  # the crash
    spool.append([{"n": 3}])
    [(_, found)] = list(spool.batches())
    assert found == [{"n": 1}, {"n": 3}]


def test_a_full_disk_gives_back_the_reserved_space_and_the_append_succeeds(tmp_path,
                                                                           monkeypatch):
    spool = Spool(tmp_path, reserve_bytes=4096)
    real_write, calls = Spool._write, []

    def write(self, data):
        calls.append(data)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, data)

    monkeypatch.setattr(Spool, "_write", write)
    spool.append([{"n": 1}])
    assert len(calls) == 2 and not spool.reserve.exists()
    assert [row for _, batch in spool.batches() for row in batch] == [{"n": 1}]


def test_a_write_that_fails_part_way_leaves_nothing_of_the_refused_turn(tmp_path,
                                                                       monkeypatch):
    """The disk fills up in the middle of the turn's rows: the rows that did reach the
    file must not be replayed, since the turn is refused."""
    spool = Spool(tmp_path, reserve_bytes=0)
    spool.append([{"n": 1}])
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 4:
            return real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(SpoolError):
        spool.append([{"n": 2}, {"n": 3}, {"n": 4}])
    monkeypatch.undo()
    spool.append([{"n": 5}])
    assert [row for _, batch in spool.batches() for row in batch] == [{"n": 1}, {"n": 5}]


def test_a_spool_that_cannot_be_written_raises(tmp_path, monkeypatch):
    spool = Spool(tmp_path, reserve_bytes=0)
    monkeypatch.setattr(Spool, "_write", lambda self, data: (_ for _ in ()).throw(
        OSError(errno.EROFS, "Read-only file system")))
    with pytest.raises(SpoolError):
        spool.append([{"n": 1}])


def test_the_files_of_processes_that_are_gone_are_read_and_of_live_ones_not(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp_path / f"spool-{gone}.jsonl").write_text('\n{"n": "gone"}')
    (tmp_path / f"spool-{os.getppid()}.jsonl").write_text('\n{"n": "alive"}')
    spool = Spool(tmp_path, reserve_bytes=0)
    assert [row for _, batch in spool.batches() for row in batch] == [{"n": "gone"}]


# -- the store with it ------------------------------------------------------------------
def user_texts(tmp_path, sender):
    return [e["text"] for e in rows(tmp_path, sender) if e["event"] == "user"]


async def test_an_outage_spools_and_a_new_process_writes_it_once_in_order(tmp_path):
    store = make_store(tmp_path)
    tracker = await new_conversation(store, "spooled")
    tracker.update_with_events(turn(1), DOMAIN)
    await store.save(tracker)
    before = len(rows(tmp_path, "spooled"))
    with database_down(store):
        during = await store.retrieve("spooled")
        during.update_with_events(turn(2), DOMAIN)
        await store.save(during)
        during.update_with_events(turn(3), DOMAIN)
        await store.save(during)
    # The process stops here, before the database came back: only the spool has them.
    assert user_texts(tmp_path, "spooled") == ["message 1"]
    spooled = [row for _, batch in store.spool.batches() for row in batch]
    assert len(spooled) == 8
    # A new process (same spool folder) writes them at start-up.
    again = make_store(tmp_path)
    assert user_texts(tmp_path, "spooled") == ["message 1", "message 2", "message 3"]
    assert len(rows(tmp_path, "spooled")) == before + 2 * 4
    assert not again.spool.pending()
    # The conversation goes on from the database.
    tracker = await again.retrieve("spooled")
    assert tracker.latest_message.text == "message 3"


async def test_a_replay_cut_short_after_its_commit_writes_nothing_twice(tmp_path):
    store = make_store(tmp_path)
    tracker = await new_conversation(store, "twice")
    await store.save(tracker)
    before = len(rows(tmp_path, "twice"))
    with database_down(store):
        tracker.update_with_events(turn(1), DOMAIN)
        await store.save(tracker)
    [(path, _)] = list(store.spool.batches())
    kept = path.read_bytes()
    make_store(tmp_path)  # writes it and removes the file...
    path.write_bytes(kept)  # ...which a crash just before the removal would have left
    make_store(tmp_path)
    assert user_texts(tmp_path, "twice") == ["message 1"]
    assert len(rows(tmp_path, "twice")) == before + 4


async def test_spooled_personal_data_is_masked(tmp_path):
    store = make_store(tmp_path)
    tracker = await new_conversation(store, "masked")
    await store.save(tracker)
    with database_down(store):
        from rasa.shared.core.events import UserUttered

        tracker.update(UserUttered("ring me on 07700 900456", {"name": "ask_phone_number",
                                                               "confidence": 1.0}))
        await store.save(tracker)
    text = "".join(path.read_text() for path in store.spool.files())
    assert "07700" not in text and "900456" not in text


async def test_when_the_spool_fails_too_the_turn_is_refused(tmp_path, monkeypatch):
    store = make_store(tmp_path)
    tracker = await new_conversation(store, "refused")
    await store.save(tracker)
    monkeypatch.setattr(Spool, "_write", lambda self, data: (_ for _ in ()).throw(
        OSError(errno.EROFS, "Read-only file system")))
    with database_down(store):
        tracker.update_with_events(turn(1), DOMAIN)
        with pytest.raises(SpoolError):
            await store.save(tracker)
    assert user_texts(tmp_path, "refused") == []


async def test_an_unwritable_sqlite_file_spools_instead(tmp_path, monkeypatch):
    """SQLite faults (read-only, full disk, -shm) surface as OperationalError on write."""
    store = make_store(tmp_path)
    tracker = await new_conversation(store, "sqlite")
    await store.save(tracker)

    def fail(*_args, **_kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(store._turn, "insert", fail)
    tracker.update_with_events(turn(1), DOMAIN)
    await store.save(tracker)  # answered; the events are in the spool
    monkeypatch.undo()
    tracker.update_with_events(turn(2), DOMAIN)
    await store.save(tracker)  # the spool first, then this turn
    assert user_texts(tmp_path, "sqlite") == ["message 1", "message 2"]
    assert not store.spool.pending()


async def test_a_conversation_mid_turn_when_another_writes_the_spool_is_not_written_twice(
        tmp_path):
    """The soak's case: the database comes back while B is mid-turn; A's save writes the
    spool (B's spooled events too), then B saves the tracker it got during the outage."""
    store = make_store(tmp_path)
    trackers = {}
    for sender in ("A", "B"):
        trackers[sender] = await new_conversation(store, sender)
        trackers[sender].update_with_events(turn(0), DOMAIN)
        await store.save(trackers[sender])
    with database_down(store):
        for n in (1, 2):
            for sender in ("A", "B"):
                tracker = await store.retrieve(sender)
                tracker.update_with_events(turn(n), DOMAIN)
                await store.save(tracker)
        b_during = await store.retrieve("B")  # B's turn 3 starts in the outage...
    a_after = await store.retrieve("A")  # ...A's turn writes the spool meanwhile
    a_after.update_with_events(turn(3), DOMAIN)
    await store.save(a_after)
    b_during.update_with_events(turn(3), DOMAIN)
    await store.save(b_during)
    for sender in ("A", "B"):
        assert user_texts(tmp_path, sender) == [f"message {n}" for n in range(4)], sender
