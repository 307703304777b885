"""components/count_vectors.py: Rasa's count-vector features for whole texts, without
the per-token ones; labels featurized as Rasa does."""
from __future__ import annotations

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer,
)
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.count_vectors import SentenceCountVectorsFeaturizer

EXAMPLES = [("how do I do a clamshell", "ask_exercise"), ("what is the piriformis", "faq"),
            ("my glutes hurt when I walk", "faq"), ("book me in next week", "book"),
            ("hi there", "greet"), ("show me the glute bridge", "ask_exercise")]
NEW = ["how do I do the bridge", "piriformus hurts", "zzz unknown words", "hi"]


def tokenized(messages):
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    tokenizer.process_training_data(TrainingData(messages))
    return messages


@pytest.mark.parametrize("config", [{"ngram_range": [1, 2]},
                                    {"analyzer": "char_wb", "min_ngram": 2, "max_ngram": 4}])
def test_same_sentence_features_no_sequence_features_for_texts(tmp_path, config):
    featurizers = {}
    for cls in (CountVectorsFeaturizer, SentenceCountVectorsFeaturizer):
        featurizer = cls.create({**cls.get_default_config(), **config},
                                LocalModelStorage(tmp_path), Resource(cls.__name__),
                                ExecutionContext(graph_schema=None, node_name=cls.__name__))
        featurizer.train(TrainingData(tokenized(
            [Message(data={TEXT: text, INTENT: intent}) for text, intent in EXAMPLES])))
        featurizers[cls] = featurizer
    for text in NEW + [text for text, _ in EXAMPLES]:
        rasas, ours = (featurizers[cls].process(tokenized([Message(data={TEXT: text})]))[0]
                       for cls in (CountVectorsFeaturizer, SentenceCountVectorsFeaturizer))
        (rasa_sequence, rasa_sentence), (our_sequence, our_sentence) = (
            m.get_sparse_features(TEXT) for m in (rasas, ours))
        assert rasa_sequence is not None and our_sequence is None
        assert our_sentence.features.dtype == rasa_sentence.features.dtype
        np.testing.assert_array_equal(our_sentence.features.toarray(),
                                      rasa_sentence.features.toarray())
    # Labels (word analyzer only) keep their sequence features.
    labels = {}
    for cls in (CountVectorsFeaturizer, SentenceCountVectorsFeaturizer):
        label = Message(data={INTENT: "faq"})
        featurizers[cls].process_training_data(TrainingData(tokenized([label])))
        labels[cls] = label.get_sparse_features(INTENT)[0]
    if config.get("analyzer") == "char_wb":
        assert labels[CountVectorsFeaturizer] is labels[SentenceCountVectorsFeaturizer] is None
    else:
        np.testing.assert_array_equal(labels[CountVectorsFeaturizer].features.toarray(),
                                      labels[SentenceCountVectorsFeaturizer].features.toarray())
