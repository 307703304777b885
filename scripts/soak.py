"""The soak (`make soak`): 50 conversations of 200 messages each, at the same time, against
`make run` (scripts/run.sh: supervised, PostgreSQL and Redis) while, in turn, Rasa is
killed (SIGKILL; supervisord restarts it), the action server is stopped and continued
(SIGSTOP / SIGCONT) and the database is cut and restored (a TCP proxy in between, so the
machine's PostgreSQL is never stopped). Loopback only; a few minutes.

Each visitor sends its messages one after the other and, like a person, sends one again
when it was refused (429, 503), timed out or the connection failed. Then the stored events
are read from PostgreSQL and compared with what was answered:

- lost: answered with 200 but not stored;
- duplicated: stored more than once;
- out of order: stored in another order than sent;
- errors seen by visitors: attempts that did not get a 200 with a reply;
- latency of the answered attempts (p50, p95, max).

Usage: python scripts/soak.py [--conversations 50] [--messages 200]
Exit status 1 if a message was lost, duplicated or out of order.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.servers import free_port  # noqa: E402
from scripts.tcp_proxy import TcpProxy  # noqa: E402

PG = {"DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": ""}
REDIS = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": "2"}
QUESTIONS = ["what is the piriformis", "how do I do a glute bridge", "are you open on saturday",
             "how many reps", "can weak glutes cause back pain", "thanks",
             "what should I wear to the appointment", "show me an exercise I can do standing"]
GIVE_UP_SECONDS = 300  # per message, retries included


class Visitor:
    def __init__(self, url: str, n: int, messages: int) -> None:
        self.url, self.sender = url, f"soak-{n}-{uuid.uuid4().hex[:6]}"
        self.texts = [f"{QUESTIONS[i % len(QUESTIONS)]} #{i}" for i in range(messages)]
        self.answered: List[str] = []
        self.errors: Dict[str, int] = {}
        self.latencies: List[float] = []
        self.given_up: List[str] = []
        self.resent: List[str] = []  # sent again after an attempt that failed

    async def run(self, session: aiohttp.ClientSession) -> None:
        for text in self.texts:
            deadline = time.monotonic() + GIVE_UP_SECONDS
            while True:
                started = time.monotonic()
                try:
                    async with session.post(self.url, json={"sender": self.sender,
                                                            "message": text}) as answer:
                        body = await answer.json(content_type=None)
                        status = answer.status
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                    status, body = type(error).__name__, None
                if status == 200 and body:
                    self.latencies.append(time.monotonic() - started)
                    self.answered.append(text)
                    break
                key = str(status) if status != 200 else "200 with no reply"
                self.errors[key] = self.errors.get(key, 0) + 1
                self.resent.append(text)
                if time.monotonic() > deadline:
                    self.given_up.append(text)
                    break
                await asyncio.sleep(2 if status == 429 else 1)


class RunSh:
    def __init__(self, env: Dict[str, str], log: Path) -> None:
        self.log = log.open("w")
        self.ready = threading.Event()
        self.process = subprocess.Popen(["bash", str(ROOT / "scripts" / "run.sh")], cwd=ROOT,
                                        env=env, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.write(line)
            self.log.flush()
            if "Press Ctrl-C to stop." in line:
                self.ready.set()

    def program(self, marker: str) -> Optional[psutil.Process]:
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                if marker in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                continue
        return None

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


async def answering(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
    raise TimeoutError(f"{url} did not answer")


async def faults(run: RunSh, proxy: TcpProxy, rasa_url: str, log: List[str]) -> None:
    def note(what: str) -> None:
        log.append(f"{time.strftime('%H:%M:%S')} {what}")
        print("  " + log[-1], flush=True)

    await asyncio.sleep(15)
    rasa = run.program("launcher.py run --model")
    note(f"SIGKILL Rasa (pid {rasa.pid if rasa else '?'})")
    if rasa:
        rasa.kill()
    await asyncio.sleep(3)
    await answering(rasa_url + "/")
    note("Rasa answers again (restarted by supervisord)")
    await asyncio.sleep(15)
    actions = run.program("launcher.py run actions")
    note("SIGSTOP the action server for 10 s")
    if actions:
        actions.suspend()
    await asyncio.sleep(10)
    if actions:
        actions.resume()
    note("SIGCONT the action server")
    await asyncio.sleep(15)
    note("database cut for 20 s")
    proxy.down()
    await asyncio.sleep(20)
    proxy.up()
    note("database back")


def stored_user_texts(dbname: str) -> Dict[str, List[str]]:
    import psycopg2

    with psycopg2.connect(host=PG["DB_HOST"], port=PG["DB_PORT"], user=PG["DB_USER"],
                          dbname=dbname) as connection, connection.cursor() as cursor:
        cursor.execute("select sender_id, data from events where type_name = 'user' "
                       "order by id")
        stored: Dict[str, List[str]] = {}
        for sender, data in cursor.fetchall():
            stored.setdefault(sender, []).append(json.loads(data).get("text"))
    return stored


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def load(url: str, visitors: List[Visitor]) -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(v.run(session) for v in visitors))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--keep-database", action="store_true", help="to look into it")
    args = parser.parse_args(argv)
    dbname = f"clinic_soak_{uuid.uuid4().hex[:8]}"
    proxy = TcpProxy(int(PG["DB_PORT"]))
    proxy.up()
    with tempfile.TemporaryDirectory(prefix="soak", dir="/tmp") as tmp:
        ports = {name: str(free_port()) for name in ("RASA_PORT", "ACTIONS_PORT", "WEB_PORT")}
        env = {**os.environ, **PG, **REDIS, **ports, "DB_PORT": str(proxy.port),
               "DB_NAME": dbname, "ENDPOINTS": "endpoints.postgres.yml", "VAR_DIR": tmp,
               "SPOOL_DIR": str(Path(tmp) / "spool")}
        env.pop("RASA_API_TOKEN", None)
        run = RunSh(env, Path(tmp) / "run.log")
        if not run.ready.wait(300):
            run.stop()
            print((Path(tmp) / "run.log").read_text()[-3000:])
            return 2
        rasa_url = f"http://127.0.0.1:{ports['RASA_PORT']}"
        visitors = [Visitor(f"{rasa_url}/webhooks/rest/webhook", n, args.messages)
                    for n in range(args.conversations)]
        fault_log: List[str] = []
        print(f"soak: {args.conversations} conversations x {args.messages} messages",
              flush=True)
        started = time.monotonic()

        async def everything() -> None:
            fault_task = asyncio.create_task(faults(run, proxy, rasa_url, fault_log))
            await load(f"{rasa_url}/webhooks/rest/webhook", visitors)
            await fault_task

        try:
            asyncio.run(everything())
            elapsed = time.monotonic() - started
            time.sleep(2)
            stored = stored_user_texts(dbname)
        finally:
            run.stop()
            proxy.down()
            if args.keep_database:
                print(f"database kept: {dbname}")
            else:
                subprocess.run([sys.executable, "-c", "from tests.services import "
                                f"drop_database; drop_database('{dbname}')"], cwd=ROOT,
                               check=False)
    lost = duplicated = out_of_order = given_up = resent_twice = 0
    samples: List[str] = []
    errors: Dict[str, int] = {}
    for visitor in visitors:
        mine = stored.get(visitor.sender, [])
        lost += sum(text not in mine for text in visitor.answered)
        duplicated += len(mine) - len(set(mine))
        twice = {t for t in mine if mine.count(t) > 1}
        resent_twice += len(twice & set(visitor.resent))
        samples += [f"{visitor.sender}: {t!r} x{mine.count(t)} (at {mine.index(t)}, "
                    f"{'resent' if t in visitor.resent else 'sent once'})"
                    for t in sorted(twice)][:2]
        sent_order = [t for t in visitor.texts if t in set(mine)]
        out_of_order += sum(a != b for a, b in zip(dict.fromkeys(mine), sent_order))
        given_up += len(visitor.given_up)
        for key, count in visitor.errors.items():
            errors[key] = errors.get(key, 0) + count
    latencies = [s for v in visitors for s in v.latencies]
    answered = sum(len(v.answered) for v in visitors)
    print("\nfaults: " + "; ".join(fault_log))
    print(f"messages sent {args.conversations * args.messages}, answered {answered}, "
          f"gave up {given_up}, in {elapsed:.0f} s")
    print(f"lost {lost}, duplicated {duplicated} ({resent_twice} of the twice-stored "
          f"messages had been sent again after a failed attempt), out of order {out_of_order}")
    for sample in samples[:12]:
        print("  " + sample)
    print(f"errors seen by visitors: {sum(errors.values())} {errors}")
    print(f"latency of answered attempts: p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies):.1f} s")
    return 1 if lost or duplicated or out_of_order else 0


if __name__ == "__main__":
    sys.exit(main())
