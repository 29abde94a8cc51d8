#!/usr/bin/env bash
# Starts the action server, the Rasa server (rest + socketio on port 5005) with the
# trained model and the demo page, logging to logs/, and stops them all on Ctrl-C (exit
# status 0; 1 if a server stopped on its own). Called by `make run`, after the virtual
# environment, spaCy pipeline and model are ready.
set -euo pipefail
cd "$(dirname "$0")/.."

RASA=.venv/bin/rasa
PORT=${RASA_PORT:-5005}
WEB_PORT=${WEB_PORT:-8080}
ACTIONS_PORT=${ACTIONS_PORT:-5055}
mkdir -p var logs

# The profile: embedded (default: SQLite in var/, Rasa's in-memory lock) or production
# (PostgreSQL tracker store and outbox, Redis lock store: endpoints.production.yml, whose
# settings come from the environment; README, "Scaling").
case "${ASSISTANT_PROFILE:=embedded}" in
  embedded)
    ENDPOINTS=endpoints.yml; STORED="in var/tracker.db"
    # endpoints.yml names the action server's default port; on another one Rasa gets a copy naming it
    # (without it, every custom action would fail: Rasa would call 5055).
    if [ "$ACTIONS_PORT" != 5055 ]; then
      ENDPOINTS=var/endpoints.yml
      .venv/bin/python -c 'import sys, yaml
endpoints = yaml.safe_load(open("endpoints.yml"))
endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{sys.argv[1]}/webhook"
open("var/endpoints.yml", "w").write(yaml.safe_dump(endpoints, sort_keys=False))' "$ACTIONS_PORT"
    fi ;;
  production)
    ENDPOINTS=endpoints.production.yml
    export ACTION_SERVER_URL="${ACTION_SERVER_URL:-http://127.0.0.1:$ACTIONS_PORT/webhook}"
    missing=()
    for name in POSTGRES_HOST POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB REDIS_HOST REDIS_PORT REDIS_DB; do
      [ -n "${!name:-}" ] || missing+=("$name")
    done
    [ -n "${REDIS_PASSWORD+set}" ] || missing+=("REDIS_PASSWORD (empty for a Redis without one)")
    if [ ${#missing[@]} -gt 0 ]; then
      echo "ASSISTANT_PROFILE=production needs these settings in the environment: ${missing[*]}" \
           "(deploy/.env.example describes each)." >&2
      exit 1
    fi
    STORED="in PostgreSQL ($POSTGRES_HOST:$POSTGRES_PORT/$POSTGRES_DB)" ;;
  *) echo "ASSISTANT_PROFILE must be embedded or production, not '$ASSISTANT_PROFILE'." >&2; exit 1 ;;
esac
export ASSISTANT_PROFILE

# The servers started below. Ctrl-C (SIGINT to the whole process group) or SIGTERM is a stop
# that was asked for: every server is stopped, "Stopped." and exit status 0. Any other way out
# (a server that died, a start that failed) stops the others too and keeps its non-zero status.
pids=() names=()
stop_servers() {
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  # Each server shuts down cleanly within a few seconds; one that hangs is killed after 30 s.
  local deadline=$((SECONDS + 30)) pid
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}
stop_on_request() {
  trap '' INT TERM  # a second Ctrl-C changes nothing: the stop is under way (30 s at most)
  echo; echo "Stopping the assistant ..."
  stop_servers
  echo "Stopped."
  exit 0
}
trap stop_on_request INT TERM
trap stop_servers EXIT

wait_for() {  # url, what, pid, seconds
  local deadline=$((SECONDS + $4))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    if ! kill -0 "$3" 2>/dev/null; then
      echo "The $2 stopped while starting; see logs/$2.log" >&2; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "The $2 did not start within $4 s; see logs/$2.log" >&2; exit 1
    fi
    sleep 1
  done
}

# A port already taken (often: the assistant still running in another terminal) would make the
# checks below talk to that one instead; say so instead.
for port in "$ACTIONS_PORT" "$PORT" "$WEB_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "Port $port is already in use (is the assistant already running?). Stop that first, or set" \
         "ACTIONS_PORT / RASA_PORT / WEB_PORT." >&2
    exit 1
  fi
done

# The web pages allowed to use the widget (CORS and the socket.io Origin check):
# WIDGET_ORIGINS, space-separated; the demo page by default.
export WIDGET_ORIGINS="${WIDGET_ORIGINS:-${WIDGET_ORIGIN:-http://localhost:$WEB_PORT http://127.0.0.1:$WEB_PORT}}"
# A missing or malformed clinic setting stops here, with the reason.
.venv/bin/python -m actions.clinic_settings || exit 1
# The channels' keys (widget session tokens, SMS conversation names) are derived from one
# secret: CHANNEL_SECRET_KEY, or in the embedded profile a random one kept in var/ (owner-only).
# Only the credentials step reads it; Rasa gets the derived keys in var/credentials.yml.
kept_secret() {  # var/<name>: a random secret made once, readable by this user only; printed
  if [ ! -s "var/$1" ]; then
    (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_hex(32))' >"var/$1")
  fi
  cat "var/$1"
}
if [ -z "${CHANNEL_SECRET_KEY:-}" ]; then
  if [ "$ASSISTANT_PROFILE" = production ]; then
    echo "ASSISTANT_PROFILE=production needs CHANNEL_SECRET_KEY (the same on every Rasa server)." >&2; exit 1
  fi
  CHANNEL_SECRET_KEY=$(kept_secret channel-secret-key)
fi
# The REST channel (a developer's tool) needs a token: REST_CHANNEL_TOKEN, or in the embedded
# profile a random one kept in var/rest-token (owner-only); production leaves REST off without one.
rest_token='$REST_CHANNEL_TOKEN'
if [ -z "${REST_CHANNEL_TOKEN:-}" ] && [ "$ASSISTANT_PROFILE" = embedded ]; then
  REST_CHANNEL_TOKEN=$(kept_secret rest-token)
  rest_token='$(cat var/rest-token)'
fi
# socketio, rest (with its token), and each messaging channel whose settings are in the environment.
CHANNEL_SECRET_KEY="$CHANNEL_SECRET_KEY" REST_CHANNEL_TOKEN="${REST_CHANNEL_TOKEN:-}" \
  .venv/bin/python -m channels.credentials var/credentials.yml || exit 1
if [ -n "${REST_CHANNEL_TOKEN:-}" ]; then
  rest_example="curl -s -XPOST localhost:$PORT/webhooks/rest/webhook -H \"Authorization: Bearer $rest_token\" \\
               -H 'Content-Type: application/json' -d '{\"sender\": \"me\", \"message\": \"What causes sciatica?\"}'"
else
  rest_example="off (set REST_CHANNEL_TOKEN, 32+ random characters, to turn it on)"
fi
unset CHANNEL_SECRET_KEY REST_CHANNEL_TOKEN
# The tracker store must be writable before Rasa starts (Rasa would fall back to memory).
.venv/bin/python -W ignore scripts/check_tracker_store.py "$ENDPOINTS" || exit 1

# Each start keeps the previous runs' logs: x.log.1 is the last run's, up to x.log.$KEEP_LOGS, so the
# log a crash message points to survives a restart. The servers write to their stdout, which this
# script sends to the files, so the rotation is here too: a logging library's rotating handler
# would need each server to open its own file, and Rasa's and rasa-sdk's logging set-up is theirs.
KEEP_LOGS=5
rotate_log() {
  local log=logs/$1.log n
  [ -e "$log" ] || return 0
  for ((n = KEEP_LOGS - 1; n >= 1; n--)); do
    if [ -e "$log.$n" ]; then mv -f "$log.$n" "$log.$((n + 1))"; fi
  done
  mv -f "$log" "$log.1"
}
for name in action-server rasa-server web; do rotate_log "$name"; done

# The action server (actions/server.py: rasa-sdk's) has no authentication of its own: it
# listens on this machine only (ACTIONS_HOST=0.0.0.0 to reach it from elsewhere, behind a firewall).
echo "Starting the action server on ${ACTIONS_HOST:=127.0.0.1}:$ACTIONS_PORT (log: logs/action-server.log) ..."
.venv/bin/python -m actions.server --host "$ACTIONS_HOST" --port "$ACTIONS_PORT" >logs/action-server.log 2>&1 &
pids+=($!) names+=(action-server)
wait_for "http://localhost:$ACTIONS_PORT/health" action-server "${pids[-1]}" 60

# Rasa's HTTP API is what `make reload` loads a new model through. It is on only with a
# token (passed as --auth-token=..., so a token starting with "-" is not taken for an option):
# RASA_API_TOKEN, or a random one kept in var/api-token (readable by this user only).
# RASA_API=off leaves the API off (then make reload can't load a model without a restart).
api=()
if [ "${RASA_API:-on}" != off ]; then
  if [ -z "${RASA_API_TOKEN:-}" ]; then
    RASA_API_TOKEN=$(kept_secret api-token)
  fi
  api=(--enable-api --auth-token="$RASA_API_TOKEN")
fi

# Rasa reads SANIC_BACKLOG: room for a burst of visitors connecting at once (Sanic's default is 100).
export SANIC_BACKLOG=${SANIC_BACKLOG:-2048}
echo "Starting the Rasa server on port $PORT (log: logs/rasa-server.log); this takes 20-30 seconds ..."
# shellcheck disable=SC2086  # WIDGET_ORIGINS is a list
"$RASA" run --model models/sciatica.tar.gz --endpoints "$ENDPOINTS" --credentials var/credentials.yml \
  --cors $WIDGET_ORIGINS --port "$PORT" "${api[@]}" >logs/rasa-server.log 2>&1 &
pids+=($!) names+=(rasa-server)
wait_for "http://localhost:$PORT/" rasa-server "${pids[-1]}" 300

echo "Serving the demo page with the chat widget on port $WEB_PORT ..."
.venv/bin/python scripts/serve_web.py --port "$WEB_PORT" --rasa-url "http://localhost:$PORT" >logs/web.log 2>&1 &
pids+=($!) names+=(web)
wait_for "http://localhost:$WEB_PORT/" web "${pids[-1]}" 30

cat <<MSG

The assistant is running. Talk to it:
  Website:   http://localhost:$WEB_PORT/   (the clinic's demo page; the chat button is bottom right)
  REST:      $rest_example
  socket.io: http://localhost:$PORT/socket.io (for the website widget)
  Terminal:  make shell   (in another terminal)
After editing data/ or clinic.yml: make reload   (checks, retrains, loads the new model; no restart)
Conversations are kept $STORED. Press Ctrl-C to stop.
MSG
# Returns when a server exits on its own (Ctrl-C and SIGTERM go to stop_on_request instead).
status=0
wait -n "${pids[@]}" || status=$?
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "A server stopped unexpectedly: ${names[$i]}, exit status $status; see logs/${names[$i]}.log." >&2
    break
  fi
done
echo "Stopping the others ..." >&2
exit 1
