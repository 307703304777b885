"""Start the real servers (action server, Rasa, optionally the clinic page) for the tests and
the benchmark."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "assistant.tar.gz"
BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-3000:]}")


@dataclass
class Servers:
    rasa_url: str
    web_url: Optional[str]
    processes: Dict[str, subprocess.Popen]  # by name: actions, rasa[, web]
    actions_port: int


@contextlib.contextmanager
def running_assistant(tmp: Path, env_extra: Optional[Dict[str, str]] = None,
                      with_web: bool = False,
                      endpoints: str = "endpoints.yml",
                      rasa_port: Optional[int] = None,
                      model: Path = MODEL) -> Iterator[Servers]:
    """Action server + Rasa [+ the page], with a committed endpoints file (its ${VAR}s come
    from `env_extra`). A SQLite tracker store is moved into `tmp`; the channels are the
    ones `env_extra` enables."""
    actions_port, web_port = free_port(), free_port()
    rasa_port = rasa_port or free_port()
    config = yaml.safe_load((ROOT / endpoints).read_text())
    if config.get("tracker_store", {}).get("dialect") == "sqlite":
        config["tracker_store"]["db"] = str(tmp / "tracker.db")
    endpoints_file = tmp / "endpoints.yml"
    endpoints_file.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false",
           "RASA_PORT": str(rasa_port), "ACTIONS_PORT": str(actions_port),
           "ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}/webhook",
           "SANIC_HOST": "127.0.0.1",  # the action server's interface (rasa-sdk reads it)
           **(env_extra or {})}
    env.pop("RASA_API_TOKEN", None)
    credentials = tmp / "credentials.yml"
    subprocess.run([sys.executable, "scripts/credentials.py", "credentials.yml", str(credentials)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    web_origin = f"http://localhost:{web_port}"
    commands = {
        "actions": ([str(BIN / "rasa"), "run", "actions", "--actions", "actions",
                     "--port", str(actions_port)], f"http://localhost:{actions_port}/health"),
        "rasa": ([str(BIN / "rasa"), "run", "--model", str(model), "--endpoints", str(endpoints_file),
                  "--credentials", str(credentials), "--interface", "127.0.0.1",
                  "--port", str(rasa_port), "--cors", web_origin],
                 f"http://localhost:{rasa_port}/"),
    }
    if with_web:
        env.update(WEB_PORT=str(web_port), RASA_SOCKET_URL=f"http://localhost:{rasa_port}")
        commands["web"] = ([sys.executable, "scripts/serve_web.py"], f"{web_origin}/")
    processes: List[subprocess.Popen] = []
    try:
        for name, (command, _) in commands.items():
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env,
                                              stdout=(tmp / f"{name}.log").open("w"),
                                              stderr=subprocess.STDOUT))
        for process, (name, (_, health)) in zip(processes, commands.items()):
            wait_until_up(health, process, tmp / f"{name}.log")
        yield Servers(f"http://localhost:{rasa_port}", web_origin if with_web else None,
                      dict(zip(commands, processes)), actions_port)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
