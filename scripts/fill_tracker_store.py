"""Fill a SQLite tracker store with copies of recorded conversations, to time `make report`
(`insert_copies` also fills the benchmark's store, scripts/bench.py).

Every conversation in SOURCE (e.g. test-output/report/tracker.db, which
tests/test_report.py records through the real assistant) is copied, round robin, under
new random sender ids until TARGET holds N conversations; each copy starts at a random
moment of the last DAYS days and keeps the original spacing between its events.
Usage: python scripts/fill_tracker_store.py SOURCE TARGET [--conversations 10000]
                                            [--days 30] [--seed 0]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

Event = Tuple[str, float, str, str, Dict]  # type_name, timestamp, intent, action, data
COLUMNS = "sender_id, type_name, timestamp, intent_name, action_name, data"
BATCH_CONVERSATIONS = 500


def recorded(source: sqlite3.Connection, sender_id: Optional[str] = None) -> List[List[Event]]:
    """The conversations stored in `source` (only `sender_id`'s, if given)."""
    where, args = (" WHERE sender_id = ?", (sender_id,)) if sender_id else ("", ())
    conversations: Dict[str, List[Event]] = {}
    for sender, *event in source.execute(f"SELECT {COLUMNS} FROM events{where} ORDER BY id",
                                         args):
        type_name, timestamp, intent, action, data = event
        conversations.setdefault(sender, []).append(
            (type_name, timestamp, intent, action, json.loads(data)))
    return list(conversations.values())


def copy_schema(source: sqlite3.Connection, target: sqlite3.Connection) -> None:
    """The events table and its indexes exactly as Rasa created them."""
    for (sql,) in source.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'events' "
                                 "AND sql IS NOT NULL ORDER BY type DESC"):
        target.execute(sql)


def shifted(events: List[Event], sender: str, start: float) -> List[tuple]:
    offset = start - events[0][1]
    rows = []
    for type_name, timestamp, intent, action, data in events:
        moved = timestamp + offset
        rows.append((sender, type_name, moved, intent, action,
                     json.dumps({**data, "timestamp": moved})))
    return rows


def fill(source_path: Path, target_path: Path, conversations: int, days: int,
         seed: int) -> int:
    rng = random.Random(seed)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    templates = recorded(source)
    if not templates:
        raise SystemExit(f"error: no conversations in {source_path}")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    target_path.unlink(missing_ok=True)
    target = sqlite3.connect(target_path)
    copy_schema(source, target)
    # Local midnight of the first day: the report's --days counts local calendar days.
    first = time.mktime((dt.date.today() - dt.timedelta(days=days - 1)).timetuple())
    inserted = insert_copies(target, templates, conversations, first, time.time(), rng)
    target.commit()
    return inserted


def insert_copies(target: sqlite3.Connection, templates: List[List[Event]],
                  conversations: int, earliest: float, latest: float,
                  rng: random.Random) -> int:
    """Insert `conversations` copies of `templates` (round robin) under new random sender
    ids, each starting at a random moment that lets it end by `latest`, and keeping the
    spacing of its events. Returns the number of events inserted (not committed)."""
    inserted = 0
    for batch_start in range(0, conversations, BATCH_CONVERSATIONS):
        rows: List[tuple] = []
        for n in range(batch_start, min(conversations, batch_start + BATCH_CONVERSATIONS)):
            events = templates[n % len(templates)]
            length = events[-1][1] - events[0][1]
            start = rng.uniform(earliest, latest - length)
            rows += shifted(events, f"{rng.getrandbits(64):016x}", start)
        target.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows)
        inserted += len(rows)
    return inserted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    events = fill(args.source, args.target, args.conversations, args.days, args.seed)
    print(f"{args.target}: {args.conversations:,} conversations, {events:,} events "
          f"({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
