"""Custom actions of the clinic assistant, one module per concern.

rasa-sdk discovers the Action subclasses when this package is imported
(`rasa run actions --actions actions`).
"""
from actions.cautions import ActionCaution
from actions.clinic import ActionClinicInfo
from actions.doctor import ActionSeenDoctor
from actions.exercise_followups import ActionExerciseDetail, ActionRecommendExercise
from actions.exercises import ActionExerciseInstructions
from actions.fallback import ActionDidYouMean, ActionOutOfScope
from actions.faq import ActionAnswerFaq
from actions.feedback import ActionRecordFeedback
from actions.pain import ActionDescribePain, ActionShareContext
from actions.questions import ActionAnswerQuestion
from actions.safety import (ActionCrisisSupport, ActionOtherLanguage, ActionRedFlagInfo,
                            ActionUrgentCare)
from actions.screening import ActionScreenAnswer, ActionScreenRedFlags, ActionYesNo
from actions.session import ActionSessionStart

__all__ = [
    "ActionAnswerFaq",
    "ActionCaution",
    "ActionExerciseDetail",
    "ActionRecommendExercise",
    "ActionAnswerQuestion",
    "ActionClinicInfo",
    "ActionCrisisSupport",
    "ActionDescribePain",
    "ActionDidYouMean",
    "ActionExerciseInstructions",
    "ActionOtherLanguage",
    "ActionOutOfScope",
    "ActionRecordFeedback",
    "ActionRedFlagInfo",
    "ActionScreenAnswer",
    "ActionScreenRedFlags",
    "ActionSeenDoctor",
    "ActionSessionStart",
    "ActionShareContext",
    "ActionUrgentCare",
    "ActionYesNo",
]
