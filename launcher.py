"""How this assistant starts Rasa: stock Rasa's command line, with the changes below
made first. Everything that starts the Rasa server or the action server goes through
here (`make run` via scripts/supervisord.conf, scripts/servers.py for the tests and the
benchmark, deploy/start-rasa.sh and docker-compose.yml for the containers):

    python launcher.py run --model ... --endpoints ...     # the Rasa server
    python launcher.py run actions --actions actions ...   # the action server

Changes, in both processes:
- privacy/log_redaction.py: no user text in any log record (a record-factory filter).

In the Rasa server only:
- runtime/: speed changes to Rasa's internals (each module says what it replaces and
  why; predictions and answers stay Rasa's). The heap is frozen once the model is
  loaded (channels/action_guard.py, runtime/heap.py).

Components, stores, channels and the action guard are registered the stock way, in
config.yml, endpoints*.yml and credentials.yml.
"""
from __future__ import annotations

import sys
from typing import List, Optional


def is_rasa_server(argv: List[str]) -> bool:
    return argv[:1] == ["run"] and argv[1:2] != ["actions"]


def prepare(argv: List[str]) -> None:
    from actions.content import clinic
    from privacy import log_redaction
    from privacy.pii import phone_region

    log_redaction.install(phone_region(clinic().get("phone", "")))
    if is_rasa_server(argv):
        import runtime

        runtime.install()


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    prepare(argv)
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *argv]
    rasa_main()


if __name__ == "__main__":
    main()
