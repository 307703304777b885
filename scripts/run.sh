#!/usr/bin/env bash
# Start the action server and Rasa (REST + Socket.IO, SQLite tracker store), wait until
# they answer, print where to talk to them. Ctrl-C stops everything started here.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# RASA_PORT: endpoints*.yml route custom actions through this process's action guard.
export RASA_PORT=${RASA_PORT:-5005}
ACTIONS_PORT=${ACTIONS_PORT:-5055}
# The action server answers only Rasa, on this machine, unless told otherwise.
ACTIONS_HOST=${ACTIONS_HOST:-127.0.0.1}
export ACTION_SERVER_URL=${ACTION_SERVER_URL:-http://127.0.0.1:$ACTIONS_PORT/webhook}
RASA_HOST=${RASA_HOST:-127.0.0.1}
WEB_PORT=${WEB_PORT:-8080}
MODEL=${MODEL:-models/assistant.tar.gz}
mkdir -p var

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_for() {  # url, name, log
  for _ in $(seq 1 240); do
    if curl -fs -o /dev/null "$1" 2>/dev/null; then return 0; fi
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "$2 stopped; see $3" >&2; tail -20 "$3" >&2; exit 1; }
    done
    sleep 0.5
  done
  echo "$2 did not start within 120 s; see $3" >&2; exit 1
}

start=$(date +%s)
SANIC_HOST=$ACTIONS_HOST $BIN/rasa run actions --actions actions --port "$ACTIONS_PORT" \
  >var/actions.log 2>&1 &
pids+=($!)

$BIN/python scripts/credentials.py credentials.yml var/credentials.yml

api_args=()
if [ -n "${RASA_API_TOKEN:-}" ]; then
  api_args=(--enable-api --auth-token "$RASA_API_TOKEN")
fi
$BIN/rasa run --model "$MODEL" --endpoints "${ENDPOINTS:-endpoints.yml}" \
  --credentials "${CREDENTIALS:-var/credentials.yml}" --interface "$RASA_HOST" --port "$RASA_PORT" \
  --cors "${CORS_ORIGINS:-http://localhost:$WEB_PORT}" "${api_args[@]}" >var/rasa.log 2>&1 &
pids+=($!)

WEB_PORT=$WEB_PORT RASA_SOCKET_URL=${RASA_SOCKET_URL:-http://localhost:$RASA_PORT} \
  $BIN/python scripts/serve_web.py >var/web.log 2>&1 &
pids+=($!)

wait_for "http://localhost:$ACTIONS_PORT/health" "Action server" var/actions.log
wait_for "http://localhost:$RASA_PORT/" "Rasa" var/rasa.log
wait_for "http://localhost:$WEB_PORT/" "Clinic page" var/web.log
echo "Assistant ready in $(( $(date +%s) - start )) s."
echo "  Clinic page with the chat widget: http://localhost:$WEB_PORT"
echo "  REST:      curl -s localhost:$RASA_PORT/webhooks/rest/webhook -d '{\"sender\":\"me\",\"message\":\"hi\"}'"
echo "  Socket.IO: http://localhost:$RASA_PORT/socket.io"
echo "  Logs:      var/rasa.log, var/actions.log, var/web.log"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}"
