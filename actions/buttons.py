"""Buttons shared by several actions."""
from __future__ import annotations

from typing import Dict

from actions import content


def faq_button(faq_id: str) -> Dict[str, str]:
    """A button that asks the FAQ `faq_id` (its payload is the intent itself)."""
    return {"title": content.faqs()[faq_id]["question"], "payload": f"/{faq_id}"}
