"""What the Rasa server process changes in Rasa at start-up, for speed: installed by
launcher.py, which starts every Rasa process of this assistant.
Each module says what it replaces and why; the predictions and answers stay Rasa's.
(`heap.freeze()` is not installed here: the guard calls it once the model is loaded.)"""
from runtime import domain, graph_runner, http_sessions, local_routes, payload_parses, \
    schema_check


def install() -> None:
    domain.install()
    graph_runner.install()
    http_sessions.install()
    local_routes.install()
    payload_parses.install()
    schema_check.install()
