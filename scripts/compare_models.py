"""Start-up time, memory and parse latency of trained models, each in a fresh process
(README "NLU": the sentence-embedding featurizer with and without).

Usage: python scripts/compare_models.py MODEL.tar.gz [MODEL.tar.gz ...]
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import asyncio, json, os, statistics, sys, time
import psutil, yaml
sys.path.insert(0, ROOT)
os.chdir(ROOT)
process = psutil.Process()
before = process.memory_info().rss
from rasa.core.agent import Agent
start = time.perf_counter()
agent = Agent.load(MODEL)
loaded = time.perf_counter() - start
texts = []
for item in yaml.safe_load(open("tests/nlu/test_nlu.yml"))["nlu"]:
    texts += [l[2:].strip() for l in str(item.get("examples", "")).splitlines() if l.startswith("- ")]
async def parse_all():
    for text in texts[:50]:
        await agent.parse_message(text)  # warm-up
    times = []
    for _ in range(3):
        for text in texts:
            t = time.perf_counter()
            await agent.parse_message(text)
            times.append((time.perf_counter() - t) * 1000)
    return sorted(times)
times = asyncio.run(parse_all())
print(json.dumps({"load_s": loaded, "rss_mb": process.memory_info().rss / 2**20,
                  "p50_ms": times[len(times) // 2], "p95_ms": times[int(len(times) * 0.95)],
                  "messages": len(times)}))
"""


def measure(model: str) -> dict:
    code = f"ROOT = {str(ROOT)!r}\nMODEL = {str(Path(model).resolve())!r}\n" + _CHILD
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false",
                              "PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    models = argv if argv is not None else sys.argv[1:]
    print(f"{'model':40} {'start-up':>9} {'RSS':>8} {'parse p50':>10} {'p95':>8}")
    for model in models:
        r = measure(model)
        print(f"{model:40} {r['load_s']:8.1f}s {r['rss_mb']:6.0f}MB {r['p50_ms']:8.2f}ms "
              f"{r['p95_ms']:6.2f}ms  ({r['messages']} parses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
