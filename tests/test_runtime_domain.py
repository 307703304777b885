"""runtime/domain.py: `Domain.is_empty` answers as Rasa's does, building the empty domain
once."""
from __future__ import annotations

from pathlib import Path

from rasa.shared.core.domain import Domain

from runtime import domain

DOMAIN = Path(__file__).resolve().parents[1] / "domain.yml"


def test_same_answers_as_rasas_with_the_empty_domain_built_once(monkeypatch):
    monkeypatch.setattr(Domain, "is_empty", Domain.is_empty)  # restored afterwards
    domains = [Domain.empty(), Domain.load(str(DOMAIN)), Domain.from_dict({"intents": ["x"]}),
               Domain.from_dict({"responses": {"utter_x": [{"text": "x"}]}})]
    expected = [domain._rasa_is_empty(d) for d in domains]
    assert expected == [True, False, False, False]
    domain.install()
    built = []
    empty = Domain.empty
    monkeypatch.setattr(Domain, "empty", classmethod(lambda cls: built.append(1) or empty()))
    domain._empty.cache_clear()  # loading a domain may have asked already
    assert [d.is_empty() for d in domains * 3] == expected * 3
    assert built == [1]
