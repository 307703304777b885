"""components/content_importer.py: the content files' entries become intents and rules.

The last test is the whole path a clinic takes to add an answer: one entry in
data/knowledge/faq.yml and its NLU examples, in a copy of the project; trained; asked
over REST against the real servers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from rasa.shared.core.events import ActionExecuted, UserUttered

from components.content_importer import ContentImporter, content_intents, project_domain
from scripts.servers import running_assistant

ROOT = Path(__file__).resolve().parents[1]
NEW_FAQ = "faq_stairs_glutes"
NEW_ENTRY = {
    "question": "Do stairs work the glutes?",
    "answer": ("Climbing stairs makes your glutes work to lift you up each step, so it is "
               "one everyday way to use them. Go at a pace that feels comfortable."),
    "source": "FAQ: Does walking strengthen the glutes?",
    "reviewed": "2026-12-01",
    "review_due": "2027-12-01",
    "related": ["faq_walking_glutes", "faq_glute_activation"],
}
NEW_EXAMPLES = ["do stairs work my glutes", "is climbing stairs good for the glutes",
                "will taking the stairs strengthen my bum muscles",
                "does stair climbing build glute strength", "are stairs a glute workout",
                "stairs for glutes, any good?", "can going up stairs tone my glutes",
                "do the glutes work when I climb stairs", "is walking up steps good for my bum",
                "does using the stairs at work help my glutes"]


def copy_project(tmp: Path) -> Path:
    """config, domain and data of this project in `tmp`, the built models linked."""
    project = tmp / "project"
    project.mkdir()
    for name in ("config.yml", "domain.yml"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "data", project / "data")
    (project / "models").mkdir()
    for built in ("spacy", "minilm"):
        (project / "models" / built).symlink_to(ROOT / "models" / built)
    return project


def add_faq(project: Path) -> None:
    faq = project / "data" / "knowledge" / "faq.yml"
    data = yaml.safe_load(faq.read_text())
    data["faqs"][NEW_FAQ] = NEW_ENTRY
    faq.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    (project / "data" / "nlu" / "faq_stairs.yml").write_text(yaml.safe_dump(
        {"version": "3.1", "nlu": [{"intent": NEW_FAQ,
                                     "examples": "".join(f"- {e}\n" for e in NEW_EXAMPLES)}]},
        sort_keys=False))


def importer(project: Path) -> ContentImporter:
    return ContentImporter(str(project / "config.yml"), str(project / "domain.yml"),
                           [str(project / "data" / "nlu"), str(project / "data" / "rules")])


def test_every_content_entry_is_an_intent_answered_by_its_files_action():
    faqs = yaml.safe_load((ROOT / "data/knowledge/faq.yml").read_text())["faqs"]
    clinic = yaml.safe_load((ROOT / "data/knowledge/clinic_questions.yml").read_text())
    intents = content_intents()
    assert intents == {**{f: "action_answer_faq" for f in faqs},
                       **{c: "action_clinic_info" for c in clinic}}
    domain = project_domain()
    assert set(intents) <= set(domain.intents)
    # What domain.yml says besides the intents is kept.
    assert domain.session_config.session_expiration_time == 60
    assert "action_answer_faq" in domain.action_names_or_texts
    rules = {step.block_name: step.events for step in importer(ROOT).get_stories().story_steps}
    for intent, action in intents.items():
        events = rules[f"content: {intent}"]
        said = [e.intent_name for e in events if isinstance(e, UserUttered)]
        done = [e.action_name for e in events if isinstance(e, ActionExecuted)]
        assert said == [intent] and done[-1] == action, (intent, events)


def test_a_new_entry_needs_no_domain_or_rule_edit(tmp_path):
    project = copy_project(tmp_path)
    add_faq(project)
    assert NEW_FAQ in project_domain(project).intents
    assert NEW_FAQ not in project_domain(ROOT).intents
    steps = importer(project).get_stories().story_steps
    assert any(s.block_name == f"content: {NEW_FAQ}" for s in steps)


def test_an_entry_in_two_content_files_fails_loudly(tmp_path):
    project = copy_project(tmp_path)
    clinic = project / "data" / "knowledge" / "clinic_questions.yml"
    data = yaml.safe_load(clinic.read_text())
    data["faq_piriformis"] = {"answer": "{phone}"}
    clinic.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="faq_piriformis"):
        content_intents(project / "data")


def test_an_faq_added_to_a_copy_is_trained_and_answered(tmp_path):
    """The clinic's path: content entry + NLU examples, `rasa train`, ask over REST.

    The copy trains without the sentence-embedding featurizer (four minutes of the
    training time here); what is under test, the intents and rules that follow from the
    content, does not depend on the featurizers."""
    project = copy_project(tmp_path)
    add_faq(project)
    config = yaml.safe_load((project / "config.yml").read_text())
    config["pipeline"] = [c for c in config["pipeline"]
                          if not c["name"].endswith("MiniLMFeaturizer")]
    (project / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rasa = str(Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "rasa")
    if not Path(rasa).exists():
        rasa = shutil.which("rasa") or rasa
    result = subprocess.run(
        [rasa, "train", "--data", "data/nlu", "data/rules", "--out", "models",
         "--fixed-model-name", "copy"], cwd=project, env=env, capture_output=True,
        text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    model = project / "models" / "copy.tar.gz"
    with running_assistant(tmp_path, env_extra={"ASSISTANT_DATA_DIR": str(project / "data")},
                           model=model) as servers:
        sender = f"copy-{uuid.uuid4().hex[:8]}"
        reply = requests.post(f"{servers.rasa_url}/webhooks/rest/webhook",
                              json={"sender": sender,
                                    "message": "is climbing the stairs good for my glutes"},
                              timeout=60).json()
        text = " ".join(m.get("text") or "" for m in reply)
        assert "Climbing stairs makes your glutes work" in text, reply
        # Its `related` entries became buttons, as for every other answer.
        titles = [b["title"] for m in reply for b in m.get("buttons") or []]
        assert any("walking" in t.lower() for t in titles), titles
