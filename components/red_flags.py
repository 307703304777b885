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
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Sequence, Text, Tuple

import spacy
import yaml
from medspacy.context import ConText, ConTextRule
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span

logger = logging.getLogger(__name__)

DEFAULT_PATTERNS = "data/safety/red_flags.yml"
DEFAULT_SPACY_MODEL = "models/spacy/clinic_md"
MAX_GAP = 3  # "*" in a pattern: up to this many words
TIER_ORDER = {"emergency": 0, "urgent": 1}
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


# Runs of white space become one space (a lone space is left as it is).
_WHITESPACE = (re.compile(r"\s{2,}|[^\S ]"), " ")


def normalise(text: str) -> str:
    return normalise_with_offsets(text)[0]


def normalise_with_offsets(text: str) -> Tuple[str, List[int]]:
    """Lower-case, expand contractions; also map each character back to `text` (one
    entry more than characters: the end)."""
    out, origin = text.lower().replace("’", "'"), list(range(len(text) + 1))
    if len(out) != len(text):  # a letter whose lower case is longer ("İ" -> "i̇")
        lowered = [ch.lower() for ch in text.replace("’", "'")]
        out = "".join(lowered)
        origin = [i for i, low in enumerate(lowered) for _ in low] + [len(text)]
    for pattern, replacement in [*_CONTRACTIONS, _WHITESPACE]:
        if pattern.search(out) is not None:  # most messages: nothing to change
            out, origin = _substitute(pattern, replacement, out, origin)
    return out, origin


def _substitute(pattern: "re.Pattern[str]", replacement: str, text: str,
                origin: List[int]) -> Tuple[str, List[int]]:
    """`pattern.sub(replacement, text)`, and where each new character came from."""
    pieces, new_origin, last = [], [], 0
    for match in pattern.finditer(text):
        pieces.append(text[last:match.start()])
        new_origin.extend(origin[last:match.start()])
        expanded = match.expand(replacement)
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
        for attr in ("LEMMA", "LOWER"):
            value = token.get(attr)
            if isinstance(value, dict) and set(value) == {"IN"}:
                needed.append((attr, frozenset(value["IN"])))
            elif isinstance(value, str):
                needed.append((attr, frozenset([value])))
    return tuple(needed)


@dataclass(frozen=True)
class Finding:
    category: str
    tier: str
    label: str
    start: int  # character offsets in the original message
    end: int
    text: str


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


class RedFlagMatcher:
    """Rule-based red-flag detection with clinical context."""

    def __init__(self, patterns_path: str = DEFAULT_PATTERNS,
                 spacy_model: str = DEFAULT_SPACY_MODEL) -> None:
        config = yaml.safe_load(Path(patterns_path).read_text(encoding="utf-8"))
        self.messages: Dict[str, str] = config["messages"]
        # Only lemmas are needed (the lemmatizer keeps its own tables): not loading the
        # vocab (strings and word vectors) saves about 240 MB per process. A sentencizer
        # scopes ConText.
        self.nlp: Language = spacy.load(spacy_model,
                                        exclude=["vocab", "senter", "parser", "ner"])
        self.nlp.add_pipe("sentencizer")
        self.matcher = Matcher(self.nlp.vocab)
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
                                    rule.get("scope", "sentence") == "sentence"))
        self.context = ConText(self.nlp, rules="default")
        self.context.add([
            ConTextRule(item["literal"], category, direction=item["direction"])
            for category, items in config.get("context", {}).items()
            for item in items
        ])

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
        parts = [piece for part in phrase.split(" ")
                 for piece in ([part] if part.startswith("~") else normalise(part).split(" "))]
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
            else:
                token = {"LEMMA": {"IN": sorted({lemma for w in words
                                                  for lemma in self._lemmas(w)})}}
            if optional:
                token["OP"] = "?"
            tokens.append(token)
        return [tokens]

    def _add_phrases(self, key: str, phrases: Iterable[str]) -> None:
        patterns = [p for phrase in phrases for p in self._token_patterns(phrase)]
        self.matcher.add(key, patterns)
        for pattern in patterns:
            required = _required_words(pattern)
            index = len(self._patterns)
            self._patterns.append((key, required))
            if not required:
                self._unanchored.append(index)
                continue
            attr, words = required[0]
            for word in words:
                self._anchored.setdefault((attr, word), []).append(index)

    # -- the quick test ---------------------------------------------------------------

    def _may_fire(self, doc: Doc) -> bool:
        """False when no rule can match `doc`: every rule needs a group none of whose
        patterns finds all its required words (lemma or lower case) in the message. The
        matcher (its optional gaps make it the costliest step) then has nothing to
        find, which is the case for most messages."""
        words = {"LEMMA": {t.lemma_ for t in doc}, "LOWER": {t.lower_ for t in doc}}
        candidates = set(self._unanchored)
        for attr, present in words.items():
            for word in present:
                candidates.update(self._anchored.get((attr, word), ()))
        possible = set()
        for index in candidates:
            key, required = self._patterns[index]
            if key not in possible and all(not needed.isdisjoint(words[attr])
                                           for attr, needed in required[1:]):
                possible.add(key)
        return any(all(group in possible for group in rule.groups) for rule in self.rules)

    # -- detection --------------------------------------------------------------------
    def _candidates(self, doc: Doc) -> List[Tuple[_Rule, Span, List[List[Span]]]]:
        """(rule, main span, spans of each further group) for every rule that matches."""
        by_key: Dict[str, List[Span]] = {}
        for match_id, start, end in self.matcher(doc):
            by_key.setdefault(self.nlp.vocab.strings[match_id], []).append(doc[start:end])
        ignored = by_key.get("ignore", [])
        found = []
        for rule in self.rules:
            first, *others = rule.groups
            for span in by_key.get(first, []):
                if any(i.start < span.end and span.start < i.end for i in ignored):
                    continue
                support = [[s for s in by_key.get(g, [])
                            if s.sent == span.sent or not rule.same_sentence] for g in others]
                if all(support):
                    found.append((rule, span, support))
        return found

    def analyse(self, text: str) -> Tuple[List[Finding], List[Finding]]:
        """Return (affirmed findings, findings discounted by context)."""
        normalised, origin = normalise_with_offsets(text)
        doc = self.nlp(normalised)
        if not self._may_fire(doc):
            return [], []
        candidates = self._candidates(doc)
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
            context = _context_of(ent, own) if ent is not None else set()
            return not (context & DISCOUNTING
                        or ("HISTORICAL" in context and not rule.history_counts)
                        or ("RESOLVED" in context and not rule.resolved_counts))

        affirmed, discounted = [], []
        for rule, span, support in candidates:
            start, end = origin[span.start_char], origin[span.end_char - 1] + 1
            finding = Finding(rule.category, rule.tier, rule.label, start, end, text[start:end])
            # Every part must hold: "slipped, but I don't have osteoporosis" is no flag.
            own = [span, *sum(support, [])]
            if holds(span, rule, own) and all(any(holds(s, rule, own) for s in g)
                                              for g in support):
                affirmed.append(finding)
            else:
                discounted.append(finding)
        return _dedupe(affirmed), _dedupe(discounted)

    def detect(self, text: str) -> List[Finding]:
        """Affirmed red flags in `text`, most serious first."""
        return self.analyse(text)[0]


DISCOUNTING = {"NEGATED_EXISTENCE", "FAMILY", "HYPOTHETICAL"}


def _context_of(ent: Span, own: Sequence[Span]) -> set:
    """ConText categories that modify `ent`, ignoring cues inside the rule's own phrases
    ("can not pee", "can not feel ... my bits" are symptoms, not negations)."""
    categories = set()
    for modifier in ent._.modifiers:
        start, end = modifier.modifier_span
        if not any(s.start <= start and end <= s.end for s in [ent, *own]):
            categories.add(modifier.category)
    return categories


def _dedupe(findings: Sequence[Finding]) -> List[Finding]:
    seen, unique = set(), []
    for finding in sorted(findings, key=lambda f: (TIER_ORDER[f.tier], f.start)):
        if (finding.category, finding.label) not in seen:
            seen.add((finding.category, finding.label))
            unique.append(finding)
    return unique


@lru_cache(maxsize=4)
def load_matcher(patterns_path: str = DEFAULT_PATTERNS,
                 spacy_model: str = DEFAULT_SPACY_MODEL) -> RedFlagMatcher:
    return RedFlagMatcher(patterns_path, spacy_model)


# -- Rasa component ------------------------------------------------------------------
from rasa.engine.graph import ExecutionContext, GraphComponent  # noqa: E402
from rasa.engine.recipes.default_recipe import DefaultV1Recipe  # noqa: E402
from rasa.engine.storage.resource import Resource  # noqa: E402
from rasa.engine.storage.storage import ModelStorage  # noqa: E402
from rasa.shared.nlu.constants import (  # noqa: E402
    ENTITIES, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT,
)
from rasa.shared.nlu.training_data.message import Message  # noqa: E402


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class RedFlagDetector(GraphComponent):
    """Forces `report_red_flag` for affirmed red flags; withdraws it for discounted ones."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"patterns": DEFAULT_PATTERNS, "spacy_model": DEFAULT_SPACY_MODEL}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.matcher = load_matcher(config["patterns"], config["spacy_model"])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "RedFlagDetector":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text:
                self._process_one(message, text)
        return messages

    def _process_one(self, message: Message, text: str) -> None:
        affirmed, discounted = self.matcher.analyse(text)
        intent = message.get(INTENT) or {}
        if affirmed:
            top = affirmed[0]
            message.set(INTENT, {INTENT_NAME_KEY: RED_FLAG_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0},
                        add_to_output=True)
            entities = [e for e in message.get(ENTITIES, []) if e.get("entity") != RED_FLAG_ENTITY]
            # One entity: value = tier, role = category (so both sit on the same words).
            entities.append({"entity": RED_FLAG_ENTITY, "value": top.tier, "role": top.category,
                             "start": top.start, "end": top.end,
                             "extractor": type(self).__name__})
            message.set(ENTITIES, entities, add_to_output=True)
        elif intent.get(INTENT_NAME_KEY) == RED_FLAG_INTENT and discounted:
            # The classifier saw symptom words, but they are negated, hypothetical or
            # about someone else: answer the question instead of raising an alarm.
            message.set(INTENT, _next_best(message), add_to_output=True)


def _next_best(message: Message) -> Dict[str, Any]:
    for item in message.get(INTENT_RANKING_KEY) or []:
        if item.get(INTENT_NAME_KEY) not in (RED_FLAG_INTENT, None):
            name = item[INTENT_NAME_KEY]
            # "what if I lose bladder control?" is a question about warning signs.
            return {INTENT_NAME_KEY: name if name.startswith("faq_") else "ask_red_flags",
                    PREDICTED_CONFIDENCE_KEY: item.get(PREDICTED_CONFIDENCE_KEY, 0.0)}
    return {INTENT_NAME_KEY: "ask_red_flags", PREDICTED_CONFIDENCE_KEY: 0.0}
