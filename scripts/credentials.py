"""Write the Rasa credentials file for the channels configured in the environment.

credentials.yml lists every channel with ${VAR} placeholders. A key whose variable is
unset is left out; a channel missing one of its required keys is left out whole, so
Slack and Telegram are on exactly when their variables are set. The action guard (Rasa's
action endpoint), REST and Socket.IO are always on: a source file without them is an
error. Rasa itself expands the remaining placeholders, so no secret is written to disk.
Usage: python scripts/credentials.py [SOURCE] [TARGET]
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Dict

import yaml

REQUIRED = {
    "channels.slack.ClinicSlackInput": ["slack_token", "slack_signing_secret"],
    "channels.telegram.ClinicTelegramInput": ["access_token", "verify", "webhook_url",
                                              "secret_token"],
}
ALWAYS = ["channels.action_guard.ActionGuardInput", "channels.rest.ClinicRestInput",
          "channels.socketio.ClinicSocketIOInput"]
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def is_set(value: Any) -> bool:
    names = PLACEHOLDER.findall(str(value)) if value is not None else []
    return all(os.environ.get(name, "").strip() for name in names)


def enabled_channels(source: Dict[str, Any]) -> Dict[str, Any]:
    missing = [channel for channel in ALWAYS if channel not in source]
    if missing:
        raise SystemExit(f"credentials: {', '.join(missing)} must be in the source file")
    result = {}
    for channel, settings in source.items():
        kept = {k: v for k, v in (settings or {}).items() if is_set(v)}
        if channel in ALWAYS or all(key in kept for key in REQUIRED.get(channel, [])):
            result[channel] = kept or None
    return result


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "credentials.yml")
    target = Path(sys.argv[2] if len(sys.argv) > 2 else "var/credentials.yml")
    channels = enabled_channels(yaml.safe_load(source.read_text()))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(channels, sort_keys=False))
    print("Channels:", ", ".join(name.split(".")[-1] for name in channels))


if __name__ == "__main__":
    main()
