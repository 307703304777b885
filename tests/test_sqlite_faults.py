"""SQLite faults on a real filesystem, against the real servers: a database file that
cannot be written, a full disk, and no memory-mapped index that could kill Rasa.

Each turn during the fault is answered as usual (the events go to the spool), and once
the file can be written again the conversation is stored whole, in order, once.
"""
from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

import pytest
import requests

from scripts.servers import MODEL, running_assistant
from tests.test_database_faults import say

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")

TURNS = ["hi", "what is the piriformis", "how do I do a glute bridge", "thanks"]


def stored(db: Path, sender: str) -> List[dict]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("select data from events where sender_id = ? order by id",
                                  (sender,)).fetchall()
    return [json.loads(data) for (data,) in rows]


def spooled(folder: Path) -> bool:
    return any(path.stat().st_size for path in folder.glob("spool-*.jsonl"))


def assert_stored_once_in_order(db: Path, sender: str) -> None:
    events = stored(db, sender)
    assert [e["text"] for e in events if e["event"] == "user"] == TURNS
    keys = [(e["event"], e["timestamp"], e.get("name"), e.get("text")) for e in events]
    assert len(keys) == len(set(keys)), "an event was stored twice"
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """The file refuses every write, through descriptors already open too (ext4's
    immutable flag; permissions would not stop a process running as root)."""
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot make a file immutable here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextmanager
def small_disk(folder: Path, size: str = "24m") -> Iterator[Path]:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, name: str) -> Path:
    """Write until the disk is full."""
    filler = disk / name
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def test_a_read_only_database_file_is_answered_through_and_stored_after(tmp_path):
    """Also: no `-shm` file ever exists. WAL's memory-mapped index, once truncated or
    unwritable, killed Rasa with SIGBUS mid-turn; the store uses a rollback journal."""
    db, sender = tmp_path / "tracker.db", f"readonly-{uuid.uuid4().hex[:8]}"
    with running_assistant(tmp_path) as servers:
        assert "not a diagnosis" in say(servers.rasa_url, sender, TURNS[0])[0]
        with immutable(db):
            assert "piriformis" in " ".join(say(servers.rasa_url, sender, TURNS[1])).lower()
            assert "bridge" in " ".join(say(servers.rasa_url, sender, TURNS[2])).lower()
            assert spooled(tmp_path / "spool"), "the fault did not reach the store"
        assert say(servers.rasa_url, sender, TURNS[3])
        assert_stored_once_in_order(db, sender)
        assert not list(tmp_path.glob("tracker.db-shm")) and not list(tmp_path.glob("*-wal"))
        with sqlite3.connect(db) as connection:
            assert connection.execute("pragma journal_mode").fetchone()[0] == "delete"
        assert servers.processes["rasa"].poll() is None


def test_a_full_disk_is_answered_from_the_spool_reserve_then_refused_never_lost(tmp_path):
    sender = f"fulldisk-{uuid.uuid4().hex[:8]}"
    with small_disk(tmp_path / "disk") as disk:
        (tmp_path / "tracker.db").symlink_to(disk / "tracker.db")
        # The spool on the same disk: the space it reserved takes the first turn.
        with running_assistant(tmp_path, env_extra={"SPOOL_DIR": str(disk / "spool")}) \
                as servers:
            url = servers.rasa_url
            assert "not a diagnosis" in say(url, sender, TURNS[0])[0]
            fillers = [fill(disk, "filler-1")]
            assert "piriformis" in " ".join(say(url, sender, TURNS[1])).lower()
            assert spooled(disk / "spool"), "the fault did not reach the store"
            fillers.append(fill(disk, "filler-2"))  # the reserve's space, taken too
            refused = requests.post(f"{url}/webhooks/rest/webhook", timeout=30,
                                    json={"sender": sender, "message": TURNS[2]})
            assert refused.status_code == 503 and refused.json()["error"] == "not_processed"
            for filler in fillers:
                filler.unlink()
            assert "bridge" in " ".join(say(url, sender, TURNS[2])).lower()  # sent again
            assert say(url, sender, TURNS[3])
            assert_stored_once_in_order(disk / "tracker.db", sender)
            assert (disk / "spool" / "spool.reserve").stat().st_size > 0  # reserved again
            assert servers.processes["rasa"].poll() is None
