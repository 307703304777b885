"""Custom actions of the clinic assistant, one module per concern.

rasa-sdk discovers the Action subclasses when this package is imported
(`rasa run actions --actions actions`).
"""
from actions.clinic import ActionClinicInfo
from actions.exercises import ActionExerciseInstructions
from actions.fallback import ActionDidYouMean
from actions.faq import ActionAnswerFaq
from actions.safety import ActionRedFlagInfo, ActionUrgentCare
from actions.session import ActionSessionStart

__all__ = [
    "ActionAnswerFaq",
    "ActionClinicInfo",
    "ActionDidYouMean",
    "ActionExerciseInstructions",
    "ActionRedFlagInfo",
    "ActionSessionStart",
    "ActionUrgentCare",
]
