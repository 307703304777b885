"""Rasa's channel connectors, extended for the clinic and configured in credentials.yml:
REST and Socket.IO with input checks, Slack and Telegram, the payload gate they all use
(payloads.py), and the action guard that fronts the action server (action_guard.py)."""
