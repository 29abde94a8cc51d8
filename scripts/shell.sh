#!/usr/bin/env bash
# Chat with the assistant in the terminal (`make shell`). Uses the running
# action server if `make run` already started one, otherwise starts its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTIONS_PORT=${ACTIONS_PORT:-5055}
mkdir -p var logs
pid=""
if ! curl -fsS -o /dev/null "http://localhost:$ACTIONS_PORT/health" 2>/dev/null; then
  .venv/bin/python -m actions.server --port "$ACTIONS_PORT" >logs/action-server.log 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
fi
echo "Loading the assistant (about a minute) ... type /stop to leave."
.venv/bin/rasa shell --model models/sciatica.tar.gz --endpoints endpoints.yml
