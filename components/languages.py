"""Which language to answer a message in, among those the safety net reads.

Lingua (lingua-language-detector), restricted to the safety net's languages, with its
models loaded at start-up; chosen by measurement against langdetect (README "Safety
net"). Short or mixed messages stay English unless the guess is clear: telling an
English visitor "I only speak English" in French would be worse than the reverse, and the
flags themselves are found by every language's patterns whatever the guess.
"""
from __future__ import annotations

import re
from typing import Sequence

from lingua import IsoCode639_1, LanguageDetectorBuilder

MIN_WORDS = 2  # "si", "no", "merci": too short to tell
MIN_CONFIDENCE = 0.5
_WORD = re.compile(r"[^\W\d_]{2,}")


class LanguageGuess:
    def __init__(self, languages: Sequence[str]) -> None:
        import wordfreq

        codes = [IsoCode639_1.from_str(code) for code in languages]
        self.detector = (LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                         .with_preloaded_language_models().build())
        # Words of the other languages that are not English words: a message with none
        # of them (and no accented letter) is English without asking Lingua.
        english = set(wordfreq.top_n_list("en", 50000))
        self.foreign = frozenset(w for code in languages if code != "en"
                                 for w in wordfreq.top_n_list(code, 20000)
                                 if w not in english and w.isalpha())

    def __call__(self, text: str) -> str:
        words = [w.lower() for w in _WORD.findall(text)]
        if len(words) < MIN_WORDS:
            return "en"
        if text.isascii() and not any(w in self.foreign for w in words):
            return "en"
        values = self.detector.compute_language_confidence_values(text)
        if not values:
            return "en"
        best = values[0]
        code = best.language.iso_code_639_1.name.lower()
        return code if code != "en" and best.value >= MIN_CONFIDENCE else "en"
