"""runtime/heap.py: what is alive when the model has loaded is frozen out of the garbage
collector's reach; what comes later is collected as before."""
from __future__ import annotations

import gc
import weakref

import pytest

from runtime import heap


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def tracked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_objects_alive_at_freeze_are_no_longer_walked(unfrozen):
    model = [[n] for n in range(1000)]  # stands in for the loaded model
    assert tracked(model)
    assert heap.freeze() >= 1000
    assert not tracked(model)
    later = [[n] for n in range(10)]
    assert tracked(later)


def test_garbage_made_before_the_freeze_is_collected_not_frozen(unfrozen):
    class Cycle:
        pass

    collected = []
    cycle = Cycle()
    cycle.me = cycle
    weakref.finalize(cycle, collected.append, True)
    del cycle
    heap.freeze()
    assert collected == [True]
