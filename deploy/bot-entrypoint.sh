#!/usr/bin/env bash
# Starts the Rasa server in the bot container, after the checks scripts/run.sh makes:
# the clinic settings, the channel credentials (from the environment), a writable tracker store.
# Arguments are added to `rasa run`.
set -euo pipefail
cd /app

: "${WIDGET_ORIGINS:?WIDGET_ORIGINS is not set: the web pages allowed to use the widget, such as https://www.example.com}"

# A missing or malformed clinic setting stops here, with the reason.
python -m actions.clinic_settings
# socketio, rest when REST_CHANNEL_TOKEN is set, and each messaging channel whose settings are in
# the environment. Rasa reads the keys derived from CHANNEL_SECRET_KEY and the REST token from
# var/credentials.yml, so neither stays in its environment.
python -m channels.credentials var/credentials.yml
unset CHANNEL_SECRET_KEY REST_CHANNEL_TOKEN

# The tracker store (PostgreSQL) must be writable before Rasa starts, or Rasa would keep
# conversations in memory. Several Rasa servers starting at once on a new database race to
# create its tables, and PostgreSQL may still be starting after a restart: a few tries.
for attempt in 1 2 3 4 5 6; do
  if python -W ignore scripts/check_tracker_store.py endpoints.production.yml; then
    break
  fi
  if [ "$attempt" -eq 6 ]; then
    exit 1
  fi
  echo "Trying the tracker store again in 5 s ($attempt/6) ..." >&2
  sleep 5
done

# Rasa's HTTP API (loading a model, reading conversations) only with a token; it is not
# published by the widget's nginx either way.
api=()
if [ -n "${RASA_API_TOKEN:-}" ]; then
  api=(--enable-api --auth-token="$RASA_API_TOKEN")
fi

# Room for a burst of visitors connecting at once (Sanic's default backlog is 100).
export SANIC_BACKLOG="${SANIC_BACKLOG:-2048}"
origins="${WIDGET_ORIGINS//,/ }"
# shellcheck disable=SC2086  # the origins are a list
exec rasa run --model models/sciatica.tar.gz --endpoints endpoints.production.yml \
  --credentials var/credentials.yml --cors $origins --port 5005 "${api[@]}" "$@"
