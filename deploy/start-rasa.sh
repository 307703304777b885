#!/bin/sh
# One Rasa process in its container (docker-compose.yml): the channels configured in the
# environment (scripts/credentials.py), endpoints.postgres.yml, all interfaces of the
# container on RASA_PORT. Reachable from outside only through HAProxy.
set -eu
python scripts/credentials.py credentials.yml /tmp/credentials.yml
if [ -n "${RASA_API_TOKEN:-}" ]; then
  set -- --enable-api --auth-token "$RASA_API_TOKEN"
fi
exec python launcher.py run --model models/assistant.tar.gz \
  --endpoints "${ENDPOINTS:-endpoints.postgres.yml}" --credentials /tmp/credentials.yml \
  --interface 0.0.0.0 --port "${RASA_PORT:-5005}" \
  --cors "${CORS_ORIGINS:-http://localhost:8080}" "$@"
