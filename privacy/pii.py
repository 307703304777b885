"""Personal data in what users type, found with Microsoft Presidio and masked.

`PiiMasker(region, public).mask(text)` replaces phone numbers, e-mail addresses, names,
street addresses, postcodes, dates of birth, NHS numbers, payment card numbers, National
Insurance numbers and social handles with "[phone number]", "[e-mail address]",
"[name]", ... (privacy/recognizers.yml `masks`). The tracker store masks every user
message with it before storing it (stores/tracker_store.py) and the staff report masks
every text it shows again (scripts/report.py).

How:
- Presidio's AnalyzerEngine runs on the project's spaCy pipeline (models/spacy/clinic_md,
  tokenizer and lemmatizer; no NER, so no en_core_web_lg) with these recognizers:
  Presidio's own PhoneRecognizer (region of the clinic), EmailRecognizer (offline
  public-suffix check, RFC 2606 example domains allowed), CreditCardRecognizer (Luhn),
  NhsRecognizer (check digit) and DateRecognizer's patterns (kept only next to
  date-of-birth words, see DateOfBirthRecognizer); and ours, whose regexes and word lists
  are data in privacy/recognizers.yml: phone-like digit runs (UK numbers that the phone
  library rejects, such as Ofcom's 07700 900xxx, numbers with dots, 7-8 local digits,
  anything of 9+ digits), numbers in words ("oh seven seven double oh ..."), "at/dot"
  e-mails, names after a self-introduction or a relation ("my husband Keith"), titles
  ("Dr Patel"), sign-offs ("- Gaz", "Regards, Jo Bloggs, ..."), "my mother is / the physio
  was Name Name", street addresses, postcodes, National Insurance numbers (2.2.33 has no
  UkNinoRecognizer) and handles (also profile URLs and Discord tags). A lower-case word
  after "im" is a name only if listed or not among wordfreq's 50,000 commonest words.
  Presidio's AnonymizerEngine replaces.
- Kept as written: button payloads ("/intent@0.9{...}", never masked), the clinic's own
  public details (its phone in any format, e-mail, booking URL, address, 999/111 as whole
  numbers only), doses and counts ("3 sets of 12", "10-15 reps", "2x10", "pain 7/10",
  "I'm 52"), other dates (appointments, injuries), "meet @ 5", and ordinary words that
  are names too ("will it hurt", "my bill").
- A prefilter (privacy/recognizers.yml `prefilter`: a digit or "@", a trigger word such
  as "name", "born", "live", "instagram", "at" with a dot, three number words in a row, a
  name cue, title or sign-off before a capitalised or listed name, "my husband" ...) must
  pass before Presidio runs (tests/test_pii.py: it lets through every example that
  Presidio masks).
- Deterministic: the same text always gives the same masked text. If masking itself
  fails, every digit and every word with an "@" is masked instead (blunt_mask).

Cost per message (scripts/pii_eval.py --bench: median over 1,000 messages of each kind,
one core of the shared development machine, several runs):
  prefilter on:  no PII 10 us; no PII but digits ("3 sets of 12") 0.3-0.4 ms;
                 PII 0.5 ms
  prefilter off: no PII 0.2-0.26 ms; no PII but digits 0.26-0.38 ms; PII 0.5 ms
Most of a Presidio run is spaCy's tokenizer and lemmatizer (~0.1 ms) and the phone
library's matcher (~0.09 ms). Building the masker (spaCy pipeline, wordfreq) takes
about 2 s once per process.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Pattern, Sequence, Set, \
    Tuple

import yaml

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILE = Path(__file__).with_name("recognizers.yml")
SPACY_MODEL = ROOT / "models" / "spacy" / "clinic_md"
LANGUAGE = "en"
FLAGS = re.IGNORECASE

# "/intent", "/intent@0.9", "/intent{"slot": "value"}": what Rasa reads as a button
# payload (rasa's YAMLStoryReader._regex_message_pattern, with an identifier as intent).
PAYLOAD = re.compile(r"\s*/[A-Za-z0-9_][\w.\-]*(?:@[0-9.]+)?(?P<json>\{.*\})?\s*", re.S)
APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})
WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")


# --- configuration ------------------------------------------------------------------

class ConfigError(ValueError):
    """privacy/recognizers.yml is not as privacy.pii expects."""


def _regex(value: Any, where: str, flags: int = FLAGS) -> Pattern:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a regex, got {value!r}")
    try:
        return re.compile(value, flags)
    except re.error as error:
        raise ConfigError(f"{where}: {error}") from error


def _words(value: Any, where: str) -> Set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of words")
    return {v.lower() for v in value}


def _fill(pattern: str, parts: Mapping[str, str]) -> str:
    """A date pattern with its {day}, {month} and {year} filled in (not str.format:
    regexes have braces of their own)."""
    for key in ("day", "month", "year"):
        pattern = pattern.replace("{" + key + "}", parts[key])
    return pattern


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


@dataclass
class Config:
    masks: Dict[str, str]
    priority: List[str]
    threshold: float
    raw: Dict[str, Any]


def load_config(path: Path = CONFIG_FILE) -> Config:
    """Read and check privacy/recognizers.yml: every regex compiles, every list is words."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    masks = raw.get("masks")
    if not isinstance(masks, dict) or not all(isinstance(v, str) for v in masks.values()):
        raise ConfigError("masks: expected entity: replacement")
    priority = list(raw.get("priority") or [])
    if sorted(priority) != sorted(masks):
        raise ConfigError("priority: must list every entity of masks once")
    prefilter = raw["prefilter"]
    for key in ("words", "at_words", "cues", "after_name"):
        _words(prefilter[key], f"prefilter.{key}")
    if not isinstance(prefilter.get("number_words_in_a_row"), int):
        raise ConfigError("prefilter.number_words_in_a_row: expected a number")
    # Check the other sections now; the recognizers compile them again as they need.
    for section in ("phone", "email", "names", "address", "date_of_birth",
                    "national_insurance", "handle"):
        for key, value in raw[section].items():
            if isinstance(value, str) and key not in ("month", "day", "year"):
                _regex(value.replace("{streets}", "x"), f"{section}.{key}")
            elif isinstance(value, list) and key not in ("patterns",):
                _words(value, f"{section}.{key}")
    for n, rx in enumerate(raw["date_of_birth"]["patterns"]):
        _regex(_fill(rx, raw["date_of_birth"]), f"date_of_birth.patterns[{n}]")
    return Config(masks=dict(masks), priority=priority,
                  threshold=float(raw.get("score_threshold", 0.4)), raw=raw)


# --- shared word knowledge ------------------------------------------------------------

@lru_cache(maxsize=None)
def _stop_words() -> frozenset:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def _zipf(word: str) -> float:
    """How common a word is (wordfreq's Zipf scale; 0 when wordfreq is missing)."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:  # pragma: no cover - wordfreq is pinned in requirements.txt
        return 0.0
    return zipf_frequency(word, LANGUAGE)


@lru_cache(maxsize=None)
def _known_words(n: int) -> frozenset:
    """wordfreq's n most common English words (empty when wordfreq is missing)."""
    try:
        from wordfreq import top_n_list
    except ImportError:  # pragma: no cover - wordfreq is pinned in requirements.txt
        return frozenset()
    return frozenset(top_n_list(LANGUAGE, n))


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


# --- recognizers ----------------------------------------------------------------------

def _presidio():
    """Presidio's analyzer classes (imported on first use: they import spaCy)."""
    import presidio_analyzer as pa
    from presidio_analyzer import predefined_recognizers as pr

    return pa, pr


def _result(pa: Any, recognizer: Any, entity: str, start: int, end: int, score: float,
            **metadata: Any) -> Any:
    return pa.RecognizerResult(
        entity_type=entity, start=start, end=end, score=score,
        analysis_explanation=pa.AnalysisExplanation(recognizer=recognizer.name,
                                                    original_score=score),
        recognition_metadata={pa.RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
                              pa.RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
                              **metadata})


def build_recognizers(config: Config, region: str) -> List[Any]:
    """Presidio's built-in recognizers and ours, configured from privacy/recognizers.yml."""
    pa, pr = _presidio()
    raw = config.raw
    stop = _stop_words()

    class Recognizer(pa.LocalRecognizer):
        """Ours: everything comes from the config, so there is nothing to load."""

        def load(self):
            pass

    class ClinicPhoneRecognizer(pr.PhoneRecognizer):
        """Presidio's: numbers the phone library finds VALID in the clinic's region."""

        def analyze(self, text, entities, nlp_artifacts=None):
            results = super().analyze(text, entities, nlp_artifacts)
            for result in results:
                result.recognition_metadata["digits"] = _digits(text[result.start:result.end])
            return results

    phone = raw["phone"]

    class PhoneLikeRecognizer(Recognizer):
        """Digit runs that are phone numbers by their digits and groups: UK numbers from
        0/+44 with 10-11 digits (the phone library rejects Ofcom's drama ranges such as
        07700 900xxx, which people also type), other +/00 numbers of 8-15 digits, local
        numbers of 7-8 digits ("946 0123", "7946-0123"), and any run of 9+ digits (a
        number the recognizers that check digits did not claim). Not dates
        (12.03.1958), ranges (1000-1500, 2019-2021) or lists of small numbers."""

        candidate = _regex(phone["candidate"], "phone.candidate")
        slashed = _regex(phone["slashed"], "phone.slashed")
        nhs_context = _regex(phone["nhs_context"], "phone.nhs_context")
        card_context = _regex(phone["card_context"], "phone.card_context")
        not_phone = _regex(phone["not_phone_context"], "phone.not_phone_context")
        date_shape = re.compile(r"[0-3]?\d[./\- ][01]?\d[./\- ](?:\d{2}|\d{4})")

        def analyze(self, text, entities, nlp_artifacts=None):
            results = []
            for match in self.slashed.finditer(text):
                results.append(_result(pa, self, "PHONE_NUMBER", match.start(), match.end(), 0.5,
                                       digits=_digits(match.group())))
            for match in self.candidate.finditer(text):
                start, end = match.span()
                while end > start and (text[end - 1] in " \t.-(" or (
                        text[end - 1] == ")" and text.count("(", start, end)
                        < text.count(")", start, end))):
                    end -= 1
                if text[start] == "(" and text.count("(", start, end) > text.count(
                        ")", start, end):
                    start += 1
                span = text[start:end]
                if not self._is_phone(span):
                    continue
                digits = _digits(span)
                before = text[max(0, start - 40):start]
                if not span.startswith(("0", "+", "(")) and self.not_phone.search(before):
                    continue  # "booking reference 48213377"
                entity = "PHONE_NUMBER"
                if self.nhs_context.search(before) and len(digits) == 10:
                    entity = "UK_NHS"
                elif self.card_context.search(before) and 12 <= len(digits) <= 19:
                    entity = "CREDIT_CARD"
                results.append(_result(pa, self, entity, start, end, 0.5, digits=digits))
            return results

        def _is_phone(self, span: str) -> bool:
            digits = _digits(span)
            groups = [g for g in re.split(r"[^\d]+", span) if g]
            international = span.startswith(("+", "00")) or span.startswith("(+")
            if international:
                return 8 <= len(digits) <= 15
            if self.date_shape.fullmatch(span.strip("()")):
                return False
            if digits.startswith("0") and 10 <= len(digits) <= 11:
                return True
            if len(digits) >= 9:
                return not all(len(g) <= 2 for g in groups)
            if len(digits) in (7, 8):
                if len(groups) == 1:
                    return True
                if len(groups) == 2 and len(groups[0]) in (3, 4) and len(groups[1]) == 4:
                    separator = span[len(groups[0]):span.index(groups[1], len(groups[0]))]
                    # 1000-1500, 2019-2021: a range, not 7946-0123.
                    if separator.strip() in ("-", "–") and int(groups[0]) < int(groups[1]):
                        return False
                    return True
            return False

    class SpokenNumberRecognizer(Recognizer):
        """Numbers read out in words: "oh seven seven double oh nine hundred one two
        three", "four one six five five five ...", mixed with digits ("07700 nine double
        oh ..."); a run of at least spoken_min_digits digits is a phone number."""

        words = {k.lower(): str(v) for k, v in phone["digit_words"].items()}
        repeats = {k.lower(): int(v) for k, v in phone["repeat_words"].items()}
        hundreds = {k.lower(): str(v) for k, v in phone["hundred_words"].items()}
        min_digits = int(phone["spoken_min_digits"])
        token = re.compile(r"[A-Za-z]+|\d+|\+")
        gap = re.compile(r"[\s,.\-/()]*")

        def analyze(self, text, entities, nlp_artifacts=None):
            results = []
            run: List[Tuple[int, int, str]] = []  # (start, end, digits) of each token
            pending = 0  # "double" / "triple" waiting for its digit
            last_end = 0

            def close():
                nonlocal run
                digits = "".join(d for _, _, d in run)
                spoken = any(not text[s:e].isdigit() for s, e, _ in run)
                if spoken and len(digits) >= self.min_digits:
                    start, end = run[0][0], run[-1][1]
                    results.append(_result(pa, self, "PHONE_NUMBER", start, end, 0.5,
                                           digits=digits))
                run = []

            for match in self.token.finditer(text):
                word = match.group().lower()
                if run and not self.gap.fullmatch(text[last_end:match.start()]):
                    close()
                    pending = 0
                if word in self.words or word.isdigit() or (word == "+" and not run):
                    if word == "+":
                        value = ""
                    else:
                        value = self.words.get(word, word)
                    value *= max(pending, 1)
                    pending = 0
                    run.append((match.start(), match.end(), value))
                elif word in self.repeats:
                    pending = self.repeats[word]
                    run.append((match.start(), match.end(), ""))
                elif word in self.hundreds and run and run[-1][2]:
                    run.append((match.start(), match.end(), self.hundreds[word]))
                else:
                    if run:
                        close()
                    pending = 0
                    last_end = match.end()
                    continue
                last_end = match.end()
            if run:
                close()
            # A trailing "double" with no digit after it is not part of the number.
            return results

    class ClinicEmailRecognizer(pr.EmailRecognizer):
        """Presidio's, with the public-suffix check done offline (tldextract's snapshot,
        never a download) and RFC 2606 example domains allowed."""

        def validate_result(self, pattern_text):
            return _known_domain(pattern_text.rsplit("@", 1)[-1], raw["email"]["reserved_tlds"])

    email = raw["email"]

    class SpokenEmailRecognizer(Recognizer):
        """E-mail addresses written around "at"/"dot": "jo at example dot com",
        "name(at)example(dot)org", "j.doe [at] mail.co.uk", "jo @ example.org"."""

        at = _regex(email["at"], "email.at")
        local = _regex(email["local"], "email.local")
        domain = _regex(email["domain"], "email.domain")
        separator = _regex(email["label_separator"], "email.label_separator")
        not_local = _words(email["not_words"], "email.not_words")

        def analyze(self, text, entities, nlp_artifacts=None):
            results = []
            for at in self.at.finditer(text):
                local = self.local.search(text, max(0, at.start() - 64), at.start())
                domain = self.domain.match(text, at.end())
                if not local or not domain or local.end() != at.start():
                    continue
                end = self._domain_end(text, domain)
                if end is None:
                    continue
                if local.group().lower() in self.not_local or not self._plausible(
                        text, local.group(), at, domain, end):
                    continue
                results.append(_result(pa, self, "EMAIL_ADDRESS", local.start(), end, 0.6))
            return results

        def _plausible(self, text: str, local: str, at: Any, domain: Any, end: int) -> bool:
            """An "at" between words and a written domain ("read more at nhs.uk") is a
            website, not an address, unless the part before it looks like a mailbox."""
            if text[end:end + 1] == "/" or domain.group().lower().startswith("www"):
                return False
            if at.group().strip() != "at" or re.search(r"\bdot\b|\(dot\)|\[dot\]|\{dot\}",
                                                       domain.group(), re.I):
                return True
            lower = local.lower()
            return bool(re.search(r"[._+\-\d]", local)) or _zipf(lower) < 3.5 or \
                lower in NameRecognizer.first_names or lower in NameRecognizer.surnames

        def _domain_end(self, text: str, domain: Any) -> Optional[int]:
            """End of the domain at its last label that is a known suffix, or None."""
            labels, cuts = [], []
            position = domain.start()
            for separator in self.separator.finditer(text, domain.start(), domain.end()):
                labels.append(text[position:separator.start()])
                cuts.append(separator.start())
                position = separator.end()
            labels.append(text[position:domain.end()])
            cuts.append(domain.end())
            if labels[0].lower() in self.not_local:
                return None
            for n in range(len(labels), 1, -1):
                if _known_domain(".".join(labels[:n]), email["reserved_tlds"]):
                    return cuts[n - 1]
            return None

    names = raw["names"]

    class NameRecognizer(Recognizer):
        """Names people give: after a self-introduction ("my name is", "I'm", "this is",
        "call me", "name's"), after a relation ("my husband Keith"), after a title ("Dr
        Patel"), "Sarah here" at the start and a sign-off ("thanks, Sarah") at the end.
        A strong cue takes what follows in any letter case; the others only what looks
        like a name (see privacy/recognizers.yml `names`)."""

        first_names = _words(names["first_names"], "names.first_names")
        surnames = _words(names["surnames"], "names.surnames")
        ambiguous = _words(names["ambiguous_names"], "names.ambiguous_names")
        not_names = _words(names["not_names"], "names.not_names")
        titles = _words(names["titles"], "names.titles")
        common = float(names["common_zipf"])
        pair_common = float(names["pair_zipf"])
        max_words = int(names["max_words"])

        def _cues(key: str) -> Pattern:  # noqa: N805 - a helper run in the class body
            return _regex(r"(?<![\w'])(?:" + "|".join(names[key]) + r")(?![\w'])",
                          f"names.{key}")

        strong = _cues("strong_cues")
        weak = _cues("weak_cues")
        capital = _cues("capital_cues")
        listed_only = _cues("listed_only_cues")
        relation = _regex(r"(?<![\w'])my\s+(?:" + _alternatives(names["relations"]) +
                          r")(?:" + names["relation_bridge"] + r")", "names.relations")
        pair = _regex(r"(?<![\w'])(?:my\s+(?:" + _alternatives(names["relations"]) +
                      r")\s+(?:is|was)\s+|(?:" + _alternatives(names["roles"]) + r")" +
                      names["role_bridge"] + r")", "names.roles")
        title = re.compile(r"(?<![\w'])(?:" + _alternatives(
            w for w in names["titles"] if w != "miss") + r"|(?-i:Miss))\.?\s+", FLAGS)
        name_here = _regex(names["name_here"], "names.name_here")
        sign_off = _regex(names["sign_off"], "names.sign_off")
        sign_off_inline = _regex(names["sign_off_inline"], "names.sign_off_inline")
        dash_sign_off = _regex(names["dash_sign_off"], "names.dash_sign_off")
        addressee = _regex(names["addressee"], "names.addressee")
        streets = _words(raw["address"]["strong_streets"] + raw["address"]["weak_streets"],
                         "address.streets")
        known = _known_words(int(names["known_words"]))
        endings = tuple(_words(names["not_name_endings"], "names.not_name_endings"))
        followers = _regex(names["rare_name_followers"], "names.rare_name_followers")
        listed_followers = _regex(names["listed_only_followers"],
                                  "names.listed_only_followers")

        def analyze(self, text, entities, nlp_artifacts=None):
            text = text.translate(APOSTROPHES)  # same length: offsets hold
            spans: List[Tuple[int, int]] = []
            for cue in self.strong.finditer(text):
                spans += self._name_after(text, cue.end(), "strong")
            for cue in self.weak.finditer(text):
                spans += self._name_after(text, cue.end(), "weak")
            for cue in self.capital.finditer(text):
                spans += self._name_after(text, cue.end(), "capital")
            for cue in self.listed_only.finditer(text):
                spans += self._name_after(text, cue.end(), "listed")
            for cue in self.relation.finditer(text):
                spans += self._name_after(text, cue.end(), "relation")
            for cue in self.pair.finditer(text):
                spans += self._name_after(text, cue.end(), "pair")
            for cue in self.title.finditer(text):
                found = self._name_after(text, cue.end(), "title")
                spans += [(cue.start(), end) for _, end in found]
            for pattern in (self.name_here, self.sign_off):
                match = pattern.search(text)
                if match and self._signed(match.group("name")):
                    spans.append(match.span("name"))
            match = self.dash_sign_off.search(text)
            if match and self._signed(match.group("name"), dash=True):
                spans.append(match.span("name"))
            for pattern in (self.sign_off_inline, self.addressee):
                for match in pattern.finditer(text):
                    first, last = match.group("name").split()
                    if self._looks_like_name(first, "pair") and self._continues(last) and \
                            last.lower() not in self.streets:  # "to Hyde Park, 2 ..."
                        spans.append(match.span("name"))
            return [_result(pa, self, "PERSON", start, end, 0.6) for start, end in spans]

        def _signed(self, name: str, dash: bool = False) -> bool:
            """The name of a sign-off: "Sarah", "Jo Bloggs", "J. Thompson"."""
            words = name.split()
            if re.fullmatch(r"[A-Z]\.\S*", words[0]):  # an initial: "J. Thompson"
                rest = re.sub(r"^[A-Z]\.\s*", "", name).split()
                return bool(rest) and self._looks_like_name(rest[0], "title")
            if dash and words[0].lower() in self.ambiguous and len(words) == 1:
                return False  # "... - April"
            return self._looks_like_name(words[0], "weak")

        def _rare_lower(self, lower: str) -> bool:
            """A lower-case word that is no known English word: "im tasha"."""
            return len(lower) >= 3 and lower.isalpha() and lower not in self.known and \
                not lower.endswith(self.endings)

        def _looks_like_name(self, word: str, cue: str) -> bool:
            lower = word.lower().strip("'-")
            capital = word[:1].isupper()
            if lower in self.ambiguous and (capital or cue == "strong"):
                return True  # "I'm Will", "my name is may" ("will", "may": stop words)
            if not lower or lower in stop or lower in self.not_names:
                return False
            listed = lower in self.first_names or lower in self.surnames
            if cue == "strong":
                return True
            if cue in ("title", "capital"):
                return capital or (listed and lower not in self.ambiguous)
            if lower in self.ambiguous:
                return capital
            if listed and cue != "title":
                return lower in self.first_names
            if cue == "weak" and not capital:
                return self._rare_lower(lower)
            return capital and _zipf(lower) < (self.pair_common if cue == "pair" else self.common)

        def _name_after(self, text: str, position: int, cue: str) -> List[Tuple[int, int]]:
            words: List[Tuple[int, int]] = []
            for n in range(self.max_words):
                gap = re.match(r"[ \t]*:?[ \t]*" if n == 0 else r"[ \t]+", text[position:])
                if gap is None:
                    break
                match = WORD.match(text, position + gap.end())
                if not match:
                    break
                word = match.group()
                end = match.end()
                if word.lower().endswith("'s"):  # "Tom's knee"
                    word, end = word[:-2], end - 2
                word = word.rstrip("'-")
                end = match.start() + len(word)
                if n == 0:
                    if not self._looks_like_name(word, cue):
                        return []
                    if cue == "weak" and not self._listed(word) and not self.followers.match(
                            text[end:]):
                        return []
                    if cue == "listed" and not self._listed(word) and not \
                            self.listed_followers.match(text[end:]):
                        return []
                    if cue == "pair" and not (word[0].isupper() and (self._listed(word) or re.match(
                            r"[ \t]+(?-i:[A-Z])[a-z'\-]+", text[end:]))):
                        return []
                elif not self._continues(word):
                    break
                words.append((match.start(), end))
                position = end
                if end != match.end():  # a possessive ends the name
                    break
            if cue == "pair" and len(words) == 1 and not self._listed(
                    text[words[0][0]:words[0][1]]):
                return []  # "my son is Autistic"
            return [(words[0][0], words[-1][1])] if words else []

        def _listed(self, word: str) -> bool:
            lower = word.lower()
            return lower in self.first_names and (lower not in self.ambiguous
                                                  or word[0].isupper())

        def _continues(self, word: str) -> bool:
            """A surname (or second given name) after the first name."""
            lower = word.lower()
            if not lower or lower in stop or lower in self.not_names:
                return False
            if lower in self.surnames or lower in self.first_names:
                return True
            if word[0].isupper():
                return _zipf(lower) < 5.0
            return _zipf(lower) < 3.0

    address = raw["address"]

    class AddressRecognizer(Recognizer):
        """Street addresses: "14 Acacia Avenue", "Flat 3, 27 Kings Road, Leeds", and
        a street after "I live on", "my address is"; not "20 minutes in the park"."""

        strong_streets = _words(address["strong_streets"], "address.strong_streets")
        weak_streets = _words(address["weak_streets"], "address.weak_streets")
        not_words = _words(address["not_street_words"], "address.not_street_words")
        streets = _alternatives(strong_streets | weak_streets)
        numbered = _regex(address["numbered"].replace("{streets}", streets), "address.numbered")
        cued = _regex(address["cued"].replace("{streets}", streets), "address.cued")
        address_cue = _regex(address["address_cue"], "address.address_cue")

        def analyze(self, text, entities, nlp_artifacts=None):
            results = []
            for pattern, start_group in ((self.numbered, 0), (self.cued, "words")):
                for match in pattern.finditer(text):
                    cued = pattern is self.cued or bool(self.address_cue.search(
                        text[max(0, match.start() - 40):match.start()]))
                    if not self._is_street(match, cued):
                        continue
                    end = match.end("street")
                    if text[end:end + 1] == ".":
                        end += 1
                    town = match.group("town")
                    if town and town.strip(", ")[0].isupper() and \
                            town.strip(", ").lower() not in stop:
                        end = match.end("town")
                    results.append(_result(pa, self, "STREET_ADDRESS",
                                           match.start(start_group), end, 0.6))
            return results

        def _is_street(self, match: Any, cued: bool) -> bool:
            words = [w.strip(".'’-") for w in match.group("words").split()]
            street = match.group("street")
            if len(words) == 1 and words[0] == "The":  # "3 The Crescent"
                return street[0].isupper()
            if not words or any(not w or w.lower() in self.not_words or w.lower() in stop
                                for w in words):
                return False
            if street.lower() in self.strong_streets or cued:
                return True
            return street[0].isupper() and all(w[0].isupper() for w in words)

    class PostcodeRecognizer(Recognizer):
        """UK postcodes ("SW1A 1AA", "m1 1ae"), and an outward code alone after
        "postcode"; never "L4-L5", "S1", "T-12"."""

        full = _regex(address["postcode"], "address.postcode")
        outward = _regex(address["outward_code"], "address.outward_code")

        def analyze(self, text, entities, nlp_artifacts=None):
            results = [_result(pa, self, "UK_POSTCODE", m.start(), m.end(), 0.6)
                       for m in self.full.finditer(text)]
            results += [_result(pa, self, "UK_POSTCODE", m.start("code"), m.end("code"), 0.6)
                        for m in self.outward.finditer(text)]
            return results

    dob = raw["date_of_birth"]

    class DateOfBirthRecognizer(pr.DateRecognizer):
        """Presidio's DateRecognizer patterns (less its month/year-only ones: "pain 7/10"
        is not a date) and dates in words, kept only next to a date-of-birth word: "born
        12/03/1958", "dob 3rd March 1961", "my birthday is 14 july 1990", "born in 1958".
        Other dates (appointments, injuries) stay as written."""

        parts = {k: dob[k] for k in ("day", "month", "year")}
        before = _regex(dob["context_before"], "date_of_birth.context_before")
        after = _regex(dob["context_after"], "date_of_birth.context_after")
        year_context = _regex(dob["year_context"], "date_of_birth.year_context")
        glue = _words(dob["glue_words"], "date_of_birth.glue_words")
        max_other = int(dob["max_other_words"])
        max_gap = int(dob["max_gap_chars"])
        year_only = re.compile(r"(?:19|20)\d{2}")

        def __init__(self):
            patterns = [p for p in pr.DateRecognizer.PATTERNS if p.score >= 0.5]
            patterns += [pa.Pattern(f"date in words {n}", "(?i)" + _fill(rx, self.parts), 0.6)
                         for n, rx in enumerate(dob["patterns"])]
            super().__init__(patterns=patterns, supported_entity="DATE_OF_BIRTH")
            self.context = []  # scored here, not by Presidio's lemma context ("born": "bear")

        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
            if not self.before.search(text):  # no date-of-birth word: no pattern to run
                return []
            dates = super().analyze(text, entities, nlp_artifacts, regex_flags)
            return [d for d in dates if self._of_birth(text, d.start, d.end)]

        def _of_birth(self, text: str, start: int, end: int) -> bool:
            if self.year_only.fullmatch(text[start:end]):
                return bool(self.year_context.search(text[max(0, start - 40):start]))
            if self.after.match(text[end:end + 40]):
                return True
            window = text[max(0, start - self.max_gap):start]
            cues = list(self.before.finditer(window))
            if not cues:
                return False
            between = window[cues[-1].end():]
            if re.search(r"[.;!?]\s", between):
                return False
            others = [w for w in re.findall(r"[\w']+", between.lower()) if w not in self.glue]
            return len(others) <= self.max_other

    nino = raw["national_insurance"]

    class NationalInsuranceRecognizer(Recognizer):
        """UK National Insurance numbers: "QQ 12 34 56 C"; without the final letter only
        after "national insurance", "NI number", "NINO"."""

        full = _regex(nino["full"], "national_insurance.full")
        bare = _regex(nino["bare"], "national_insurance.bare")
        cue = _regex(nino["context"], "national_insurance.context")

        def analyze(self, text, entities, nlp_artifacts=None):
            results = [_result(pa, self, "UK_NINO", m.start(), m.end(), 0.6)
                       for m in self.full.finditer(text) if m.group()[:2].lower() not in stop]
            for match in self.bare.finditer(text):
                before = text[max(0, match.start() - 40):match.start()]
                if match.group()[:2].lower() not in stop and self.cue.search(before):
                    results.append(_result(pa, self, "UK_NINO", match.start(), match.end(), 0.6))
            return results

    handle = raw["handle"]

    class HandleRecognizer(Recognizer):
        """Social handles: "@jo_bloggs", "my insta is jo.bloggs88", a profile's URL
        ("strava.com/athletes/jo_runs"), a Discord tag ("jo_b#1234"); not "meet @ 5",
        "@7pm", nor the "@0.9" of a payload."""

        at = _regex(handle["at"], "handle.at")
        not_handle = _regex(handle["not_handle"], "handle.not_handle")
        cued = _regex(handle["cued"], "handle.cued")
        profile_url = _regex(handle["profile_url"], "handle.profile_url")
        not_profile = _words(handle["not_profile"], "handle.not_profile")
        tag = _regex(handle["tag"], "handle.tag")
        tag_context = _regex(handle["tag_context"], "handle.tag_context")

        @staticmethod
        def _common(name: str) -> bool:
            """"@home", "@the gym": a common word, not a handle (a listed name is one)."""
            lower = name.lower()
            if lower in stop:
                return True
            if lower in NameRecognizer.first_names or lower in NameRecognizer.surnames:
                return False
            return name.isalpha() and _zipf(lower) >= 4.0

        def analyze(self, text, entities, nlp_artifacts=None):
            results = []
            for match in self.at.finditer(text):
                name = match.group("handle")
                if self.not_handle.match(name) or not re.search(r"[a-z]", name, re.I) \
                        or self._common(name):
                    continue
                results.append(_result(pa, self, "SOCIAL_HANDLE", match.start(), match.end(),
                                       0.6))
            for match in self.cued.finditer(text):
                name = match.group("handle").rstrip(".")
                if not re.search(r"[a-z]", name, re.I) or name.lower() in stop:
                    continue
                explicit = re.search(r"handle|user\s*name|account|@", match.group(), re.I)
                if not (explicit or re.search(r"[_.\d]", name)):
                    continue
                start = match.start("handle")
                if text[start - 1:start] == "@":
                    start -= 1
                results.append(_result(pa, self, "SOCIAL_HANDLE", start,
                                       match.start("handle") + len(name), 0.6))
            for match in self.profile_url.finditer(text):
                if match.group("handle").lower().strip(".-") not in self.not_profile:
                    end = match.end() - (1 if match.group().endswith(".") else 0)
                    results.append(_result(pa, self, "SOCIAL_HANDLE", match.start(), end, 0.6))
            for match in self.tag.finditer(text):
                name = match.group("handle")
                if not re.search(r"[a-z]", name, re.I):
                    continue  # "room 12#3456"
                if re.search(r"[_.\d]", name) or self.tag_context.search(
                        text[max(0, match.start() - 40):match.start()]):
                    results.append(_result(pa, self, "SOCIAL_HANDLE", match.start(),
                                           match.end(), 0.6))
            return results

    return [
        ClinicPhoneRecognizer(supported_regions=(region,)),
        PhoneLikeRecognizer(supported_entities=["PHONE_NUMBER", "UK_NHS", "CREDIT_CARD"]),
        SpokenNumberRecognizer(supported_entities=["PHONE_NUMBER"]),
        ClinicEmailRecognizer(),
        SpokenEmailRecognizer(supported_entities=["EMAIL_ADDRESS"]),
        pr.CreditCardRecognizer(),
        pr.NhsRecognizer(),
        NationalInsuranceRecognizer(supported_entities=["UK_NINO"]),
        DateOfBirthRecognizer(),
        NameRecognizer(supported_entities=["PERSON"]),
        AddressRecognizer(supported_entities=["STREET_ADDRESS"]),
        PostcodeRecognizer(supported_entities=["UK_POSTCODE"]),
        HandleRecognizer(supported_entities=["SOCIAL_HANDLE"]),
    ]


@lru_cache(maxsize=None)
def _suffix_extractor() -> Any:
    """tldextract on its bundled public-suffix snapshot: no download, no cache file."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _known_domain(domain: str, reserved: Sequence[str]) -> bool:
    labels = [label for label in domain.lower().split(".") if label]
    if len(labels) < 2 or not labels[-1].isalpha():
        return False
    if labels[-1] in reserved:
        return True
    return bool(_suffix_extractor()("x@" + ".".join(labels)).suffix)


@lru_cache(maxsize=None)
def nlp_engine(model: str = str(SPACY_MODEL)) -> Any:
    """Presidio's SpacyNlpEngine on the project's pipeline, the one the safety net uses
    (components/spacy_pipeline.py): Presidio reads tokens and lemmas, never the word
    vectors, and its own loading would cost every Rasa process about 150 MB."""
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    from components.spacy_pipeline import shared_pipeline

    class _Engine(SpacyNlpEngine):
        def __init__(self) -> None:  # SpacyNlpEngine's loads the whole model
            self.nlp = {LANGUAGE: shared_pipeline(model)}

    return _Engine()


# --- the clinic's own details -----------------------------------------------------------

class PublicDetails:
    """What the clinic publishes (data/clinic.yml) and users may quote back: never masked."""

    KEYS = ("email", "booking_url", "address", "emergency_number", "non_emergency_line",
            "crisis_line")

    def __init__(self, public: Optional[Mapping[str, Any]]) -> None:
        public = dict(public or {})
        self.phones = self._phone_digits(public.get("phone"))
        literals: List[str] = []
        for key in self.KEYS:
            value = str(public.get(key) or "").strip()
            if not value:
                continue
            value = re.sub(r"\s*\(.*\)$", "", value)  # "116 123 (Samaritans)"
            literals.append(value)
            if key == "address":  # "12 Mill Lane", not the town alone
                literals += [part.strip() for part in value.split(",")
                             if re.search(r"\d", part)]
            if key == "booking_url":
                bare = re.sub(r"^https?://", "", value)
                literals += [bare, bare.split("/")[0]]
            if key == "email":
                literals.append(value.split("@")[-1])
        self.literals = sorted(set(literals), key=lambda v: (-len(v), v))
        self.pattern = re.compile(
            r"(?<![\w@.])(?:" + "|".join(map(self._literal, self.literals)) +
            r")(?![\w@]|\.\w)", FLAGS) if self.literals else None

    @staticmethod
    def _literal(value: str) -> str:
        """A regex for one published detail; a number must stand whole: "999" is not the
        end of "07700 900 999", nor "111" of "0161 111 2222"."""
        body = r"\s+".join(map(re.escape, value.split()))
        if value[0].isdigit():
            body = r"(?<!\d[ \t().\-/])" + body
        if value[-1].isdigit():
            body += r"(?![ \t().\-/]?\d)"
        return body

    @staticmethod
    def _phone_digits(phone: Any) -> Set[str]:
        """The clinic's number as digits, national (2079460123) and local (79460123)."""
        digits = _digits(str(phone or ""))
        if not digits:
            return set()
        try:
            import phonenumbers

            number = phonenumbers.parse(str(phone), None)
            national = str(number.national_number)
        except Exception:  # noqa: BLE001 - an unparsable number: its digits as they are
            national = digits.lstrip("0")
        return {national, national[-8:]} if len(national) > 8 else {national}

    def spans(self, text: str) -> List[Tuple[int, int]]:
        return [m.span() for m in self.pattern.finditer(text)] if self.pattern else []

    def is_clinic_phone(self, digits: str) -> bool:
        if not digits or not self.phones:
            return False
        for prefix in ("00", "+"):
            digits = digits[len(prefix):] if digits.startswith(prefix) else digits
        candidates = {digits, digits.lstrip("0")}
        for cc in ("44",):  # a "+44 (0)20 ..." number has its 0 after the country code
            if digits.startswith(cc) and len(digits) > 10:
                candidates |= {digits[len(cc):], digits[len(cc):].lstrip("0")}
        return bool(candidates & self.phones)


# --- the masker -------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float


class PiiMasker:
    """mask(text) -> the text with its personal data replaced (see the module docstring)."""

    def __init__(self, region: Optional[str] = "GB", public: Optional[Mapping[str, Any]] = None,
                 prefilter: bool = True, config: Optional[Config] = None) -> None:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_anonymizer import AnonymizerEngine
        from presidio_anonymizer.entities import OperatorConfig

        # Presidio's loggers quote message words at DEBUG ("Context list is: ..."): only
        # their warnings and errors are passed on (no user text in any log).
        for name in ("presidio-analyzer", "presidio-anonymizer"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.config = config or load_config()
        self.region = region or "ZZ"  # ZZ: only numbers written with +country code
        self.use_prefilter = prefilter
        self.public = PublicDetails(public)
        registry = RecognizerRegistry()
        for recognizer in build_recognizers(self.config, self.region):
            registry.add_recognizer(recognizer)
        self.analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine(),
                                       supported_languages=[LANGUAGE],
                                       default_score_threshold=self.config.threshold,
                                       context_aware_enhancer=_safe_enhancer())
        self.anonymizer = AnonymizerEngine()
        self.operators = {entity: OperatorConfig("replace", {"new_value": mask})
                          for entity, mask in self.config.masks.items()}
        self.rank = {entity: n for n, entity in enumerate(self.config.priority)}
        self._build_prefilter()
        self._lock = threading.RLock()

    def _build_prefilter(self) -> None:
        raw, names = self.config.raw, self.config.raw["names"]
        prefilter = raw["prefilter"]
        self._trigger_words = frozenset(w.lower() for w in prefilter["words"])
        self._at_words = frozenset(w.lower() for w in prefilter["at_words"])
        self._after_name = frozenset(w.lower() for w in prefilter["after_name"])
        self._in_a_row = int(prefilter["number_words_in_a_row"])
        self._number_words = frozenset(
            [w.lower() for w in raw["phone"]["digit_words"]] +
            [w.lower() for w in raw["phone"]["repeat_words"]] +
            [w.lower() for w in raw["phone"]["hundred_words"]])
        self._cues: Dict[str, Set[Tuple[str, ...]]] = {}
        for cue in prefilter["cues"]:
            words = tuple(cue.lower().split())
            self._cues.setdefault(words[0], set()).add(words[1:])
        self._listed = frozenset(n.lower() for key in ("first_names", "ambiguous_names",
                                                       "surnames") for n in names[key])
        self._relations = frozenset(r.lower() for r in names["relations"])
        self._roles = frozenset(r.lower() for r in names["roles"])
        self._known = _known_words(int(names["known_words"]))
        self._dash_sign_off = _regex(names["dash_sign_off"], "names.dash_sign_off")

    _DIGIT_OR_AT = re.compile(r"[\d@]")
    _TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")

    def _prefilter(self, text: str) -> bool:
        """True if a recognizer might find something: a digit or "@", a trigger word,
        "at" with a dot, number words in a row, a name cue before a name-like word."""
        if self._DIGIT_OR_AT.search(text):
            return True
        tokens = self._TOKEN.findall(text.translate(APOSTROPHES))
        lower = [t.lower() for t in tokens]
        words = set(lower)
        if not words.isdisjoint(self._trigger_words):
            return True
        if not words.isdisjoint(self._at_words) and ("." in text or "dot" in words):
            return True
        if "/" in text and "com" in words:  # a profile's URL: "x.com/jo"
            return True
        if self._dash_sign_off.search(text):
            return True
        run, last = 0, len(lower) - 1
        for n, word in enumerate(lower):
            if word in self._number_words:
                run += 1
                if run >= self._in_a_row:
                    return True
                continue
            run = 0
            if word == "my" and n < last and lower[n + 1] in self._relations:
                return True
            if word in self._roles and any(t[0].isupper() for t in tokens[n + 1:]):
                return True
            if word in self._after_name and n and self._name_like(tokens[n - 1]):
                return True
            for rest in self._cues.get(word, ()):
                after = n + 1 + len(rest)
                if after <= last and tuple(lower[n + 1:after]) == rest and \
                        self._name_like(tokens[after]):
                    return True
        return False

    def _name_like(self, token: str) -> bool:
        """Capitalised, listed, or no known word ("im tasha"): worth a Presidio run."""
        lower = token.lower()
        return token[0].isupper() or lower in self._listed or lower not in self._known

    # ---

    def might_contain(self, text: str) -> bool:
        """The cheap prefilter: False means there is certainly nothing to mask."""
        return self._prefilter(text)

    def find(self, text: str) -> List[Finding]:
        """The personal data in `text`, merged where findings overlap, in order."""
        if not text or not text.strip() or is_payload(text):
            return []
        if self.use_prefilter and not self.might_contain(text):
            return []
        results = self.analyzer.analyze(text=text, language=LANGUAGE,
                                        score_threshold=self.config.threshold)
        public = self.public.spans(text)
        kept = []
        for result in results:
            if any(result.start < end and start < result.end for start, end in public):
                continue
            digits = (result.recognition_metadata or {}).get("digits") or (
                _digits(text[result.start:result.end])
                if result.entity_type == "PHONE_NUMBER" else "")
            if digits and self.public.is_clinic_phone(digits):
                continue
            kept.append(result)
        return self._merged(kept)

    def _merged(self, results: List[Any]) -> List[Finding]:
        merged: List[Finding] = []
        for result in sorted(results, key=lambda r: (r.start, -r.end)):
            if merged and result.start < merged[-1].end:
                last = merged[-1]
                entity = min((last.entity, result.entity_type), key=lambda e: self.rank[e])
                merged[-1] = Finding(entity, last.start, max(last.end, result.end),
                                     max(last.score, result.score))
            else:
                merged.append(Finding(result.entity_type, result.start, result.end,
                                      result.score))
        return merged

    def mask(self, text: str) -> str:
        if not isinstance(text, str):
            return text
        try:
            with self._lock:  # one text at a time through spaCy and Presidio
                return self._mask(text)
        except Exception as error:  # noqa: BLE001 - never store a text unmasked
            # The error's message may quote the text: only its type is logged.
            logger.error("PII masking failed (%s); masked every number and address with "
                         "an \"@\" instead.", type(error).__name__)
            return blunt_mask(text)

    def _mask(self, text: str) -> str:
        findings = self.find(text)
        if not findings:
            return text
        from presidio_anonymizer.entities import RecognizerResult

        return self.anonymizer.anonymize(
            text=text, operators=self.operators,
            analyzer_results=[RecognizerResult(f.entity, f.start, f.end, f.score)
                              for f in findings]).text

    @property
    def masks(self) -> List[str]:
        return list(self.config.masks.values())


BLUNT_EMAIL = re.compile(r"\S+@\S+")
BLUNT_DIGITS = re.compile(r"\+?\d[\d\s().\-/]*\d|\d")


def blunt_mask(text: str) -> str:
    """What is stored if the masker itself fails: no e-mail address, no digit."""
    text = BLUNT_EMAIL.sub("[e-mail address]", text)
    return BLUNT_DIGITS.sub("[phone number]", text)


def _safe_enhancer() -> Any:
    """Presidio's lemma context enhancer (raises the scores of the built-in recognizers
    next to "phone", "card", ...), which gives up on a finding it cannot place among the
    tokens instead of raising ValueError."""
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class SafeLemmaContextAwareEnhancer(LemmaContextAwareEnhancer):
        def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers,
                                  context=None):
            try:
                return super().enhance_using_context(text, raw_results, nlp_artifacts,
                                                     recognizers, context)
            except ValueError:
                return raw_results

    return SafeLemmaContextAwareEnhancer()


def is_payload(text: str) -> bool:
    """A Rasa button payload ("/intent", "/intent@0.9{"slot": "x"}"): never masked."""
    match = PAYLOAD.fullmatch(text)
    if not match:
        return False
    if match.group("json") is None:
        return True
    try:
        return isinstance(json.loads(match.group("json")), dict)
    except ValueError:
        return False


def masks(config_file: Path = CONFIG_FILE) -> List[str]:
    """Every replacement token ("[phone number]", "[name]", ...)."""
    return list(load_config(config_file).masks.values())


_MASKERS: Dict[Tuple[Any, ...], PiiMasker] = {}
_MASKERS_LOCK = threading.Lock()


def masker(region: Optional[str] = "GB", public: Optional[Mapping[str, Any]] = None,
           prefilter: bool = True) -> PiiMasker:
    """One PiiMasker per (region, public details) and process: building one loads spaCy."""
    key = (region, tuple(sorted((k, str(v)) for k, v in (public or {}).items())), prefilter)
    with _MASKERS_LOCK:
        if key not in _MASKERS:
            _MASKERS[key] = PiiMasker(region, public, prefilter)
        return _MASKERS[key]


def phone_region(number: str) -> Optional[str]:
    """The country whose local numbers to read ("GB" for "+44 ..."), from a number
    written with its country code (the clinic's own), else None."""
    import phonenumbers

    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number or "", None))
    except phonenumbers.NumberParseException:
        return None
