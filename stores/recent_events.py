"""The part of a conversation that `ClinicTrackerStore.retrieve` hands to Rasa.

`RecentEvents` holds, for one conversation, what decides that part: the last `size`
events of the current session (the tail) and, from the events before the tail, the
latest value of each slot since the last restart. `events()` gives the window: the tail
from its first `action_listen` on (a turn boundary), preceded by the latest slot values
set before that point. The store builds it from the database (`from_rows`) and then keeps
it up to date in memory as it writes new events (`add`), so the next message of the
conversation needs no query beyond "has anything been written since?".

It follows the database's own rules exactly (tests/test_tracker_store.py compares the
two on random conversations): the session is every event stamped at or after the latest
`session_started` (as in Rasa's SQLTrackerStore), events are in id order, and a slot is
a `slot` event's `name`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, Event, Restarted, SessionStarted, SlotSet


def is_listen(event: Event) -> bool:
    return (event.type_name == ActionExecuted.type_name
            and getattr(event, "action_name", None) == ACTION_LISTEN_NAME)


@dataclass
class RecentEvents:
    size: int
    newest_id: Optional[int] = None  # the conversation's newest stored event, any session
    session_start: Optional[float] = None  # timestamp of the latest `session_started`
    # Before the tail: the latest SlotSet of each slot since the last restart, in the
    # order they were set.
    slots: Dict[str, Event] = field(default_factory=dict)
    tail: List[Event] = field(default_factory=list)
    overflowed: bool = False  # the session may hold events before the tail

    @classmethod
    def from_rows(cls, size: int, newest_id: Optional[int], session_start: Optional[float],
                  tail: Iterable[Event], slots: Iterable[Event]) -> "RecentEvents":
        """From the database: the session's last `size` events, oldest first, and the
        latest SlotSet of each slot before them since the last restart, oldest first."""
        tail = list(tail)
        return cls(size, newest_id, session_start, {event.key: event for event in slots},
                   tail, overflowed=len(tail) >= size)

    def copy(self) -> "RecentEvents":
        return RecentEvents(self.size, self.newest_id, self.session_start, dict(self.slots),
                            list(self.tail), self.overflowed)

    def add(self, event: Event) -> bool:
        """Account for a newly stored event. False if the window can no longer be known
        without the database (a new session while older events are out of memory)."""
        if event.type_name == SessionStarted.type_name and (
                self.session_start is None or event.timestamp > self.session_start):
            if self.overflowed:
                return False
            # The new session: whatever the tail holds from the new start time on.
            self.session_start = event.timestamp
            self.tail = [e for e in self.tail if e.timestamp >= event.timestamp]
        elif self.session_start is not None and event.timestamp < self.session_start:
            return True  # stamped before the session began: not part of it
        self.tail.append(event)
        if len(self.tail) > self.size:
            self.overflowed = True
            _fold(self.slots, [self.tail.pop(0)])
        return True

    def events(self) -> List[Event]:
        if len(self.tail) < self.size:
            return list(self.tail)
        start = next((i for i, event in enumerate(self.tail) if is_listen(event)), 0)
        slots = dict(self.slots)
        _fold(slots, self.tail[:start])
        return list(slots.values()) + self.tail[start:]


def _fold(slots: Dict[str, Event], events: Iterable[Event]) -> None:
    """Update the latest slot values with events leaving the window."""
    for event in events:
        if event.type_name == Restarted.type_name:
            slots.clear()
        elif event.type_name == SlotSet.type_name:
            slots.pop(event.key, None)  # keep the order in which they were set
            slots[event.key] = event
