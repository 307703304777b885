"""Rasa's CountVectorsFeaturizer, without the per-token features nothing here reads.

For each message text Rasa's featurizer runs its vectorizer twice: once per token (the
"sequence" features, for DIET and the CRF) and once over the whole text (the "sentence"
features). Our intent classifier (components/intent_classifier.py) reads only sentence
features, and the CRF only the lexical featurizer's (config.yml), so for texts this
featurizer makes the sentence features alone: the same numbers, half the work (the
featurizers were the pipeline's largest cost, py-spy, README "Benchmark"). Labels
(intents, action names), which have sequence features only, are featurized as Rasa does.
"""
from __future__ import annotations

from typing import List, Optional, Text, Tuple

import scipy.sparse
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
    CountVectorsFeaturizer as RasaCountVectorsFeaturizer,
)

Matrices = List[Optional[scipy.sparse.spmatrix]]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True
)
class SentenceCountVectorsFeaturizer(RasaCountVectorsFeaturizer):
    """`components.count_vectors.SentenceCountVectorsFeaturizer` in config.yml."""

    def _create_features(self, attribute: Text, all_tokens: List[List[Text]]
                         ) -> Tuple[Matrices, Matrices]:
        vectorizer = self.vectorizers.get(attribute)
        if attribute not in DENSE_FEATURIZABLE_ATTRIBUTES or not vectorizer:
            return super()._create_features(attribute, all_tokens)
        sentence_features: Matrices = []
        for tokens in all_tokens:
            if not tokens:
                sentence_features.append(None)
                continue
            # As Rasa computes its sentence features.
            sentence_vec = vectorizer.transform([" ".join(tokens)])
            sentence_vec.sort_indices()
            sentence_features.append(sentence_vec.tocoo())
        return [None] * len(all_tokens), sentence_features
