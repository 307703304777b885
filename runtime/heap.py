"""Python's cyclic garbage collector, told that the loaded model is there to stay.

A loaded model is millions of Python objects (spaCy's vocabulary and lookups, the rules,
the domain, the featurizers' vocabularies) that live as long as the process. Every full
collection walks all of them: under load, one such pause took 0.5 s, and collections
were 3% of the Rasa process's CPU (gc callbacks, README "Benchmark"). `freeze()` moves
every object alive at that moment into the collector's permanent generation, which it
never walks again (`gc.freeze`, Python 3.7+). The action guard calls it once Rasa has
loaded its model (Sanic's after_server_start); objects made later are collected as
before.
"""
from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def freeze() -> int:
    """Collect what is garbage now, then freeze the rest; returns how many objects were
    frozen in all."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("Froze %d objects (the loaded model) out of the garbage collector's reach",
                frozen)
    return frozen
