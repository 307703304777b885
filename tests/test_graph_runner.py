"""runtime/graph_runner.py: Rasa's model graph run in order, without dask's scheduler,
gives exactly what Rasa's DaskGraphRunner gives, on the trained model."""
from __future__ import annotations

from pathlib import Path

import pytest
import rasa.core.processor
from rasa.core.channels.channel import UserMessage
from rasa.engine import loader
from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from runtime import graph_runner
from runtime.graph_runner import SequentialGraphRunner

MODEL = Path(__file__).resolve().parents[1] / "models" / "assistant.tar.gz"
pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")

# Typed questions, a red flag, nonsense and button payloads (with and without entities).
TEXTS = ["hi", "what is the piriformis", "how do I do a clamshell", "/book_appointment",
         '/ask_exercise{"exercise":"glute_bridge"}', "blorp fizzle wug",
         "I can't feel my legs and I wet myself", "thanks", "teach me the fire hydrant",
         "what's the weather in Paris tomorrow", "bye"]


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    """The trained model loaded twice: with Rasa's runner and with ours."""
    loaded = {}
    for runner_class in (DaskGraphRunner, SequentialGraphRunner):
        metadata, runner = loader.load_predict_graph_runner(
            tmp_path_factory.mktemp(runner_class.__name__), MODEL, LocalModelStorage,
            runner_class)
        loaded[runner_class] = runner
    return metadata, loaded[DaskGraphRunner], loaded[SequentialGraphRunner]


def parse(runner, metadata, text, tracker):
    results = runner.run(inputs={PLACEHOLDER_MESSAGE: [UserMessage(text)],
                                 PLACEHOLDER_TRACKER: tracker},
                         targets=[metadata.nlu_target])
    return results[metadata.nlu_target][0].as_dict(only_output_properties=True)


def predict(runner, metadata, tracker):
    results = runner.run(inputs={PLACEHOLDER_TRACKER: tracker},
                         targets=[metadata.core_target])
    prediction = results[metadata.core_target]
    return (prediction.probabilities, prediction.policy_name, prediction.events,
            prediction.optional_events, prediction.is_end_to_end_prediction)


def test_same_parses_and_predictions_through_a_conversation(runners):
    metadata, dask_runner, ours = runners
    domain = metadata.domain
    tracker = DialogueStateTracker.from_events("graph-runner", [ActionExecuted("action_listen")],
                                               slots=domain.slots)
    predicted = []
    for text in TEXTS:
        parsed = parse(dask_runner, metadata, text, tracker)
        assert parse(ours, metadata, text, tracker) == parsed, text
        tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
        for _ in range(3):  # the actions Rasa would run for this message, up to listening
            expected = predict(dask_runner, metadata, tracker)
            assert predict(ours, metadata, tracker) == expected, text
            action = domain.action_names_or_texts[max(
                range(len(expected[0])), key=expected[0].__getitem__)]
            tracker.update(ActionExecuted(action, policy=expected[1]))
            predicted.append(action)
            if action == "action_listen":
                break
    assert {"action_urgent_care", "action_exercise_instructions", "action_answer_faq",
            "action_out_of_scope"} <= set(predicted)


def test_errors_are_rasas(runners):
    metadata, _, ours = runners
    with pytest.raises(GraphRunError, match="Inputs missing"):
        ours.run(inputs={}, targets=[metadata.nlu_target])
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        ours.run(inputs={metadata.nlu_target: None}, targets=[metadata.nlu_target])


def test_rasa_loads_models_with_it_once_installed(monkeypatch):
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", DaskGraphRunner)
    graph_runner.install()
    _, _, runner = rasa.core.processor.MessageProcessor._load_model(MODEL)
    assert type(runner) is SequentialGraphRunner
