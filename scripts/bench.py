"""`make bench`: latency, throughput, memory, start-up and training time of the assistant,
measured against the same domain and data trained with Rasa's default `config.yml`.

Two configurations: "ours" (config.yml) and "baseline" (the config.yml `rasa init`
writes: its pipeline and policies are commented out, so Rasa uses its defaults, DIET,
ResponseSelector, Memoization, TED and rules). Three deployments (`deployments()`):
"ours" as README "Deployment" runs it on a 2-core machine (two Rasa processes behind
HAProxy, endpoints.workers.yml), "baseline" as Rasa runs by default (one process,
endpoints.yml), and "ours_1_process" (one process, endpoints.yml, as `make run` starts
it; 10 users only), which shows what the second process adds.

1. Train both configurations into results/bench/models/ with a cold cache and
   PYTHONHASHSEED=0 (timed).
2. Start every deployment (action server + Rasa, scripts/servers.py, the committed
   endpoints), one after the other; start-up = Rasa's process start until its first
   REST reply.
3. Warm-up: every message of the mix once (not measured).
4. 1, 10 and 50 simulated users over REST, each running its own conversations back to
   back (think time 0): p50/p95/p99 latency, messages per second, CPU per message,
   errors.
5. Long conversations (LONG_TURNS turns): latency at turns 5, 100 and 200; then again
   after 100,000 conversations were stored in the SQLite tracker store.
6. Peak RSS of each Rasa process (psutil samples and the kernel's high-water mark).

The machine is shared, so every phase alternates between the deployments (the order
changes each round): background load hits them alike and the ratios stay fair even when
the absolute numbers are noisy.

Prints a table, writes results/bench/bench.json and bench.png, exits 1 if a target is
missed. Needs Redis (REDIS_HOST/REDIS_PORT, default localhost:6379) and HAProxy.
Usage: python scripts/bench.py [--reuse-models] [--quick] [--only ours]
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import aiohttp
import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.fill_tracker_store import insert_copies, recorded  # noqa: E402
from scripts.servers import BIN, HAPROXY, running_assistant, running_haproxy  # noqa: E402

OUT = ROOT / "results" / "bench"
MODELS = OUT / "models"
TRAINING_TIMES = MODELS / "training.json"
BASELINE_CONFIG_SOURCE = (ROOT / ".venv" / "lib" / "python3.10" / "site-packages" / "rasa"
                          / "cli" / "initial_project" / "config.yml")
CONFIGS = {"ours": ROOT / "config.yml", "baseline": OUT / "baseline_config.yml"}


@dataclass(frozen=True)
class Deployment:
    """How one measured assistant runs: which model, endpoints and Rasa processes."""
    model: str  # a key of CONFIGS
    endpoints: str
    processes: int  # 1, or 2 behind HAProxy (deploy/haproxy.cfg)
    levels: Optional[Tuple[int, ...]] = None  # concurrency levels measured (None: all)


def deployments() -> Dict[str, Deployment]:
    """ours: as README "Deployment" runs it on one 2-core machine: two Rasa processes
    behind HAProxy, which keeps each conversation on one of them (SQLite shared by both,
    Redis lock store). baseline: Rasa's defaults, one process. ours_1_process: ours as
    `make run` starts it, to show what the second process adds."""
    return {"ours": Deployment("ours", "endpoints.workers.yml", 2),
            "baseline": Deployment("baseline", "endpoints.yml", 1),
            "ours_1_process": Deployment("ours", "endpoints.yml", 1, levels=(10,))}

LEVELS = (1, 10, 50)
# Messages per concurrency level: enough for a p99, and at 10 and 50 users enough time
# (about 12 s in all for ours, 40 s for the baseline) that a burst of the shared
# machine's background load does not decide the throughput ratio.
MESSAGES = {1: 300, 10: 2400, 50: 2400}
LONG_TURNS = 202  # turn 200 is the centre of its window
LONG_MARKS = (5, 100, 200)
MARK_HALF_WINDOW = 2  # a mark's latency is the median of turns mark-2 .. mark+2
STORED_CONVERSATIONS = 100_000
REQUEST_TIMEOUT_S = 30.0
MEMORY_SAMPLE_S = 0.2
# Each level's messages in alternating rounds per deployment. This shared machine's speed
# changes by a third from one few-second stretch to the next (Rasa CPU per message of
# one deployment: 6.4-10.5 ms in four rounds), so short, many rounds pair them better.
ROUNDS = 8

TARGET_P50_MS = 20.0
# Re-based on purpose (issue 15): understanding, safety and privacy now cost CPU per turn
# (sentence embeddings, the safety net, context), so the throughput target is 2x the
# default configuration, no longer 3x; latency, memory and turn-cost targets are unchanged.
TARGET_THROUGHPUT_RATIO = 2.0
TARGET_TURN_RATIO = 1.5
TARGET_MEMORY_MB = 1024.0

# --- the conversation mix -------------------------------------------------------------
# Written for the benchmark (not taken from the training or test data).


def _exercise_ids() -> List[str]:
    return list(yaml.safe_load((ROOT / "data/knowledge/exercises.yml").read_text())["exercises"])


def _faq_ids() -> List[str]:
    return list(yaml.safe_load((ROOT / "data/knowledge/faq.yml").read_text())["faqs"])


def exercise_payload(exercise_id: str) -> str:
    """The payload of an exercise button (as actions/exercises.py builds it)."""
    return "/ask_exercise" + json.dumps({"exercise": exercise_id}, separators=(",", ":"))


GREETINGS = ["hi", "hello", "hey there", "good morning", "hiya, anyone around?"]
FAQ_QUESTIONS = [
    "what is the piriformis",
    "can weak glutes give me lower back pain",
    "do tight hip flexors make my back ache",
    "how long does it take to build up my glutes",
    "which kind of doctor should I see about my back",
    "is going for walks good for the glutes",
    "what is gluteal tendinopathy",
    "why does it hurt just above my bum",
    "what does it mean to activate your glutes",
    "which muscles are the glutes made of",
    "what is deep gluteal syndrome",
    "what's the best exercise for a sore lower back",
]
EXERCISE_QUESTIONS = [
    "how do I do a clamshell",
    "show me how to do a glute bridge",
    "teach me the fire hydrant",
    "how are donkey kicks done",
    "what is a crab walk",
    "how do I do the knee to chest stretch",
    "explain the squat with a side leg lift",
    "what exercises can I do for my glutes",
]
BUTTON_PAYLOADS = (
    ["/book_appointment", "/ask_capabilities", "/ask_red_flags"]
    + [f"/{faq}" for faq in _faq_ids()[:6]]
    + [exercise_payload(e) for e in _exercise_ids()]
)
BOOKING = ["I'd like to book an appointment", "can I see a physio next week",
           "how do I make a booking"]
FALLBACKS = ["asdf qwerty zxcv", "purple monkey dishwasher", "blorp fizzle wug",
             "what's the weather in Paris tomorrow", "recommend me a pizza place"]
THANKS = ["thanks", "thank you, that helps", "cheers"]
GOODBYES = ["bye", "see you later"]

MIDDLE = {"faq": FAQ_QUESTIONS, "exercise": EXERCISE_QUESTIONS, "button": BUTTON_PAYLOADS,
          "booking": BOOKING, "fallback": FALLBACKS}
MIDDLE_WEIGHTS = {"faq": 30, "exercise": 20, "button": 30, "booking": 5, "fallback": 15}
ALL_MESSAGES = [m for group in (GREETINGS, *MIDDLE.values(), THANKS, GOODBYES) for m in group]

# The long conversations repeat a cycle of 5 messages, so every window of 5 turns around
# a mark holds the same messages and the marks differ only in the length of the history.
LONG_CYCLES = [
    ["hello", "what is the piriformis", exercise_payload("clamshell"), "blorp fizzle wug",
     "thanks"],
    ["do tight hip flexors make my back ache", "/book_appointment",
     "how do I do a clamshell", "/ask_capabilities", "cheers"],
    ["/faq_glutes_cause_back_pain", "what is a crab walk", "purple monkey dishwasher",
     exercise_payload("glute_bridge"), "what is gluteal tendinopathy"],
]


# The 100,000 stored conversations are copies of this short visit, as Rasa stored it.
TEMPLATE = ["hi", "can weak glutes give me lower back pain", "/book_appointment", "thanks"]


def conversation(rng: random.Random) -> List[str]:
    """One user's visit: maybe a greeting, 3-8 questions or clicks, maybe thanks and bye."""
    turns = [rng.choice(GREETINGS)] if rng.random() < 0.7 else []
    kinds = rng.choices(list(MIDDLE_WEIGHTS), weights=list(MIDDLE_WEIGHTS.values()),
                        k=rng.randint(3, 8))
    turns += [rng.choice(MIDDLE[kind]) for kind in kinds]
    if rng.random() < 0.6:
        turns.append(rng.choice(THANKS))
    if rng.random() < 0.5:
        turns.append(rng.choice(GOODBYES))
    return turns


# --- talking to Rasa ------------------------------------------------------------------


@dataclass
class Reply:
    latency_ms: float
    error: Optional[str]  # None when the reply was a non-empty JSON list with status 200


async def post_message(session: aiohttp.ClientSession, url: str, sender: str,
                       text: str) -> Reply:
    start = time.perf_counter()
    try:
        async with session.post(f"{url}/webhooks/rest/webhook",
                                json={"sender": sender, "message": text}) as response:
            body = await response.json(content_type=None)
            latency = (time.perf_counter() - start) * 1000
            if response.status != 200:
                return Reply(latency, f"HTTP {response.status}")
            return Reply(latency, None if body else "empty reply")
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        return Reply((time.perf_counter() - start) * 1000, type(exc).__name__)


def client_session(users: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=max(users, 1)),
                                 timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))


async def send_all(url: str, sender: str, texts: Sequence[str]) -> List[Reply]:
    """One user sending `texts` one after the other in one conversation."""
    async with client_session(1) as session:
        return [await post_message(session, url, sender, text) for text in texts]


async def run_users(url: str, users: int, budget: int, seed: str,
                    sender_prefix: str) -> Tuple[List[Reply], float]:
    """`users` simulated users, each running conversations back to back (new sender id
    per conversation, think time 0), until `budget` messages were sent in total.
    Returns the replies and the wall time."""
    remaining = [budget]
    replies: List[Reply] = []

    async def user(index: int, session: aiohttp.ClientSession) -> None:
        rng = random.Random(f"{seed}-{index}")  # the same mix for every configuration
        for number in range(budget):
            sender = f"{sender_prefix}-u{index}-c{number}"
            for text in conversation(rng):
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
                replies.append(await post_message(session, url, sender, text))

    async with client_session(users) as session:
        start = time.perf_counter()
        await asyncio.gather(*(user(i, session) for i in range(users)))
        return replies, time.perf_counter() - start


def summarize(replies: Sequence[Reply], wall_s: float) -> Dict[str, Any]:
    latencies = np.array([r.latency_ms for r in replies if r.error is None])
    errors = Counter(r.error for r in replies if r.error)
    p50, p95, p99 = (np.percentile(latencies, [50, 95, 99]) if latencies.size
                     else (float("nan"),) * 3)
    return {"messages": len(replies), "p50_ms": float(p50), "p95_ms": float(p95),
            "p99_ms": float(p99), "mean_ms": float(latencies.mean()) if latencies.size else None,
            "max_ms": float(latencies.max()) if latencies.size else None,
            "messages_per_s": len(replies) / wall_s, "wall_s": wall_s,
            "errors": sum(errors.values()), "error_kinds": dict(errors)}


def turn_latency(conversations: List[List[Reply]], mark: int) -> float:
    """Median latency of turns mark-2 .. mark+2 (1-based) over all long conversations."""
    window = [c[t - 1].latency_ms for c in conversations
              for t in range(mark - MARK_HALF_WINDOW, mark + MARK_HALF_WINDOW + 1)
              if t - 1 < len(c) and c[t - 1].error is None]
    return float(np.median(window)) if window else float("nan")


def per_turn_median(conversations: List[List[Reply]]) -> List[float]:
    """Median over the long conversations of each turn's latency (for the chart)."""
    return [float(np.median([c[t].latency_ms for c in conversations]))
            for t in range(min(len(c) for c in conversations))]


def long_summary(conversations: List[List[Reply]], marks: Sequence[int]) -> Dict[str, Any]:
    at = {str(mark): turn_latency(conversations, mark) for mark in marks}
    return {"turn_ms": at, "last_over_first": at[str(marks[-1])] / at[str(marks[0])],
            "errors": sum(r.error is not None for c in conversations for r in c),
            "per_turn_ms": per_turn_median(conversations)}


# --- memory -----------------------------------------------------------------------------


def tree(process: psutil.Process) -> List[psutil.Process]:
    """A process and its children (Sanic workers, helpers it may fork)."""
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def rss_mb(process: psutil.Process) -> Tuple[float, float]:
    """RSS of the largest process of the tree and of the whole tree, in MB."""
    sizes = []
    for p in tree(process):
        try:
            sizes.append(p.memory_info().rss / 2**20)
        except psutil.Error:
            pass
    return max(sizes, default=0.0), sum(sizes)


def tree_cpu_seconds(process: psutil.Process) -> float:
    """CPU time (user + system) used so far by a process and its children."""
    total = 0.0
    for p in tree(process):
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def high_water_mb(process: psutil.Process) -> float:
    """The kernel's peak RSS (VmHWM) of the largest process of the tree: catches peaks
    between samples, including the start-up before sampling began."""
    peak = 0.0
    for p in tree(process):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
    return peak


class MemorySampler:
    """Samples the RSS of each named process tree every MEMORY_SAMPLE_S in a thread; on
    exit (the processes still running) also reads their high-water marks. Peaks are per
    process (the target is per Rasa process), plus the largest total of each tree."""

    def __init__(self, processes: Dict[str, List[psutil.Process]]) -> None:
        self._processes = processes
        self.sampled = {name: 0.0 for name in self._processes}
        self.total = {name: 0.0 for name in self._processes}
        self.high_water = {name: 0.0 for name in self._processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for name, group in self._processes.items():
            self.high_water[name] = max(high_water_mb(p) for p in group)

    def _run(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_S):
            for name, group in self._processes.items():
                sizes = [rss_mb(p) for p in group]
                self.sampled[name] = max(self.sampled[name], *(largest for largest, _ in sizes))
                self.total[name] = max(self.total[name], sum(total for _, total in sizes))

    def peaks(self) -> Dict[str, float]:
        peaks = {name: max(self.sampled[name], self.high_water[name]) for name in self.sampled}
        for name in self.sampled:
            peaks[f"{name}_sampled"] = self.sampled[name]
            peaks[f"{name}_high_water"] = self.high_water[name]
            peaks[f"{name}_all_processes"] = self.total[name]
        return peaks


# --- training ---------------------------------------------------------------------------


def write_baseline_config() -> None:
    """Rasa's `rasa init` config.yml as is, with our assistant id (no placeholder warning)
    and our importer: the FAQ and clinic intents and their rules are part of the data
    (components/content_importer.py), not of the ML configuration. Without it the
    baseline answered every FAQ and clinic question with nothing."""
    ours = yaml.safe_load(CONFIGS["ours"].read_text())
    text = BASELINE_CONFIG_SOURCE.read_text().replace(
        "assistant_id: placeholder_default", "assistant_id: glute-back-pain-baseline")
    text += "\n" + yaml.safe_dump({"importers": ours["importers"]}, sort_keys=False)
    CONFIGS["baseline"].write_text(text)


def train(name: str) -> float:
    """Train `name` into MODELS/<name>.tar.gz from scratch (fresh cache); seconds taken."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2",
           "RASA_TELEMETRY_ENABLED": "false"}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        env["RASA_CACHE_DIRECTORY"] = str(Path(tmp) / "cache")  # no reuse of earlier runs
        command = [str(BIN / "rasa"), "train", "--force", "--data", "data/nlu", "data/rules",
                   "--config", str(CONFIGS[name]), "--domain", "domain.yml",
                   "--out", tmp, "--fixed-model-name", name]
        log = OUT / "logs" / f"train-{name}.log"
        start = time.perf_counter()
        with log.open("w") as out:
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"training {name} failed, see {log}")
        shutil.move(str(Path(tmp) / f"{name}.tar.gz"), MODELS / f"{name}.tar.gz")
    return seconds


def skipped_components(name: str) -> List[str]:
    """Components that Rasa left untrained (e.g. TEDPolicy: data/ holds rules, no stories),
    read from the training log: they cost nothing at run time, which the ratios reflect."""
    log = OUT / "logs" / f"train-{name}.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return sorted(set(re.findall(r"Skipping training of `(\w+)`", text)))


def trained_models(names: Sequence[str], reuse: bool) -> Dict[str, float]:
    """Training seconds per configuration; with `reuse`, earlier models and times are kept."""
    MODELS.mkdir(parents=True, exist_ok=True)
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    times = json.loads(TRAINING_TIMES.read_text()) if TRAINING_TIMES.exists() else {}
    write_baseline_config()
    for name in names:
        if reuse and name in times and (MODELS / f"{name}.tar.gz").exists():
            print(f"Reusing {MODELS / name}.tar.gz (trained in {times[name]:.0f} s)", flush=True)
            continue
        print(f"Training {name} ({CONFIGS[name].relative_to(ROOT)}) ...", flush=True)
        times[name] = train(name)
        print(f"  {times[name]:.0f} s", flush=True)
        TRAINING_TIMES.write_text(json.dumps(times, indent=2))
    return {name: times[name] for name in names}


# --- a tracker store with 100,000 stored conversations --------------------------------


def prefill_store(db_path: Path, template: str, conversations: int) -> Dict[str, Any]:
    """Store `conversations` copies of the recorded conversation `template`, each in the
    past week (inside any retention period), straight into the events table in one
    transaction."""
    db = sqlite3.connect(db_path, timeout=120)
    try:
        templates = recorded(db, template)
        if not templates:
            senders = [row for row in db.execute(
                "SELECT sender_id, count(*) FROM events GROUP BY sender_id LIMIT 5")]
            raise RuntimeError(f"conversation {template!r} is not in {db_path} "
                               f"(templates there: {senders})")
        start = time.perf_counter()
        now = time.time()
        with db:
            rows = insert_copies(db, templates, conversations, now - 7 * 86400, now - 3600,
                                 random.Random(0))
        seconds = time.perf_counter() - start
    finally:
        db.close()
    return {"conversations": conversations, "events_per_conversation": len(templates[0]),
            "rows": rows, "seconds": seconds, "db_mb": db_path.stat().st_size / 2**20}


# --- the measurements, interleaved between the configurations ----------------------------


@dataclass
class Variant:
    """One running configuration (action server + Rasa) and what was measured on it."""
    name: str
    url: str
    db: Path
    processes: Dict[str, List[psutil.Process]]  # rasa (one or two), actions
    memory: MemorySampler
    result: Dict[str, Any]
    deployment: Deployment

    def cpu_seconds(self) -> Dict[str, float]:
        return {name: sum(tree_cpu_seconds(p) for p in group)
                for name, group in self.processes.items()}


@dataclass
class Plan:
    budgets: Dict[int, int]
    turns: int
    marks: Tuple[int, ...]
    stored: int


def plan(quick: bool) -> Plan:
    if quick:  # development: a fifth of the messages, short conversations, small store
        return Plan({users: n // 5 for users, n in MESSAGES.items()}, 32, (5, 15, 30), 1000)
    return Plan(dict(MESSAGES), LONG_TURNS, LONG_MARKS, STORED_CONVERSATIONS)


def sqlite_store(tmp: Path, endpoints: str) -> Path:
    config = yaml.safe_load((ROOT / endpoints).read_text())
    if config.get("tracker_store", {}).get("dialect") != "sqlite":
        raise SystemExit(f"{endpoints}: the benchmark needs the SQLite tracker store")
    return tmp / "tracker.db"  # where running_assistant puts it


def redis_settings() -> Dict[str, str]:
    """The Redis of endpoints.workers.yml (REDIS_* if set, else localhost), checked."""
    settings = {"REDIS_HOST": os.environ.get("REDIS_HOST", "localhost"),
                "REDIS_PORT": os.environ.get("REDIS_PORT", "6379"),
                "REDIS_DB": os.environ.get("REDIS_DB", "14")}
    import redis

    try:
        redis.Redis(host=settings["REDIS_HOST"], port=int(settings["REDIS_PORT"]),
                    socket_timeout=2).ping()
    except redis.RedisError as error:
        raise SystemExit(f"error: Redis at {settings['REDIS_HOST']}:{settings['REDIS_PORT']} "
                         f"is unreachable ({error}); our deployment's Rasa processes share "
                         "their conversation locks there. Start Redis or set REDIS_HOST/"
                         "REDIS_PORT.")
    return settings


def start(stack: contextlib.ExitStack, name: str, deployment: Deployment) -> Variant:
    """Start one deployment's servers (stopped when `stack` closes) and time the start:
    from Rasa's process start to the first reply to a REST message."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
    stack.callback(keep_logs, tmp, name)  # runs after the servers stopped
    model = MODELS / f"{deployment.model}.tar.gz"
    env = redis_settings() if deployment.processes > 1 else {}
    servers = stack.enter_context(running_assistant(
        tmp, env_extra=env, endpoints=deployment.endpoints, model=model,
        rasa_processes=deployment.processes))
    url = servers.rasa_url
    if deployment.processes > 1:
        url = stack.enter_context(running_haproxy(
            tmp, *(u.split("://", 1)[1] for u in servers.rasa_urls.values())))
    processes = {"rasa": [psutil.Process(servers.processes[name].pid)
                          for name in servers.rasa_urls],
                 "actions": [psutil.Process(servers.processes["actions"].pid)]}
    memory = stack.enter_context(MemorySampler(processes))
    first = asyncio.run(send_all(url, f"{name}-startup", ["hello"]))[0]
    started = min(p.create_time() for p in processes["rasa"])
    result = {"model": str(model.relative_to(ROOT)),
              "config": str(CONFIGS[deployment.model].relative_to(ROOT)),
              "endpoints": deployment.endpoints, "rasa_processes": deployment.processes,
              "startup_s": time.time() - started, "startup_error": first.error,
              "rasa_mb_after_startup": max(rss_mb(p)[0] for p in processes["rasa"])}
    phase(name, f"answered {result['startup_s']:.1f} s after Rasa's start")
    return Variant(name, url, sqlite_store(tmp, deployment.endpoints), processes, memory,
                   result, deployment)


def warm_up(variant: Variant) -> None:
    """Every message of the mix once, so lazy loading is not measured; names the messages
    that got no reply (each would count as an error in the measurements). Then records
    the short conversation that the stored conversations are copies of."""
    replies = asyncio.run(send_all(variant.url, f"{variant.name}-warmup", ALL_MESSAGES))
    failed = {text: r.error for text, r in zip(ALL_MESSAGES, replies) if r.error}
    template = asyncio.run(send_all(variant.url, f"{variant.name}-template", TEMPLATE))
    failed.update({text: r.error for text, r in zip(TEMPLATE, template) if r.error})
    variant.result["warmup"] = {"messages": len(replies) + len(template), "errors": len(failed),
                                "failed": failed}


def machine_cpu() -> List[int]:
    """The machine's CPU time counters (/proc/stat; empty where there is none)."""
    try:
        with open("/proc/stat") as stat:
            return [int(n) for n in stat.readline().split()[1:]]
    except OSError:
        return []


def busy_share(before: List[int], after: List[int]) -> Optional[float]:
    """Share of the machine's CPU time that was not idle (or waiting for I/O) between
    two readings: 1.0 means every core was busy the whole time."""
    if not before or not after:
        return None
    spent = [b - a for a, b in zip(before, after)]
    total = sum(spent[:8])  # user nice system idle iowait irq softirq steal
    return 1 - (spent[3] + spent[4]) / total if total else None


def in_turns(variants: List[Variant], index: int) -> List[Variant]:
    """Alternate the order of the deployments, so a change in the machine's background
    load hits them alike."""
    return variants if index % 2 == 0 else variants[::-1]


def measure_levels(all_variants: List[Variant], budgets: Dict[int, int]) -> None:
    for users in LEVELS:
        variants = [v for v in all_variants
                    if v.deployment.levels is None or users in v.deployment.levels]
        phase("all", f"{users} concurrent conversation(s), {budgets[users]} messages each, "
                     f"in {ROUNDS} alternating rounds")
        load = os.getloadavg()[0]
        replies: Dict[str, List[Reply]] = {v.name: [] for v in variants}
        wall = {v.name: 0.0 for v in variants}
        cpu: Dict[str, Counter] = {v.name: Counter() for v in variants}
        rounds: Dict[str, List[Dict[str, float]]] = {v.name: [] for v in variants}
        for round_ in range(ROUNDS):
            for v in in_turns(variants, round_):
                before, machine_before = v.cpu_seconds(), machine_cpu()
                got, seconds = asyncio.run(run_users(
                    v.url, users, budgets[users] // ROUNDS, seed=f"{users}-{round_}",
                    sender_prefix=f"{v.name}-{users}-r{round_}"))
                used = {k: t - before[k] for k, t in v.cpu_seconds().items()}
                cpu[v.name].update(used)
                replies[v.name] += got
                wall[v.name] += seconds
                rounds[v.name].append({
                    "messages_per_s": len(got) / seconds,
                    "rasa_cpu_ms_per_message": 1000 * used["rasa"] / max(len(got), 1),
                    "machine_busy": busy_share(machine_before, machine_cpu())})
        for v in variants:
            summary = summarize(replies[v.name], wall[v.name])
            summary["rounds"] = rounds[v.name]
            # CPU per message hardly depends on other jobs' load, unlike wall-clock latency.
            summary["cpu_ms_per_message"] = {k: 1000 * t / len(replies[v.name])
                                             for k, t in cpu[v.name].items()}
            summary["load_average_before"] = load
            v.result.setdefault("levels", {})[str(users)] = summary


def measure_long(variants: List[Variant], turns: int, marks: Sequence[int], key: str) -> None:
    """LONG_CYCLES long conversations per configuration, alternating configurations."""
    done: Dict[str, List[List[Reply]]] = {v.name: [] for v in variants}
    for index, cycle in enumerate(LONG_CYCLES):
        texts = [cycle[t % len(cycle)] for t in range(turns)]
        for v in in_turns(variants, index):
            done[v.name].append(asyncio.run(send_all(v.url, f"{v.name}-{key}-{index}", texts)))
    for v in variants:
        v.result[key] = long_summary(done[v.name], marks)


def measure(plans: Dict[str, Deployment], quick: bool) -> Dict[str, Dict[str, Any]]:
    """Start every deployment, then run each phase on all of them in turn (the long
    conversations only on those measured at every level)."""
    steps = plan(quick)
    with contextlib.ExitStack() as stack:
        started = [start(stack, name, deployment) for name, deployment in plans.items()]
        for v in started:
            warm_up(v)
        measure_levels(started, steps.budgets)
        variants = [v for v in started if v.deployment.levels is None]
        phase("all", f"{len(LONG_CYCLES)} long conversations of {steps.turns} turns")
        measure_long(variants, steps.turns, steps.marks, "long_empty")
        for v in variants:
            phase(v.name, f"storing {steps.stored:,} conversations in the tracker store")
            v.result["prefill"] = prefill_store(v.db, f"{v.name}-template", steps.stored)
        phase("all", f"long conversations again with {steps.stored:,} stored conversations")
        measure_long(variants, steps.turns, steps.marks, "long_prefilled")
    for v in started:  # the servers have stopped: the samplers hold the peaks
        v.result["memory_mb"] = v.memory.peaks()
    return {v.name: v.result for v in started}


def phase(name: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {text}", flush=True)


def keep_logs(tmp: Path, name: str) -> None:
    for log in tmp.glob("*.log"):
        shutil.copy(log, OUT / "logs" / f"{name}-{log.name}")


# --- report -----------------------------------------------------------------------------


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b not in (None, 0) else None


def ratios(ours: Dict[str, Any], base: Dict[str, Any],
           single: Optional[Dict[str, Any]] = None) -> Dict[str, Optional[float]]:
    """ours / baseline for the figures the issue asks about (and, for ours in one
    process, `single`, the two that show what the second process adds)."""
    single_level = (single or {}).get("levels", {}).get("10", {})
    return {
        "messages_per_s_10": ratio(ours["levels"]["10"]["messages_per_s"],
                                   base["levels"]["10"]["messages_per_s"]),
        "messages_per_s_10_one_process": ratio(single_level.get("messages_per_s"),
                                               base["levels"]["10"]["messages_per_s"]),
        "rasa_cpu_ms_per_message_10_one_process": ratio(
            single_level.get("cpu_ms_per_message", {}).get("rasa"),
            base["levels"]["10"]["cpu_ms_per_message"]["rasa"]),
        "p50_ms_1": ratio(ours["levels"]["1"]["p50_ms"], base["levels"]["1"]["p50_ms"]),
        "turn_ratio_empty": ratio(ours["long_empty"]["last_over_first"],
                                  base["long_empty"]["last_over_first"]),
        "turn_ratio_prefilled": ratio(ours["long_prefilled"]["last_over_first"],
                                      base["long_prefilled"]["last_over_first"]),
        "rasa_memory_mb": ratio(ours["memory_mb"]["rasa"], base["memory_mb"]["rasa"]),
        "training_s": ratio(ours["training_s"], base["training_s"]),
        "startup_s": ratio(ours["startup_s"], base["startup_s"]),
    }


def total_errors(result: Dict[str, Any]) -> int:
    return (result["warmup"]["errors"] + (result["startup_error"] is not None)
            + sum(level["errors"] for level in result["levels"].values())
            + result["long_empty"]["errors"] + result["long_prefilled"]["errors"])


def targets(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The issue's targets, checked on our configuration (none if it was not measured)."""
    if "ours" not in results:
        return []
    ours = results["ours"]
    marks = list(ours["long_empty"]["turn_ms"])
    processes = ours["rasa_processes"]
    first, last = marks[0], marks[-1]
    checks = [
        ("p50 latency, 1 user (ms)", ours["levels"]["1"]["p50_ms"], "<=", TARGET_P50_MS),
        ("errors, all phases", total_errors(ours), "<=", 0),
        (f"turn {last} / turn {first}, empty store", ours["long_empty"]["last_over_first"],
         "<=", TARGET_TURN_RATIO),
        (f"turn {last} ({ours['prefill']['conversations']:,} stored) / turn {first} "
         "(empty store)", ours["long_prefilled"]["turn_ms"][last]
         / ours["long_empty"]["turn_ms"][first], "<=", TARGET_TURN_RATIO),
        ("peak memory of a Rasa process (MB)", ours["memory_mb"]["rasa"], "<",
         TARGET_MEMORY_MB),
    ]
    if "baseline" in results:
        checks.insert(1, (f"messages/s at 10 users, ours ({processes} processes) / baseline",
                          ratios(ours, results["baseline"])["messages_per_s_10"], ">=",
                          TARGET_THROUGHPUT_RATIO))
        # a baseline that fails to answer is cheaper per message: the ratio means nothing
        checks.insert(2, ("errors, all phases (baseline)", total_errors(results["baseline"]),
                          "<=", 0))
    compare = {"<=": lambda v, t: v <= t, "<": lambda v, t: v < t, ">=": lambda v, t: v >= t}
    return [{"target": label, "value": value, "limit": f"{op} {limit}",
             "passed": value is not None and bool(compare[op](value, limit))}
            for label, value, op, limit in checks]


def fmt(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


def table_rows(result: Dict[str, Any]) -> List[Tuple[str, Optional[float], int]]:
    """(label, value, digits) rows of one configuration, in print order."""
    rows: List[Tuple[str, Optional[float], int]] = []
    for users, level in result["levels"].items():
        rows += [(f"{users:>2} user(s): p50 ms", level["p50_ms"], 1),
                 (f"{users:>2} user(s): p95 ms", level["p95_ms"], 1),
                 (f"{users:>2} user(s): p99 ms", level["p99_ms"], 1),
                 (f"{users:>2} user(s): messages/s", level["messages_per_s"], 1),
                 (f"{users:>2} user(s): CPU ms/message, Rasa",
                  level["cpu_ms_per_message"]["rasa"], 1),
                 (f"{users:>2} user(s): CPU ms/message, actions",
                  level["cpu_ms_per_message"]["actions"], 1),
                 (f"{users:>2} user(s): errors", level["errors"], 0)]
    stored = result["prefill"]["conversations"]
    for key, label in (("long_empty", "empty store"), ("long_prefilled", f"{stored:,} stored")):
        long = result[key]
        marks = list(long["turn_ms"])
        rows += [(f"turn {mark} ms ({label})", long["turn_ms"][mark], 1) for mark in marks]
        rows += [(f"turn {marks[-1]} / turn {marks[0]} ({label})", long["last_over_first"], 2),
                 (f"long conversation errors ({label})", long["errors"], 0)]
    rows += [("Rasa processes", result["rasa_processes"], 0),
             ("memory after start-up, Rasa MB", result["rasa_mb_after_startup"], 0),
             ("peak memory, largest Rasa process MB", result["memory_mb"]["rasa"], 0),
             ("peak memory, all Rasa processes MB", result["memory_mb"]["rasa_all_processes"],
              0),
             ("peak memory, action server MB", result["memory_mb"]["actions"], 0),
             ("start-up s (process start to 1st reply)", result["startup_s"], 1),
             ("training s (cold cache)", result["training_s"], 0),
             ("errors, all phases", total_errors(result), 0)]
    return rows


def print_table(results: Dict[str, Dict[str, Any]]) -> None:
    names = [name for name in results if "long_empty" in results[name]]
    columns = [table_rows(results[name]) for name in names]
    header = f"{'':44}" + "".join(f"{name:>12}" for name in names)
    if len(names) == 2:
        header += f"{'ours/base':>12}"
    print("\n" + header + "\n" + "-" * len(header))
    for index, (label, _, digits) in enumerate(columns[0]):
        values = [column[index][1] for column in columns]
        line = f"{label:44}" + "".join(f"{fmt(v, digits):>12}" for v in values)
        if len(values) == 2 and "errors" not in label and "processes" not in label:
            line += f"{fmt(ratio(values[0], values[1]), 2):>12}"
        print(line)
    single, base = results.get("ours_1_process"), results.get("baseline")
    if single and base:
        level, base_level = single["levels"]["10"], base["levels"]["10"]
        print("\nours in one Rasa process (endpoints.yml, as `make run` starts it), 10 users:")
        for label, key, digits in (("messages/s", "messages_per_s", 1), ("p50 ms", "p50_ms", 1),
                                   ("p95 ms", "p95_ms", 1), ("errors", "errors", 0)):
            print(f"  {label:40}{fmt(level[key], digits):>12}{fmt(base_level[key], digits):>12}"
                  + ("" if key == "errors" else
                     f"{fmt(ratio(level[key], base_level[key]), 2):>12}"))
        cpu, base_cpu = level["cpu_ms_per_message"]["rasa"], base_level["cpu_ms_per_message"]["rasa"]
        print(f"  {'CPU ms/message, Rasa':40}{fmt(cpu):>12}{fmt(base_cpu):>12}"
              f"{fmt(ratio(cpu, base_cpu), 2):>12}")
        print(f"  {'peak memory, Rasa MB':40}{fmt(single['memory_mb']['rasa'], 0):>12}"
              f"{fmt(base['memory_mb']['rasa'], 0):>12}")
    print("\n10 users, round by round (messages/s, Rasa CPU ms/message, machine busy %):")
    for name, result in results.items():
        rounds = result.get("levels", {}).get("10", {}).get("rounds", [])
        print(f"  {name:16}" + "  ".join(
            f"{r['messages_per_s']:.0f}/{r['rasa_cpu_ms_per_message']:.1f}/"
            + ("-" if r["machine_busy"] is None else f"{100 * r['machine_busy']:.0f}%")
            for r in rounds))


def print_targets(checks: List[Dict[str, Any]]) -> None:
    if not checks:
        print("\nTargets: not checked (they apply to ours, which was not measured)")
        return
    print("\nTargets (ours):")
    for check in checks:
        mark = "ok  " if check["passed"] else "MISS"
        print(f"  {mark} {check['target']}: {fmt(check['value'], 2)} (target {check['limit']})")


# --- chart ------------------------------------------------------------------------------


def chart(results: Dict[str, Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {name: r for name, r in results.items() if "long_empty" in r}  # full runs
    fig, (bars, turns) = plt.subplots(1, 2, figsize=(13, 5))
    draw_percentiles(bars, results)
    draw_turns(turns, results)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


COLOURS = {"ours": "tab:blue", "baseline": "tab:orange"}


def draw_percentiles(ax: Any, results: Dict[str, Dict[str, Any]]) -> None:
    """Grouped bars: p50/p95/p99 per concurrency level, one colour per configuration."""
    percentiles = ("p50_ms", "p95_ms", "p99_ms")
    width = 0.8 / (len(results) * len(percentiles))
    for n, (name, result) in enumerate(results.items()):
        for k, key in enumerate(percentiles):
            offset = (n * len(percentiles) + k) * width - 0.4 + width / 2
            values = [result["levels"][str(users)][key] for users in LEVELS]
            ax.bar(np.arange(len(LEVELS)) + offset, values, width, color=COLOURS[name],
                   alpha=(1.0, 0.65, 0.35)[k], label=f"{name} {key[:3]}")
    ax.axhline(TARGET_P50_MS, color="grey", linestyle=":", label="p50 target, 1 user")
    ax.set_xticks(np.arange(len(LEVELS)), [f"{u} concurrent" for u in LEVELS])
    ax.set_yscale("log")
    ax.set_ylabel("latency per message (ms, log scale)")
    ax.set_title("REST latency percentiles")
    ax.legend(fontsize=8, ncol=2)


def rolling_median(values: Sequence[float], half: int = MARK_HALF_WINDOW) -> List[float]:
    """Centred medians over whole windows only: the long conversations repeat a 5-message
    cycle, so a clipped window at either end would mix other messages."""
    return [float(np.median(values[i - half:i + half + 1]))
            for i in range(half, len(values) - half)]


def draw_turns(ax: Any, results: Dict[str, Dict[str, Any]]) -> None:
    """Latency per turn of the long conversations, empty and pre-filled store."""
    for name, result in results.items():
        stored = result["prefill"]["conversations"]
        for key, style, label in (("long_empty", "-", "empty store"),
                                  ("long_prefilled", "--", f"{stored:,} stored")):
            series = rolling_median(result[key]["per_turn_ms"])
            first_turn = MARK_HALF_WINDOW + 1
            ax.plot(range(first_turn, first_turn + len(series)), series, style,
                    color=COLOURS[name], label=f"{name}, {label}")
    for mark in next(iter(results.values()))["long_empty"]["turn_ms"]:
        ax.axvline(int(mark), color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("turn of the conversation")
    ax.set_ylabel(f"latency (ms, median of {2 * MARK_HALF_WINDOW + 1} turns)")
    ax.set_title("Per-turn cost over a long conversation")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)


# --- main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse-models", action="store_true",
                        help="keep the models (and training times) of an earlier run")
    parser.add_argument("--quick", action="store_true",
                        help="a fifth of the messages, short conversations, 1,000 stored "
                             "conversations (for development; targets still checked)")
    parser.add_argument("--only", choices=list(CONFIGS),
                        help="measure one configuration's deployments")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    began, load_before = time.time(), os.getloadavg()
    names = [args.only] if args.only else list(CONFIGS)
    plans = {name: d for name, d in deployments().items() if d.model in names}
    if any(d.processes > 1 for d in plans.values()):  # before the long training
        if HAPROXY is None:
            raise SystemExit("error: haproxy is not installed (`apt-get install haproxy`); "
                             "our deployment's two Rasa processes run behind it")
        redis_settings()
    training = trained_models(names, args.reuse_models)
    results = measure(plans, args.quick)
    for name, deployment in plans.items():
        results[name]["training_s"] = training[deployment.model]
        results[name]["untrained_components"] = skipped_components(deployment.model)
    checks = targets(results)
    report = {
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg(),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(began)),
                    "duration_s": time.time() - began},
        "settings": {"levels": LEVELS, "messages": MESSAGES, "long_turns": LONG_TURNS,
                     "long_cycles": LONG_CYCLES, "stored_conversations": STORED_CONVERSATIONS,
                     "quick": args.quick,
                     "deployments": {name: vars(d) for name, d in plans.items()}},
        "results": results,
        "ratios_ours_over_baseline": (
            ratios(results["ours"], results["baseline"], results.get("ours_1_process"))
            if "ours" in results and "baseline" in results else None),
        "targets": checks,
    }
    (OUT / "bench.json").write_text(json.dumps(report, indent=2))
    chart(results, OUT / "bench.png")
    print_table(results)
    for name, result in results.items():
        if result["untrained_components"] and "long_empty" in result:
            print(f"({name}: Rasa skipped training {', '.join(result['untrained_components'])}"
                  " for lack of data)")
    print_targets(checks)
    print(f"\nLoad average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"({os.cpu_count()} CPUs); took {(time.time() - began) / 60:.1f} min. "
          f"Wrote {OUT.relative_to(ROOT)}/bench.json and bench.png")
    missed = [c["target"] for c in checks if not c["passed"]]
    if missed:
        print("Missed: " + "; ".join(missed), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
