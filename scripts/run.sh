#!/usr/bin/env bash
# Start the action server, Rasa (REST + Socket.IO, SQLite tracker store) and the clinic
# page under supervisord (scripts/supervisord.conf), wait until they answer, print where to
# talk to them. supervisord restarts any of them that crashes and logs it here ("exited:
# rasa (...; not expected)", "spawned: 'rasa'"). Ctrl-C stops everything started here.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CONF=scripts/supervisord.conf
# Everything below is exported: scripts/supervisord.conf reads it (%(ENV_...)s), and the
# programs read it from their environment.
# RASA_PORT: endpoints*.yml route custom actions through this process's action guard.
export RASA_PORT=${RASA_PORT:-5005}
export ACTIONS_PORT=${ACTIONS_PORT:-5055}
# The action server answers only Rasa, on this machine, unless told otherwise.
export ACTIONS_HOST=${ACTIONS_HOST:-127.0.0.1}
export ACTION_SERVER_URL=${ACTION_SERVER_URL:-http://127.0.0.1:$ACTIONS_PORT/webhook}
export RASA_HOST=${RASA_HOST:-127.0.0.1}
export WEB_PORT=${WEB_PORT:-8080}
export MODEL=${MODEL:-models/assistant.tar.gz}
export ENDPOINTS=${ENDPOINTS:-endpoints.yml}
export CORS_ORIGINS=${CORS_ORIGINS:-http://localhost:$WEB_PORT}
export RASA_SOCKET_URL=${RASA_SOCKET_URL:-http://localhost:$RASA_PORT}
# Optional: Rasa's HTTP API (--enable-api --auth-token), read by the rasa program at start.
export RASA_API_TOKEN=${RASA_API_TOKEN:-}
if [ ! -e "$MODEL" ]; then
  echo "No model at $MODEL: run \`make train\` (or set MODEL)" >&2; exit 1
fi
# Logs, the generated credentials file and supervisord's socket and pid file.
VAR_DIR=${VAR_DIR:-var}
mkdir -p "$VAR_DIR"
VAR_SHOWN=$VAR_DIR
VAR_DIR=$(cd "$VAR_DIR" && pwd)
export VAR_DIR
export CREDENTIALS=${CREDENTIALS:-$VAR_DIR/credentials.yml}
if [ ${#VAR_DIR} -gt 90 ]; then  # a Unix socket path has at most 107 bytes
  echo "VAR_DIR is too long for supervisord's socket ($VAR_DIR); choose a shorter one" >&2
  exit 1
fi

supervisord_pid=
cleanup() {
  trap - INT TERM HUP EXIT
  if [ -n "$supervisord_pid" ] && kill -0 "$supervisord_pid" 2>/dev/null; then
    echo; echo "Stopping..."
    # supervisord stops the page, Rasa, then the action server (SIGTERM to each process
    # group, SIGKILL after stopwaitsecs) and exits.
    kill -TERM "$supervisord_pid" 2>/dev/null || true
    wait "$supervisord_pid" 2>/dev/null || true
  fi
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP
trap cleanup EXIT

wait_for() {  # url, name, program, log shown
  local deadline=$(( $(date +%s) + 120 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if curl -fs -m 2 -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$supervisord_pid" 2>/dev/null; then
      echo "supervisord stopped; see $VAR_SHOWN/supervisord.log" >&2
      tail -20 "$VAR_DIR/supervisord.log" >&2 2>/dev/null || true; exit 1
    fi
    # Before the assistant is ready, a program that exits means it cannot start (a port in
    # use, a broken endpoints file...): say so rather than let supervisord retry for
    # minutes. supervisord logs each exit ("exited: rasa (...)"); this run's lines only.
    if grep -qE "(exited|gave up): $3 " \
        < <(tail -c +$(( log_start + 1 )) "$VAR_DIR/supervisord.log" 2>/dev/null); then
      echo "$2 stopped; see $4" >&2; tail -20 "$VAR_DIR/$3.log" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "$2 did not start within 120 s; see $4" >&2; exit 1
}

start=$(date +%s)
$BIN/python scripts/credentials.py credentials.yml "$VAR_DIR/credentials.yml"

user_args=()
if [ "$(id -u)" = 0 ]; then
  user_args=(--user root)  # as root on purpose (containers): no warning about it
fi
log_start=$(stat -c %s "$VAR_DIR/supervisord.log" 2>/dev/null || echo 0)  # appended to
$BIN/supervisord --configuration "$CONF" "${user_args[@]}" &
supervisord_pid=$!

wait_for "http://localhost:$ACTIONS_PORT/health" "Action server" actions "$VAR_SHOWN/actions.log"
wait_for "http://localhost:$RASA_PORT/" "Rasa" rasa "$VAR_SHOWN/rasa.log"
wait_for "http://localhost:$WEB_PORT/" "Clinic page" web "$VAR_SHOWN/web.log"
echo "Assistant ready in $(( $(date +%s) - start )) s."
echo "  Clinic page with the chat widget: http://localhost:$WEB_PORT"
echo "  REST:      curl -s localhost:$RASA_PORT/webhooks/rest/webhook -d '{\"sender\":\"me\",\"message\":\"hi\"}'"
echo "  Socket.IO: http://localhost:$RASA_PORT/socket.io"
echo "  Logs:      $VAR_SHOWN/rasa.log, $VAR_SHOWN/actions.log, $VAR_SHOWN/web.log"
echo "  Restarts:  a crashed process is restarted and logged here and in $VAR_SHOWN/supervisord.log"
echo "             ($BIN/supervisorctl -s unix://$VAR_DIR/supervisor.sock status)"
echo "Press Ctrl-C to stop."
wait "$supervisord_pid"
