"""Rasa's LogisticRegressionClassifier, made cheap per message; training is Rasa's.

- scikit-learn scores a message as `X @ coef_.T`. `coef_` is row-major (one row per
  intent, one column per feature: tens of thousands with the character n-grams), so
  `coef_.T` is column-major and scipy copies the whole matrix to multiply it with a
  sparse row: about 2 ms for every message. Storing `coef_` column-major makes `coef_.T`
  row-major, so the product reads only the message's few non-zero features.
- Rasa builds `X` (a message's sentence-level sparse features side by side, then its
  dense ones) through half a dozen scipy constructions and a deep copy per message;
  `_create_X` writes the same matrix straight from the features' non-zero entries.

Same matrix, same numbers, same predictions (tests/test_intent_classifier.py).
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import (
    LogisticRegressionClassifier as RasaLogisticRegressionClassifier,
)
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
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

    def _create_X(self, messages: List[Message]) -> scipy.sparse.csr_matrix:
        """One row per message: its sparse sentence features in the order the featurizers
        added them, then its dense ones (Rasa's layout), from their non-zero entries."""
        indptr, indices, data, dtypes = [0], [], [], []
        width = None
        for message in messages:
            sentence = [f.features for f in message.features
                        if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE]
            offset, entries = 0, 0
            for matrix in [m for m in sentence if scipy.sparse.issparse(m)]:
                row = matrix.tocoo()
                indices.append(row.col + offset)
                data.append(row.data)
                dtypes.append(row.dtype)
                offset, entries = offset + row.shape[1], entries + row.nnz
            for matrix in [m for m in sentence if not scipy.sparse.issparse(m)]:
                values = np.asarray(matrix).ravel()
                nonzero = np.flatnonzero(values)
                indices.append(nonzero + offset)
                data.append(values[nonzero])
                dtypes.append(values.dtype)
                offset, entries = offset + values.size, entries + nonzero.size
            if width is not None and offset != width:
                raise ValueError(f"messages with {width} and with {offset} features")
            width = offset
            indptr.append(indptr[-1] + entries)
        dtype = np.result_type(*dtypes) if dtypes else np.float64
        matrix = scipy.sparse.csr_matrix(
            (np.concatenate(data).astype(dtype) if data else np.zeros(0, dtype),
             np.concatenate(indices) if indices else np.zeros(0, np.int32), indptr),
            shape=(len(messages), width or 0))
        matrix.sum_duplicates()  # canonical, as scipy's conversions leave it: same sums
        return matrix
