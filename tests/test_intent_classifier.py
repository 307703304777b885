"""components/intent_classifier.py: Rasa's logistic regression, with column-major weights."""
from __future__ import annotations

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.intent_classifier import ColumnMajorLogisticRegressionClassifier

INTENTS = [f"intent_{n}" for n in range(12)]
FEATURES = 5000


def messages(rng: np.random.Generator, count: int) -> list:
    """Messages with features like our pipeline's: two count-vector rows (integers), a
    regex row (floats), sequence features (ignored), a dense row with zeros; and intents."""
    result = []
    for n in range(count):
        message = Message(data={TEXT: f"text {n}", "intent": INTENTS[n % len(INTENTS)]})
        for origin, size, dtype in (("words", FEATURES, np.int64), ("regex", 7, np.float64),
                                    ("chars", 2 * FEATURES, np.int64)):
            row = scipy.sparse.random(1, size, density=0.004 if size > 7 else 0.3,
                                      random_state=rng, dtype=np.float64).tocoo()
            row.data[:] = rng.integers(1, 4, row.nnz)
            message.add_features(Features(row.astype(dtype), FEATURE_TYPE_SENTENCE, TEXT,
                                          origin))
        tokens = scipy.sparse.random(3, 20, density=0.2, random_state=rng).tocoo()
        message.add_features(Features(tokens, FEATURE_TYPE_SEQUENCE, TEXT, "lexical"))
        dense = rng.normal(size=(1, 30)).astype(np.float32)
        dense[0, rng.integers(0, 30, 5)] = 0.0
        message.add_features(Features(dense, FEATURE_TYPE_SENTENCE, TEXT, "spacy"))
        result.append(message)
    return result


def test_the_feature_matrix_is_rasas(tmp_path):
    rng = np.random.default_rng(1)
    batch = messages(rng, 9)
    component = ColumnMajorLogisticRegressionClassifier.create(
        LogisticRegressionClassifier.get_default_config(), LocalModelStorage(tmp_path),
        Resource("lr"), ExecutionContext(graph_schema=None, node_name="lr"))
    ours, rasas = (component._create_X(batch),
                   LogisticRegressionClassifier._create_X(component, batch))
    assert ours.shape == rasas.shape == (9, FEATURES * 3 + 7 + 30)
    assert ours.dtype == rasas.dtype
    np.testing.assert_array_equal(ours.toarray(), rasas.toarray())
    assert ours.nnz == rasas.nnz


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
