"""Rasa CPU per message, piece by piece: what each node of the model graph costs (the
sentence embeddings, the red-flag screening, the classifier, the rule policy that carries
the conversation's context, ...) and what the action server costs per message.

The conversations of tests/conversations/suite.yml are held in this process through
Rasa's Agent (the runtime changes of runtime/ installed, as the Rasa server has them),
against a real action server; every graph node is timed with the process's CPU clock
(onnxruntime's and numpy's threads included). The conversations are held twice and only
the second round counts, so that caches are as warm as on a running server.

Usage: python scripts/cost_per_piece.py [--model models/assistant.tar.gz]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

from scripts.servers import BIN, free_port, stop, wait_until_up  # noqa: E402

SUITE = ROOT / "tests" / "conversations" / "suite.yml"
# Which graph nodes make up each piece the README reports (by the component's class name).
PIECES = {
    "sentence embeddings": ("MiniLMFeaturizer",),
    "red-flag screening": ("RedFlagDetector",),
    "context (rule policy over slots and the last turns)": ("CachedRulePolicy",),
}


def user_turns(suite: Path) -> List[List[str]]:
    """Typed messages of each conversation (clicks become the button's payload later)."""
    conversations = []
    for conversation in yaml.safe_load(suite.read_text())["conversations"]:
        conversations.append([turn["user"] for turn in conversation["turns"] if "user" in turn])
    return conversations


class NodeClock:
    """Wraps every instantiated graph node: CPU seconds by component class."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = defaultdict(float)
        self.on = False

    def wrap(self, runner: Any) -> None:
        for name, node in list(runner._instantiated_nodes.items()):
            label = node._component_class.__name__
            runner._instantiated_nodes[name] = self._timed(node, label)

    def _timed(self, node: Callable, label: str) -> Callable:
        def call(*args: Any) -> Any:
            if not self.on:
                return node(*args)
            start = time.process_time()
            try:
                return node(*args)
            finally:
                self.seconds[label] += time.process_time() - start
        return call


async def hold(agent: Any, conversations: List[List[str]]) -> int:
    messages = 0
    for texts in conversations:
        sender = uuid.uuid4().hex
        for text in texts:
            await agent.handle_text(text, sender_id=sender)
            messages += 1
    return messages


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "assistant.tar.gz"))
    args = parser.parse_args(argv)

    import logging

    from rasa.utils.log_utils import configure_structlog
    configure_structlog(logging.WARNING)  # Rasa logs every event at debug level otherwise
    logging.getLogger().setLevel(logging.WARNING)
    import runtime
    runtime.install()  # as every Rasa process of this assistant has it (runtime/__init__.py)
    from rasa.core.agent import Agent
    from rasa.utils.endpoints import EndpointConfig

    conversations = user_turns(SUITE)
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "actions.log"
    env = {**os.environ, "SANIC_HOST": "127.0.0.1"}
    actions = subprocess.Popen([str(BIN / "python"), "launcher.py", "run", "actions", "--actions", "actions",
                                "--port", str(port)], cwd=ROOT, env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", actions, log)
        agent = Agent.load(args.model, action_endpoint=EndpointConfig(
            f"http://127.0.0.1:{port}/webhook"))
        clock = NodeClock()
        clock.wrap(agent.processor.graph_runner)
        asyncio.run(hold(agent, conversations))  # warm-up round, not counted
        action_cpu = psutil.Process(actions.pid).cpu_times()
        clock.on = True
        start = time.process_time()
        messages = asyncio.run(hold(agent, conversations))
        total = time.process_time() - start
        after = psutil.Process(actions.pid).cpu_times()
        action_seconds = (after.user + after.system) - (action_cpu.user + action_cpu.system)
    finally:
        stop([actions])

    per = lambda seconds: seconds / messages * 1000  # noqa: E731
    print(f"{messages} messages ({len(conversations)} conversations of {SUITE.name}), "
          f"CPU per message:")
    print(f"  Rasa, in all: {per(total):.2f} ms")
    for piece, classes in PIECES.items():
        print(f"    {piece}: {per(sum(clock.seconds[c] for c in classes)):.2f} ms")
    shown = {c for classes in PIECES.values() for c in classes}
    rest = sum(s for c, s in clock.seconds.items() if c not in shown)
    print(f"    other graph nodes: {per(rest):.2f} ms")
    print(f"    outside the graph (tracker, events, action calls): "
          f"{per(total - sum(clock.seconds.values())):.2f} ms")
    print(f"  action server (answers, and the context that settles a fallback): "
          f"{per(action_seconds):.2f} ms")
    print("  every graph node:")
    for label, seconds in sorted(clock.seconds.items(), key=lambda item: -item[1]):
        print(f"    {label:45} {per(seconds):6.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
