"""`make report` (scripts/report.py): the staff report read from the tracker store.

Unit tests store real Rasa event objects with Rasa's own SQLTrackerStore (SQLite, and
PostgreSQL when one runs on localhost:5432). The end-to-end test drives conversations
through the real assistant over REST and Socket.IO, runs the command on the tracker
store they filled, opens the page in headless Chromium and saves a screenshot to
test-output/report/; it also leaves the recorded tracker store there for
scripts/fill_tracker_store.py.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import sqlalchemy as sa
import yaml
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from actions import content
from actions.safety import safety_text
from scripts import report
from scripts.servers import MODEL, ROOT, running_assistant
from tests.services import PG, drop_database, postgres_available

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = ROOT / "test-output" / "report"
PHONE, EMAIL = "07700 900123", "jo.bloggs@example.com"
HEADINGS = ["Summary", "Conversations per day", "Messages per day", "Channels",
            "Most asked topics", "Not understood and out of scope", "Was this helpful?",
            "Red flags", "Unanswered questions"]


# --- unit: events written by Rasa's SQLTrackerStore ----------------------------------

def at(day: dt.date, hour: int, minute: int = 0) -> float:
    return time.mktime(dt.datetime.combine(day, dt.time(hour, minute)).timetuple())


def said(text: str, intent: str, ts: float, channel: str = "rest",
         entities: Optional[List[Dict[str, Any]]] = None) -> UserUttered:
    return UserUttered(text, {"name": intent, "confidence": 0.9}, entities or [],
                       timestamp=ts, input_channel=channel)


def vote(answer: str, helpful: bool, ts: float) -> SlotSet:
    return SlotSet("feedback", {"answer": answer, "helpful": helpful}, timestamp=ts)


def red_flag(tier: str, category: str) -> List[Dict[str, Any]]:
    return [{"entity": "red_flag", "value": tier, "role": category, "start": 0, "end": 5}]


TODAY = dt.date(2026, 3, 10)
YESTERDAY, LAST_WEEK = TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=7)


def recorded_events() -> Dict[str, List[Event]]:
    """Three conversations in a two-day period (yesterday, today) and one before it."""
    y, t = YESTERDAY, TODAY
    return {
        "sender-a": [
            SessionStarted(timestamp=at(y, 9)),
            said("what is the piriformis", "faq_piriformis", at(y, 9, 1)),
            BotUttered("The piriformis is a muscle.", timestamp=at(y, 9, 1)),
            BotUttered("Was this helpful?", timestamp=at(y, 9, 1)),
            said("/feedback_helpful", "feedback_helpful", at(y, 9, 2)),
            vote("faq_piriformis", True, at(y, 9, 2)),
            said(f"call me on {PHONE} or mail {EMAIL}", "out_of_scope", at(y, 9, 3)),
            BotUttered("Sorry, I can only help with back pain.", timestamp=at(y, 9, 3)),
        ],
        "sender-b": [
            SessionStarted(timestamp=at(t, 10)),
            said("how do I do a clam", "ask_exercise", at(t, 10, 1), "socketio",
                 [{"entity": "exercise", "value": "clamshell", "start": 14, "end": 18}]),
            BotUttered("Clam (clamshell): ...", timestamp=at(t, 10, 1)),
            SlotSet("exercise", "clamshell", timestamp=at(t, 10, 1)),
            said("/feedback_not_helpful", "feedback_not_helpful", at(t, 10, 2), "socketio"),
            vote("clamshell", False, at(t, 10, 2)),
            said("is swimming good for my back", "nlu_fallback", at(t, 10, 3), "socketio"),
            said("Is swimming good for back pain?", "nlu_fallback", at(t, 10, 4), "socketio"),
            said("/ask_capabilities", "nlu_fallback", at(t, 10, 5), "socketio"),
            said("I had cancer and my back hurts", "report_red_flag", at(t, 10, 6), "socketio",
                 red_flag("urgent", "cancer")),
            SlotSet("feedback", None, timestamp=at(t, 10, 6)),  # a reset is not a vote
        ],
        "sender-c": [
            SessionStarted(timestamp=at(t, 11)),
            said("I can't control my bladder", "report_red_flag", at(t, 11, 1), "telegram",
                 red_flag("emergency", "cauda_equina")),
            BotUttered("Please call 999 now.", timestamp=at(t, 11, 1)),
            said("help it hurts so much", "report_red_flag", at(t, 11, 2), "telegram"),
            said("<script>alert(1)</script> is there parking", "out_of_scope", at(t, 11, 3),
                 "telegram"),
        ],
        "sender-old": [
            SessionStarted(timestamp=at(LAST_WEEK, 9)),
            said("an old question", "nlu_fallback", at(LAST_WEEK, 9, 1)),
        ],
    }


def store_events(store: SQLTrackerStore, conversations: Dict[str, List[Event]]) -> None:
    domain = Domain.load(str(ROOT / "domain.yml"))
    for sender, events in conversations.items():
        tracker = DialogueStateTracker.from_events(sender, events, domain.slots)
        asyncio.run(store.save(tracker))


@pytest.fixture(scope="module")
def sqlite_endpoints(tmp_path_factory) -> Path:
    """A SQLite tracker store filled by Rasa's own SQLTrackerStore, which, unlike ours,
    stores phone numbers and e-mail addresses as typed (as old rows would be)."""
    folder = tmp_path_factory.mktemp("store")
    store = SQLTrackerStore(dialect="sqlite", db=str(folder / "tracker.db"))
    store_events(store, recorded_events())
    store.engine.dispose()
    endpoints = folder / "endpoints.yml"
    endpoints.write_text(yaml.safe_dump({"tracker_store": {
        "type": "SQL", "dialect": "sqlite", "db": str(folder / "tracker.db")}}))
    return endpoints


def context_for(endpoints: Path, days: int = 2) -> Dict[str, Any]:
    engine = sa.create_engine(report.database_url(endpoints))
    start = report.period_start(days, TODAY)
    counts = report.tally(report.event_rows(engine, time.mktime(start.timetuple())))
    engine.dispose()
    masker = report.Masker(report._phone_region())
    return report.page_context(counts, report.load_settings(), start, TODAY, masker)


def keyed(rows: List[Dict[str, Any]], *fields: str) -> Dict[str, Tuple]:
    return {row["key"]: tuple(row[f] for f in fields) for row in rows}


def test_counts_every_figure_from_the_stored_events(sqlite_endpoints):
    page = context_for(sqlite_endpoints)
    assert {i["key"]: i["value"] for i in page["summary"]} == {
        "conversations": "3", "sessions": "3", "user_messages": "12", "bot_messages": "5",
        "fallbacks": "3", "fallback_rate": "25.0%", "out_of_scope": "2",
        "out_of_scope_rate": "16.7%", "red_flags": "3", "helpful_rate": "50.0%"}
    assert page["period"] == {"start": "2026-03-09", "end": "2026-03-10", "days": 2}
    assert [(r["day"], r["conversations"], r["sessions"], r["user_messages"], r["bot_messages"],
             r["fallbacks"], r["out_of_scope"]) for r in page["days"]] == [
        ("2026-03-09", 1, 1, 3, 3, 0, 1), ("2026-03-10", 2, 2, 9, 2, 3, 1)]
    assert keyed(page["channels"], "label", "conversations", "messages") == {
        "socketio": ("Web chat (clinic page)", 1, 6), "rest": ("REST API", 1, 3),
        "telegram": ("Telegram", 1, 3)}
    assert [(r["key"], r["label"], r["count"]) for r in page["topics"]] == [
        ("report_red_flag", "Warning sign reported", 3),
        ("ask_exercise:clamshell", "Exercise: Clam (clamshell)", 1),
        ("faq_piriformis", content.faqs()["faq_piriformis"]["question"], 1)]
    assert keyed(page["feedback"], "helpful", "not_helpful", "share") == {
        "clamshell": (0, 1, "0.0%"), "faq_piriformis": (1, 0, "100.0%")}
    assert keyed(page["red_flags"], "count", "categories") == {
        "emergency": (1, "cauda equina 1"), "urgent": (1, "cancer 1"), "none": (1, "unknown 1")}


def test_the_topics_leave_out_small_talk_and_count_red_flags_without_a_tier(sqlite_endpoints):
    page = context_for(sqlite_endpoints)
    keys = {r["key"] for r in page["topics"]}
    assert not keys & {"feedback_helpful", "feedback_not_helpful", "nlu_fallback",
                       "out_of_scope"}
    assert page["other_topics"] == 0
    assert page["red_flags"][-1]["label"] == "No tier (classifier only, emergency reply)"


def test_unanswered_questions_are_grouped_masked_and_skip_payloads(sqlite_endpoints):
    page = context_for(sqlite_endpoints)
    assert [(g.count, g.examples) for g in page["groups"]] == [
        (2, ["Is swimming good for back pain?", "is swimming good for my back"]),
        (1, ["<script>alert(1)</script> is there parking"]),
        (1, ["call me on [phone number] or mail [e-mail address]"]),
    ]
    assert page["ungrouped"] == 0 and page["more_groups"] == 0


def test_the_period_leaves_out_older_events(sqlite_endpoints):
    page = context_for(sqlite_endpoints, days=8)
    summary = {i["key"]: i["value"] for i in page["summary"]}
    assert (summary["conversations"], summary["user_messages"], summary["fallbacks"]) == \
        ("4", "13", "4")
    assert page["period"] == {"start": "2026-03-03", "end": "2026-03-10", "days": 8}
    assert len(page["days"]) == 8


def test_the_page_escapes_masks_and_shows_no_sender_id(sqlite_endpoints):
    html = report.build_report(sqlite_endpoints, days=2, today=TODAY).html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; is there parking" in html
    assert "<script>" not in html
    assert "call me on [phone number] or mail [e-mail address]" in html
    assert PHONE not in html and EMAIL not in html and "900123" not in html
    for sender in recorded_events():
        assert sender not in html
        assert hashlib.sha256(sender.encode()).hexdigest()[:16] not in html
    # One file: every image is inline, nothing is fetched.
    assert html.count('src="data:image/png;base64,') == 7
    assert "http://" not in html and "https://" not in html


def test_an_empty_period_says_so_instead_of_drawing_empty_charts(sqlite_endpoints):
    html = report.build_report(sqlite_endpoints, days=1,
                               today=TODAY + dt.timedelta(days=30)).html
    assert "data:image/png" not in html
    assert html.count("Nothing in this period.") == 8


# --- unit: settings --------------------------------------------------------------------

def write_endpoints(folder: Path, tracker_store: Dict[str, Any]) -> Path:
    path = folder / "endpoints.yml"
    path.write_text(yaml.safe_dump({"tracker_store": tracker_store,
                                    "lock_store": {"type": "redis", "url": "${UNSET_HOST}"}}))
    return path


def test_postgres_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("DB_PORT", "6543")
    monkeypatch.setenv("DB_USER", "clinic")
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    monkeypatch.setenv("DB_NAME", "assistant")
    monkeypatch.delenv("REDIS_HOST", raising=False)  # the lock store is not needed
    url = report.database_url(ROOT / "endpoints.postgres.yml")
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == \
        ("postgresql", "db.internal", 6543, "clinic", "s3cret", "assistant")
    assert report.describe(url) == "PostgreSQL db.internal:6543/assistant"


def test_sqlite_is_opened_read_only_and_must_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "tracker.db").write_bytes(b"")
    url = report.database_url(ROOT / "endpoints.yml")  # db: var/tracker.db, relative
    assert url.database == f"file:{tmp_path / 'var' / 'tracker.db'}"
    assert dict(url.query) == {"mode": "ro", "uri": "true"}
    (tmp_path / "var" / "tracker.db").unlink()
    with pytest.raises(report.ReportError, match="no tracker store database at"):
        report.database_url(ROOT / "endpoints.yml")
    assert not (tmp_path / "var" / "tracker.db").exists()


@pytest.mark.parametrize("tracker_store, message", [
    ({"type": "redis", "url": "localhost"}, "is not an SQL store"),
    ({"type": "SQL", "dialect": "postgresql", "url": "${REPORT_TEST_UNSET}"},
     "REPORT_TEST_UNSET"),
])
def test_unusable_settings_are_reported_clearly(tmp_path, tracker_store, message):
    with pytest.raises(report.ReportError, match=message):
        report.database_url(write_endpoints(tmp_path, tracker_store))


def test_the_command_fails_with_a_message_and_no_traceback(tmp_path, capsys):
    endpoints = write_endpoints(tmp_path, {"type": "SQL", "dialect": "sqlite",
                                           "db": str(tmp_path / "missing.db")})
    assert report.main(["--endpoints", str(endpoints), "--out", str(tmp_path / "r.html")]) == 1
    assert capsys.readouterr().err == \
        f"error: no tracker store database at {tmp_path / 'missing.db'} (has the assistant run yet?)\n"
    assert not (tmp_path / "r.html").exists()


# --- unit: PostgreSQL ------------------------------------------------------------------

@pytest.fixture
def postgres_database(monkeypatch) -> Iterator[str]:
    if not postgres_available():
        pytest.skip("PostgreSQL is not running on localhost:5432")
    name = f"clinic_report_{uuid.uuid4().hex[:10]}"
    for key, value in {**PG, "DB_NAME": name}.items():
        monkeypatch.setenv(key, value)
    yield name
    drop_database(name)


def test_reads_a_postgresql_tracker_store(postgres_database):
    store = SQLTrackerStore(dialect="postgresql", host=PG["DB_HOST"], port=PG["DB_PORT"],
                            username=PG["DB_USER"], password="", db=postgres_database,
                            login_db="postgres")
    store_events(store, recorded_events())
    store.engine.dispose()
    # The committed endpoints.postgres.yml with its ${DB_*} placeholders.
    page = context_for(ROOT / "endpoints.postgres.yml")
    summary = {i["key"]: i["value"] for i in page["summary"]}
    assert (summary["conversations"], summary["user_messages"], summary["red_flags"]) == \
        ("3", "12", "3")
    assert [(g.count, g.examples[0]) for g in page["groups"]][0] == \
        (2, "Is swimming good for back pain?")


# --- unit: grouping ----------------------------------------------------------------------

def pair_counts(groups: List[List[str]]) -> Tuple[int, int, int]:
    """(pairs grouped rightly, pairs grouped wrongly, pairs that should be but are not)."""
    truth = {text: n for n, group in enumerate(groups) for text in group}
    found = {}
    for n, group in enumerate(report.group_questions(Counter(truth), report.load_settings())[0]):
        for text in group.examples:
            found[text] = n
    assert len(found) == len(truth)
    right = wrong = missed = 0
    for a, b in itertools.combinations(sorted(truth), 2):
        same, together = truth[a] == truth[b], found[a] == found[b]
        right += same and together
        wrong += together and not same
        missed += same and not together
    return right, wrong, missed


def test_grouping_on_the_hand_grouped_questions():
    """reports/report.yml's grouping settings were the best two on `tuning` (vector weight
    0-1 by 0.1, threshold 0.3-0.8 by 0.05); `check`, written apart, only chose between
    them. Pairwise precision: tuning 40/47 = 85%, check 20/22 = 91%; recall 40/67 = 60%
    and 20/30 = 67%. Wrong pairs share a clinic word ("appointment", "physio", "visit");
    missed ones are paraphrases in other words ("where do I leave my car")."""
    cases = yaml.safe_load((ROOT / "reports" / "grouping_cases.yml").read_text())
    assert pair_counts(cases["tuning"]) == (40, 7, 27)
    assert pair_counts(cases["check"]) == (20, 2, 10)


def test_grouping_is_the_same_whatever_the_order_and_largest_first():
    settings = report.load_settings()
    texts = ["where can I park", "can I park at the clinic?", "tell me a joke",
             "is there parking at the clinic", "do you take my insurance"]
    forward = report.group_questions(Counter(texts), settings)[0]
    backward = report.group_questions(Counter(reversed(texts)), settings)[0]
    assert [(g.count, g.examples) for g in forward] == [(g.count, g.examples) for g in backward]
    assert [(g.count, g.examples) for g in forward] == [
        (3, ["can I park at the clinic?", "is there parking at the clinic", "where can I park"]),
        (1, ["do you take my insurance"]), (1, ["tell me a joke"])]


def test_grouping_keeps_the_most_frequent_texts_within_the_limit():
    settings = report.load_settings()
    limited = report.Settings(**{**settings.__dict__, "max_grouped_texts": 2,
                                 "examples_per_group": 1})
    texts = Counter({"is swimming good for my back": 5, "Is swimming good for my back": 2,
                     "what's the weather tomorrow": 3, "tell me a joke": 1})
    groups, ungrouped = report.group_questions(texts, limited)
    assert [(g.count, g.examples) for g in groups] == [
        (5, ["is swimming good for my back"]), (3, ["what's the weather tomorrow"])]
    assert ungrouped == 3


# --- end to end: real conversations, the command, Chromium -----------------------------

HELPFUL, NOT_HELPFUL = "/feedback_helpful", "/feedback_not_helpful"
NOT_UNDERSTOOD, OUT_OF_SCOPE = "I'm not sure I understood", "outside what I can help with"
FEEDBACK = "Was this helpful?"


@dataclass
class Turn:
    text: str  # or a feedback payload: the button the bot offered is clicked
    expect: str  # in one of the replies: the assistant understood it as the test assumes


def conversations() -> List[Tuple[str, List[Turn]]]:
    emergency, urgent = safety_text("emergency")[:60], safety_text("urgent")[:60]
    return [
        ("rest", [Turn("hi", "Hello!"), Turn("what is the piriformis", FEEDBACK),
                  Turn(HELPFUL, "glad it helped"), Turn("how do I do a clamshell", FEEDBACK)]),
        ("rest", [Turn("how can weak glutes cause back pain", FEEDBACK),
                  Turn(NOT_HELPFUL, "Thanks for telling us"),
                  Turn("is swimming good for my back", NOT_UNDERSTOOD),
                  Turn("what's the weather tomorrow", OUT_OF_SCOPE)]),
        ("rest", [Turn("I suddenly can't control my bladder and my legs are numb", emergency)]),
        # No lesson while a red flag stands (actions/safety.py): a conversation of its own.
        ("rest", [Turn("I had bowel cancer two years ago and now my lower back hurts", urgent)]),
        ("rest", [Turn("how do I do a glute bridge", FEEDBACK), Turn(HELPFUL, "glad it helped")]),
        ("rest", [Turn("Is swimming good for back pain?", NOT_UNDERSTOOD),
                  Turn("should i try acupuncture", NOT_UNDERSTOOD),
                  Turn(f"call me on {PHONE} or mail {EMAIL}", OUT_OF_SCOPE),
                  Turn("how do i reset my router", OUT_OF_SCOPE)]),
        ("socketio", [Turn("what is the piriformis", FEEDBACK), Turn(HELPFUL, "glad it helped")]),
        ("socketio", [Turn("how do I do a clamshell", FEEDBACK),
                      Turn("what time is the football on tonight", OUT_OF_SCOPE)]),
    ]


class RestUser:
    def __init__(self, rasa_url: str) -> None:
        self.url = f"{rasa_url}/webhooks/rest/webhook"
        self.sender = f"report-{uuid.uuid4().hex[:12]}"
        self.bot_messages = 0

    def say(self, text: str, expect: str) -> List[Dict[str, Any]]:
        reply = requests.post(self.url, json={"sender": self.sender, "message": text}, timeout=30)
        assert reply.status_code == 200, reply.text
        self.bot_messages += len(reply.json())
        return reply.json()

    def close(self) -> None:
        pass


class SocketUser:
    """The web widget's protocol: a session request, then user_uttered / bot_uttered."""

    def __init__(self, rasa_url: str) -> None:
        import socketio

        self.sender = uuid.uuid4().hex
        self.received: List[Dict[str, Any]] = []
        self.client = socketio.Client()
        self.client.on("bot_uttered", self.received.append)
        self.client.connect(rasa_url, transports=["polling"])
        self.client.emit("session_request", {"session_id": self.sender})

    def say(self, text: str, expect: str) -> List[Dict[str, Any]]:
        before = len(self.received)
        self.client.emit("user_uttered", {"message": text, "session_id": self.sender})
        deadline = time.monotonic() + 30
        while not any(expect in m.get("text", "") for m in self.received[before:]):
            assert time.monotonic() < deadline, f"no {expect!r} after {text!r}"
            time.sleep(0.1)
        time.sleep(0.5)  # messages after the expected one
        return [{**m, "buttons": m.get("quick_replies") or m.get("buttons") or []}
                for m in self.received[before:]]

    @property
    def bot_messages(self) -> int:
        return len(self.received)

    def close(self) -> None:
        self.client.disconnect()


def talk(rasa_url: str) -> Tuple[List[str], int]:
    """Run every conversation; the sender ids and how many bot messages came back."""
    senders, bot_messages = [], 0
    for channel, turns in conversations():
        user = RestUser(rasa_url) if channel == "rest" else SocketUser(rasa_url)
        replies: List[Dict[str, Any]] = []
        for turn in turns:
            if turn.text.startswith("/"):  # click the button the last answer offered
                offered = [b["payload"] for r in replies for b in r.get("buttons") or []]
                assert turn.text in offered, offered
            replies = user.say(turn.text, turn.expect)
            texts = [r.get("text", "") for r in replies]
            assert any(turn.expect in t for t in texts), (turn.text, texts)
        user.close()
        senders.append(user.sender)
        bot_messages += user.bot_messages
    return senders, bot_messages


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory) -> Iterator[Tuple[Path, List[str], int]]:
    if not MODEL.exists():
        pytest.skip("no trained model: run `make train`")
    folder = tmp_path_factory.mktemp("report-e2e")
    # Ask after every answer, so that every answer can be voted on.
    with running_assistant(folder, env_extra={"FEEDBACK_EVERY": "1"}) as servers:
        senders, bot_messages = talk(servers.rasa_url)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "tracker.db", OUTPUT / "tracker.db")
    # running_assistant's endpoints file: the committed one, with the db moved to `folder`.
    yield folder / "endpoints.yml", senders, bot_messages


def cells(page: Any, table: str) -> Dict[str, List[str]]:
    rows = page.query_selector_all(f"table[data-table={table}] tbody tr")
    # text_content: the per-day table is in a closed <details>.
    return {row.get_attribute("data-key"):
            [c.text_content().strip() for c in row.query_selector_all("td")][1:] for row in rows}


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="no Chromium: apt-get install chromium chromium-driver")
def test_report_of_real_conversations_in_chromium(recorded_store):
    endpoints, senders, bot_messages = recorded_store
    out = OUTPUT / "report.html"
    run = subprocess.run([sys.executable, "scripts/report.py", "--endpoints", str(endpoints),
                          "--out", str(out), "--days", "7"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"Wrote {out}: 8 conversations, ")
    html = out.read_text()
    assert "[phone number]" in html and "[e-mail address]" in html
    assert PHONE not in html and "900123" not in html and EMAIL not in html
    for sender in senders:
        assert sender not in html
        assert hashlib.sha256(sender.encode()).hexdigest()[:16] not in html

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        # Offline: a self-contained page needs no network.
        page.route("**/*", lambda route: route.abort()
                   if not route.request.url.startswith("file:") else route.continue_())
        page.goto(out.as_uri())
        assert [h.inner_text() for h in page.query_selector_all("h2")] == HEADINGS
        widths = page.eval_on_selector_all("img.chart", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) == 7 and all(w > 0 for w in widths), widths
        summary = {e.get_attribute("data-metric"): e.query_selector("dd").inner_text()
                   for e in page.query_selector_all("[data-metric]")}
        days = cells(page, "days")
        channels = cells(page, "channels")
        topics = cells(page, "topics")
        feedback = cells(page, "feedback")
        red_flags = cells(page, "red_flags")
        groups = [(g.get_attribute("data-count"), [e.inner_text() for e in g.query_selector_all(
            "ul.examples li")]) for g in page.query_selector_all("li.question-group")]
        page.screenshot(path=str(OUTPUT / "report.png"), full_page=True)
        browser.close()

    assert summary == {
        "conversations": "8", "sessions": "8", "user_messages": "20",
        "bot_messages": str(bot_messages), "fallbacks": "3", "fallback_rate": "15.0%",
        "out_of_scope": "4", "out_of_scope_rate": "20.0%", "red_flags": "2",
        "helpful_rate": "75.0%"}
    # Column sums: right even when the test runs across midnight.
    assert [sum(int(row[n]) for row in days.values()) for n in (1, 2, 4, 5)] == [8, 20, 3, 4]
    assert channels == {"rest": ["6", "16"], "socketio": ["2", "4"]}
    assert topics == {"faq_piriformis": ["2"], "ask_exercise:clamshell": ["2"],
                      "report_red_flag": ["2"], "ask_exercise:glute_bridge": ["1"],
                      "faq_glutes_cause_back_pain": ["1"]}
    assert {key: row[:2] for key, row in feedback.items()} == {
        "faq_piriformis": ["2", "0"], "faq_glutes_cause_back_pain": ["0", "1"],
        "glute_bridge": ["1", "0"]}
    assert {key: row[0] for key, row in red_flags.items()} == {"emergency": "1", "urgent": "1"}
    assert groups[0] == ("2", ["Is swimming good for back pain?", "is swimming good for my back"])
    assert sorted(groups[1:]) == [
        ("1", ["call me on [phone number] or mail [e-mail address]"]),
        ("1", ["how do i reset my router"]), ("1", ["should i try acupuncture"]),
        ("1", ["what time is the football on tonight"]), ("1", ["what's the weather tomorrow"])]
    assert (OUTPUT / "report.png").stat().st_size > 50_000
