"""components/intent_classifier.py: Rasa's logistic regression, with column-major weights."""
from __future__ import annotations

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.intent_classifier import ColumnMajorLogisticRegressionClassifier

INTENTS = [f"intent_{n}" for n in range(12)]
FEATURES = 5000


def messages(rng: np.random.Generator, count: int) -> list:
    """Messages with sparse sentence features (like count vectors) and intents."""
    result = []
    for n in range(count):
        intent = INTENTS[n % len(INTENTS)]
        row = scipy.sparse.random(1, FEATURES, density=0.004, random_state=rng).tocoo()
        row.data[:] = 1.0
        message = Message(data={TEXT: f"text {n}", "intent": intent})
        message.add_features(Features(row, FEATURE_TYPE_SENTENCE, TEXT, "cv"))
        result.append(message)
    return result


def test_it_trains_and_predicts_exactly_like_rasas_classifier(tmp_path):
    rng = np.random.default_rng(0)
    training, new = TrainingData(messages(rng, 240)), messages(rng, 40)
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, node_name="lr")
    config = {**LogisticRegressionClassifier.get_default_config(), "random_state": 42}
    ours = ColumnMajorLogisticRegressionClassifier.create(
        config, storage, Resource("ours"), context)
    rasa = LogisticRegressionClassifier.create(config, storage, Resource("rasa"), context)
    ours.train(training)
    rasa.train(training)
    loaded = ColumnMajorLogisticRegressionClassifier.load(config, storage, Resource("ours"),
                                                          context)
    for component in (ours, loaded):
        assert component.clf.coef_.flags.f_contiguous
        np.testing.assert_array_equal(component.clf.coef_, rasa.clf.coef_)
    def rankings(component) -> list:
        copies = [Message(m.data.copy(), features=m.features) for m in new]
        return [m.get("intent_ranking") for m in component.process(copies)]

    theirs = rankings(rasa)
    for component in (ours, loaded):
        got = rankings(component)
        assert [[r["name"] for r in ranking] for ranking in got] == \
               [[r["name"] for r in ranking] for ranking in theirs]
        np.testing.assert_allclose([[r["confidence"] for r in ranking] for ranking in got],
                                   [[r["confidence"] for r in ranking] for ranking in theirs],
                                   rtol=1e-12)
