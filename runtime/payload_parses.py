"""A button's payload is understood once per model, not at every click.

Rasa reads a message like `/ask_exercise{"exercise":"clamshell"}` with its
RegexMessageHandler, which runs after the whole NLU pipeline and replaces everything the
pipeline found with the payload's intent and entities. The pipeline still runs on the
payload text first (spaCy, featurizers, classifier, CRF, the red-flag matcher): 4-5 ms
per click, for an answer fixed by the text alone. The payload gate
(channels/payloads.py) lets only the payloads of this bot's own buttons reach Rasa as
payloads, a few dozen texts, so `install()` makes the processor keep the graph's own
parse of each of them, per loaded model, and hand out a copy. Any other text goes
through the graph as before.

Same parses as the graph's (tests/test_payload_parses.py).
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.trackers import DialogueStateTracker

from channels.payloads import allowed_payloads

_rasa_parse = MessageProcessor._parse_message_with_graph


def parse_message_with_graph(self: MessageProcessor, message: UserMessage,
                             tracker: DialogueStateTracker,
                             only_output_properties: bool = True) -> Dict[Text, Any]:
    """Rasa's `_parse_message_with_graph`, remembering the parse of a button's payload."""
    text = message.text
    if not only_output_properties or not isinstance(text, str) \
            or text not in allowed_payloads():
        return _rasa_parse(self, message, tracker, only_output_properties)
    # In the processor itself: a new model is a new processor.
    parses: Dict[Text, Dict[Text, Any]] = self.__dict__.setdefault("_payload_parses", {})
    parsed = parses.get(text)
    if parsed is None:
        parsed = parses[text] = _rasa_parse(self, message, tracker, True)
    return copy.deepcopy(parsed)  # Rasa and the policies may change what they are given


def install() -> None:
    MessageProcessor._parse_message_with_graph = parse_message_with_graph
