"""Rasa channel connectors extended for the clinic (Telegram webhook secret, test API URLs)."""
