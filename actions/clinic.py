"""action_clinic_info: booking, the phone number and the clinic's questions (hours, price,
insurance, parking... data/knowledge/clinic_questions.yml), from the clinic settings.
A setting the clinic has left empty gets "please call us", never an invented answer.
While a warning sign stands, the urgent advice comes first: the visitor needs a doctor
before a physiotherapist."""
from __future__ import annotations

import string
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import content, opening_hours, safety

BOOK_BUTTONS = [{"title": "Book a visit", "payload": "/book_appointment"},
                {"title": "Opening hours", "payload": "/ask_hours"}]


def booking_text(settings: Dict[str, str]) -> str:
    return (
        f"You can book a visit with a physiotherapist at {settings['name']}:\n"
        f"- Online: {settings['booking_url']}\n"
        f"- Phone: {settings['phone']}\n"
        f"- Email: {settings['email']}\n"
        f"- Address: {settings['address']}\n"
        f"- Opening hours: {settings['hours']}"
    )


def phone_text(settings: Dict[str, str]) -> str:
    return (f"You can call {settings['name']} on {settings['phone']} "
            f"({settings['hours']}), e-mail {settings['email']}, or book online at "
            f"{settings['booking_url']}. In an emergency, call "
            f"{settings['emergency_number']}.")


def question_text(intent: str, settings: Dict[str, str], message: str = "") -> str:
    """The answer to a clinic question, or "please call us" when a setting it needs is
    empty. Opening hours name the day asked about, if any."""
    questions = content.clinic_questions()
    template = questions[intent]["answer"]
    if template == "not_set":  # a question the settings cannot answer: the clinic can
        return questions["not_set"].format(**settings)
    needed = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if any(not settings.get(key, "").strip() for key in needed):
        return questions["not_set"].format(**settings)
    text = template.format(**settings)
    if intent == "ask_hours":
        days = opening_hours.days_named(message)
        if days:
            text = " ".join(opening_hours.day_text(settings, d) for d in days) + " " + text
    return text


def utter_clinic(dispatcher: CollectingDispatcher, intent: str, message: str = "") -> None:
    settings = content.clinic()
    if intent in content.clinic_questions():
        buttons = [b for b in BOOK_BUTTONS if b["payload"] != f"/{intent}"]
        dispatcher.utter_message(text=question_text(intent, settings, message), buttons=buttons)
    elif intent == "ask_phone_number":
        dispatcher.utter_message(text=phone_text(settings))
    else:
        dispatcher.utter_message(text=booking_text(settings))


class ActionClinicInfo(Action):
    def name(self) -> Text:
        return "action_clinic_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        flag = safety.active_flag(tracker)
        if flag is not None:
            if intent == "ask_phone_number":
                safety.utter_number(dispatcher, flag)
                return []
            # Every clinic question ("any slots on Saturday?") is a step towards a
            # physiotherapist: the doctor comes first.
            dispatcher.utter_message(text=safety.safety_text("booking_first"))
            dispatcher.utter_message(text=safety.safety_text(flag["tier"]))
        utter_clinic(dispatcher, intent, tracker.latest_message.get("text") or "")
        return []
