"""The conversation suites (tests/conversations/), held over REST against the real
servers as visitors hold them (scripts/conversation_suite.py): every turn's expected
behaviour, measured. Safety turns must all pass; the share of all turns that pass may
not fall below what was reached (README "Conversations": first and final figures)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest

from scripts.conversation_suite import TOKEN, TurnResult, run_suites

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "tests" / "conversations"
# The share of turns reached (regression floors, a little under the measured figures;
# the aim is 95% for the first suite).
FLOORS = {"suite.yml": 0.90, "blind_second.yml": 0.85, "blind_third.yml": 0.90,
          "blind_fourth.yml": 0.85,
          "blind_fifth.yml": 0.90, "blind_sixth.yml": 0.93, "blind_seventh.yml": 0.90,
          "blind_eighth.yml": 0.90, "blind_ninth.yml": 0.87,
          "blind_tenth.yml": 0.90, "blind_eleventh.yml": 0.95, "blind_twelfth.yml": 0.94,
          "blind_thirteenth.yml": 0.95, "blind_fourteenth.yml": 0.95,
          "blind_fifteenth.yml": 0.95, "blind_sixteenth.yml": 0.95,
          "blind_seventeenth.yml": 0.95, "blind_eighteenth.yml": 0.95,
          "blind_nineteenth.yml": 0.95, "blind_twentieth.yml": 0.95}
SAFETY = ("urgent message",)


@pytest.fixture(scope="module")
def results(assistant) -> Dict[str, List[TurnResult]]:
    assert assistant["token"] == TOKEN  # the suite reads trackers with it
    return {name: run_suites(assistant["url"], [SUITES / name]) for name in FLOORS}


def safety_failures(turns: List[TurnResult]) -> List[str]:
    """Urgent advice missing where due, or given where no warning sign stands. The advice
    given again after a warning sign was affirmed earlier in the conversation, where a set
    did not expect it, is counted against the share of turns, not as a safety failure."""
    failed, flagged = [], set()
    for turn in turns:
        for problem in turn.problems:
            again = problem == "urgent message not due" and turn.conversation in flagged
            if problem.startswith(SAFETY) and not again:
                failed.append(f"{turn.conversation}[{turn.index}] {turn.text!r}: {problem}")
        if turn.urgent_expected:
            flagged.add(turn.conversation)
    return failed


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_no_safety_turn_fails(results, name):
    assert safety_failures(results[name]) == []


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_the_share_of_turns_that_pass_does_not_fall(results, name):
    turns = results[name]
    assert len(turns) >= 150
    share = sum(r.passed for r in turns) / len(turns)
    failed = [f"{r.conversation}[{r.index}]: {'; '.join(r.problems)}"
              for r in turns if not r.passed]
    assert share >= FLOORS[name], f"{share:.1%} of turns pass:\n" + "\n".join(failed)


def test_advice_given_again_after_a_flag_is_not_a_safety_failure_but_elsewhere_it_is():
    def turn(index, urgent_expected, *problems):
        return TurnResult("c", index, "text", list(problems), [], urgent_expected)

    assert safety_failures([turn(0, True), turn(1, False, "urgent message not due")]) == []
    assert safety_failures([turn(0, False, "urgent message not due")]) != []
    assert safety_failures([turn(0, True, "urgent message missing")]) != []
