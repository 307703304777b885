"""`make eval`: NLU accuracy on the held-out test file, CLINC150 false accepts, and
the red-flag detector's recall and false-alarm rate.

The held-out file tests/nlu/test_nlu.yml and the CLINC150 queries are never used for
training. Usage: python scripts/evaluate.py [--model models/assistant.tar.gz]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HELD_OUT = ROOT / "tests" / "nlu" / "test_nlu.yml"
CLINC = ROOT.parent / "shared" / "eval" / "clinc150" / "out_of_scope_eval.json"
RED_FLAG_SETS = {
    "tuning set (tests/safety/red_flag_cases.yml)": ROOT / "tests/safety/red_flag_cases.yml",
    "second set (tests/safety/red_flag_cases_blind.yml)":
        ROOT / "tests/safety/red_flag_cases_blind.yml",
    "third set (tests/safety/red_flag_cases_holdout.yml)":
        ROOT / "tests/safety/red_flag_cases_holdout.yml",
    # Per category, language and style, and end to end: scripts/safety_eval.py.
    "fresh blind set (tests/safety/fresh/)": ROOT / "tests/safety/fresh/combined",
}
# Intents whose reply would answer a CLINC query as if it were in our domain.
IN_DOMAIN_REPLIES = {"ask_exercise", "book_appointment", "report_red_flag", "ask_red_flags"}
SAFE_REACTIONS = {"out_of_scope", "nlu_fallback"}


def load_agent(model: str):
    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.ERROR)
    configure_structlog(logging.ERROR)  # no per-message debug lines
    return Agent.load(model)


def predict(agent, texts: Sequence[str]) -> List[str]:
    async def run() -> List[str]:
        out = []
        for text in texts:
            parsed = await agent.parse_message(text)
            out.append(parsed["intent"]["name"])
        return out

    return asyncio.run(run())


def held_out_examples() -> List[Tuple[str, str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(HELD_OUT))
    return [(m.get("text"), m.get("intent")) for m in data.intent_examples]


def accuracy(gold: Sequence[str], predicted: Sequence[str]) -> float:
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold)


def report_held_out(gold: Sequence[str], predicted: Sequence[str], texts: Sequence[str]) -> None:
    print(f"\n== Held-out NLU test ({HELD_OUT.relative_to(ROOT)}, {len(gold)} messages) ==")
    print(f"{'intent':34} {'prec':>6} {'recall':>6} {'n':>4}")
    for intent in sorted(set(gold)):
        tp = sum(g == p == intent for g, p in zip(gold, predicted))
        n_pred = sum(p == intent for p in predicted)
        n_gold = sum(g == intent for g in gold)
        prec = tp / n_pred if n_pred else 0.0
        print(f"{intent:34} {prec:6.2f} {tp / n_gold:6.2f} {n_gold:4d}")
    pairs = Counter((g, p) for g, p in zip(gold, predicted) if g != p)
    print("\nConfusion pairs (gold -> predicted: count, example):")
    examples: Dict[Tuple[str, str], str] = {}
    for t, g, p in zip(texts, gold, predicted):
        examples.setdefault((g, p), t)
    for (g, p), count in pairs.most_common():
        print(f"  {g} -> {p}: {count}  e.g. {examples[(g, p)]!r}")
    print(f"\nHeld-out accuracy: {accuracy(gold, predicted):.1%} (target >= 95%)")


def clinc_false_accepts(agent) -> None:
    data = json.loads(CLINC.read_text())
    texts = list(data["oos_test"]) + [t for t, _ in data["other_domain_test"]]
    start = time.perf_counter()
    predicted = predict(agent, texts)
    elapsed = time.perf_counter() - start
    faqs = {p for p in predicted if p.startswith("faq_")}
    accepted = [(t, p) for t, p in zip(texts, predicted) if p in faqs | IN_DOMAIN_REPLIES]
    strict = [p for p in predicted if p not in SAFE_REACTIONS]
    print(f"\n== CLINC150 out-of-scope ({len(texts)} queries, evaluation only) ==")
    print(f"False accepts (FAQ/exercise/booking/urgent-care reply): "
          f"{len(accepted) / len(texts):.2%} ({len(accepted)}) (target <= 3%)")
    print(f"Any reply other than out_of_scope / fallback: {len(strict) / len(texts):.2%}")
    print("By predicted intent:", dict(Counter(p for _, p in accepted).most_common(8)))
    for text, intent in accepted[:10]:
        print(f"  {intent}: {text!r}")
    print(f"Parse time: {elapsed / len(texts) * 1000:.1f} ms per message")


def _exists(path: Path) -> bool:
    return (path.parent if path.name == "combined" else path).exists()


def load_cases(path: Path) -> Dict[str, list]:
    """A case file, or the fresh set's two files (red_flags.yml, near_misses.yml)."""
    if path.name == "combined":
        return {"red_flags": yaml.safe_load((path.parent / "red_flags.yml").read_text())[
                    "red_flags"],
                "near_misses": yaml.safe_load((path.parent / "near_misses.yml").read_text())[
                    "near_misses"]}
    return yaml.safe_load(path.read_text())


def red_flag_figures(matcher, path: Path) -> Dict[str, object]:
    cases = load_cases(path)
    def flags(text: str) -> list:
        return [f for f in matcher.detect(text) if f.tier != "crisis"]

    missed = [c for c in cases["red_flags"] if not flags(c["text"])]
    alarms = [c for c in cases["near_misses"] if flags(c["text"])]
    # A tier less urgent than expected is wrong; a more urgent one errs on the safe side
    # (a fall on ice with osteoporosis: a significant fall, or a minor one with fragile
    # bones).
    order = {"crisis": 0, "emergency": 1, "urgent": 2}
    wrong_tier = [c for c in cases["red_flags"]
                  if (f := flags(c["text"])) and order[f[0].tier] > order[c["tier"]]]
    return {
        "n_flags": len(cases["red_flags"]), "n_near": len(cases["near_misses"]),
        "missed": missed, "alarms": alarms, "wrong_tier": wrong_tier,
        "recall": 1 - len(missed) / len(cases["red_flags"]),
        "false_alarm_rate": len(alarms) / len(cases["near_misses"]),
    }


def report_red_flags() -> None:
    from components.red_flags import load_safety_net

    matcher = load_safety_net()
    for name, path in RED_FLAG_SETS.items():
        if not _exists(path):
            continue
        fig = red_flag_figures(matcher, path)
        print(f"\n== Red-flag detector, {name} ==")
        print(f"Recall: {fig['recall']:.1%} ({fig['n_flags'] - len(fig['missed'])}/{fig['n_flags']})"
              f"   False alarms: {fig['false_alarm_rate']:.1%} "
              f"({len(fig['alarms'])}/{fig['n_near']})   Wrong tier: {len(fig['wrong_tier'])}")
        for case in fig["missed"]:
            print(f"  MISSED: {case['text']!r}")
        for case in fig["alarms"]:
            print(f"  FALSE ALARM ({case.get('why', '')}): {case['text']!r}")
    report_latency(matcher)


def report_latency(net) -> None:
    """The whole safety net (every language, the language guess) per message: on what
    visitors write (every NLU example), and on the case files' messages, which all hold
    symptom words and so always reach the matcher and ConText."""
    from rasa.shared.nlu.training_data.loading import load_data

    everyday = [m.get("text") for m in load_data(str(ROOT / "data" / "nlu")).intent_examples]
    cases = [c["text"] for path in RED_FLAG_SETS.values() if _exists(path)
             for group in ("red_flags", "near_misses")
             for c in load_cases(path)[group] if len(c["text"]) <= 2000]
    print("\n== Safety-net latency (whole net, per message, 3 passes) ==")
    for label, texts in [("NLU examples (everyday messages)", everyday),
                         ("case-file messages (symptom words)", cases),
                         ("all of them", everyday + cases)]:
        timings = []
        for text in texts * 3:
            start = time.perf_counter()
            net.analyse(text)
            timings.append((time.perf_counter() - start) * 1000)
        timings.sort()
        print(f"  {label:38} n={len(texts):5}  median {statistics.median(timings):.2f} ms, "
              f"p95 {timings[int(len(timings) * 0.95)]:.2f} ms (target p95 <= 1 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(ROOT / "models" / "assistant.tar.gz"))
    parser.add_argument("--skip-clinc", action="store_true")
    args = parser.parse_args()
    agent = load_agent(args.model)
    examples = held_out_examples()
    texts = [t for t, _ in examples]
    report_held_out([g for _, g in examples], predict(agent, texts), texts)
    if not args.skip_clinc:
        clinc_false_accepts(agent)
    report_red_flags()
    # Both blind sets per category, language and style; crisis; end to end.
    sys.path.insert(0, str(ROOT / "scripts"))
    import safety_eval

    for cases in ("fresh", "second"):
        safety_eval.main(["--model", args.model, "--cases", str(ROOT / "tests" / "safety" / cases)])


if __name__ == "__main__":
    main()
