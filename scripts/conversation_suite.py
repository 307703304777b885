"""The conversation suite: multi-turn conversations by different kinds of visitor, each
turn with its expected behaviour, held over REST against the real servers.

The suites (tests/conversations/*.yml) were written blind, by someone who had not read
the NLU data, the rules or the patterns. Each turn is `user:` (typed) or `click:` (a
button of the previous reply, by the start of its title), and `expect:` keys:

- `intent`, `action`: the intent the message was understood as; an action that ran;
- `slot`: slot values after the turn;
- `content`: a content entry whose words must be in the reply: an FAQ id (its answer),
  an exercise id (its lesson), `exercise.<id>.<field>`, `clinic.<key>` (a key the clinic
  has not filled: the reply must give the clinic's phone instead);
- `reply_has_any`, `buttons_any`: phrases of the reply, titles of its buttons;
- `urgent` (default false): the emergency or urgent message is (not) in the reply;
- `fallback` (default false): the reply is (not) "not sure I understood" / out of scope;
- `screen_ok`: the warning-sign check may come first; the runner then clicks
  "None of these" and checks the rest on what came with the check and what follows.

Usage: python scripts/conversation_suite.py [SUITE.yml ...] [--verbose]
(starts the servers with the trained model; prints the share of turns that pass).
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SUITES = sorted((ROOT / "tests" / "conversations").glob("*.yml"))
TOKEN = "conversation-suite"
FALLBACK_MARKS = ("not sure I understood", "I can only help with", "outside what I can help with")


@dataclass
class TurnResult:
    conversation: str
    index: int
    text: str
    problems: List[str] = field(default_factory=list)
    replies: List[str] = field(default_factory=list)
    urgent_expected: bool = False

    @property
    def passed(self) -> bool:
        return not self.problems


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def content_phrases(ref: str) -> Optional[List[str]]:
    """What the reply must contain for a content reference (any one of them), or None
    when the content files have no such entry."""
    from actions import content

    if ref in content.faqs():
        return [content.faqs()[ref]["answer"][:60]]
    if ref in content.exercises():
        exercise = content.exercises()[ref]
        return [exercise["steps"][0][:50]]
    kind, _, rest = ref.partition(".")
    if kind == "exercise":
        exercise_id, _, field_name = rest.partition(".")
        value = content.exercises().get(exercise_id, {}).get(field_name)
        if value is None:
            return None
        values = value if isinstance(value, list) else [value]
        return [str(v)[:50] for v in values]
    if kind == "clinic":
        settings = content.clinic()
        value = settings.get(rest)
        return [value] if value else [settings["phone"]]
    return None


class Suite:
    def __init__(self, url: str) -> None:
        self.url = url

    def _say(self, sender: str, text: str) -> List[Dict[str, Any]]:
        response = requests.post(f"{self.url}/webhooks/rest/webhook",
                                 json={"sender": sender, "message": text}, timeout=60)
        if response.status_code != 200:
            return [{"text": f"HTTP {response.status_code}: {response.text[:200]}"}]
        return response.json()  # the disclaimer included: the first reply must have it

    def _tracker(self, sender: str) -> Dict[str, Any]:
        response = requests.get(f"{self.url}/conversations/{sender}/tracker",
                                params={"token": TOKEN}, timeout=30)
        response.raise_for_status()
        return response.json()

    def run(self, conversation: Dict[str, Any]) -> List[TurnResult]:
        from actions.safety import safety_text
        from actions.screening import NONE_PAYLOAD, SCREEN_PAYLOADS

        urgent_texts = [safety_text("emergency"), safety_text("urgent")]
        sender = f"suite-{conversation['id']}-{uuid.uuid4().hex[:6]}"
        buttons: List[Dict[str, str]] = []
        results = []
        seen = 0
        for index, turn in enumerate(conversation["turns"]):
            expect = turn.get("expect") or {}
            if "click" in turn:
                choice = next((b for b in buttons if b["title"].lower().startswith(
                    str(turn["click"]).lower())), None)
                result = TurnResult(conversation["id"], index, f"[click] {turn['click']}")
                if choice is None:
                    result.problems.append(f"no button {turn['click']!r} in "
                                           f"{[b['title'] for b in buttons]}")
                    results.append(result)
                    continue
                text = choice["payload"]
            else:
                text = str(turn["user"])
                result = TurnResult(conversation["id"], index, text)
            replies = self._say(sender, text)
            reply_buttons = [b for r in replies for b in r.get("buttons", [])]
            if expect.get("screen_ok") and any(b.get("payload") == NONE_PAYLOAD
                                               for b in reply_buttons):
                # What came with the check (a lesson may) counts with what follows it.
                after = self._say(sender, NONE_PAYLOAD)
                reply_buttons = [b for r in after for b in r.get("buttons", [])] + [
                    b for b in reply_buttons if b.get("payload") not in SCREEN_PAYLOADS]
                replies = [r for r in replies if not any(
                    b.get("payload") in SCREEN_PAYLOADS for b in r.get("buttons", []))] + after
            tracker = self._tracker(sender)
            events = tracker["events"][seen:]
            seen = len(tracker["events"])
            result.replies = [r.get("text", "") for r in replies]
            result.urgent_expected = bool(expect.get("urgent", False))
            self._check(result, expect, events, tracker, reply_buttons, urgent_texts)
            buttons = reply_buttons
            results.append(result)
        return results

    @staticmethod
    def _check(result: TurnResult, expect: Dict[str, Any], events: List[Dict[str, Any]],
               tracker: Dict[str, Any], buttons: List[Dict[str, str]],
               urgent_texts: Sequence[str]) -> None:
        reply = "\n".join(result.replies)
        low = _norm(reply)
        users = [e for e in events if e.get("event") == "user"]
        actions = [e.get("name") for e in events if e.get("event") == "action"]
        problems = result.problems
        if "intent" in expect and users:
            # the turn's own message, not the "None of these" click `screen_ok` sends
            from actions.screening import NONE_PAYLOAD

            read = [u for u in users if u.get("text") != NONE_PAYLOAD] or users
            got = (read[-1].get("parse_data") or {}).get("intent", {}).get("name")
            if got != expect["intent"]:
                problems.append(f"intent {got}, expected {expect['intent']}")
        if "action" in expect:
            wanted = expect["action"] if isinstance(expect["action"], list) else [expect["action"]]
            if not set(wanted) & set(actions):
                problems.append(f"actions {actions}, expected one of {wanted}")
        for slot, value in (expect.get("slot") or {}).items():
            if tracker["slots"].get(slot) != value:
                problems.append(f"slot {slot}={tracker['slots'].get(slot)!r}, expected {value!r}")
        if "content" in expect:
            phrases = content_phrases(str(expect["content"]))
            if phrases is None:
                problems.append(f"no content entry {expect['content']}")
            elif not any(_norm(p) in low for p in phrases):
                problems.append(f"reply lacks {expect['content']}")
        if expect.get("reply_has_any") and not any(
                _norm(str(p)) in low for p in expect["reply_has_any"]):
            problems.append(f"reply has none of {expect['reply_has_any']}")
        if expect.get("buttons_any") and not any(
                str(p).lower() in b.get("title", "").lower()
                for p in expect["buttons_any"] for b in buttons):
            problems.append(f"no button like {expect['buttons_any']}")
        urgent = any(t in reply for t in urgent_texts)
        if urgent != bool(expect.get("urgent", False)):
            problems.append("urgent message " + ("missing" if not urgent else "not due"))
        fallback = any(mark in reply for mark in FALLBACK_MARKS)
        if fallback and not expect.get("fallback", False):
            problems.append("fallback / out of scope")
        if not reply.strip():
            problems.append("no reply")


def run_suites(url: str, paths: Sequence[Path]) -> List[TurnResult]:
    suite = Suite(url)
    results: List[TurnResult] = []
    for path in paths:
        for conversation in yaml.safe_load(path.read_text())["conversations"]:
            results += suite.run(conversation)
    return results


def summary(results: Sequence[TurnResult]) -> str:
    passed = sum(r.passed for r in results)
    conversations = {r.conversation for r in results}
    clean = {c for c in conversations if all(r.passed for r in results if r.conversation == c)}
    return (f"{passed}/{len(results)} turns pass ({passed / max(1, len(results)):.1%}); "
            f"{len(clean)}/{len(conversations)} conversations with every turn right")


def main(argv: Optional[Sequence[str]] = None) -> int:
    from scripts.servers import running_assistant

    parser = argparse.ArgumentParser()
    parser.add_argument("suites", nargs="*", type=Path, default=SUITES)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--model", type=Path, default=None, help="another trained model")
    args = parser.parse_args(argv)
    extra = {"model": args.model.resolve()} if args.model else {}
    with tempfile.TemporaryDirectory() as tmp, \
            running_assistant(Path(tmp), api_token=TOKEN, **extra) as servers:
        results = run_suites(servers.rasa_url, args.suites)
    print(summary(results))
    for result in results:
        if not result.passed:
            print(f"  FAIL {result.conversation}[{result.index}] {result.text[:70]!r}: "
                  f"{'; '.join(result.problems)}")
            if args.verbose:
                for reply in result.replies:
                    print(f"       > {reply[:160]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
