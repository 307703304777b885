"""Rasa's RulePolicy, with the rules that match a conversation's recent states remembered.

For every action it predicts, RulePolicy tests each of its rules against the
conversation's states, turn by turn, one JSON-decoded rule at a time: with a hundred
rules this was the policy's largest cost (py-spy, README "Benchmark"). Which rules match
depends only on the rules, which a trained model never changes, and on as many of the
latest states as the longest rule has (Rasa counts a rule as matching once it has gone
back further than the rule is long). A clinic's conversations meet the same few hundred
such recent states again and again, so a loaded policy remembers the matching rules per
recent states (least recently used dropped first). Training is Rasa's, without the
memory: it edits its rules as it goes.

For each prediction RulePolicy also turns the conversation into states twice, once
with the text and once with the intent of the last message, replaying every event of the
tracker each time (the policy's largest cost after the rules). The states before that
choice are the same both times: a loaded policy keeps those of the tracker it last saw,
as long as the tracker has the same events, and hands out copies (Rasa edits the last
state in place).

Same rules chosen, same states, same predictions (tests/test_rule_policy.py).
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Set, Text, Tuple

from rasa.core.policies.rule_policy import RulePolicy as RasaRulePolicy
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.trackers import DialogueStateTracker

from runtime import fast_json

REMEMBERED_STATES = 4096  # a few MB at most


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class CachedRulePolicy(RasaRulePolicy):
    """`components.rule_policy.CachedRulePolicy` in config.yml."""

    # (id of the rule lookup, the recent states as JSON) -> the keys of the rules that
    # match; None: not remembering (training)
    _matches: Optional["OrderedDict[Tuple[int, Text], frozenset]"] = None

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "CachedRulePolicy":
        policy = super().load(config, model_storage, resource, execution_context, **kwargs)
        policy._matches = OrderedDict()
        # id -> (lookup, its longest rule in states); holding the lookup keeps ids unique
        policy._lookups = {}
        policy._remember_states()
        return policy

    def _remember_states(self) -> None:
        """Make this policy's featurizer keep the states of the tracker it saw last."""
        featurizer = self.featurizer
        create_states = featurizer._create_states
        last: List[Any] = [None, None, None]  # tracker (weak), its key, its states

        def remembered(tracker: DialogueStateTracker, domain: Domain,
                       omit_unset_slots: bool = False, ignore_rule_only_turns: bool = False,
                       rule_only_data: Optional[Dict[Text, Any]] = None) -> List[State]:
            events = tracker.events
            key = (len(events), id(events[-1]) if events else None, id(domain),
                   omit_unset_slots, ignore_rule_only_turns,
                   fast_json.dumps(rule_only_data, sort_keys=True))
            if last[0] is None or last[0]() is not tracker or last[1] != key:
                last[:] = [weakref.ref(tracker), key, create_states(
                    tracker, domain, omit_unset_slots=omit_unset_slots,
                    ignore_rule_only_turns=ignore_rule_only_turns,
                    rule_only_data=rule_only_data)]
            return [{name: dict(sub_state) for name, sub_state in state.items()}
                    for state in last[2]]

        featurizer._create_states = remembered

    def _depth(self, lookup: Dict[Text, Text]) -> int:
        known = self._lookups.get(id(lookup))
        if known is None:
            depth = max((len(self._rule_key_to_state(key)) for key in lookup), default=0)
            known = self._lookups[id(lookup)] = (lookup, depth)
        return known[1]

    def _get_possible_keys(self, lookup: Dict[Text, Text], states: List[State]) -> Set[Text]:
        if self._matches is None:
            return super()._get_possible_keys(lookup, states)
        depth = self._depth(lookup)
        recent = states[-depth:] if depth else []
        key = (id(lookup), fast_json.dumps(recent, sort_keys=True))
        keys = self._matches.get(key)
        if keys is None:
            keys = self._matches[key] = frozenset(super()._get_possible_keys(lookup, recent))
            if len(self._matches) > REMEMBERED_STATES:
                self._matches.popitem(last=False)
        else:
            self._matches.move_to_end(key)
        return set(keys)
