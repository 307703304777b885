"""components/rule_policy.py: the trained model's rule policy, remembering which rules
match which states, finds the rules Rasa's RulePolicy finds."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from rasa.core.policies.policy import SupportedData
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine import loader
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.rule_policy import CachedRulePolicy
from runtime.graph_runner import SequentialGraphRunner

MODEL = Path(__file__).resolve().parents[1] / "models" / "assistant.tar.gz"
pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    metadata, runner = loader.load_predict_graph_runner(
        tmp_path_factory.mktemp("model"), MODEL, LocalModelStorage, SequentialGraphRunner)
    [policy] = [node._component for node in runner._instantiated_nodes.values()
                if isinstance(getattr(node, "_component", None), CachedRulePolicy)]
    return policy, metadata.domain


def trackers(domain):
    """Every intent of the domain after a greeting, with and without an entity and a slot
    set, then the next action; and the same after the assistant's answer."""
    for intent in domain.intents:
        for extra in ([], [SlotSet("exercise", "clamshell")]):
            events = [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet"}),
                      ActionExecuted("utter_greet"), ActionExecuted("action_listen"), *extra,
                      UserUttered("text", {"name": intent},
                                  [{"entity": "exercise", "value": "clamshell"}] if extra
                                  else [])]
            yield DialogueStateTracker.from_events(intent, events, slots=domain.slots)
            yield DialogueStateTracker.from_events(
                intent, events + [ActionExecuted("action_answer_faq")], slots=domain.slots)


def states_to_match(policy, domain):
    """The states of those trackers, and each one's last state after the history of
    another (rules look at earlier turns too, so memory keyed on less would be wrong)."""
    real = [policy._prediction_states(tracker, domain,
                                      rule_only_data=policy._get_rule_only_data())
            for tracker in trackers(domain)]
    mixed = [other[:-1] + states[-1:] for states, other in zip(real, real[7:] + real[:7])]
    return real + mixed


def test_same_rules_as_rasas_rule_policy(trained):
    policy, domain = trained
    all_states = states_to_match(policy, domain)
    by_last_state = {}
    for round_ in range(2):  # first from Rasa's matching, then from memory
        for states in all_states:
            for lookup in policy.lookup.values():
                if not isinstance(lookup, dict):
                    continue
                expected = RulePolicy._get_possible_keys(policy, lookup, states)
                assert policy._get_possible_keys(lookup, states) == expected
                by_last_state.setdefault(json.dumps(states[-1:], sort_keys=True),
                                         set()).add(frozenset(expected))
    assert sum(bool(keys) for keys in by_last_state) > len(domain.intents)
    # Some last states match different rules after different histories.
    assert any(len(matches) > 1 for matches in by_last_state.values())
    assert len(policy._matches) > len(domain.intents)


def test_same_predictions_as_rasas_rule_policy(trained):
    policy, domain = trained
    for tracker in trackers(domain):
        ours = policy.predict_action_probabilities(tracker, domain)
        policy._matches.clear()  # Rasa's matching only
        assert ours.probabilities == policy.predict_action_probabilities(
            tracker, domain).probabilities


def test_it_forgets_the_least_recently_used_states(trained, monkeypatch):
    policy, domain = trained
    monkeypatch.setattr("components.rule_policy.REMEMBERED_STATES", 5)
    policy._matches.clear()
    for tracker in trackers(domain):
        policy.predict_action_probabilities(tracker, domain)
        assert len(policy._matches) <= 5


def rasas_states(policy, tracker, domain, text, rule_only):
    """What RulePolicy._prediction_states gives, from a featurizer without the memory."""
    fresh = copy.copy(policy.featurizer)
    del fresh.__dict__["_create_states"]
    ml_only = policy.supported_data() == SupportedData.ML_DATA  # as Rasa's policy asks
    return fresh.prediction_states([tracker], domain, use_text_for_last_user_input=text,
                                   ignore_rule_only_turns=ml_only, rule_only_data=rule_only,
                                   ignore_action_unlikely_intent=ml_only)[0]


def test_states_are_made_once_per_tracker_and_handed_out_as_copies(trained, monkeypatch):
    policy, domain = trained
    made = []
    rasa_create = type(policy.featurizer)._create_states

    def counted(tracker, *args, **kwargs):
        made.append(tracker.sender_id)
        return rasa_create(tracker, *args, **kwargs)  # a staticmethod

    monkeypatch.setattr(policy.featurizer, "_create_states", counted)
    policy._remember_states()  # remembering what the counted one makes
    rule_only = policy._get_rule_only_data()
    for tracker in trackers(domain):
        made.clear()
        for text in (True, False, True):
            states = policy._prediction_states(tracker, domain, text, rule_only)
            assert states == rasas_states(policy, tracker, domain, text, rule_only)
            states[-1].clear()  # Rasa edits the last state: the next must not see it
        assert made == [tracker.sender_id]  # once for the three calls
        tracker.update(ActionExecuted("action_listen"))  # new events: made again
        assert policy._prediction_states(tracker, domain, False, rule_only) == \
            rasas_states(policy, tracker, domain, False, rule_only)
        assert made == [tracker.sender_id] * 2
