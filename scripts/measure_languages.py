"""Compare language guessers (with components/languages.py's English pre-check: a message
with no word of the other languages' lists and no accented letter is English) for the safety net's reply language (README "Safety net").

English texts: every NLU training and held-out example, and the English messages of the
fresh safety sets; French and Spanish: the fresh sets' French and Spanish messages. Prints,
per guesser and threshold, the share of English texts guessed as another language (the
costly error) and the share of French / Spanish texts guessed right, and the time per text.
Usage: python scripts/measure_languages.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def texts():
    from rasa.shared.nlu.training_data.loading import load_data

    english = [m.get("text") for path in [ROOT / "data" / "nlu", ROOT / "tests" / "nlu"]
               for m in load_data(str(path)).intent_examples
               if m.get("intent") != "other_language"]  # the French and Spanish examples
    english = [t for t in english if not t.startswith("/")]
    foreign = []
    fresh = ROOT / "tests" / "safety" / "fresh"
    for name, key in [("red_flags.yml", "red_flags"), ("near_misses.yml", "near_misses"),
                      ("crisis.yml", "crisis"), ("crisis.yml", "near_misses")]:
        for case in yaml.safe_load((fresh / name).read_text())[key]:
            (english.append(case["text"]) if case.get("language", "en") == "en"
             else foreign.append((case["text"], case["language"])))
    return english, foreign


def main() -> None:
    english, foreign = texts()
    print(f"{len(english)} English texts, {len(foreign)} French or Spanish")
    from components.languages import LanguageGuess

    lingua = LanguageGuess(("en", "fr", "es"), low_accuracy=False)
    lingua_low = LanguageGuess(("en", "fr", "es"), low_accuracy=True)
    import langdetect
    from langdetect import DetectorFactory

    DetectorFactory.seed = 0

    def lingua_at(threshold, detector=lingua):
        def guess(text):
            import components.languages as lang
            lang.MIN_CONFIDENCE, old = threshold, lang.MIN_CONFIDENCE
            try:
                return detector(text)
            finally:
                lang.MIN_CONFIDENCE = old
        return guess

    def langdetect_guess(text):
        try:
            best = langdetect.detect_langs(text)[0]
        except langdetect.LangDetectException:
            return "en"
        return best.lang if best.lang in ("fr", "es") and best.prob >= 0.9 else "en"

    guessers = {f"lingua >= {t}": lingua_at(t) for t in (0.4, 0.5, 0.6, 0.7)}
    guessers.update({f"lingua low accuracy >= {t}": lingua_at(t, lingua_low)
                     for t in (0.4, 0.5, 0.6)})
    guessers["langdetect (fr/es at p >= 0.9)"] = langdetect_guess
    for name, guess in guessers.items():
        start = time.perf_counter()
        wrong_en = [t for t in english if guess(t) != "en"]
        right = [t for t, lang in foreign if guess(t) == lang]
        per = (time.perf_counter() - start) / (len(english) + len(foreign)) * 1e6
        print(f"{name:32} English called foreign {len(wrong_en) / len(english):6.2%} "
              f"({len(wrong_en)}); fr/es right {len(right) / len(foreign):6.1%} "
              f"({len(right)}/{len(foreign)}); {per:.0f} us per text")
        for t in wrong_en[:4]:
            print(f"    {t[:80]!r}")


if __name__ == "__main__":
    main()
