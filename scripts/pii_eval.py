"""How well the store's masking (privacy/pii.py) hides personal data, on a PII test set.

The test set is a YAML file:

    cases:
      - text: "call me on 07700 900123"
        pii:
          - {kind: phone, value: "07700 900123"}
      - text: "3 sets of 12"
        pii: []

Each text is masked as the tracker store masks it (stores.tracker_store.Masker with the
clinic's region and public details). A value is found if it no longer appears in the
masked text; for the kinds phone, nhs_number, card_number and national_insurance it is
missed as well if any run of 3 or more consecutive digits of it survives. Printed:
recall (first), recall per kind, the over-masks (cases with `pii: []` whose masked text
differs from the text), and each miss and over-mask. The exit code is 0 whatever the
figures (a measurement, not a test).

    python scripts/pii_eval.py [FILE]          # default tests/privacy/pii_cases.yml
    python scripts/pii_eval.py --bench         # cost per message (see privacy/pii.py)
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CASES = ROOT / "tests" / "privacy" / "pii_cases.yml"
DIGIT_KINDS = {"phone", "nhs_number", "card_number", "national_insurance"}
DIGIT_RUN = re.compile(r"\d{3,}")


def load_cases(path: Path) -> List[Dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list):
        raise SystemExit(f"{path}: expected a mapping with a `cases` list")
    checked = []
    for n, case in enumerate(cases):
        if not isinstance(case, dict) or not isinstance(case.get("text"), str):
            raise SystemExit(f"{path}: case {n}: expected `text`")
        pii = case.get("pii") or []
        if not isinstance(pii, list) or not all(
                isinstance(p, dict) and p.get("kind") and p.get("value") is not None
                for p in pii):
            raise SystemExit(f"{path}: case {n}: `pii` must be a list of {{kind, value}}")
        checked.append({"text": case["text"],
                        "pii": [{"kind": str(p["kind"]), "value": str(p["value"])}
                                for p in pii]})
    return checked


def surviving_digits(value: str, masked: str) -> Optional[str]:
    """A run of 3+ consecutive digits of `value` still in `masked`, if any."""
    for run in DIGIT_RUN.findall(value):
        for start in range(len(run) - 2):
            if run[start:start + 3] in masked:
                return run[start:start + 3]
    return None


def is_missed(kind: str, value: str, masked: str) -> Tuple[bool, str]:
    if value in masked:
        return True, "value still there"
    if kind in DIGIT_KINDS:
        digits = surviving_digits(value, masked)
        if digits:
            return True, f"digits {digits!r} still there"
    return False, ""


def default_masker() -> Any:
    from stores.tracker_store import Masker, _phone_region

    return Masker(_phone_region())


def evaluate(cases: Iterable[Dict[str, Any]], mask: Any) -> Dict[str, Any]:
    found: Dict[str, List[int]] = defaultdict(lambda: [0, 0])  # kind -> [found, total]
    misses, over_masks = [], []
    clean = 0
    for case in cases:
        text = case["text"]
        masked = mask(text)
        if not case["pii"]:
            clean += 1
            if masked != text:
                over_masks.append((text, masked))
            continue
        for item in case["pii"]:
            missed, why = is_missed(item["kind"], item["value"], masked)
            found[item["kind"]][1] += 1
            if missed:
                misses.append((item["kind"], item["value"], text, masked, why))
            else:
                found[item["kind"]][0] += 1
    return {"per_kind": dict(found), "misses": misses, "over_masks": over_masks,
            "clean": clean}


def report(result: Dict[str, Any], out: Any = None) -> None:
    out = out or sys.stdout
    per_kind = result["per_kind"]
    hit = sum(f for f, _ in per_kind.values())
    total = sum(t for _, t in per_kind.values())
    recall = 100 * hit / total if total else 100.0
    print(f"recall: {recall:.1f}% ({hit}/{total} values masked)", file=out)
    for kind in sorted(per_kind):
        f, t = per_kind[kind]
        print(f"  {kind}: {100 * f / t:.1f}% ({f}/{t})", file=out)
    print(f"over-masked: {len(result['over_masks'])} of {result['clean']} cases without "
          "PII", file=out)
    if result["misses"]:
        print("\nmissed:", file=out)
        for kind, value, text, masked, why in result["misses"]:
            print(f"  [{kind}] {value!r} ({why})\n    text:   {text}\n    masked: {masked}",
                  file=out)
    if result["over_masks"]:
        print("\nover-masked:", file=out)
        for text, masked in result["over_masks"]:
            print(f"    text:   {text}\n    masked: {masked}", file=out)


# --- cost per message ------------------------------------------------------------------

BENCH_CLEAN = [
    "how do I do a clamshell", "my lower back hurts when I sit for long",
    "is it normal to feel sore after the exercises?", "what are your opening hours",
    "thanks, that helped", "can I do this if I'm pregnant", "where do I park",
    "should I use ice or heat", "it feels tight in the morning", "ok great",
]
BENCH_DIGITS = [
    "I do 3 sets of 12", "hold for 30 seconds?", "10-15 reps each side", "pain is 7/10",
    "I'm 52 and have had this since 2019", "I ran 10k in 55:30", "L4-L5 disc",
    "my appointment is on 12/03/2027 at 9am", "2x10 glute bridges", "at 7am it is worst",
]
BENCH_PII = [
    "call me on 07700 900123", "my email is jo.bloggs@example.com",
    "my name is Keith Harris", "I live at 14 Acacia Avenue, Leeds",
    "born 12/03/1958", "my NHS number is 943 476 5919", "I'm Sarah and my knee hurts",
    "jo at example dot com", "oh seven seven double oh nine double oh one two three",
    "postcode SW1A 1AA",
]


def median_us(mask: Any, texts: List[str], n: int = 1000) -> float:
    times = []
    for i in range(n):
        text = texts[i % len(texts)]
        started = time.perf_counter_ns()
        mask(text)
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1000


def bench(n: int) -> None:
    from actions.content import clinic
    from privacy import pii

    for prefilter in (True, False):
        masker = pii.PiiMasker("GB", clinic(), prefilter=prefilter)
        for texts in (BENCH_CLEAN, BENCH_DIGITS, BENCH_PII):  # warm up
            [masker.mask(t) for t in texts]
        print(f"prefilter {'on ' if prefilter else 'off'}: "
              f"no PII {median_us(masker.mask, BENCH_CLEAN, n):8.1f} us, "
              f"no PII with digits {median_us(masker.mask, BENCH_DIGITS, n):8.1f} us, "
              f"PII {median_us(masker.mask, BENCH_PII, n):8.1f} us "
              f"(median of {n} messages each)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="?", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--bench", action="store_true", help="measure the cost per message")
    parser.add_argument("-n", type=int, default=1000, help="messages per --bench figure")
    args = parser.parse_args(argv)
    if args.bench:
        bench(args.n)
        return 0
    cases = load_cases(args.cases)
    report(evaluate(cases, default_masker().mask))
    return 0


if __name__ == "__main__":
    sys.exit(main())
