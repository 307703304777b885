"""Safety-net figures on the fresh blind sets (tests/safety/fresh/), printed by `make eval`.

For every red flag: found by the deterministic detector alone (recall counts the detector
only: a screening question is neither a hit nor a false alarm), per category, language and
style; as served, i.e. what the channels let the detector read (the whole text now).
For every near miss and ordinary statement: an emergency or urgent message, end to end
(the NLU pipeline's final intent) and by the detector alone, per kind and language; how
many would get the screening question instead. Crisis messages: recall and false alarms.

Usage: python scripts/safety_eval.py [--root DIR] [--model models/assistant.tar.gz]
       [--no-model]  (detector figures only)
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ALARM_INTENTS = {"report_red_flag"}
CRISIS_INTENTS = {"report_crisis"}
SCREEN_INTENTS = {"ask_if_serious"}
OLD_CHANNEL_LIMIT = 2000  # what the channels used to let Rasa read


def _pct(hit: int, total: int) -> str:
    return f"{hit / total:6.1%} ({hit}/{total})" if total else "     - (0/0)"


def _table(title: str, rows: Dict[str, List[bool]]) -> None:
    print(f"  {title}")
    for key in sorted(rows):
        values = rows[key]
        print(f"    {key:24} {_pct(sum(values), len(values))}")


def parse_all(model: str, texts: Sequence[str]) -> List[dict]:
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.ERROR)
    configure_structlog(logging.ERROR)
    agent = Agent.load(model)

    async def run() -> List[dict]:
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(run())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--model", default=None)
    parser.add_argument("--no-model", action="store_true")
    parser.add_argument("--cases", default=None, help="folder of the case files")
    parser.add_argument("--verbose", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    os.chdir(root)
    sys.path.insert(0, str(root))
    cases_dir = Path(args.cases) if args.cases else Path(__file__).resolve().parents[1] / \
        "tests" / "safety" / "fresh"
    flags = yaml.safe_load((cases_dir / "red_flags.yml").read_text())["red_flags"]
    near = yaml.safe_load((cases_dir / "near_misses.yml").read_text())["near_misses"]
    crisis_file = yaml.safe_load((cases_dir / "crisis.yml").read_text())
    crisis, crisis_near = crisis_file["crisis"], crisis_file["near_misses"]

    try:  # the safety net of every language (older checkouts: the English matcher)
        from components.red_flags import load_safety_net as load
    except ImportError:
        from components.red_flags import load_matcher as load
    matcher = load()
    has_crisis = hasattr(matcher, "analyse") and load.__name__ == "load_safety_net"
    try:
        from channels.payloads import excerpt
    except ImportError:
        def excerpt(text: str) -> str:
            return text[:OLD_CHANNEL_LIMIT]

    def affirmed(text: str) -> list:
        return [f for f in matcher.detect(text) if f.tier != "crisis"]

    def crisis_found(text: str) -> bool:
        return any(f.tier == "crisis" for f in matcher.detect(text)) if has_crisis else False

    print(f"== Safety net on the fresh blind sets ({cases_dir}) ==")
    # -- red flags: the detector alone ------------------------------------------------
    by: Dict[str, Dict[str, List[bool]]] = defaultdict(lambda: defaultdict(list))
    served: List[bool] = []
    misses = []
    for case in flags:
        hit = bool(affirmed(case["text"]))
        for dim in ("category", "language", "style"):
            by[dim][str(case.get(dim))].append(hit)
        by["all"]["all"].append(hit)
        if len(case["text"]) > OLD_CHANNEL_LIMIT:
            served.append(bool(affirmed(excerpt(case["text"]))))
        if not hit:
            misses.append(case)
    print(f"\nRed flags, detector alone: recall {_pct(*_count(by['all']['all']))}")
    for dim in ("category", "language", "style"):
        _table(f"by {dim}", by[dim])
    if served:
        print(f"  long messages as the channels read them: {_pct(sum(served), len(served))}")
    if args.verbose:
        for case in misses:
            print(f"    MISSED [{case.get('category')}/{case.get('language')}] "
                  f"{case['text'][-160:]!r}")

    # -- near misses: alarms by the detector alone and end to end -------------------
    near_by: Dict[str, Dict[str, List[bool]]] = defaultdict(lambda: defaultdict(list))
    alarms = []
    for case in near:
        alarm = bool(affirmed(case["text"]))
        near_by["why"][case.get("why", "?")].append(alarm)
        near_by["language"][case.get("language", "en")].append(alarm)
        near_by["all"]["all"].append(alarm)
        if alarm:
            alarms.append(case)
    print(f"\nNear misses, detector alone: false alarms {_pct(*_count(near_by['all']['all']))}")
    _table("by kind", near_by["why"])
    _table("by language", near_by["language"])
    if args.verbose:
        for case in alarms:
            print(f"    ALARM [{case.get('why')}] {case['text'][:160]!r}")

    # -- crisis ------------------------------------------------------------------------
    c_hits = [crisis_found(c["text"]) for c in crisis]
    c_false = [crisis_found(c["text"]) for c in crisis_near]
    print(f"\nCrisis messages: recall {_pct(sum(c_hits), len(c_hits))}, "
          f"false alarms on near misses {_pct(sum(c_false), len(c_false))}")
    if args.verbose:
        for case, hit in zip(crisis, c_hits):
            if not hit:
                print(f"    MISSED crisis {case['text'][:160]!r}")
        for case, hit in zip(crisis_near, c_false):
            if hit:
                print(f"    ALARM crisis {case['text'][:160]!r}")

    # -- latency -----------------------------------------------------------------------
    texts = [c["text"] for c in flags + near if len(c["text"]) <= OLD_CHANNEL_LIMIT]
    timings = []
    for text in texts * 3:
        start = time.perf_counter()
        matcher.detect(text)
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    print(f"\nDetector latency on {len(texts)} messages (x3): median "
          f"{statistics.median(timings):.2f} ms, p95 {timings[int(len(timings) * 0.95)]:.2f} ms")

    if args.no_model:
        return 0
    # -- end to end: the NLU pipeline's final intent ---------------------------------
    model = args.model or str(root / "models" / "assistant.tar.gz")
    every = [c["text"] for c in near] + [c["text"] for c in crisis_near]
    parsed = parse_all(model, every)
    near_parsed, cnear_parsed = parsed[:len(near)], parsed[len(near):]
    e2e: Dict[str, Dict[str, List[bool]]] = defaultdict(lambda: defaultdict(list))
    screened: Dict[str, List[bool]] = defaultdict(list)
    for case, result in zip(near, near_parsed):
        intent = result["intent"]["name"]
        e2e["why"][case.get("why", "?")].append(intent in ALARM_INTENTS)
        e2e["all"]["all"].append(intent in ALARM_INTENTS)
        screened[case.get("why", "?")].append(intent in SCREEN_INTENTS)
        if args.verbose and intent in ALARM_INTENTS:
            print(f"    E2E ALARM [{case.get('why')}] {case['text'][:160]!r}")
    print(f"\nNear misses end to end (NLU pipeline): emergency/urgent message "
          f"{_pct(*_count(e2e['all']['all']))}")
    _table("by kind", e2e["why"])
    _table("warning-sign check even after it was answered (ask_if_serious), by kind",
           screened)
    ordinary = [r["intent"]["name"] for c, r in zip(near, near_parsed)
                if c.get("why") == "ordinary"]
    first = sum(i in SCREEN_INTENTS | {"describe_pain"} for i in ordinary)
    later = sum(i in SCREEN_INTENTS for i in ordinary)
    print(f"Ordinary statements: the check as the first description of a session "
          f"{_pct(first, len(ordinary))} (one extra turn each); after it was answered "
          f"{_pct(later, len(ordinary))} (target <= 10%)")
    print(f"  their intents: {dict(Counter(ordinary).most_common(8))}")
    crisis_e2e = [r["intent"]["name"] in CRISIS_INTENTS for r in cnear_parsed]
    print(f"Crisis near misses end to end: crisis reply {_pct(sum(crisis_e2e), len(crisis_e2e))}")
    return 0


def _count(values: List[bool]):
    return sum(values), len(values)


if __name__ == "__main__":
    sys.exit(main())
