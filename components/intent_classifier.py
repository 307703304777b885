"""Rasa's LogisticRegressionClassifier, with its coefficients laid out for fast scoring.

scikit-learn scores a message as `X @ coef_.T`. `coef_` is row-major (one row per intent,
one column per feature: tens of thousands with the character n-grams), so `coef_.T` is
column-major and scipy copies the whole matrix to multiply it with a sparse row: about
2 ms for every message, most of the classifier's time. Storing `coef_` column-major makes
`coef_.T` row-major, so the product reads only the message's few non-zero features. Same
numbers, same predictions (tests/test_intent_classifier.py); training is Rasa's.
"""
from __future__ import annotations

from typing import Any, Dict, Text

import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import (
    LogisticRegressionClassifier as RasaLogisticRegressionClassifier,
)
from rasa.shared.nlu.training_data.training_data import TrainingData


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class ColumnMajorLogisticRegressionClassifier(RasaLogisticRegressionClassifier):
    """`components.intent_classifier.ColumnMajorLogisticRegressionClassifier` in config.yml
    (Rasa registers components by class name, so it needs a name of its own)."""

    def _column_major(self) -> None:
        coef = getattr(getattr(self, "clf", None), "coef_", None)
        if coef is not None:
            self.clf.coef_ = np.asfortranarray(coef)

    def train(self, training_data: TrainingData) -> Resource:
        resource = super().train(training_data)
        self._column_major()
        return resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any
             ) -> "ColumnMajorLogisticRegressionClassifier":
        component = super().load(config, model_storage, resource, execution_context, **kwargs)
        component._column_major()
        return component
