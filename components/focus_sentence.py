"""The question at the end of a long message.

Visitors often tell their story first and ask last: "About three months ago I swapped my
job ... Stretching helps for a bit. Is strengthening my glutes going to help?". Read as a
whole, such a message looks like a description of pain (or like nothing the model knows),
and the question goes unanswered. This component reads the message's question sentence on
its own, with a logistic regression over its sentence embedding (the same MiniLM encoder
the featurizer uses, one per process), and lets that reading stand when:

- the message has two sentences or more, and
- the whole-message reading is a story (`STORY_INTENTS`) and one sentence is a question
  whose reading is an answer the assistant gives (not a story, a greeting, a yes/no, a
  warning sign...), or
- the whole-message reading is a greeting, out of scope or too unsure to keep (below
  `whole_threshold`, where the FallbackClassifier would answer "not sure"): then the
  question, else the last sentence ("Good afternoon. I'm 74 and I'd be grateful for
  advice about my back."), may also read as a story;

with at least `threshold` confidence (for the same reading as the whole message's, a
higher one).

It also settles doubts that are not ones: a message read as two intents of one group in
`alike` (config.yml: intents whose replies serve the same request, such as a
description of pain and context about the visitor's life, or "which exercise" and
"show me an exercise"), neither sure enough alone but together sure enough, is the
likelier of the two.

Warning signs are never decided here: the RedFlagDetector runs after it on the whole
text. When the whole message reads as a warning sign, the question's reading is kept
beside it (`focus_intent` in the parse data), for the safety check to carry on with.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.nlu.constants import (INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY,
                                       PREDICTED_CONFIDENCE_KEY, TEXT)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.sentence_embeddings import shared_encoder

FILE = "focus_sentence.npz"
FOCUS_KEY = "focus_intent"  # parse data: the question's reading beside a warning sign
# Whole-message readings that a question at the end can replace.
STORIES = frozenset({"describe_pain", "share_context", "describe_situation"})
STORY_INTENTS = STORIES | {"ask_diagnosis"}
# Whole-message readings that say nothing of the rest: treated like an unsure reading.
OPENERS = frozenset({"greet", "out_of_scope"})
# Readings of a sentence that never replace the whole message's.
NEVER = frozenset({"greet", "goodbye", "thank", "affirm", "deny", "out_of_scope",
                   "feedback_helpful", "feedback_not_helpful", "report_crisis",
                   "report_red_flag", "no_warning_signs", "seen_doctor", "other_language",
                   "bot_challenge"})
FALLBACK_INTENT = "nlu_fallback"
# Never taken away from the safety net.
KEPT = frozenset({"report_crisis", "report_red_flag"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")
_QUESTION = re.compile(r"\?\s*$|^\s*(what|how|why|when|where|which|can|could|does|do|is|are|"
                       r"should|would|will|any|anything)\b", re.IGNORECASE)


def focus_sentence(text: str, questions_only: bool = True) -> Optional[str]:
    """The last question among the message's sentences, when there are two or more;
    without a question, the last sentence unless `questions_only`."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    if len(sentences) < 2:
        return None
    for sentence in reversed(sentences):
        if _QUESTION.search(sentence) and len(sentence.split()) >= 2:
            return sentence
    return None if questions_only else sentences[-1]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class FocusSentenceClassifier(GraphComponent):
    """`components.focus_sentence.FocusSentenceClassifier` in config.yml, after the
    intent classifier and before the FallbackClassifier."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"threshold": 0.5, "whole_threshold": 0.55, "C": 10.0, "random_state": 42,
                "alike": [sorted(STORIES)]}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage,
                 resource: Resource, classes: Optional[np.ndarray] = None,
                 coef: Optional[np.ndarray] = None,
                 intercept: Optional[np.ndarray] = None) -> None:
        self.config, self.model_storage, self.resource = config, model_storage, resource
        self.classes, self.coef, self.intercept = classes, coef, intercept

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "FocusSentenceClassifier":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.linear_model import LogisticRegression

        examples = [m for m in training_data.intent_examples
                    if m.get(TEXT) and not m.get(TEXT).startswith(INTENT_MESSAGE_PREFIX)]
        texts = [m.get(TEXT) for m in examples]
        vectors = np.vstack([shared_encoder().encode(texts[i:i + 64])
                             for i in range(0, len(texts), 64)])
        model = LogisticRegression(C=self.config["C"], max_iter=1000,
                                   random_state=self.config["random_state"])
        model.fit(vectors, [m.get(INTENT) for m in examples])
        self.classes = np.array(model.classes_)
        self.coef = np.ascontiguousarray(model.coef_.T, dtype=np.float32)
        self.intercept = model.intercept_.astype(np.float32)
        with self.model_storage.write_to(self.resource) as directory:
            np.savez(directory / FILE, classes=self.classes, coef=self.coef,
                     intercept=self.intercept)
        return self.resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any
             ) -> "FocusSentenceClassifier":
        with model_storage.read_from(resource) as directory:
            stored = np.load(directory / FILE, allow_pickle=False)
            return cls(config, model_storage, resource, stored["classes"], stored["coef"],
                       stored["intercept"])

    def probabilities(self, sentence: str) -> Dict[str, float]:
        scores = shared_encoder().encode([sentence])[0] @ self.coef + self.intercept
        scores = np.exp(scores - scores.max())
        return dict(zip(self.classes.tolist(), (scores / scores.sum()).tolist()))

    def _best(self, sentence: str) -> Tuple[str, float]:
        return max(self.probabilities(sentence).items(), key=lambda item: item[1])

    def process(self, messages: List[Message]) -> List[Message]:
        if self.coef is None:
            return messages
        for message in messages:
            self._process_one(message)
        return messages

    def _process_one(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        whole = message.get(INTENT) or {}
        name = whole.get(INTENT_NAME_KEY)
        confidence = whole.get(PREDICTED_CONFIDENCE_KEY) or 0.0
        if text.startswith(INTENT_MESSAGE_PREFIX):
            return
        if name in KEPT:
            # The safety net decides; its check then carries on with the question's
            # answer (actions/screening.py reads FOCUS_KEY), not the whole message's.
            sentence = focus_sentence(text)
            if sentence is not None:
                focus, focus_confidence = self._best(sentence)
                if focus not in NEVER and focus not in STORIES \
                        and focus_confidence >= self.config["threshold"]:
                    message.set(FOCUS_KEY, {INTENT_NAME_KEY: focus,
                                            PREDICTED_CONFIDENCE_KEY: focus_confidence},
                                add_to_output=True)
            return
        unsure = confidence < self.config["whole_threshold"] or name in OPENERS
        if not unsure and name not in STORY_INTENTS:
            return
        if unsure and self._alike_agree(message):
            return
        sentence = focus_sentence(text, questions_only=not unsure)
        if sentence is None:
            return
        focus, focus_confidence = self._best(sentence)
        if focus in NEVER or (focus in STORIES and not unsure) \
                or (focus == name and (not unsure or focus_confidence <= confidence)) \
                or focus_confidence < self.config["threshold"]:
            return
        self._choose(message, focus, focus_confidence)

    def _alike_agree(self, message: Message) -> bool:
        """"I coach football and my back's gone stiff from standing on the touchline":
        unsure only between two intents answered alike (describe_pain, share_context).
        Together they are sure enough: the first is taken."""
        ranking = [item for item in message.get(INTENT_RANKING_KEY) or []
                   if item.get(INTENT_NAME_KEY) != FALLBACK_INTENT][:2]
        if len(ranking) < 2:
            return False
        pair = {item[INTENT_NAME_KEY] for item in ranking}
        if not any(pair <= set(group) for group in self.config["alike"]):
            return False
        together = sum(item[PREDICTED_CONFIDENCE_KEY] for item in ranking)
        if together < self.config["whole_threshold"]:
            return False
        self._choose(message, ranking[0][INTENT_NAME_KEY], together)
        return True

    @staticmethod
    def _choose(message: Message, focus: str, focus_confidence: float) -> None:
        # The question's reading first; the whole message's after it, scaled below it,
        # so that the FallbackClassifier's ambiguity check compares like with like.
        rest = [{**item, PREDICTED_CONFIDENCE_KEY:
                 item[PREDICTED_CONFIDENCE_KEY] * (1.0 - focus_confidence)}
                for item in message.get(INTENT_RANKING_KEY) or []
                if item.get(INTENT_NAME_KEY) != focus]
        chosen = {INTENT_NAME_KEY: focus, PREDICTED_CONFIDENCE_KEY: focus_confidence}
        message.set(INTENT, chosen, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [chosen, *rest], add_to_output=True)
