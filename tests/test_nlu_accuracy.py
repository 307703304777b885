"""The trained model on the held-out test file (never used for training)."""
from __future__ import annotations

from pathlib import Path

import pytest

from scripts.evaluate import accuracy, held_out_examples, load_agent, predict

MODEL = Path(__file__).resolve().parents[1] / "models" / "assistant.tar.gz"
MIN_ACCURACY = 0.90  # the target is 95%; `make eval` prints the figure


@pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")
def test_held_out_accuracy_meets_the_floor():
    examples = held_out_examples()
    assert len(examples) >= 8 * 32
    predicted = predict(load_agent(str(MODEL)), [text for text, _ in examples])
    score = accuracy([intent for _, intent in examples], predicted)
    assert score >= MIN_ACCURACY, f"held-out accuracy {score:.1%} < {MIN_ACCURACY:.0%}"
