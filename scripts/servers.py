"""Start the real servers (action server, Rasa, optionally the clinic page) for the tests and
the benchmark."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional

import psutil
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "assistant.tar.gz"
BIN = ROOT / ".venv" / "bin"
HAPROXY = shutil.which("haproxy") or next(
    (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None)
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
SERVER_HEADER = "X-Rasa-Server"  # set by deploy/haproxy.cfg


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
    rasa_url: str  # the first (or only) Rasa process
    web_url: Optional[str]
    processes: Dict[str, subprocess.Popen]  # by name: actions, rasa, rasa2..., web
    actions_port: int
    rasa_urls: Dict[str, str]  # every Rasa process by name: rasa, rasa2, ...


@contextlib.contextmanager
def running_assistant(tmp: Path, env_extra: Optional[Dict[str, str]] = None,
                      with_web: bool = False,
                      endpoints: str = "endpoints.yml",
                      rasa_port: Optional[int] = None,
                      model: Path = MODEL,
                      rasa_processes: int = 1,
                      rasa_env: Optional[Dict[str, str]] = None,
                      api_token: Optional[str] = None,
                      debug: bool = False) -> Iterator[Servers]:
    """Action server + `rasa_processes` Rasa processes [+ the page], with a committed
    endpoints file (its ${VAR}s come from `env_extra`). A SQLite tracker store is moved
    into `tmp`; the channels are the ones `env_extra` enables. `rasa_env` is for the Rasa
    processes only (e.g. SANIC_WORKERS, which the action server would also obey).
    `api_token` turns on Rasa's HTTP API with that token (tests that read trackers);
    `debug` runs both at DEBUG (the log privacy test)."""
    actions_port, web_port = free_port(), free_port()
    names = ["rasa"] + [f"rasa{n}" for n in range(2, rasa_processes + 1)]
    ports = {name: free_port() for name in names}
    if rasa_port:
        ports["rasa"] = rasa_port
    config = yaml.safe_load((ROOT / endpoints).read_text())
    if config.get("tracker_store", {}).get("dialect") == "sqlite":
        config["tracker_store"]["db"] = str(tmp / "tracker.db")
    endpoints_file = tmp / "endpoints.yml"
    endpoints_file.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false",
           "ACTIONS_PORT": str(actions_port),
           "ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}/webhook",
           "SANIC_HOST": "127.0.0.1",  # the action server's interface (rasa-sdk reads it)
           **(env_extra or {})}
    env.pop("RASA_API_TOKEN", None)
    credentials = tmp / "credentials.yml"
    subprocess.run([sys.executable, "scripts/credentials.py", "credentials.yml", str(credentials)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    web_origin = f"http://localhost:{web_port}"
    rasa_urls = {name: f"http://localhost:{port}" for name, port in ports.items()}
    # name -> (command, environment, health URL)
    commands = {
        "actions": ([str(BIN / "python"), "launcher.py", "run", "actions", "--actions", "actions",
                     "--port", str(actions_port), *(["--debug"] if debug else [])], env, f"http://localhost:{actions_port}/health"),
    }
    for name, port in ports.items():
        # RASA_PORT: each process calls actions through its own action guard.
        commands[name] = ([str(BIN / "python"), "launcher.py", "run", "--model", str(model),
                           "--endpoints", str(endpoints_file), "--credentials", str(credentials),
                           "--interface", "127.0.0.1", "--port", str(port), "--cors", web_origin,
                           *(["--enable-api", "--auth-token", api_token] if api_token else []),
                           *(["--debug"] if debug else [])],
                          {**env, **(rasa_env or {}), "RASA_PORT": str(port)},
                          f"{rasa_urls[name]}/")
    if with_web:
        commands["web"] = ([sys.executable, "scripts/serve_web.py"],
                           {**env, "WEB_PORT": str(web_port),
                            "RASA_SOCKET_URL": rasa_urls["rasa"]}, f"{web_origin}/")
    processes: Dict[str, subprocess.Popen] = {}
    try:
        for name, (command, command_env, _) in commands.items():
            processes[name] = subprocess.Popen(command, cwd=ROOT, env=command_env,
                                               stdout=(tmp / f"{name}.log").open("w"),
                                               stderr=subprocess.STDOUT)
        for name, (_, _, health) in commands.items():
            wait_until_up(health, processes[name], tmp / f"{name}.log")
        yield Servers(rasa_urls["rasa"], web_origin if with_web else None, processes,
                      actions_port, rasa_urls)
    finally:
        stop(processes.values())


def stop(processes: Iterable[subprocess.Popen], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL to whatever is still running after `grace` seconds, children
    included: with SANIC_WORKERS=2 a Sanic worker now and then ignores the SIGTERM that
    Sanic's main process passes on (README "Known gaps"), and the main process waits
    for it forever."""
    processes = list(processes)
    trees = {process: psutil.Process(process.pid).children(recursive=True)
             for process in processes if process.poll() is None}
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace
    for process, children in trees.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"warning: {process.args[:3]} did not stop in {grace:.0f} s; killing it",
                  file=sys.stderr)
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def running_haproxy(tmp: Path, rasa1: str, rasa2: str) -> Iterator[str]:
    """deploy/haproxy.cfg as it is, in front of `rasa1` and `rasa2` (host:port)."""
    port = free_port()
    # The config re-resolves names through the DNS servers of resolv.conf (Docker's, in
    # docker-compose.yml), which need not know "localhost": a server whose name stops
    # resolving goes into maintenance after `hold valid` (10 s). So: addresses.
    rasa1, rasa2 = (addr.replace("localhost:", "127.0.0.1:") for addr in (rasa1, rasa2))
    env = {**os.environ, "LB_PORT": str(port), "RASA1_ADDR": rasa1, "RASA2_ADDR": rasa2}
    log = tmp / "haproxy.log"
    if HAPROXY is None:
        raise RuntimeError("haproxy is not installed (`apt-get install haproxy`)")
    process = subprocess.Popen([HAPROXY, "-f", str(HAPROXY_CFG), "-db"], env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        # Up when round robin (any path but the channels') reaches both processes.
        deadline, seen = time.monotonic() + 30, set()
        while seen != {"rasa1", "rasa2"}:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not come up:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                seen.add(requests.get(f"{url}/", timeout=2).headers.get(SERVER_HEADER))
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
