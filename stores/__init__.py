"""Rasa tracker and lock stores configured in endpoints*.yml."""
