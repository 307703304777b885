"""One spaCy pipeline per process for everything that reads lemmas: the safety net
(components/red_flags.py) and Presidio's PII analyser (privacy/pii.py).

Loaded without its vocab data (strings and word vectors, which neither reads; the
lemmatizer keeps its own tables): a second copy cost every Rasa process about 16 MB,
against make bench's memory target.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Union

import spacy
from spacy.language import Language


def shared_pipeline(path: Union[str, Path]) -> Language:
    return _load(str(Path(path).resolve()))


@lru_cache(maxsize=2)
def _load(path: str) -> Language:
    return spacy.load(path, exclude=["vocab", "senter", "parser", "ner"])
