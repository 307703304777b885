"""What every channel does to a user's text before Rasa sees it.

1. Control characters are removed (newlines and tabs stay; `\\r\\n` becomes `\\n`), as are
   lone UTF-16 surrogates, which JSON allows but no store or channel can encode.
2. The payload gate. Rasa reads a message that starts with "/" as `/intent{entities}`
   and believes it (confidence 1.0, any entity, even an internal intent such as
   `/session_start`). Such a message reaches Rasa as a payload only if it is exactly
   one that a button of this bot offers; anything else typed with a leading "/" loses
   its slashes and is understood as plain text by the NLU pipeline.
3. Messages longer than MAX_MESSAGE_CHARS are cut to that length, and the user is told
   after the answer (REST rejects them with 413 instead, see channels/rest.py). The
   safety net reads the whole message first: a warning sign beyond the cut is moved
   into what Rasa reads (`excerpt`), so it still gets the urgent-care or crisis reply
   (REST accepts such a message instead of refusing it).
4. A message with nothing left to read (blank, or only slashes) never reaches Rasa: the
   NLU pipeline fails on empty text (the classifier gets no features), so the user would
   hear nothing. The channel answers EMPTY_REPLY itself (REST: 400).

The allow-list is derived from the code and data that make the buttons, so it cannot
drift from them: the web widget's initPayload, every button in domain.yml's responses,
every `"payload"` in actions/*.py that is built from string constants only (`"/x"`, `f"/{INTENT}"`), and the
payloads of the functions in actions/ that build buttons from the content files
(`faq_button` for every FAQ, `exercise_button` for every exercise, `detail_button` for
every follow-up about every exercise). A new function in
actions/ that builds payloads at run time stops Rasa at start-up until it is added to
PAYLOAD_BUILDERS below; so does a payload whose intent is not in domain.yml.
"""
from __future__ import annotations

import ast
import json
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, \
    Set, Tuple

import yaml
from rasa.core.channels.channel import UserMessage
from rasa.shared.constants import INTENT_MESSAGE_PREFIX

from channels import backpressure
from privacy import log_redaction
from stores.spool import SpoolError
from components.content_importer import content_intents

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_FILE = ROOT / "domain.yml"
ACTIONS_DIR = ROOT / "actions"
# The web widget opens every conversation by sending its initPayload (e.g. "/greet").
WIDGET_FILE = ROOT / "web" / "static" / "widget.js"
_INIT_PAYLOAD = re.compile(r"""initPayload:\s*["']([^"']+)["']""")

# About 350 words: room for a long description of symptoms, and it bounds the NLU cost.
MAX_MESSAGE_CHARS = 2000
TRUNCATED_NOTICE = (f"Your message was very long, so I only read its first "
                    f"{MAX_MESSAGE_CHARS:,} characters. Please send anything else as a "
                    f"separate, shorter message.")
NOT_STORED_REPLY = ("Sorry, I couldn't take that message just now. Please send it again "
                    "in a minute.")


class NotStored(RuntimeError):
    """The message could not be stored (stores/spool.py's SpoolError): REST answers 503."""


EMPTY_REPLY = ("I didn't get any text there. Please type your question about lower back "
               "pain, the glutes or booking a visit.")
# Sender / session ids key the tracker store (SQL column of 255 characters).
MAX_ID_CHARS = 128

# Cc except tab and newline (\r is turned into \n first), and lone surrogates (Cs).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# Conversation ids: every control character (newlines too) and lone surrogates.
_ID_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Rasa's own syntax: /intent, optionally @confidence, optionally {entities}.
_PAYLOAD = re.compile(r"^/(?P<intent>[^{@]+?)(?P<entities>\{.*\})?$", re.DOTALL)

NO_COMMANDS: Mapping[str, str] = MappingProxyType({})


class PayloadSourceError(RuntimeError):
    """A button payload that the gate cannot enumerate, or one that Rasa cannot parse."""


def _faq_payloads() -> Iterable[str]:
    from actions import content
    from actions.buttons import faq_button

    return (faq_button(faq_id)["payload"] for faq_id in content.faqs())


def _exercise_payloads() -> Iterable[str]:
    from actions import content
    from actions.exercises import exercise_button

    return (exercise_button(exercise_id)["payload"] for exercise_id in content.exercises())


def _detail_payloads() -> Iterable[str]:
    from actions import content
    from actions.exercise_followups import DETAILS, detail_button

    return (detail_button(intent, exercise_id)["payload"]
            for intent in DETAILS for exercise_id in content.exercises())


# Functions in actions/ that build a payload at run time, and every payload they can build.
PAYLOAD_BUILDERS: Mapping[str, Callable[[], Iterable[str]]] = MappingProxyType({
    "faq_button": _faq_payloads,
    "exercise_button": _exercise_payloads,
    "detail_button": _detail_payloads,
})


def _module_constants(tree: ast.Module) -> Dict[str, str]:
    """Module-level string constants: `A = "x"` and `A, B = "x", "y"`."""
    constants: Dict[str, str] = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = zip(target.elts, node.value.elts) if isinstance(target, ast.Tuple) and \
                isinstance(node.value, ast.Tuple) else [(target, node.value)]
            for name, value in pairs:
                if isinstance(name, ast.Name) and isinstance(value, ast.Constant) \
                        and isinstance(value.value, str):
                    constants[name.id] = value.value
    return constants


def _fold(node: ast.expr, constants: Mapping[str, str]) -> Optional[str]:
    """The string `node` always evaluates to, if it is built from constants only."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.JoinedStr):  # f"/{INTENT}"
        parts = [_fold(value.value if isinstance(value, ast.FormattedValue)
                       and value.conversion == -1 and value.format_spec is None else value,
                       constants) for value in node.values]
        return None if None in parts else "".join(parts)  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _fold(node.left, constants), _fold(node.right, constants)
        return None if left is None or right is None else left + right
    return None


class _PayloadFinder(ast.NodeVisitor):
    """Finds `"payload": ...` in dict literals and `payload=...` in calls."""

    def __init__(self, path: Path, constants: Mapping[str, str]) -> None:
        self.path = path
        self.constants = constants
        self.literals: Set[str] = set()
        self.builders: Set[str] = set()
        self.unknown: List[str] = []
        self._functions: List[str] = []

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._functions.append(node.name)
        self.generic_visit(node)
        self._functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value == "payload":
                self._found(value)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg == "payload":
                self._found(keyword.value)
        self.generic_visit(node)

    def _found(self, value: ast.expr) -> None:
        literal = _fold(value, self.constants)
        if literal is not None:
            self.literals.add(literal)
            return
        function = self._functions[0] if self._functions else "<module>"
        if function in PAYLOAD_BUILDERS:
            self.builders.add(function)
        else:
            self.unknown.append(f"{self.path.parent.name}/{self.path.name}:{value.lineno} in "
                                f"{function}")


def _domain_payloads(domain_file: Path) -> Tuple[Set[str], Set[str]]:
    """Button payloads of the domain's responses, and the domain's intents."""
    domain = yaml.safe_load(domain_file.read_text(encoding="utf-8"))
    payloads = {button["payload"]
                for variations in (domain.get("responses") or {}).values()
                for variation in variations
                for button in variation.get("buttons") or []}
    intents = {next(iter(i)) if isinstance(i, dict) else i for i in domain.get("intents") or []}
    # The content files' intents, which the training importer adds to the domain (from
    # the data the actions answer from).
    intents |= set(content_intents(Path(os.environ.get("ASSISTANT_DATA_DIR", ROOT / "data"))))
    return payloads, intents


def parse_payload(payload: str) -> Tuple[str, Dict[str, Any]]:
    """The intent and entities a payload stands for (how Rasa reads it)."""
    match = _PAYLOAD.match(payload)
    if not match:
        raise PayloadSourceError(f"{payload!r} is not a /intent{{entities}} payload")
    entities = json.loads(match.group("entities")) if match.group("entities") else {}
    if not isinstance(entities, dict):
        raise PayloadSourceError(f"{payload!r}: the entities must be a JSON object")
    return match.group("intent"), entities


def collect_payloads(domain_file: Path = DOMAIN_FILE,
                     actions_dir: Path = ACTIONS_DIR,
                     widget_file: Optional[Path] = WIDGET_FILE) -> FrozenSet[str]:
    """Every payload a button of this bot (or the widget's start) can carry; fails loudly
    on anything unknown."""
    payloads, intents = _domain_payloads(domain_file)
    if widget_file is not None:
        payloads |= set(_INIT_PAYLOAD.findall(widget_file.read_text(encoding="utf-8")))
    unknown: List[str] = []
    for path in sorted(actions_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        finder = _PayloadFinder(path, _module_constants(tree))
        finder.visit(tree)
        payloads |= finder.literals
        unknown += finder.unknown
        for builder in finder.builders:
            payloads |= set(PAYLOAD_BUILDERS[builder]())
    if unknown:
        raise PayloadSourceError(
            "Button payloads built at run time that the payload gate cannot enumerate: "
            + "; ".join(unknown) + ". Add their function to PAYLOAD_BUILDERS in "
            "channels/payloads.py.")
    for payload in payloads:
        intent, _ = parse_payload(payload)
        if intent not in intents:
            raise PayloadSourceError(f"Button payload {payload!r}: no intent {intent!r} in "
                                     f"{domain_file.name}")
    return frozenset(payloads)


@lru_cache(maxsize=None)
def allowed_payloads() -> FrozenSet[str]:
    return collect_payloads()


def clean_text(text: str) -> str:
    """Without control characters and lone surrogates; newlines and tabs are kept."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def gate(text: str, commands: Mapping[str, str] = NO_COMMANDS) -> str:
    """`text` as Rasa may see it: a button's payload, a channel command, or plain text."""
    stripped = text.strip()  # Rasa strips too before it looks for the "/"
    if stripped in commands:
        return commands[stripped]
    if not stripped.startswith(INTENT_MESSAGE_PREFIX):
        return text
    if stripped in allowed_payloads():
        return stripped
    # Typed, not clicked: drop every leading slash (also "/ /x") so NLU reads the words.
    plain = stripped
    while plain.startswith(INTENT_MESSAGE_PREFIX):
        plain = plain.lstrip(INTENT_MESSAGE_PREFIX).lstrip()
    # Not the text itself: logs are not masked like the tracker store.
    logger.info("A typed /payload that no button offers was read as text")
    return plain


@dataclass(frozen=True)
class Normalised:
    text: str
    truncated: bool


def safety_findings(text: str) -> list:
    """What the safety net affirms in the whole of `text` (crisis and red flags)."""
    from components.red_flags import DEFAULT_PATTERNS, DEFAULT_SPACY_MODEL, load_safety_net

    return load_safety_net(DEFAULT_PATTERNS, DEFAULT_SPACY_MODEL).detect(text)


_SENTENCE_END = re.compile(r"[.!?\n]")


def _sentence_around(text: str, start: int, end: int) -> Tuple[int, int]:
    before = [m.end() for m in _SENTENCE_END.finditer(text, 0, start)]
    after = _SENTENCE_END.search(text, end)
    return (before[-1] if before else 0), (after.end() if after else len(text))


def excerpt(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The part of an over-long message that Rasa reads. The safety net reads the whole
    message first: the sentences holding a warning sign beyond the first `limit`
    characters come first (so the red flag reaches Rasa and its reply), then the start."""
    spans: Set[Tuple[int, int]] = set()
    for finding in safety_findings(text):
        parts = finding.parts or ((finding.start, finding.end),)
        if max(end for _, end in parts) > limit:  # all its parts, so that it still holds
            spans |= {_sentence_around(text, start, end) for start, end in parts}
    if not spans:
        return text[:limit]
    flagged = " ".join(text[a:b].strip() for a, b in sorted(spans))[:limit]
    room = limit - len(flagged) - 3
    return flagged if room <= 0 else f"{flagged} … {text[:room]}"


def normalise(text: str, commands: Mapping[str, str] = NO_COMMANDS) -> Normalised:
    text = gate(clean_text(text), commands)
    if len(text) > MAX_MESSAGE_CHARS:
        return Normalised(excerpt(text), True)
    return Normalised(text, False)


def guard_messages(on_new_message: Callable[[UserMessage], Awaitable[Any]],
                   commands: Mapping[str, str] = NO_COMMANDS,
                   raise_busy: bool = False,
                   ) -> Callable[[UserMessage], Awaitable[Any]]:
    """Wraps a channel's `on_new_message` so that every message is normalised first and
    admitted by channels/backpressure.py. A message refused there is answered with its
    refusal replies, or, with `raise_busy` (REST: it answers 429), raises Busy."""

    async def handle(message: UserMessage) -> Any:
        result = normalise(message.text if isinstance(message.text, str) else "", commands)
        if not result.text.strip():
            logger.info("Message with no text from %s on %s; not passed to Rasa",
                        message.sender_id, message.input_channel)
            if message.output_channel is not None:
                await message.output_channel.send_text_message(message.sender_id,
                                                               EMPTY_REPLY)
            return None
        message.text = result.text
        try:
            with backpressure.admission(message.sender_id, result.text), \
                    log_redaction.handling(message.text):
                answer = await on_new_message(message)
        except SpoolError:
            logger.error("Refused a message on %s: it could not be stored",
                         message.input_channel)
            if raise_busy or message.output_channel is None:
                raise NotStored() from None
            await message.output_channel.send_text_message(message.sender_id,
                                                           NOT_STORED_REPLY)
            return None
        except backpressure.Busy as busy:
            logger.warning("Refused a message on %s: %s messages of that conversation "
                           "in hand", message.input_channel, backpressure.QUEUE_LIMIT)
            if raise_busy or message.output_channel is None:
                raise
            for reply in busy.replies:
                await message.output_channel.send_text_message(message.sender_id, reply)
            return None
        if result.truncated and message.output_channel is not None:
            # After the answer, so that a conversation still opens with the disclaimer.
            await message.output_channel.send_text_message(message.sender_id,
                                                           TRUNCATED_NOTICE)
        return answer

    return handle


def valid_id(value: Any, max_chars: int = MAX_ID_CHARS) -> Optional[str]:
    """`value` if it can key a conversation: a non-blank string, short, no control chars."""
    if (isinstance(value, str) and value.strip() and len(value) <= max_chars
            and not _ID_FORBIDDEN.search(value)):
        return value
    return None
