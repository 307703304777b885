"""`make report`: what visitors ask the assistant, as one self-contained HTML page for staff.

Reads the tracker store of an endpoints file (Rasa's SQL `events` table, SQLite or
PostgreSQL) in batches, without building Rasa trackers, and writes conversations and
messages per day, channels, the most asked topics, the not-understood and out-of-scope
rates, "Was this helpful?" votes per answer, red flags per tier, and the unanswered
questions grouped by similarity. Charts are PNGs embedded as data URIs: the file needs
nothing else. Every text shown is masked again (privacy/pii.py: phone numbers, e-mail
addresses, names, addresses, postcodes, dates of birth, NHS, card and NI numbers,
handles), whatever the store kept; sender ids are only counted, never shown.
Settings: reports/report.yml.

Usage: python scripts/report.py [--endpoints endpoints.yml]
                                [--out results/report/report.html] [--days N]
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import math
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Set, \
    Tuple
from urllib.parse import quote, unquote

# Rasa 3.6 needs SQLAlchemy 1.4, which warns about 2.0 unless told not to (before import).
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

import jinja2  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # actions/ and stores/ when run as a script

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

import rasa.shared.utils.io  # noqa: E402
from rasa.core.tracker_store import SQLTrackerStore  # noqa: E402
from rasa.shared.exceptions import RasaException  # noqa: E402
from rasa.shared.utils.common import class_from_module_path  # noqa: E402
from rasa.utils.endpoints import EndpointConfig  # noqa: E402

from actions import content  # noqa: E402
from privacy.pii import masks as pii_masks  # noqa: E402
from stores.tracker_store import Masker, _phone_region  # noqa: E402

SETTINGS_FILE = ROOT / "reports" / "report.yml"
TEMPLATES = ROOT / "reports"
SPACY_MODEL = ROOT / "models" / "spacy" / "clinic_md"
RED_FLAGS_FILE = content.DATA_DIR / "safety" / "red_flags.yml"
DEFAULT_OUT = Path("results/report/report.html")

FALLBACK, OUT_OF_SCOPE, RED_FLAG_INTENT = "nlu_fallback", "out_of_scope", "report_red_flag"
EXERCISE_INTENT = "ask_exercise"
FEEDBACK_SLOT = "feedback"
READ_TYPES = ("user", "bot", "session_started")
BATCH_ROWS = 5000
COLORS = {"blue": "#2f6db5", "teal": "#2a9d8f", "orange": "#e07b39", "red": "#c0392b",
          "grey": "#8795a1", "green": "#3c9d4e"}


class ReportError(Exception):
    """A problem the person running the report can fix (settings, database)."""


@dataclass(frozen=True)
class Settings:
    days: int
    top_topics: int
    max_groups: int
    examples_per_group: int
    max_grouped_texts: int
    vector_weight: float
    distance_threshold: float
    not_topics: FrozenSet[str]
    topic_labels: Dict[str, str]
    exercise_label: str
    channel_labels: Dict[str, str]
    tier_labels: Dict[str, str]
    no_tier_label: str
    category_labels: Dict[str, str]


def load_settings(path: Path = SETTINGS_FILE) -> Settings:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    grouping = raw.pop("grouping")
    return Settings(**{**raw, "not_topics": frozenset(raw["not_topics"]),
                       "vector_weight": float(grouping["vector_weight"]),
                       "distance_threshold": float(grouping["distance_threshold"])})


# --- the tracker store ---------------------------------------------------------------

def tracker_store_config(endpoints: Path) -> EndpointConfig:
    """The `tracker_store` section, its ${VAR}s expanded by Rasa's own YAML reader."""
    try:
        section = (yaml.safe_load(endpoints.read_text(encoding="utf-8")) or {}).get("tracker_store")
    except (OSError, yaml.YAMLError) as error:
        raise ReportError(f"cannot read {endpoints}: {error}") from error
    if not section:
        raise ReportError(f"{endpoints} has no tracker_store section")
    # Only this section is expanded, so the report needs no lock-store or other variables.
    try:
        expanded = rasa.shared.utils.io.read_yaml(yaml.safe_dump(section))
    except RasaException as error:  # an unset ${VAR}
        raise ReportError(f"{endpoints}: {error}") from error
    return EndpointConfig.from_dict(expanded)


def is_sql_store(store_type: Optional[str]) -> bool:
    if str(store_type).lower() == "sql":
        return True
    try:
        return issubclass(class_from_module_path(str(store_type)), SQLTrackerStore)
    except (ImportError, AttributeError, TypeError):
        return False


def database_url(endpoints: Path) -> sa.engine.URL:
    config = tracker_store_config(endpoints)
    if not is_sql_store(config.type):
        raise ReportError(f"{endpoints}: tracker store {config.type!r} is not an SQL store")
    settings = config.kwargs
    dialect = settings.get("dialect", "sqlite")
    port = int(settings["port"]) if str(settings.get("port") or "").strip() else None
    url = SQLTrackerStore.get_db_url(dialect, config.url, port, settings.get("db", "rasa.db"),
                                     settings.get("username"), settings.get("password"),
                                     None, settings.get("query"))
    url = sa.engine.make_url(url)
    return read_only_sqlite(url) if url.get_backend_name() == "sqlite" else url


def read_only_sqlite(url: sa.engine.URL) -> sa.engine.URL:
    """Open the file read-only: a wrong path must fail, not create an empty store."""
    path = Path(url.database or "").resolve()
    if not path.is_file():
        raise ReportError(f"no tracker store database at {path} (has the assistant run yet?)")
    return url.set(database=f"file:{quote(str(path))}", query={"mode": "ro", "uri": "true"})


def describe(url: sa.engine.URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"SQLite {Path(unquote(url.database[len('file:'):])).name}"
    return f"PostgreSQL {url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def event_rows(engine: sa.engine.Engine, since: float) -> Iterator[Any]:
    """The events the report counts, oldest first, fetched BATCH_ROWS at a time."""
    events = sa.table("events", *(sa.column(name) for name in (
        "id", "sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")))
    wanted = sa.or_(events.c.type_name.in_(READ_TYPES),
                    sa.and_(events.c.type_name == "slot", events.c.action_name == FEEDBACK_SLOT))
    # JSON only where it is read: bot messages are most of the stored bytes.
    data = sa.case((events.c.type_name.in_(("user", "slot")), events.c.data), else_=sa.null())
    query = (sa.select(events.c.sender_id, events.c.type_name, events.c.timestamp,
                       data.label("data"))
             .where(wanted, events.c.timestamp >= since).order_by(events.c.id))
    with engine.connect() as connection:
        # Server-side cursor on PostgreSQL; SQLite's cursor is lazy anyway.
        result = connection.execution_options(stream_results=True).execute(query)
        for batch in result.partitions(BATCH_ROWS):
            yield from batch


# --- counting ------------------------------------------------------------------------

@dataclass
class Tally:
    """Everything the report shows, counted in one pass over the events."""
    events: int = 0
    senders: Set[str] = field(default_factory=set)  # counted, never shown
    day_senders: Dict[dt.date, Set[str]] = field(default_factory=lambda: defaultdict(set))
    sessions: Counter = field(default_factory=Counter)  # per day
    user_messages: Counter = field(default_factory=Counter)
    bot_messages: Counter = field(default_factory=Counter)
    fallbacks: Counter = field(default_factory=Counter)
    out_of_scope: Counter = field(default_factory=Counter)
    channel_senders: Dict[str, Set[str]] = field(default_factory=lambda: defaultdict(set))
    channel_messages: Counter = field(default_factory=Counter)
    topics: Counter = field(default_factory=Counter)  # intent, or ask_exercise:<id>
    red_flags: Counter = field(default_factory=Counter)  # (tier, category)
    feedback: Dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    unanswered: Counter = field(default_factory=Counter)  # text as typed (masked later)


def tally(rows: Iterable[Any]) -> Tally:
    counts = Tally()
    for row in rows:
        add_event(counts, row)
    return counts


def add_event(counts: Tally, row: Any) -> None:
    day = dt.date.fromtimestamp(row.timestamp)
    counts.events += 1
    counts.senders.add(row.sender_id)
    counts.day_senders[day].add(row.sender_id)
    if row.type_name == "session_started":
        counts.sessions[day] += 1
    elif row.type_name == "bot":
        counts.bot_messages[day] += 1
    elif row.type_name == "slot":
        add_feedback(counts, json.loads(row.data).get("value"))
    else:
        add_user_message(counts, day, row.sender_id, json.loads(row.data))


def add_user_message(counts: Tally, day: dt.date, sender: str, event: Dict[str, Any]) -> None:
    parse = event.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name") or "unknown"
    entities = parse.get("entities") or []
    channel = event.get("input_channel") or "unknown"
    counts.user_messages[day] += 1
    counts.channel_messages[channel] += 1
    counts.channel_senders[channel].add(sender)
    counts.topics[topic_key(intent, entities)] += 1
    if intent == FALLBACK:
        counts.fallbacks[day] += 1
    elif intent == OUT_OF_SCOPE:
        counts.out_of_scope[day] += 1
    if intent in (FALLBACK, OUT_OF_SCOPE):
        text = " ".join(str(event.get("text") or "").split())
        if text and not text.startswith("/"):  # button payloads are not questions
            counts.unanswered[text] += 1
    if intent == RED_FLAG_INTENT:
        counts.red_flags[red_flag(entities)] += 1


def entity_value(entities: List[Dict[str, Any]], name: str) -> Optional[Dict[str, Any]]:
    return next((e for e in entities if isinstance(e, dict) and e.get("entity") == name), None)


def topic_key(intent: str, entities: List[Dict[str, Any]]) -> str:
    exercise = entity_value(entities, "exercise") if intent == EXERCISE_INTENT else None
    return f"{intent}:{exercise['value']}" if exercise else intent


def red_flag(entities: List[Dict[str, Any]]) -> Tuple[Optional[str], Optional[str]]:
    """(tier, category) set by the red-flag detector; (None, None) if only the classifier."""
    flag = entity_value(entities, "red_flag") or {}
    return flag.get("value"), flag.get("role")


def add_feedback(counts: Tally, value: Any) -> None:
    # The feedback slot is also reset to None; only a real vote counts.
    if isinstance(value, dict) and isinstance(value.get("answer"), str) \
            and isinstance(value.get("helpful"), bool):
        counts.feedback[value["answer"]][value["helpful"]] += 1


# --- grouping the unanswered questions -----------------------------------------------

@dataclass
class Group:
    count: int
    examples: List[str]


@lru_cache(maxsize=None)
def spacy_pipeline() -> Any:
    import spacy  # loaded only when there is something to group (spaCy starts slowly)

    return spacy.load(SPACY_MODEL)  # tokenizer, vectors and the lookup lemmatizer only


def content_words(doc: Any) -> List[Tuple[str, str]]:
    """(lemma, word) of the words that carry the meaning; all words if there are none."""
    words = [(t.lemma_.lower(), t.lower_) for t in doc
             if not (t.is_stop or t.is_punct or t.is_space or t.like_num)]
    return words or [(t.lower_, t.lower_) for t in doc if not t.is_space]


def mean_vector(words: List[Tuple[str, str]], vocab: Any) -> np.ndarray:
    """Mean of the unit word vectors (lemma's, else the word's); zeros if none has one."""
    rows = []
    for lemma, word in words:
        key = lemma if vocab.has_vector(lemma) else word
        if vocab.has_vector(key):
            vector = vocab.get_vector(key)
            rows.append(vector / np.linalg.norm(vector))
    return np.mean(rows, axis=0) if rows else np.zeros(vocab.vectors.shape[1], dtype="float32")


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def question_features(texts: Sequence[str], vector_weight: float) -> np.ndarray:
    """Meaning (word vectors) and wording (TF-IDF over lemmas), mixed so that the cosine
    of two rows is vector_weight * vector cosine + (1 - vector_weight) * TF-IDF cosine."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    nlp = spacy_pipeline()
    # The masks say nothing about the question; two texts with a phone number in them
    # are not alike for that.
    stripped = [strip_masks(t) for t in texts]
    words = [content_words(doc) for doc in nlp.pipe(stripped, batch_size=256)]
    vectors = unit_rows(np.array([mean_vector(w, nlp.vocab) for w in words]))
    lemmas = [" ".join(lemma for lemma, _ in w) or text.lower() for w, text in zip(words, stripped)]
    tfidf = TfidfVectorizer(token_pattern=r"\S+", lowercase=False).fit_transform(lemmas)
    return np.hstack([math.sqrt(vector_weight) * vectors,
                      math.sqrt(1 - vector_weight) * unit_rows(tfidf.toarray())])


@lru_cache(maxsize=None)
def _masks() -> Tuple[str, ...]:
    return tuple(pii_masks())


def strip_masks(text: str) -> str:
    """The text without "[phone number]", "[name]", ...; the text itself if only masks."""
    stripped = text
    for mask in _masks():
        stripped = stripped.replace(mask, " ")
    return stripped.strip() or text


def cluster_labels(features: np.ndarray, threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if len(features) < 2:
        return np.zeros(len(features), dtype=int)
    return AgglomerativeClustering(n_clusters=None, affinity="cosine", linkage="average",
                                   distance_threshold=threshold).fit_predict(features)


def group_questions(texts: Counter, settings: Settings) -> Tuple[List[Group], int]:
    """Groups of similar texts, largest first, and how many messages were left ungrouped."""
    # Most frequent first, then alphabetical: the same input always gives the same groups.
    ordered = sorted(texts, key=lambda t: (-texts[t], t))
    kept, rest = ordered[:settings.max_grouped_texts], ordered[settings.max_grouped_texts:]
    if not kept:
        return [], 0
    labels = cluster_labels(question_features(kept, settings.vector_weight),
                            settings.distance_threshold)
    members: Dict[int, List[str]] = defaultdict(list)
    for text, label in zip(kept, labels):
        members[int(label)].append(text)  # stays in frequency order
    groups = [Group(sum(texts[t] for t in m), examples(m, settings.examples_per_group))
              for m in members.values()]
    groups.sort(key=lambda g: (-g.count, g.examples[0].casefold()))
    return groups, sum(texts[t] for t in rest)


def examples(texts: List[str], limit: int) -> List[str]:
    """Up to `limit` texts that differ by more than letter case."""
    seen: Dict[str, str] = {}
    for text in texts:
        seen.setdefault(text.casefold(), text)
    return list(seen.values())[:limit]


def masked_counts(texts: Counter, masker: Masker) -> Counter:
    masked: Counter = Counter()
    for text, count in texts.items():
        masked[masker.mask(text)] += count
    return masked


# --- charts --------------------------------------------------------------------------

def png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_axes(height: float) -> Tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(9.6, height))
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y" if height < 4 else "x", color="#e6e9ed")
    ax.set_axisbelow(True)
    return fig, ax


def line_chart(days: List[dt.date], series: Dict[str, Tuple[List[float], str]],
               ylabel: str, percent: bool = False) -> str:
    fig, ax = new_axes(3.2)
    for n, (label, (values, color)) in enumerate(series.items()):
        # Dashed after the first line, so that equal series stay visible.
        ax.plot(days, values, marker="o", markersize=3, linewidth=1.8, color=color,
                linestyle="-" if n == 0 else "--", label=label)
    locator = mdates.AutoDateLocator(maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if len(days) == 1:  # one point: give it some room
        ax.set_xlim(days[0] - dt.timedelta(days=1), days[0] + dt.timedelta(days=1))
    ax.yaxis.set_major_locator(MaxNLocator(integer=not percent))
    ax.set_ylim(bottom=0)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0, 1), ncol=len(series))
    return png(fig)


def bar_chart(labels: List[str], values: List[int], xlabel: str, color: str) -> Optional[str]:
    if not any(values):
        return None
    fig, ax = new_axes(0.6 + 0.38 * len(labels))
    positions = range(len(labels))
    ax.barh(positions, values, color=color)
    ax.set_yticks(positions, labels=[shorten(label) for label in labels])
    ax.invert_yaxis()  # largest on top
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    for y, value in zip(positions, values):
        ax.annotate(f"{value:,}", (value, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=9)
    return png(fig)


def feedback_chart(labels: List[str], helpful: List[int], not_helpful: List[int]) -> Optional[str]:
    if not labels:
        return None
    fig, ax = new_axes(0.9 + 0.38 * len(labels))
    positions = range(len(labels))
    ax.barh(positions, helpful, color=COLORS["green"], label="Helpful")
    ax.barh(positions, not_helpful, left=helpful, color=COLORS["orange"], label="Not helpful")
    ax.margins(x=0.05)
    ax.set_yticks(positions, labels=[shorten(label) for label in labels])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("votes")
    ax.legend(frameon=False, loc="lower left", bbox_to_anchor=(0, 1), ncol=2)
    return png(fig)


def shorten(label: str, limit: int = 48) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


# --- what the page shows -------------------------------------------------------------

def period_start(days: int, today: dt.date) -> dt.date:
    return today - dt.timedelta(days=days - 1)


def day_range(start: dt.date, counts: Tally, today: dt.date) -> List[dt.date]:
    end = max([today, *counts.day_senders])
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def topic_label(key: str, settings: Settings) -> str:
    intent, _, exercise = key.partition(":")
    if exercise:
        name = content.exercises().get(exercise, {}).get("name", exercise)
        return settings.exercise_label.format(name=name)
    if intent in content.faqs():
        return content.faqs()[intent]["question"]
    return settings.topic_labels.get(intent, intent)


def answer_label(answer: str) -> str:
    """An FAQ's question or an exercise's name: what the vote was about."""
    if answer in content.faqs():
        return content.faqs()[answer]["question"]
    return content.exercises().get(answer, {}).get("name", answer)


def red_flag_tiers() -> List[str]:
    return list(yaml.safe_load(RED_FLAGS_FILE.read_text(encoding="utf-8"))["tiers"])


def summary_items(counts: Tally) -> List[Dict[str, str]]:
    users = sum(counts.user_messages.values())
    votes = list(counts.feedback.values())
    helpful = sum(c[True] for c in votes)
    total_votes = sum(c[True] + c[False] for c in votes)
    items = [
        ("conversations", "Conversations", f"{len(counts.senders):,}"),
        ("sessions", "Sessions", f"{sum(counts.sessions.values()):,}"),
        ("user_messages", "Visitor messages", f"{users:,}"),
        ("bot_messages", "Assistant messages", f"{sum(counts.bot_messages.values()):,}"),
        ("fallbacks", "Not understood", f"{sum(counts.fallbacks.values()):,}"),
        ("fallback_rate", "Not understood, share", share(sum(counts.fallbacks.values()), users)),
        ("out_of_scope", "Out of scope", f"{sum(counts.out_of_scope.values()):,}"),
        ("out_of_scope_rate", "Out of scope, share",
         share(sum(counts.out_of_scope.values()), users)),
        ("red_flags", "Red flags", f"{sum(counts.red_flags.values()):,}"),
        ("helpful_rate", f"Helpful ({total_votes:,} votes)", share(helpful, total_votes)),
    ]
    return [{"key": key, "label": label, "value": value} for key, label, value in items]


def day_rows(days: List[dt.date], counts: Tally) -> List[Dict[str, Any]]:
    return [{"day": day.isoformat(), "conversations": len(counts.day_senders.get(day, ())),
             "sessions": counts.sessions[day], "user_messages": counts.user_messages[day],
             "bot_messages": counts.bot_messages[day], "fallbacks": counts.fallbacks[day],
             "out_of_scope": counts.out_of_scope[day]} for day in days]


def channel_rows(counts: Tally, settings: Settings) -> List[Dict[str, Any]]:
    rows = [{"key": channel, "label": settings.channel_labels.get(channel, channel),
             "conversations": len(senders), "messages": counts.channel_messages[channel]}
            for channel, senders in counts.channel_senders.items()]
    return sorted(rows, key=lambda r: (-r["conversations"], -r["messages"], r["key"]))


def topic_rows(counts: Tally, settings: Settings) -> Tuple[List[Dict[str, Any]], int]:
    """The top topics, and how many messages were about the others."""
    topics = [(key, n) for key, n in counts.topics.items()
              if key.partition(":")[0] not in settings.not_topics]
    topics.sort(key=lambda item: (-item[1], item[0]))
    top = [{"key": key, "label": topic_label(key, settings), "count": n}
           for key, n in topics[:settings.top_topics]]
    return top, sum(n for _, n in topics[settings.top_topics:])


def feedback_rows(counts: Tally) -> List[Dict[str, Any]]:
    rows = [{"key": answer, "label": answer_label(answer), "helpful": votes[True],
             "not_helpful": votes[False], "share": share(votes[True], votes[True] + votes[False])}
            for answer, votes in counts.feedback.items()]
    return sorted(rows, key=lambda r: (-(r["helpful"] + r["not_helpful"]), r["key"]))


def red_flag_rows(counts: Tally, settings: Settings) -> List[Dict[str, Any]]:
    """Every tier (zeros too, so staff see that none came in), then any untiered ones."""
    tiers = red_flag_tiers()
    seen = {tier for tier, _ in counts.red_flags}
    rows = []
    for tier in tiers + sorted((t for t in seen if t not in tiers), key=str):
        categories = Counter({cat: n for (t, cat), n in counts.red_flags.items() if t == tier})
        rows.append({
            "key": tier or "none",
            "label": settings.tier_labels.get(tier, tier) if tier else settings.no_tier_label,
            "count": sum(categories.values()),
            "categories": ", ".join(f"{settings.category_labels.get(c, c or 'unknown')} {n}"
                                    for c, n in sorted(categories.items(),
                                                       key=lambda i: (-i[1], str(i[0])))),
        })
    return rows


def day_charts(days: List[dt.date], counts: Tally) -> Dict[str, Optional[str]]:
    if not counts.events:
        return {"conversations": None, "messages": None, "rates": None}

    def per_day(counter: Counter) -> List[int]:
        return [counter[day] for day in days]

    users = per_day(counts.user_messages)
    conversations = [len(counts.day_senders.get(day, ())) for day in days]
    rates = {"Not understood": ([rate(n, u) for n, u in zip(per_day(counts.fallbacks), users)],
                                COLORS["orange"]),
             "Out of scope": ([rate(n, u) for n, u in zip(per_day(counts.out_of_scope), users)],
                              COLORS["grey"])}
    return {
        "conversations": line_chart(days, {"Conversations": (conversations, COLORS["blue"]),
                                           "Sessions": (per_day(counts.sessions), COLORS["teal"])},
                                    "per day"),
        "messages": line_chart(days, {"Visitor messages": (users, COLORS["blue"]),
                                      "Assistant messages": (per_day(counts.bot_messages),
                                                             COLORS["teal"])}, "per day"),
        # 0% on every day is worth showing; no visitor message at all is not.
        "rates": line_chart(days, rates, "% of visitor messages", percent=True)
        if any(users) else None,
    }


def table_charts(channels: List[Dict[str, Any]], topics: List[Dict[str, Any]],
                 feedback: List[Dict[str, Any]],
                 red_flags: List[Dict[str, Any]]) -> Dict[str, Optional[str]]:
    def column(rows: List[Dict[str, Any]], key: str) -> List[Any]:
        return [row[key] for row in rows]

    return {
        "channels": bar_chart(column(channels, "label"), column(channels, "conversations"),
                              "conversations", COLORS["blue"]),
        "topics": bar_chart(column(topics, "label"), column(topics, "count"), "messages",
                            COLORS["teal"]),
        "feedback": feedback_chart(column(feedback, "label"), column(feedback, "helpful"),
                                   column(feedback, "not_helpful")),
        "red_flags": bar_chart(column(red_flags, "label"), column(red_flags, "count"),
                               "messages", COLORS["red"]),
    }


def rate(part: int, whole: int) -> float:
    return 100 * part / whole if whole else 0.0


def page_context(counts: Tally, settings: Settings, start: dt.date, today: dt.date,
                 masker: Masker) -> Dict[str, Any]:
    days = day_range(start, counts, today)
    channels = channel_rows(counts, settings)
    topics, other_topics = topic_rows(counts, settings)
    feedback = feedback_rows(counts)
    red_flags = red_flag_rows(counts, settings)
    groups, ungrouped = group_questions(masked_counts(counts.unanswered, masker), settings)
    return {
        "clinic": content.clinic()["name"],
        "period": {"start": days[0].isoformat(), "end": days[-1].isoformat(), "days": len(days)},
        "summary": summary_items(counts), "days": day_rows(days, counts),
        "channels": channels, "topics": topics, "other_topics": other_topics,
        "feedback": feedback, "red_flags": red_flags,
        "groups": groups[:settings.max_groups],
        "more_groups": max(0, len(groups) - settings.max_groups), "ungrouped": ungrouped,
        "charts": {**day_charts(days, counts),
                   **table_charts(channels, topics, feedback, red_flags)},
        "events_read": f"{counts.events:,}",
    }


def render(context: Dict[str, Any]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["num"] = lambda n: f"{n:,}"
    return env.get_template("report.html.j2").render(**context)


# --- the command ---------------------------------------------------------------------

@dataclass
class Result:
    html: str
    conversations: int
    events: int
    seconds: float


def build_report(endpoints: Path, days: Optional[int] = None,
                 settings: Optional[Settings] = None,
                 today: Optional[dt.date] = None) -> Result:
    started = time.monotonic()
    settings = settings or load_settings()
    days = settings.days if days is None else days
    if days < 1:
        raise ReportError("--days must be at least 1")
    today = today or dt.date.today()
    url = database_url(endpoints)
    start = period_start(days, today)
    since = time.mktime(start.timetuple())  # local midnight
    engine = sa.create_engine(url)
    try:
        counts = tally(event_rows(engine, since))
    except sa.exc.OperationalError as error:
        raise ReportError(f"cannot read the tracker store ({describe(url)}): "
                          f"{str(error.orig).splitlines()[0]}") from error
    finally:
        engine.dispose()
    context = page_context(counts, settings, start, today, Masker(_phone_region()))
    seconds = time.monotonic() - started
    context.update(generated_at=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                   generation_seconds=f"{seconds:.1f}", source=describe(url))
    return Result(render(context), len(counts.senders), counts.events, seconds)


def skip_tensorflow() -> None:
    """spaCy's thinc imports TensorFlow when it is installed (Rasa's is): about 4 s and
    350 MB that the report never uses."""
    if "tensorflow" not in sys.modules:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # import -> ImportError


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoints", type=Path, default=Path("endpoints.yml"),
                        help="Rasa endpoints file whose tracker_store is read")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="HTML file to write")
    parser.add_argument("--days", type=int, default=None,
                        help="today and the days before it (default: reports/report.yml)")
    args = parser.parse_args(argv)
    # Rasa and its dependencies warn about each other (set after their imports, which
    # install filters of their own); staff need none of it.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        result = build_report(args.endpoints, args.days)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(result.html, encoding="utf-8")
    print(f"Wrote {args.out}: {result.conversations:,} conversations, {result.events:,} "
          f"events read, in {result.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    skip_tensorflow()  # not in main(): tests call it in a process that may need TensorFlow
    sys.exit(main())
