"""Which language to answer a message in, among those the safety net reads.

Lingua (lingua-language-detector), restricted to the safety net's languages, with its
models loaded at start-up; chosen by measurement against langdetect (README "Safety
net"). Short or mixed messages stay English unless the guess is clear: telling an
English visitor "I only speak English" in French would be worse than the reverse, and the
flags themselves are found by every language's patterns whatever the guess.
"""
from __future__ import annotations

import re
from typing import List, Sequence

from lingua import IsoCode639_1, LanguageDetectorBuilder

MIN_WORDS = 2  # "si", "no", "merci": too short to tell
MIN_CONFIDENCE = 0.5
# Two languages this close in confidence are both read (the trigram models tell French
# from Spanish less surely on short messages).
CLOSE_CALL = 0.3
_WORD = re.compile(r"[^\W\d_]{2,}")


class LanguageGuess:
    def __init__(self, languages: Sequence[str], low_accuracy: bool = True) -> None:
        import wordfreq

        codes = [IsoCode639_1.from_str(code) for code in languages]
        builder = LanguageDetectorBuilder.from_iso_codes_639_1(*codes)
        if low_accuracy:
            # Trigram models only: about 10 MB per process instead of 130 MB (the
            # benchmark's 1 GB per process). Measured (scripts/measure_languages.py): no
            # English text called foreign either way; French and Spanish answered in
            # their language 83/85 against 84/85. The flags do not depend on the guess:
            # every language's patterns read every message.
            builder = builder.with_low_accuracy_mode()
        self.detector = builder.with_preloaded_language_models().build()
        # Words of the other languages that are not English words: a message with none
        # of them (and no accented letter) is English without asking Lingua.
        english = set(wordfreq.top_n_list("en", 50000))
        self.foreign = frozenset(w for code in languages if code != "en"
                                 for w in wordfreq.top_n_list(code, 20000)
                                 if w not in english and w.isalpha())

    def __call__(self, text: str) -> str:
        return self.guesses(text)[0]

    def guesses(self, text: str) -> List[str]:
        """The language to answer in first, then any other language the message may
        equally be in ("tengo cáncer de colon": Spanish or French, nearly even): the
        safety net reads it with the patterns of each."""
        words = [w.lower() for w in _WORD.findall(text)]
        if len(words) < MIN_WORDS:
            return ["en"]
        if text.isascii() and not any(w in self.foreign for w in words):
            return ["en"]
        values = self.detector.compute_language_confidence_values(text)
        if not values:
            return ["en"]
        best = values[0]
        code = best.language.iso_code_639_1.name.lower()
        if code == "en" or best.value < MIN_CONFIDENCE:
            return ["en"]
        close = [v.language.iso_code_639_1.name.lower() for v in values[1:]
                 if best.value - v.value <= CLOSE_CALL]
        return [code, *(c for c in close if c != "en")]
