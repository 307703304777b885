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
MIN_CONFIDENCE = 0.6
_WORD = re.compile(r"[^\W\d_]{2,}")


class LanguageGuess:
    def __init__(self, languages: Sequence[str]) -> None:
        codes = [IsoCode639_1.from_str(code) for code in languages]
        self.detector = (LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
                         .with_preloaded_language_models().build())

    def __call__(self, text: str) -> str:
        if len(_WORD.findall(text)) < MIN_WORDS:
            return "en"
        values = self.detector.compute_language_confidence_values(text)
        if not values:
            return "en"
        best = values[0]
        code = best.language.iso_code_639_1.name.lower()
        return code if code != "en" and best.value >= MIN_CONFIDENCE else "en"
