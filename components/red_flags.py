"""Deterministic red-flag safety net for low back pain.

`RedFlagMatcher` finds warning signs with spaCy rule matching over lemmas
(patterns in data/safety/red_flags.yml) and drops mentions that medspaCy's ConText marks
as negated ("no fever"), about someone else ("my dad had cancer"), hypothetical ("what
if I get numbness?") or resolved history ("had a fever last week, it's gone").

`RedFlagDetector` is the Rasa NLU component: it runs after every classifier, so a
message describing a red flag always gets the intent `report_red_flag` (and the entity
`red_flag`, value = tier, role = category), whatever the model predicted; the
rule `report_red_flag -> action_urgent_care` does the rest.
"""
from __future__ import annotations

import logging
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Text, \
    Tuple, Union

import spacy
import yaml
from medspacy.context import ConText, ConTextRule
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

from components.spacy_pipeline import shared_pipeline

logger = logging.getLogger(__name__)

DEFAULT_PATTERNS = "data/safety/red_flags.yml"
DEFAULT_SPACY_MODEL = "models/spacy/clinic_md"
MAX_GAP = 3  # "*" in a pattern: up to this many words
TIER_ORDER = {"crisis": 0, "emergency": 1, "urgent": 2}
RED_FLAG_INTENT = "report_red_flag"
RED_FLAG_ENTITY = "red_flag"

# Patients type "cant", "dont", "im": spaCy would split "cant" into "ca" + "nt".
_CONTRACTIONS = [
    (re.compile(r"\b(ca|can)n?'?t\b"), "can not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|could|would|should|have|has|had)n'?t\b"),
     r"\1 not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bi'?m\b"), "i am"),
    (re.compile(r"\bi'?ve\b"), "i have"),
    (re.compile(r"\b(it|that)'?s\b"), r"\1 is"),
]


# A pass's replacement: a template for `match.expand`, or a function of the match.
Replacement = Union[str, Callable[["re.Match[str]"], str]]

# Runs of white space become one space (a lone space is left as it is).
_WHITESPACE = (re.compile(r"\s{2,}|[^\S ]"), " ")
# Brackets hold an aside of the same clause ("steroid tablets (prednisolone) for six
# years"); a "*" gap does not cross punctuation, so they become spaces.
_BRACKETS = (re.compile(r"[()\[\]{}]"), " ")
# A colon before a list is a comma to ConText: its clinical-note rule ": no" (as in
# "fever: no") reads "before you ask: no saddle numbness" backwards, so the "no" would
# not negate what follows. Times ("7:30") keep theirs.
_COLON = (re.compile(r":(?=\s|$)"), ",")


def normalise(text: str) -> str:
    return normalise_with_offsets(text)[0]


Pass = Tuple["re.Pattern[str]", Replacement]
ENGLISH_PASSES: Tuple[Pass, ...] = (*_CONTRACTIONS, _WHITESPACE)


def normalise_with_offsets(text: str, passes: Sequence[Pass] = ENGLISH_PASSES
                           ) -> Tuple[str, List[int]]:
    """Lower-case, then apply `passes` (by default: expand contractions, fold white space);
    also map each character back to `text` (one entry more than characters: the end)."""
    out, origin = text.lower().replace("’", "'"), list(range(len(text) + 1))
    if len(out) != len(text):  # a letter whose lower case is longer ("İ" -> "i̇")
        lowered = [ch.lower() for ch in text.replace("’", "'")]
        out = "".join(lowered)
        origin = [i for i, low in enumerate(lowered) for _ in low] + [len(text)]
    for pattern, replacement in passes:
        if pattern.search(out) is not None:  # most messages: nothing to change
            out, origin = _substitute(pattern, replacement, out, origin)
    return out, origin


def _pattern_text(pattern: List[Dict[str, Any]]) -> str:
    """A readable name for a context rule given as a token pattern."""
    return " ".join(str(next(iter(token.values()))) for token in pattern)


def _strip_accent(match: "re.Match[str]") -> str:
    """"é" -> "e", "ñ" -> "n": French and Spanish patients often type without accents."""
    decomposed = unicodedata.normalize("NFD", match.group())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)) or match.group()


_ACCENTS: Pass = (re.compile(r"[^\x00-\x7f]"), _strip_accent)
# "j'ai", "n'arrive", "l'urine": words, as the patterns write them ("j ai", "n arrive").
_ELISIONS: Pass = (re.compile(r"'"), " ")


def _spelling_pass(spellings: Dict[str, str]) -> Optional[Pass]:
    """Whole words patients write in their own spelling ("feva", "cnt") -> the words the
    patterns know; the longest first, so that "cnt hold" wins over "cnt"."""
    if not spellings:
        return None
    words = sorted(spellings, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w'])(" + "|".join(re.escape(w) for w in words) + r")(?![\w'])")
    return pattern, lambda match: spellings[match.group()]


def _substitute(pattern: "re.Pattern[str]", replacement: Replacement, text: str,
                origin: List[int]) -> Tuple[str, List[int]]:
    """`pattern.sub(replacement, text)`, and where each new character came from."""
    pieces, new_origin, last = [], [], 0
    for match in pattern.finditer(text):
        pieces.append(text[last:match.start()])
        new_origin.extend(origin[last:match.start()])
        expanded = replacement(match) if callable(replacement) else match.expand(replacement)
        pieces.append(expanded)
        new_origin.extend([origin[match.start()]] * len(expanded))
        last = match.end()
    pieces.append(text[last:])
    new_origin.extend(origin[last:])  # with the end's entry
    return "".join(pieces), new_origin


# For one matcher pattern: (token attribute, the words it accepts) of each token that
# must be there; a token the quick test cannot judge (a regex, optional) is left out.
_Required = Tuple[Tuple[str, FrozenSet[str]], ...]


def _required_words(pattern: List[Dict[str, Any]]) -> _Required:
    needed = []
    for token in pattern:
        if token.get("OP") not in (None, "+", "1"):
            continue  # optional ("?", "*") or negated ("!")
        for attr in ("LEMMA", "LOWER", "NORM"):
            value = token.get(attr)
            if isinstance(value, dict) and set(value) == {"IN"}:
                needed.append((attr, frozenset(value["IN"])))
            elif isinstance(value, dict) and set(value) == {"REGEX"}:
                needed.append(("REGEX", frozenset([value["REGEX"]])))
            elif isinstance(value, str):
                needed.append((attr, frozenset([value])))
    # A word to look up first: the index anchors a pattern on its first required word.
    return tuple(sorted(needed, key=lambda item: item[0] == "REGEX"))


def _present(attr: str, needed: FrozenSet[str], words: Dict[str, set]) -> bool:
    if attr == "REGEX":
        return any(_regex_found(regex, words) for regex in needed)
    return not needed.isdisjoint(words[attr])


def _regex_found(regex: str, words: Dict[str, Any]) -> bool:
    """Whether a word of the message matches `regex`; remembered for the message."""
    found = words.setdefault("REGEX", {})
    if regex not in found:
        pattern = re.compile(regex)
        found[regex] = any(pattern.search(word) for word in words["LOWER"])
    return found[regex]


@dataclass(frozen=True)
class Finding:
    category: str
    tier: str
    label: str
    start: int  # character offsets in the original message
    end: int
    text: str
    # (start, end) of every part that made the finding (the rule's other groups too),
    # so that a channel cutting a long message can keep them all.
    parts: Tuple[Tuple[int, int], ...] = field(default=(), compare=False)


@dataclass
class _Rule:
    key: str
    category: str
    tier: str
    label: str
    history_counts: bool
    resolved_counts: bool
    groups: List[str]  # matcher keys that must all match in one sentence (or message)
    same_sentence: bool
    # A negation counts only this many words before the match (None: ConText's scope).
    negation_window: Optional[int] = None
    context_ignored: FrozenSet[str] = frozenset()  # ConText categories this rule ignores


@dataclass
class _FuzzyWords:
    """The misspelling-tolerant layer. A word that is neither a known word of the language
    (wordfreq's list) nor one the patterns look for, but is close to one they look for, is
    read as that word: "bladdder", "incontinance", "numbnes". The method is set in the
    patterns file (`fuzzy:`), chosen by measurement (README "Safety net"): `edit` (optimal
    string alignment distance, 1 for words up to 7 letters, 2 beyond), `phonetic`
    (Metaphone codes equal) or `off`."""

    method: str
    attr: str  # the token attribute the patterns match: LEMMA (English) or NORM
    min_length: int
    targets: Tuple[str, ...]
    target_set: FrozenSet[str]
    known: FrozenSet[str]
    codes: Dict[str, str]

    @classmethod
    def build(cls, config: Dict[str, Any], pattern_words: FrozenSet[str],
              language: str) -> "_FuzzyWords":
        method = os.environ.get("RED_FLAG_FUZZY") or str(config.get("method", "off"))
        if method not in ("edit", "phonetic", "off"):
            raise ValueError(f"fuzzy method {method!r}: edit, phonetic or off")
        min_length = int(config.get("min_length", 5))
        targets = tuple(sorted(w for w in pattern_words if w.isalpha() and len(w) >= 4))
        known: FrozenSet[str] = frozenset()
        codes: Dict[str, str] = {}
        if method != "off":
            import wordfreq

            known = frozenset(wordfreq.top_n_list(language, int(config.get("known_words",
                                                                          50000))))
        if method == "phonetic":
            import jellyfish

            for target in targets:
                codes.setdefault(jellyfish.metaphone(target), target)
        return cls(method, "LEMMA" if language == "en" else "NORM", min_length, targets,
                   frozenset(targets), known, codes)

    def closest(self, word: str) -> Optional[str]:
        if self.method == "phonetic":
            import jellyfish

            return self.codes.get(jellyfish.metaphone(word))
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        best = process.extractOne(word, self.targets, scorer=OSA.distance,
                                  score_cutoff=1 if len(word) <= 7 else 2)
        return best[0] if best else None

    def correct(self, doc: Doc) -> None:
        if self.method == "off":
            return
        for token in doc:
            word = token.lower_
            if (len(word) < self.min_length or not word.isalpha() or word in self.known
                    or word in self.target_set):
                continue
            target = self.closest(word)
            if target is not None:
                if self.attr == "LEMMA":
                    token.lemma_ = target
                else:
                    token.norm_ = target


class RedFlagMatcher:
    """Rule-based red-flag detection with clinical context."""

    def __init__(self, patterns_path: str = DEFAULT_PATTERNS,
                 spacy_model: str = DEFAULT_SPACY_MODEL) -> None:
        config = yaml.safe_load(Path(patterns_path).read_text(encoding="utf-8"))
        self.language: str = config.get("language", "en")
        self.messages: Dict[str, str] = config.get("messages", {})
        if self.language == "en":
            # Only lemmas are needed: shared with the PII analyser, without the vocab.
            self.nlp: Language = shared_pipeline(spacy_model)
            passes: List[Pass] = list(_CONTRACTIONS)
            self.word_attr = "LEMMA"
        else:
            # No trained French or Spanish pipeline for spaCy 3.4 is on the registry: the
            # language's rule-based tokenizer, and patterns on accent-free lower case.
            self.nlp = spacy.blank(self.language)
            passes = [_ACCENTS, _ELISIONS]
            self.word_attr = "NORM"
        spelling = _spelling_pass({normalise_with_offsets(k, [*passes, _WHITESPACE])[0]: v
                                   for k, v in (config.get("spellings") or {}).items()})
        self.passes: Tuple[Pass, ...] = (*passes, *([spelling] if spelling else []),
                                         _BRACKETS, _COLON, _WHITESPACE)
        if "sentencizer" not in self.nlp.pipe_names:  # the pipeline may be shared
            self.nlp.add_pipe("sentencizer")  # scopes ConText and same-sentence rules
        # One matcher per pattern, so that only the patterns the quick test leaves
        # possible are run (their optional gaps make matching the costliest step).
        self._pattern_matchers: List[Matcher] = []  # by pattern index
        # The quick test's index (_may_fire): every pattern as (matcher key, its required
        # words), by the words its first required token accepts.
        self._patterns: List[Tuple[str, _Required]] = []
        self._anchored: Dict[Tuple[str, str], List[int]] = {}
        self._unanchored: List[int] = []  # nothing the quick test can judge
        self.rules: List[_Rule] = []
        concepts: Dict[str, List[str]] = config.get("concepts", {})
        for concept, phrases in concepts.items():
            self._add_phrases(f"concept:{concept}", phrases)
        self._add_phrases("ignore", config.get("ignore", []))
        for index, rule in enumerate(config["rules"]):
            key = f"rule:{index}"
            if "phrases" in rule:
                self._add_phrases(key, rule["phrases"])
                groups = [key]
            else:
                groups = []
                for position, group in enumerate(rule["all"]):
                    if isinstance(group, str) and group in concepts:
                        groups.append(f"concept:{group}")
                    else:
                        group_key = f"{key}:{position}"
                        self._add_phrases(group_key, [group] if isinstance(group, str) else group)
                        groups.append(group_key)
            self.rules.append(_Rule(key, rule["category"], rule["tier"], rule["label"],
                                    bool(rule.get("history_counts")),
                                    bool(rule.get("resolved_counts")), groups,
                                    rule.get("scope", "sentence") == "sentence",
                                    rule.get("negation_window"),
                                    frozenset(rule.get("context_ignored", ()))))
        self.fuzzy = _FuzzyWords.build(config.get("fuzzy") or {}, self._pattern_words(),
                                       self.language)
        self.context = ConText(self.nlp, rules="default" if self.language == "en" else None,
                               language_code=self.language)
        self.context.add([
            ConTextRule(self._normalise(item.get("literal") or _pattern_text(item["pattern"])),
                        category, direction=item["direction"], pattern=item.get("pattern"),
                        max_scope=item.get("max_scope"))
            for category, items in config.get("context", {}).items()
            for item in items
        ])

    def _normalise(self, text: str) -> str:
        return normalise_with_offsets(text, self.passes)[0]

    def _pattern_words(self) -> FrozenSet[str]:
        """The words the patterns look for (what a misspelling may be corrected to)."""
        return frozenset(word for (attr, word) in self._anchored
                         if attr == self.word_attr) | frozenset(
            word for _, required in self._patterns for attr, words in required
            if attr == self.word_attr for word in words)

    # -- pattern compilation ----------------------------------------------------------
    def _lemmas(self, word: str) -> List[str]:
        doc = self.nlp.make_doc(word)
        lemmatizer = self.nlp.get_pipe("lemmatizer")
        lemmas = {word}
        if len(doc) == 1:
            lemmas.add(lemmatizer(doc)[0].lemma_)
        return sorted(lemmas)

    def _token_patterns(self, phrase: str) -> List[List[Dict[str, Any]]]:
        tokens: List[Dict[str, Any]] = []
        # Normalise each word like the messages ("can't" -> "can not"), but not a regex.
        parts = []
        for part in phrase.split(" "):
            pieces = [part] if part.startswith("~") else self._normalise(part).split(" ")
            if len(pieces) > 1 and "|" in part:  # "not|cannot" would become two tokens
                raise ValueError(f"{phrase!r}: {part!r} has an alternative that the "
                                 f"normalisation splits into several words")
            parts += pieces
        for part in parts:
            if part == "*":
                tokens.extend({"IS_PUNCT": False, "IS_SENT_START": False, "OP": "?"} for _ in range(MAX_GAP))
                continue
            optional = part.endswith("?") and not part.startswith("~")
            words = part.rstrip("?").split("|") if optional else part.split("|")
            exact = [w[1:] for w in words if w.startswith("=")]
            if part.startswith("~"):
                token: Dict[str, Any] = {"LOWER": {"REGEX": part[1:]}}
            elif exact and len(exact) != len(words):
                raise ValueError(f"{phrase!r}: mix of =exact and lemma words in {part!r}")
            elif exact:
                token = {"LOWER": {"IN": exact}}
            elif self.word_attr == "NORM":
                token = {"NORM": {"IN": sorted(set(words))}}
            else:
                token = {"LEMMA": {"IN": sorted({lemma for w in words
                                                  for lemma in self._lemmas(w)})}}
            if optional:
                token["OP"] = "?"
            tokens.append(token)
        return [tokens]

    def _add_phrases(self, key: str, phrases: Iterable[str]) -> None:
        patterns = [p for phrase in phrases for p in self._token_patterns(phrase)]
        for pattern in patterns:
            required = _required_words(pattern)
            index = len(self._patterns)
            self._patterns.append((key, required))
            single = Matcher(self.nlp.vocab)
            single.add(key, [pattern])
            self._pattern_matchers.append(single)
            if not required or required[0][0] == "REGEX":
                self._unanchored.append(index)
                continue
            attr, words = required[0]
            for word in words:
                self._anchored.setdefault((attr, word), []).append(index)

    # -- the quick test ---------------------------------------------------------------

    def _may_fire(self, doc: Doc) -> bool:
        return bool(self._possible_keys(doc))

    def _possible_keys(self, doc: Doc) -> Set[str]:
        return self._possible(doc)[0]

    def _possible(self, doc: Doc) -> Tuple[Set[str], Set[int]]:
        """The pattern keys worth matching, and their patterns worth running: those of
        the rules that can match `doc`. A rule cannot when one of its groups has no
        pattern whose required words (lemma, lower case or regex) are all in the
        message; for most messages no rule can."""
        words: Dict[str, Any] = {"LEMMA": {t.lemma_ for t in doc},
                                 "LOWER": {t.lower_ for t in doc},
                                 "NORM": {t.norm_ for t in doc}}
        candidates = set(self._unanchored)
        for attr in ("LEMMA", "LOWER", "NORM"):
            for word in words[attr]:
                candidates.update(self._anchored.get((attr, word), ()))
        possible: Dict[str, List[int]] = {}
        for index in candidates:
            key, required = self._patterns[index]
            rest = required if required and required[0][0] == "REGEX" else required[1:]
            if all(_present(attr, needed, words) for attr, needed in rest):
                possible.setdefault(key, []).append(index)
        keys = {group for rule in self.rules if all(g in possible for g in rule.groups)
                for group in rule.groups}
        if keys and "ignore" in possible:
            keys.add("ignore")
        return keys, {i for key in keys for i in possible[key]}

    # -- detection --------------------------------------------------------------------
    def _candidates(self, doc: Doc, patterns: Iterable[int]
                    ) -> List[Tuple[_Rule, Span, List[List[Span]]]]:
        """(rule, main span, spans of each further group) for every rule that matches."""
        by_key: Dict[str, List[Span]] = {}
        for index in sorted(patterns):
            key = self._patterns[index][0]
            for _, start, end in self._pattern_matchers[index](doc):
                by_key.setdefault(key, []).append(doc[start:end])
        for key, spans in by_key.items():  # as one matcher per key would give them
            by_key[key] = sorted(set(spans), key=lambda s: (s.start, s.end))
        ignored = by_key.get("ignore", [])
        sentence = []  # each token's sentence number (Span.sent walks the doc each time)
        for token in doc:
            sentence.append(sentence[-1] + token.is_sent_start if sentence else 0)
        found = []
        for rule in self.rules:
            first, *others = rule.groups
            for span in by_key.get(first, []):
                if any(i.start < span.end and span.start < i.end for i in ignored):
                    continue
                support = [[s for s in by_key.get(g, []) if not rule.same_sentence
                            or sentence[s.start] == sentence[span.start]] for g in others]
                if all(support):
                    found.append((rule, span, support))
        return found

    def analyse(self, text: str) -> Tuple[List[Finding], List[Finding]]:
        """Return (affirmed findings, findings discounted by context)."""
        normalised, origin = normalise_with_offsets(text, self.passes)
        doc = self.nlp(normalised)
        self.fuzzy.correct(doc)
        keys, patterns = self._possible(doc)
        if not keys:
            return [], []
        candidates = self._candidates(doc, patterns)
        if not candidates:
            return [], []
        every_span = [s for _, span, support in candidates for s in [span, *sum(support, [])]]
        doc.ents = [Span(doc, s.start, s.end, label="RED_FLAG")
                    for s in spacy.util.filter_spans(every_span)]
        self.context(doc)
        ents = list(doc.ents)

        def holds(span: Span, rule: _Rule, own: Sequence[Span]) -> bool:
            ent = next((e for e in ents if e.start <= span.start < e.end or
                        span.start <= e.start < span.end), None)
            context = _context_of(ent, own, rule.negation_window) - rule.context_ignored \
                if ent is not None else set()
            return not (context & DISCOUNTING
                        or ("HISTORICAL" in context and not rule.history_counts)
                        or ("RESOLVED" in context and not rule.resolved_counts))

        def offsets(part: Span) -> Tuple[int, int]:
            return origin[part.start_char], origin[part.end_char - 1] + 1

        affirmed, discounted = [], []
        for rule, span, support in candidates:
            start, end = offsets(span)
            # Every part must hold: "slipped, but I don't have osteoporosis" is no flag.
            own = [span, *sum(support, [])]
            holding = [next((s for s in g if holds(s, rule, own)), None) for g in support]
            parts = tuple(offsets(p) for p in [span, *holding] if p is not None)
            finding = Finding(rule.category, rule.tier, rule.label, start, end,
                              text[start:end], parts)
            if holds(span, rule, own) and all(p is not None for p in holding):
                affirmed.append(finding)
            else:
                discounted.append(finding)
        return _dedupe(affirmed), _dedupe(discounted)

    def detect(self, text: str) -> List[Finding]:
        """Affirmed red flags in `text`, most serious first."""
        return self.analyse(text)[0]


DISCOUNTING = {"NEGATED_EXISTENCE", "FAMILY", "OTHERS_BODY", "HYPOTHETICAL"}


def _context_of(ent: Span, own: Sequence[Span], negation_window: Optional[int] = None) -> set:
    """ConText categories that modify `ent`, ignoring cues inside the rule's own phrases
    ("can not pee", "can not feel ... my bits" are symptoms, not negations), and, with a
    `negation_window`, negations further than that many words before `ent`."""
    categories = set()
    for modifier in ent._.modifiers:
        start, end = modifier.modifier_span
        if any(s.start <= start and end <= s.end for s in [ent, *own]):
            continue
        if (negation_window is not None and modifier.category == "NEGATED_EXISTENCE"
                and not (0 <= ent.start - end <= negation_window)):
            continue
        categories.add(modifier.category)
    return categories


def _dedupe(findings: Sequence[Finding]) -> List[Finding]:
    seen, unique = set(), []
    for finding in sorted(findings, key=lambda f: (TIER_ORDER[f.tier], f.start)):
        if (finding.category, finding.label) not in seen:
            seen.add((finding.category, finding.label))
            unique.append(finding)
    return unique


@lru_cache(maxsize=8)
def load_matcher(patterns_path: str = DEFAULT_PATTERNS,
                 spacy_model: str = DEFAULT_SPACY_MODEL) -> RedFlagMatcher:
    return RedFlagMatcher(patterns_path, spacy_model)


def language_patterns(english_path: str = DEFAULT_PATTERNS) -> Dict[str, str]:
    """The other languages' pattern files beside the English one: red_flags.<lang>.yml."""
    english = Path(english_path)
    return {path.suffixes[-2].lstrip("."): str(path)
            for path in sorted(english.parent.glob(f"{english.stem}.*{english.suffix}"))}


@dataclass(frozen=True)
class Screening:
    language: str  # what the reply should be written in
    affirmed: List[Finding]  # crisis first, then the most serious red flag
    discounted: List[Finding]

    @property
    def crisis(self) -> bool:
        return any(f.tier == "crisis" for f in self.affirmed)

    @property
    def red_flags(self) -> List[Finding]:
        return [f for f in self.affirmed if f.tier != "crisis"]


class SafetyNet:
    """The matchers of every language and the language to answer in: a message guessed
    French or Spanish is read by that language's patterns; any other by all of them (a
    French flag in a message the guess calls English is still found)."""

    def __init__(self, patterns_path: str = DEFAULT_PATTERNS,
                 spacy_model: str = DEFAULT_SPACY_MODEL) -> None:
        from components.languages import LanguageGuess

        self.matchers: Dict[str, RedFlagMatcher] = {"en": load_matcher(patterns_path,
                                                                       spacy_model)}
        for language, path in language_patterns(patterns_path).items():
            self.matchers[language] = load_matcher(path, spacy_model)
        self.guess = LanguageGuess(tuple(self.matchers))

    def analyse(self, text: str) -> Screening:
        guesses = self.guess.guesses(text)
        guess = guesses[0]
        if guess != "en":
            # A French or Spanish message: its own patterns and context only (and those of
            # a language it is nearly as likely to be in). The English ones would read
            # shared words ("cancer", "incontinence") without knowing "mon père", "pas"
            # or "nunca".
            affirmed: List[Finding] = []
            discounted: List[Finding] = []
            answer_in = guess
            for language in guesses:
                found, discounted_here = self.matchers[language].analyse(text)
                if found and not affirmed:
                    answer_in = language
                affirmed += found
                discounted += discounted_here
            return Screening(answer_in, _dedupe(affirmed), _dedupe(discounted))
        affirmed, discounted = [], []
        flagged_in = None
        for language, matcher in self.matchers.items():
            found, discounted_here = matcher.analyse(text)
            if found and flagged_in is None and language != "en":
                flagged_in = language
            affirmed += found
            discounted += discounted_here
        # Guessed English: every language's patterns still run, so that a French flag in
        # a short message the guess misses is found (and answered in French).
        return Screening(flagged_in or "en", _dedupe(affirmed), _dedupe(discounted))

    def detect(self, text: str) -> List[Finding]:
        return self.analyse(text).affirmed


@lru_cache(maxsize=4)
def load_safety_net(patterns_path: str = DEFAULT_PATTERNS,
                    spacy_model: str = DEFAULT_SPACY_MODEL) -> SafetyNet:
    return SafetyNet(patterns_path, spacy_model)


# -- Rasa component ------------------------------------------------------------------
from rasa.engine.graph import ExecutionContext, GraphComponent  # noqa: E402
from rasa.engine.recipes.default_recipe import DefaultV1Recipe  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.engine.storage.storage import ModelStorage  # noqa: E402
from rasa.shared.constants import INTENT_MESSAGE_PREFIX  # noqa: E402
from rasa.shared.nlu.constants import (  # noqa: E402
    ENTITIES, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT,
)
from rasa.shared.nlu.training_data.message import Message  # noqa: E402

CRISIS_INTENT = "report_crisis"
FALLBACK_INTENT = "nlu_fallback"  # the FallbackClassifier's, which runs before this
SCREEN_INTENT = "ask_if_serious"  # answered with the screening question
OTHER_LANGUAGE_INTENT = "other_language"
LANGUAGE_ENTITY = "language"
# What a withdrawn red-flag or crisis prediction may become: the intents that answer
# what the visitor talked about. Anything else reads as a question about warning signs.
_ANSWERING = ("faq_", "describe_pain", "ask_exercise", "book_appointment", "ask_red_flags",
              SCREEN_INTENT, "ask_diagnosis", "ask_medication")
MIN_NEXT_BEST = 0.2  # below: the model has no second opinion worth following
_QUESTION = re.compile(r"\?\s*$|^\s*(what|how|why|when|can|could|does|do|is|are|should|will)\b",
                       re.IGNORECASE)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class RedFlagDetector(GraphComponent):
    """The safety net's say over the intent. Only the deterministic detector sends a
    visitor to urgent care or to the crisis reply:

    - an affirmed crisis -> `report_crisis`; an affirmed red flag -> `report_red_flag`
      (entity `red_flag`: value = tier, role = category), whatever the model predicted;
    - the model's `report_red_flag` that the detector does not confirm -> the screening
      question (`ask_if_serious`), or, when the detector found the signs but context
      discounts them (negated, someone else, hypothetical), the next best answer;
    - the model's `report_crisis` without the detector -> the next best answer;
    - a message in French or Spanish without a flag -> `other_language`.
    Non-English messages carry the entity `language` for the reply.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"patterns": DEFAULT_PATTERNS, "spacy_model": DEFAULT_SPACY_MODEL}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.net = load_safety_net(config["patterns"], config["spacy_model"])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "RedFlagDetector":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            # A button payload ("/intent{...}") is the visitor's choice, read by Rasa's
            # RegexMessageHandler after this component.
            if text and not text.startswith(INTENT_MESSAGE_PREFIX):
                self._process_one(message, text)
        return messages

    def _process_one(self, message: Message, text: str) -> None:
        screening = self.net.analyse(text)
        predicted = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        if predicted == FALLBACK_INTENT and _model_top(message) == RED_FLAG_INTENT:
            # Unsure, but leaning to a warning sign ("no temperature or redness or
            # anything"): read as that, so it gets the check or the next best answer
            # rather than "not sure I understood".
            predicted = RED_FLAG_INTENT
        entities = [e for e in message.get(ENTITIES, [])
                    if e.get("entity") not in (RED_FLAG_ENTITY, LANGUAGE_ENTITY)]
        if screening.language != "en":
            entities.append({"entity": LANGUAGE_ENTITY, "value": screening.language,
                             "start": 0, "end": len(text), "extractor": type(self).__name__})
        flags = screening.red_flags
        if flags:
            top = flags[0]
            # One entity: value = tier, role = category (so both sit on the same words).
            entities.append({"entity": RED_FLAG_ENTITY, "value": top.tier, "role": top.category,
                             "start": top.start, "end": top.end,
                             "extractor": type(self).__name__})
        if screening.crisis:
            message.set(INTENT, _certain(CRISIS_INTENT), add_to_output=True)
        elif flags:
            message.set(INTENT, _certain(RED_FLAG_INTENT), add_to_output=True)
        elif screening.language != "en":
            message.set(INTENT, _certain(OTHER_LANGUAGE_INTENT), add_to_output=True)
        elif predicted == CRISIS_INTENT:
            message.set(INTENT, _next_best(message), add_to_output=True)
        elif predicted == RED_FLAG_INTENT:
            # The model saw symptom words. Discounted by context: answer what was asked;
            # nothing found: ask the screening question rather than raise an alarm.
            suspected = _next_best(message) if screening.discounted else {
                INTENT_NAME_KEY: SCREEN_INTENT,
                PREDICTED_CONFIDENCE_KEY: (message.get(INTENT) or {}).get(
                    PREDICTED_CONFIDENCE_KEY, 0.0)}
            message.set(INTENT, suspected, add_to_output=True)
        message.set(ENTITIES, entities, add_to_output=True)


def _model_top(message: Message) -> Optional[str]:
    for item in message.get(INTENT_RANKING_KEY) or []:
        if item.get(INTENT_NAME_KEY) != FALLBACK_INTENT:
            return item.get(INTENT_NAME_KEY)
    return None


def _certain(intent: str) -> Dict[str, Any]:
    return {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}


def _next_best(message: Message) -> Dict[str, Any]:
    """The model's best answer other than an alarm; without a confident one, a question
    ("what if I lose bladder control?") gets the warning-signs information and a
    statement ("no numbness, just an ache") the reply to a description of pain. The
    question at the end of a long message, read on its own, comes first."""
    from components.focus_sentence import FOCUS_KEY

    focus = message.get(FOCUS_KEY)
    first = [focus] if focus and focus[INTENT_NAME_KEY].startswith(_ANSWERING) else []
    for item in first + (message.get(INTENT_RANKING_KEY) or []):
        name = item.get(INTENT_NAME_KEY)
        confidence = item.get(PREDICTED_CONFIDENCE_KEY, 0.0)
        if name in (RED_FLAG_INTENT, CRISIS_INTENT, FALLBACK_INTENT, None):
            continue
        if name.startswith(_ANSWERING) and confidence >= MIN_NEXT_BEST:
            return {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
        break
    question = _QUESTION.search(message.get(TEXT) or "") is not None
    return {INTENT_NAME_KEY: "ask_red_flags" if question else "describe_pain",
            PREDICTED_CONFIDENCE_KEY: 0.0}
