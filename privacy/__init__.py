"""Personal data in user messages: found and masked (privacy/pii.py)."""
