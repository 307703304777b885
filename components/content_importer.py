"""Training data importer: the domain's intents and the rules that follow from the content.

Registered in config.yml (`importers:`), so `rasa train`, `rasa data validate` and
`rasa test` all see the same data. It is Rasa's RasaFileImporter plus, for every entry of
a content file below, the intent (named by the entry's key) and the rule that answers it
with the file's action. Adding an FAQ or a clinic answer is therefore one entry in its
content file and its NLU examples: nothing to list in domain.yml or data/rules/.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Text, Union

import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
from rasa.shared.core.training_data.structures import StoryGraph
from rasa.shared.importers.rasa import RasaFileImporter

ROOT = Path(__file__).resolve().parents[1]

# content file (relative to the data folder) -> (the mapping of entries in it, its action)
CONTENT_ACTIONS = {
    "knowledge/faq.yml": ("faqs", "action_answer_faq"),
    "knowledge/clinic_questions.yml": (None, "action_clinic_info"),
}


def content_intents(data_dir: Path = ROOT / "data") -> Dict[str, str]:
    """Intent -> the action that answers it, for every entry of the content files."""
    intents: Dict[str, str] = {}
    for relative, (key, action) in CONTENT_ACTIONS.items():
        data = yaml.safe_load((data_dir / relative).read_text(encoding="utf-8")) or {}
        entries = data.get(key) if key else data
        if not isinstance(entries, dict):
            raise ValueError(f"{relative}: expected a mapping of entries"
                             + (f" under '{key}'" if key else ""))
        for intent in entries:
            if intent in intents:
                raise ValueError(f"{relative}: '{intent}' is already an entry of another file")
            intents[intent] = action
    return intents


def content_rules(intents: Dict[str, str]) -> Text:
    """The rules, as Rasa YAML: each content intent is answered by its file's action."""
    rules = [{"rule": f"content: {intent}",
              "steps": [{"intent": intent}, {"action": action}]}
             for intent, action in intents.items()]
    return yaml.safe_dump({"version": "3.1", "rules": rules}, sort_keys=False)


class ContentImporter(RasaFileImporter):
    """RasaFileImporter, with the intents and rules of the content files added."""

    def __init__(self, config_file: Optional[Text] = None, domain_path: Optional[Text] = None,
                 training_data_paths: Optional[Union[List[Text], Text]] = None) -> None:
        super().__init__(config_file, domain_path, training_data_paths)
        # The project is the folder of the domain file (a copy of the project trains its
        # own content; the benchmark's baseline config lives elsewhere).
        anchor = domain_path or config_file
        self._root = Path(anchor).resolve().parent if anchor else ROOT
        self._intents = content_intents(self._root / "data")

    def get_domain(self) -> Domain:
        domain = super().get_domain()
        if domain.is_empty():
            return domain
        listed = set(domain.intents)
        extra = [intent for intent in self._intents if intent not in listed]
        return domain.merge(Domain.from_dict({"intents": extra}))

    def get_stories(self, exclusion_percentage: Optional[int] = None) -> StoryGraph:
        stories = super().get_stories(exclusion_percentage)
        reader = YAMLStoryReader(self.get_domain())
        steps = reader.read_from_string(content_rules(self._intents))
        return stories.merge(StoryGraph(steps))


def project_domain(root: Path = ROOT) -> Domain:
    """The domain as training sees it: domain.yml plus the content intents."""
    return ContentImporter(str(root / "config.yml"), str(root / "domain.yml"),
                           [str(root / "data" / "nlu"), str(root / "data" / "rules")]).get_domain()
