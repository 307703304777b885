"""`make run` under supervision (scripts/run.sh, scripts/supervisord.conf): a Rasa killed
with SIGKILL while visitors talk to it is restarted, logged, and answers again; the action
server is left alone meanwhile, and is restarted in its turn when it is killed; Ctrl-C
(SIGINT to run.sh) stops every process it started.

run.sh runs here as it is, beside any `make run` of the developer: free ports, its own
VAR_DIR (logs, supervisord's socket) and its own SQLite tracker store."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import psutil
import pytest
import requests
import yaml

from channels.action_guard import apology_text
from scripts.servers import BIN, MODEL, ROOT, free_port

WEBCHAT_JS = ROOT / "web" / "node_modules" / "rasa-webchat" / "lib" / "index.js"

pytestmark = [
    pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`"),
    pytest.mark.skipif(not WEBCHAT_JS.exists(), reason="no chat widget: run `make install`"),
]

READY = "Press Ctrl-C to stop."
START_TIMEOUT = 180  # run.sh itself gives up after 120 s per server
RESTART_TIMEOUT = 120
LOAD_THREADS = 5


class RunSh:
    """scripts/run.sh as a subprocess; its terminal output collected line by line."""

    def __init__(self, env: Dict[str, str], transcript: Path) -> None:
        self.lines: List[str] = []
        self.process = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh")], cwd=ROOT, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self._transcript = transcript.open("w")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._transcript.write(line)
            self._transcript.flush()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                pytest.fail(f"run.sh exited ({self.process.returncode}) before {text!r}:\n"
                            f"{self.output[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{self.output[-4000:]}")
            time.sleep(0.2)


def listener(port: int) -> Optional[int]:
    """The pid of the process listening on `port` on this machine."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def say(url: str, sender: str, text: str, timeout: float = 30) -> List[Dict]:
    response = requests.post(f"{url}/webhooks/rest/webhook",
                             json={"sender": sender, "message": text}, timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()


def texts(replies: List[Dict]) -> str:
    return "\n".join(reply.get("text", "") for reply in replies)


def wait_until(check, timeout: float, what: str, output) -> float:
    """Seconds until `check()` is true (exceptions count as false)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(Exception):
            if check():
                return time.monotonic() - start
        time.sleep(0.5)
    pytest.fail(f"{what} not within {timeout:.0f} s:\n{output()[-4000:]}")


class Load:
    """LOAD_THREADS visitors, each sending messages one after the other until stopped;
    every attempt recorded as (time sent, time answered, outcome)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stopping = threading.Event()
        self.results: Dict[int, List[Tuple[float, float, str]]] = {
            n: [] for n in range(LOAD_THREADS)}
        self.threads = [threading.Thread(target=self._visit, args=(n,), daemon=True)
                        for n in range(LOAD_THREADS)]

    def _visit(self, n: int) -> None:
        sender = f"load-{n}-{uuid.uuid4().hex[:8]}"
        messages = ["hi", "what is the piriformis", "where is the clinic"]
        i = 0
        while not self.stopping.is_set():
            sent = time.monotonic()
            try:
                say(self.url, sender, messages[i % len(messages)], timeout=30)
                outcome = "ok"
            except (requests.RequestException, AssertionError) as error:
                outcome = type(error).__name__
                time.sleep(0.2)
            self.results[n].append((sent, time.monotonic(), outcome))
            i += 1

    def __enter__(self) -> "Load":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=40)

    def answered_after(self, moment: float) -> Dict[int, int]:
        return {n: sum(1 for sent, _, outcome in results if sent > moment and outcome == "ok")
                for n, results in self.results.items()}

    def failed(self) -> int:
        return sum(1 for results in self.results.values() for *_, o in results if o != "ok")


def test_make_run_restarts_a_killed_rasa_and_action_server_and_ctrl_c_stops_all(
        tmp_path_factory):
    assert (BIN / "supervisord").exists(), (
        "supervisor is not installed in the venv: requirements.txt needs supervisor==4.2.5")
    tmp = tmp_path_factory.mktemp("sv")  # short: supervisord's socket lives in VAR_DIR
    var = tmp / "var"
    rasa_port, actions_port, web_port = free_port(), free_port(), free_port()
    endpoints = yaml.safe_load((ROOT / "endpoints.yml").read_text())
    assert endpoints["tracker_store"]["dialect"] == "sqlite"
    endpoints["tracker_store"]["db"] = str(tmp / "tracker.db")  # not the developer's
    (tmp / "endpoints.yml").write_text(yaml.safe_dump(endpoints, sort_keys=False))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_TELEMETRY_ENABLED": "false",
           "RASA_PORT": str(rasa_port), "ACTIONS_PORT": str(actions_port),
           "WEB_PORT": str(web_port), "VAR_DIR": str(var), "MODEL": str(MODEL),
           "ENDPOINTS": str(tmp / "endpoints.yml"),
           # the Makefile exports the default port's URL: the one for this action server
           "ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}/webhook"}
    for name in ("RASA_API_TOKEN", "CREDENTIALS", "CORS_ORIGINS", "RASA_SOCKET_URL",
                 "ACTIONS_HOST", "RASA_HOST"):
        env.pop(name, None)
    rasa_url = f"http://localhost:{rasa_port}"
    ports = (rasa_port, actions_port, web_port)

    run = RunSh(env, tmp / "run.sh.out")
    started: Dict[int, psutil.Process] = {}  # every process seen under run.sh

    def remember_processes() -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(run.process.pid).children(recursive=True):
                started.setdefault(child.pid, child)

    def supervisor_log() -> str:
        path = var / "supervisord.log"
        return path.read_text() if path.exists() else ""

    def output() -> str:
        return run.output

    try:
        run.wait_for_line(READY, START_TIMEOUT)
        remember_processes()
        assert f"http://localhost:{web_port}" in run.output  # the same ready lines
        assert say(rasa_url, f"first-{uuid.uuid4().hex[:8]}", "hi")

        rasa_pid, actions_pid, web_pid = (listener(port) for port in ports)
        assert None not in (rasa_pid, actions_pid, web_pid), (rasa_pid, actions_pid, web_pid)
        ctl = subprocess.run([str(BIN / "supervisorctl"), "-s", f"unix://{var}/supervisor.sock",
                              "pid", "rasa"], capture_output=True, text=True, timeout=30)
        assert ctl.stdout.strip() == str(rasa_pid), ctl  # the process supervisord watches

        # -- SIGKILL Rasa while five visitors talk to it -----------------------------
        # Killed once supervisord counts it as started (startsecs): a crash of a Rasa that
        # had been running, restarted at once (a death before that is a failed start,
        # retried after the backoff).
        wait_until(lambda: "success: rasa entered RUNNING state" in run.output, 90,
                   "supervisord's RUNNING line for rasa", output)
        with Load(rasa_url) as load:
            wait_until(lambda: all(load.answered_after(0).values()), 30,
                       "every visitor answered before the kill", output)
            os.kill(rasa_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            back_after = wait_until(
                lambda: listener(rasa_port) not in (None, rasa_pid)
                and say(rasa_url, f"after-{uuid.uuid4().hex[:8]}", "hi", timeout=10),
                RESTART_TIMEOUT, "Rasa answering again after SIGKILL", output)
            remember_processes()
            # every visitor is answered again
            recovered = killed_at + back_after
            wait_until(lambda: all(load.answered_after(recovered).values()), 60,
                       "every visitor answered after the restart", output)
        print(f"Rasa answered again {back_after:.0f} s after SIGKILL; "
              f"{load.failed()} requests failed meanwhile")
        new_rasa_pid = listener(rasa_port)
        # supervisord said so, in the terminal and in its log
        exited = "exited: rasa (terminated by SIGKILL; not expected)"
        spawned = f"spawned: 'rasa' with pid {new_rasa_pid}"
        for where, text in (("terminal", run.output), ("supervisord.log", supervisor_log())):
            assert exited in text and spawned in text, f"no restart lines in the {where}"
            assert text.index(exited) < text.rindex(spawned), where
        # the action server and the page were left alone
        assert listener(actions_port) == actions_pid and listener(web_port) == web_pid
        assert "exited: actions" not in run.output and "exited: web" not in run.output

        # -- SIGKILL the action server: restarted, and custom actions work again -----
        os.kill(actions_pid, signal.SIGKILL)
        wait_until(lambda: listener(actions_port) not in (None, actions_pid)
                   and requests.get(f"http://localhost:{actions_port}/health", timeout=5).ok,
                   60, "the action server back after SIGKILL", output)
        remember_processes()
        wait_until(lambda: "exited: actions (terminated by SIGKILL; not expected)"
                   in run.output, 10, "the action server's restart line", output)
        visitor = f"lesson-{uuid.uuid4().hex[:8]}"
        assert say(rasa_url, visitor, "hi")
        lesson = texts(say(rasa_url, visitor, "how do I do a glute bridge"))
        assert "When to stop" in lesson and apology_text() not in lesson, lesson
        assert listener(rasa_port) == new_rasa_pid  # Rasa left alone this time

        # two starts of Rasa, and its log kept across them (Rasa's own start-up line
        # depends on its log level and buffering, so supervisord's log is the oracle)
        supervisor_log = (var / "supervisord.log").read_text()
        assert supervisor_log.count("spawned: 'rasa'") == 2, supervisor_log[-2000:]
        assert (var / "rasa.log").stat().st_size > 0

        # -- Ctrl-C: SIGINT to run.sh stops everything ---------------------------------
        remember_processes()
        assert len(started) >= 4, started  # supervisord and its three programs at least
        os.kill(run.process.pid, signal.SIGINT)
        run.process.wait(timeout=60)
        gone, alive = psutil.wait_procs(list(started.values()), timeout=10)
        assert not alive, f"left running after Ctrl-C: {alive}"
        assert all(listener(port) is None for port in ports)
        assert "Stopping..." in run.output
    finally:
        if run.process.poll() is None:
            remember_processes()
            os.killpg(run.process.pid, signal.SIGKILL)
        for process in started.values():  # supervisord's children have their own groups
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
